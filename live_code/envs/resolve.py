"""Resolving a job env's requirements against the base with uv (issue 22 adds: as of a date, and
the lock of what the env adds).

Every base distribution is offered to ``uv pip compile`` as a metadata-only stub wheel, the
protected frameworks are constrained to their base versions and the base's other versions are
preferred (seeded into the output file); then what the base lacks is locked with uv's own
``pylock.toml`` output. As of a date, uv's ``--exclude-newer`` (the index's PEP 700 upload times)
bounds the resolution; a date at which some package has no wheel for the base's Python steps
forward (:func:`resolve`).

Private to ``envs``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from live_code import util
from live_code.envs.base import normal_version, write_stubs
from live_code.envs.installer import Reporter, offline_flags, run_short
from live_code.envs.lock import LOCK_NAME, PREVIEW, LockedPackage, isolation_flags, parse_lock, rfc3339
from live_code.errors import EnvironmentBuildError, RequirementError
from live_code.record import record, replace

if TYPE_CHECKING:
    from live_code.envs.builder import EnvSpec

#: base distributions not offered to ``uv pip compile`` as metadata-only stubs: uv also installs from
#: its find-links into the isolated environment where it builds an sdist's metadata, and a stub of
#: setuptools there has no code ("No module named 'setuptools'", e.g. for fvcore's and antlr4's
#: sdists); their base versions stay preferred through the seeded output file
_BUILD_TOOLS = frozenset({"setuptools", "wheel"})
_DAY = dt.timedelta(days=1)


def write_inputs(spec: EnvSpec, scratch: Path) -> None:
    """What :func:`resolve` reads: the checked requirements and the base's frameworks as constraints."""
    (scratch / "requirements.txt").write_text(spec.requirements.installer_text())
    pins = sorted(spec.base.protected.items())
    (scratch / "constraints.txt").write_text("".join(f"{n}=={v}\n" for n, v in pins))


@record
class Resolution:
    #: the resolved lines the base lacks (with the user's hashes), to install
    todo: tuple[str, ...]
    #: uv's pylock.toml of ``todo`` (no live-code table yet); None when uv could not write one
    lock_text: str | None
    #: the ``--exclude-newer`` date used, and how it was chosen
    as_of: str | None = None
    as_of_note: str = ""


Compile = Callable[..., bool]


def resolve(
    spec: EnvSpec,
    scratch: Path,
    env: Mapping[str, str],
    python: str,
    deadline: float | None,
    report: Reporter,
    *,
    prefer: tuple[str, ...] = (),
    lock: bool = True,
) -> Resolution:
    """Resolve ``spec``'s requirements against its base with uv (every base distribution offered
    as a metadata-only stub wheel, the protected frameworks constrained, the base's versions and
    ``prefer`` (``name==version``) preferred), as of ``spec.as_of`` when set; then lock what the
    base lacks (not with ``lock=False``: the caller runs :func:`lock_argv` itself, e.g. beside the
    install). Needs ``scratch/requirements.txt`` and ``scratch/constraints.txt``."""
    base, out = spec.base, scratch / "lock.txt"
    write_stubs(
        scratch / "stubs",
        replace(base, dists=tuple(d for d in base.dists if util.canonical_name(d.name) not in _BUILD_TOOLS)),
    )
    stub_env = {**env, "UV_FIND_LINKS": ",".join([str(scratch / "stubs"), *spec.index.find_links])}
    seed = "".join(
        [*(f"{p}\n" for p in prefer), *(f"{d.name}=={d.version}\n" for d in base.dists if normal_version(d.version))]
    )

    def compile_at(as_of: str | None, only_binary: tuple[str, ...] = (), *, check: bool = True, fmt: str = "") -> bool:
        out.write_text("" if fmt else seed)  # uv takes the pins already in the output file as preferences
        flags = [*(["--exclude-newer", as_of] if as_of else []), *(f"--only-binary={n}" for n in only_binary)]
        if fmt:
            flags += ["--format", fmt, *PREVIEW]
        argv = [*_compile_argv(spec, python), *flags, "-c", str(scratch / "constraints.txt"), "-o", str(out)]
        try:
            run_short([*argv, str(scratch / "requirements.txt")], stub_env, deadline, "resolve the requirements")
        except EnvironmentBuildError:
            if check:
                raise
            return False
        return True

    report(f"resolving {len(spec.requirements.lines)} requirements against the base's {len(base.dists)} distributions")
    used, note = None, ""
    if spec.as_of:
        used, note = _as_of(spec, compile_at, out, report)
    else:
        compile_at(None)
    todo = tuple(_not_in_base(out.read_text(), spec))
    lock_text = _lock_of(spec, todo, scratch, env, python, deadline, report) if lock else None
    return Resolution(todo, lock_text, used, note)


def _compile_argv(spec: EnvSpec, python: str) -> list[str]:
    vcs = any(r.kind == "vcs" for r in spec.requirements.lines)
    return [
        *spec.installer.argv,
        *("pip", "compile", "--no-config", "--python", python, "--no-header", "--no-annotate"),
        *offline_flags(spec.index, vcs=vcs),
        *isolation_flags(spec),
    ]


def _as_of(spec: EnvSpec, compile_at: Compile, out: Path, report: Reporter) -> tuple[str, str]:
    """The first date on or after ``spec.as_of`` at which every package that has wheels today
    resolves to a wheel for the base's Python (then: stepping forward a day, two, four ... and
    back by halves, to the day). When none does, as of ``spec.as_of`` with source builds."""
    start = dt.datetime.fromisoformat(str(spec.as_of).replace("Z", "+00:00"))
    now = dt.datetime.now(dt.timezone.utc)
    wheels: tuple[str, ...] = ()
    plain = all(r.kind == "name" for r in spec.requirements.lines)  # a path or VCS line is always built
    if plain and compile_at(None, check=False, fmt="pylock.toml"):
        wheels = tuple(sorted(p.name for p in parse_lock(out.read_text(), "uv's lock").packages if _has_wheel(p)))

    def ok(when: dt.datetime) -> bool:
        return compile_at(rfc3339(when), wheels, check=False)

    if ok(start):
        return rfc3339(start), f"as of {spec.as_of}"
    step, good = _DAY, None
    while start + step < now + _DAY:
        if ok(start + step):
            good = start + step
            break
        step *= 2
    if good is None:
        report(f"no date after {spec.as_of} resolves to wheels only: resolving as of it, with source builds")
        compile_at(str(spec.as_of))
        return str(spec.as_of), f"as of {spec.as_of} (no later date resolves to wheels only)"
    bad = start + step / 2 if step > _DAY else start
    while good - bad > _DAY:
        mid = bad + (good - bad) / 2
        good, bad = (mid, bad) if ok(mid) else (good, mid)
    ok(good)  # the output file holds this date's resolution
    used = rfc3339(good)
    report(f"resolved as of {used}: as of {spec.as_of} some package had no wheel for python {spec.base.python_version}")
    return used, f"stepped forward from {spec.as_of}: the first date at which every package resolves to a wheel"


def _has_wheel(p: LockedPackage) -> bool:
    return any(s.endswith(".whl") for s in p.sources)


def lock_argv(spec: EnvSpec, todo: tuple[str, ...], scratch: Path, python: str) -> list[str]:
    """The uv call that writes ``scratch/pylock.toml``, the lock of the resolved lines ``todo``
    (``--no-deps``: exactly these)."""
    (scratch / "to-lock.txt").write_text("".join(f"{t}\n" for t in todo))
    argv = [*_compile_argv(spec, python), "--no-deps", "--format", "pylock.toml", *PREVIEW]
    return [*argv, "-o", str(scratch / LOCK_NAME), str(scratch / "to-lock.txt")]


def no_lock(e: EnvironmentBuildError, report: Reporter) -> None:
    """The warning when uv could not write the lock (the env is built all the same)."""
    report(f"warning: no lock of the env is recorded: {e.message.splitlines()[-1]}")


def _lock_of(
    spec: EnvSpec,
    todo: tuple[str, ...],
    scratch: Path,
    env: Mapping[str, str],
    python: str,
    deadline: float | None,
    report: Reporter,
) -> str | None:
    """What :func:`lock_argv` writes; None, with a warning, when uv cannot write it."""
    try:
        run_short(lock_argv(spec, todo, scratch, python), env, deadline, "lock the env")
    except EnvironmentBuildError as e:
        no_lock(e, report)
        return None
    return (scratch / LOCK_NAME).read_text()


def _not_in_base(lock: str, spec: EnvSpec) -> list[str]:
    """The resolved lines the base lacks (with the user's hashes); a protected one is an error."""
    from packaging.requirements import InvalidRequirement, Requirement  # here, not above: util.canonical_name says why

    base = spec.base
    versions, protected = base.versions, base.protected
    hashes = {r.name: r.hashes for r in spec.requirements.lines if r.name and r.hashes}
    todo = []
    for line in lock.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:  # an unnamed local path: installed as is, checked after install
            todo.append(line)
            continue
        name = util.canonical_name(req.name)
        pin, have = next(iter(req.specifier), None), normal_version(versions.get(name, ""))
        if req.url is None and pin is not None and have is not None and normal_version(pin.version) == have:
            continue  # the base has it
        if name in protected:
            msg = f"the requirements resolve to {line}, which would replace the base image's {name} {protected[name]}"
            hint = f"pin versions of the packages that need {name} which work with {name} {protected[name]}"
            raise RequirementError(msg, value=line, hint=hint)
        todo.append(" ".join([line, *(f"--hash={h}" for h in hashes.get(name, ()))]))
    return todo
