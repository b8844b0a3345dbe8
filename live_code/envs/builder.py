"""Build and fingerprint a job venv layered over the base interpreter (design.md flow step 4).

The job's env is a venv that sees exactly what the base interpreter sees: its site-packages and,
for a base that is itself a venv (the harness's own, in tests and local use), that venv's packages
through a ``.pth`` file. So the image's frameworks are used and never reinstalled. Envs are cached
under :func:`env_key` through any object with ``ensure(kind, key, build)`` (:class:`EnvStore`; in
practice ``store.Store``, which this module must not import).

uv does not see packages that a venv sees through ``--system-site-packages`` (astral-sh/uv#4466,
perf-baselines.md 2.3): a constraint alone makes it install a second torch into the job env. So with
uv the requirements are first resolved (``uv pip compile``) against the base: every base
distribution is offered as a metadata-only stub wheel, the protected frameworks are constrained to
their base versions, and the base's other versions are preferred (seeded into the output file).
Then only what the base lacks is installed, with ``--no-deps``. pip (the fallback) sees the base
itself and gets the same constraints. After any install the protected distributions must be absent
from the job env and unchanged in the base (RECORD bytes, each listed file's size and mtime).

Typical use (the pipeline)::

    spec = prepare_env(repo_dir, manifest.requirements, base_python=..., index=IndexSettings(...))
    with store.using("envs", spec.key):  # gc never removes an env in use
        env = ensure_env(store, spec, installer_cache=store.root / "installer-cache", reporter=...)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from live_code import util
from live_code.envs.base import (
    PROTECTED_NAMES,
    PROTECTED_PREFIXES,
    BaseInfo,
    Dist,
    base_fingerprint,
    is_protected,
    normal_version,
    own_dists,
    sha256_json,
    site_dirs,
    write_stubs,
)
from live_code.envs.installer import (
    IndexSettings,
    Installer,
    Reporter,
    die_with_parent,
    find_installer,
    installer_env,
    offline_flags,
    run_short,
    run_streaming,
)
from live_code.envs.requirements import (
    RequirementLine,
    Requirements,
    find_requirements,
    parse_requirements,
    requirements_reason,
    with_implied,
    with_mirrors,
)
from live_code.errors import EnvironmentBuildError, RequirementError
from live_code.source import mirrors
from live_code.task import legacy

__all__ = [
    "DEFAULT_INDEX",
    "LAYOUT_VERSION",
    "PROTECTED_NAMES",
    "PROTECTED_PREFIXES",
    "BaseInfo",
    "Dist",
    "EnvProvenance",
    "EnvResult",
    "EnvSpec",
    "EnvStore",
    "IndexSettings",
    "Installer",
    "RequirementLine",
    "Requirements",
    "base_fingerprint",
    "build_env",
    "FrameworkVerdict",
    "framework_verdict",
    "check_protected",
    "ensure_env",
    "env_key",
    "find_installer",
    "find_requirements",
    "is_protected",
    "parse_requirements",
    "prepare_env",
    "start_bytecode_compile",
    "finish_bytecode_compile",
]

log = logging.getLogger(__name__)

#: bump whenever the build recipe changes: every cached env is then rebuilt
LAYOUT_VERSION = 1
PROVENANCE_FILE = "live-code-env.json"
BASE_PTH = "_live_code_base.pth"
#: in an env whose own packages were compiled to bytecode (by :func:`start_bytecode_compile`)
COMPILED_MARKER = ".live-code-compiled"
#: the default index (PyPI), online
DEFAULT_INDEX = IndexSettings()


@dataclass(frozen=True)
class FrameworkVerdict:
    """What becomes of a requirement line on a protected framework (torch, mxnet, ...)."""

    #: ``base``: the base's version satisfies it (nothing installed); ``refused``: it would replace
    #: the base's version; ``install``: the base lacks the package, so it is installed
    status: str
    message: str
    hint: str = ""
    #: the base's version, when it has the package
    base_version: str | None = None


def framework_verdict(line: RequirementLine, base: BaseInfo) -> FrameworkVerdict | None:
    """The one verdict on a requirement line naming a protected framework, for ``live-code check``
    and ``live-code run`` alike; None for any other line."""
    if line.name is None or not is_protected(line.name):
        return None
    have = base.protected.get(line.name)
    if have is None:
        return FrameworkVerdict(
            "install",
            f"{line.origin}: {line.text!r}: the base has no {line.name}, so it is "
            "installed into the job env (a compiled one must match the base's frameworks)",
            "better: use an image whose base has it",
        )
    parsed = normal_version(have)
    if line.kind == "name" and (
        SpecifierSet(line.specifier).contains(parsed, prereleases=True) if parsed else not line.specifier
    ):
        return FrameworkVerdict(
            "base", f"{line.origin}: {line.text!r} is satisfied by the base's {line.name} {have}", base_version=have
        )
    what = "another version" if line.kind == "name" else f"a {line.kind} form of it"
    return FrameworkVerdict(
        "refused",
        f"{line.origin}: {line.text!r} would replace the base image's {line.name} {have} ({what})",
        f"remove the line or pin {line.name}=={have}: the image's frameworks are never reinstalled "
        f"(another {line.name} needs another image)",
        have,
    )


def check_protected(requirements: Requirements, base: BaseInfo) -> None:
    """Refuse, before anything is installed, a requirement that would replace a protected
    framework of the base: another version, or any URL, VCS or path form of it."""
    for line in requirements.lines:
        verdict = framework_verdict(line, base)
        if verdict is not None and verdict.status == "refused":
            raise RequirementError(verdict.message, value=f"{line.origin}: {line.text}", hint=verdict.hint)


def env_key(
    base: BaseInfo,
    requirements: Requirements,
    index: IndexSettings,
    installer: Installer,
    no_build_isolation: tuple[str, ...] = (),
) -> str:
    """sha256 (first 32 hex) of sorted-key JSON of everything that changes the env. Not the git
    mirrors: a VCS requirement names its commit, which is the same code from any mirror."""
    facts: dict[str, Any] = {
        "layout": LAYOUT_VERSION,
        "python": base.python_version,
        "implementation": base.implementation,
        "platform": base.platform,
        "base": base.fingerprint(),
        "requirements": requirements.digest(),
        "installer": [installer.name, installer.version],
        "index": index.display(),
        "protected": [sorted(PROTECTED_NAMES), list(PROTECTED_PREFIXES)],
    }
    if no_build_isolation:  # only then, so the keys of every other env stay as they were
        facts["no_build_isolation"] = sorted(no_build_isolation)
    return sha256_json(facts)[:32]


@dataclass(frozen=True)
class EnvSpec:
    """Everything checked before any install: what to build, over which base, under which key."""

    base: BaseInfo
    requirements: Requirements
    index: IndexSettings
    installer: Installer
    key: str
    #: what the legacy layout adds (nothing for a live-code.yaml repo)
    implied: legacy.Implied = legacy.NOTHING
    #: requirements built without build isolation, against what the job env sees (the base's
    #: torch): live-code.yaml's ``no_build_isolation``
    no_build_isolation: tuple[str, ...] = ()
    #: the operator's git mirrors (``LIVE_CODE_GIT_MIRRORS``), for the installer's git
    git_mirrors: mirrors.Mirrors = mirrors.NO_MIRRORS

    @property
    def satisfied_by_base(self) -> tuple[str, ...]:
        """``origin: text (the base's name version)`` of each framework line the base satisfies."""
        return tuple(
            f"{line.origin}: {line.text} (the base's {line.name} {self.base.protected[line.name or '']})"
            for line in self._by_base()
        )

    @property
    def unpinned(self) -> tuple[str, ...]:
        """``origin: text`` of each line not pinned to one version, but for those the base satisfies."""
        by_base = self._by_base()
        return tuple(f"{r.origin}: {r.text}" for r in self.requirements.lines if not r.pinned and r not in by_base)

    def _by_base(self) -> list[RequirementLine]:
        return [
            line
            for line in self.requirements.lines
            if (v := framework_verdict(line, self.base)) is not None and v.status == "base"
        ]


def prepare_env(
    repo_dir: str | os.PathLike[str],
    manifest_requirements: str | None = None,
    *,
    base_python: str | os.PathLike[str] | None = None,
    index: IndexSettings = DEFAULT_INDEX,
    strict_pins: bool = False,
    installer: Installer | None = None,
    legacy_layout: bool = False,
    sdk_option: str = "auto",
    environ: Mapping[str, str] | None = None,
    no_build_isolation: tuple[str, ...] = (),
) -> EnvSpec:
    """Find and check the repo's requirements, read the base (default: the interpreter running the
    harness; the caller reads ``LIVE_CODE_BASE_PYTHON``) and compute the key. A legacy-layout repo
    (``legacy_layout``) also gets what :mod:`live_code.task.legacy` implies, from the operator's SDK
    wheelhouse when there is one (with no index at all when the repo lists nothing else).
    ``git+https`` lines are fetched through the operator's mirrors (``LIVE_CODE_GIT_MIRRORS`` of
    ``environ``); ``no_build_isolation`` (live-code.yaml) names requirements to build against the
    job env itself, which must name each of them.

    Raises RequirementError for a refused line or a protected framework, before any install."""
    path = find_requirements(repo_dir, manifest_requirements, legacy=legacy_layout)
    reason = requirements_reason(repo_dir, path, manifest_requirements, legacy=legacy_layout)
    requirements = parse_requirements(path, repo_dir, strict_pins=strict_pins, reason=reason)
    no_build_isolation = _check_no_build_isolation(no_build_isolation, requirements)
    git_mirrors = mirrors.from_environ(environ)
    if git_mirrors:
        requirements = with_mirrors(requirements, git_mirrors.rewrite)
    implied = legacy.NOTHING
    if legacy_layout:
        own = legacy.requirement_names((r.name, r.origin) for r in requirements.lines)
        implied = legacy.implied(repo_dir, own, sdk_option, environ)
        index = _with_wheelhouse(index, implied, own_lines=bool(requirements.lines))
        requirements = with_implied(requirements, implied.requirements, legacy.IMPLIED)
    base = base_fingerprint(base_python or sys.executable)
    check_protected(requirements, base)
    installer = installer or find_installer()
    key = env_key(base, requirements, index, installer, no_build_isolation)
    return EnvSpec(base, requirements, index, installer, key, implied, no_build_isolation, git_mirrors)


def _check_no_build_isolation(names: tuple[str, ...], requirements: Requirements) -> tuple[str, ...]:
    """The canonical names, each of which a requirement line must name (a typo would silently build
    with isolation, and fail for want of the base's torch)."""
    wanted = tuple(sorted({canonicalize_name(n) for n in names}))
    listed = {r.name for r in requirements.lines if r.name}
    for name in wanted:
        if name not in listed:
            msg = f"live-code.yaml: no_build_isolation names {name!r}, which no line of {requirements.file} names"
            hint = "list the distribution names of requirement lines there (e.g. detectron2), or remove the entry"
            raise RequirementError(msg, value=name, hint=hint)
    return wanted


def _with_wheelhouse(index: IndexSettings, implied: legacy.Implied, *, own_lines: bool) -> IndexSettings:
    """The task's index settings plus the SDK wheelhouse; with no line of the repo's own to resolve
    (or an offline task), no index at all: an air-gapped site installs the implied packages.
    Without a wheelhouse they come from the task's index, which must be able to serve them."""
    if not implied.requirements:
        return index
    if implied.wheelhouse is None:
        wanted = [r for r, _ in implied.requirements]
        if not index.offline:  # PyPI serves ymir-exc 1.x, loguru and opencv, but no index the 2.x SDK
            wanted = [r for r in wanted if implied.sdk.generation == "2" and r == implied.sdk.requirement]
            if wanted and not index.find_links:
                raise EnvironmentBuildError(
                    f"the job needs the 2.x executor SDK ({implied.sdk.reason}), and no SDK wheelhouse is set",
                    value=legacy.WHEELHOUSE_VAR,
                    hint=legacy.missing_sdk2_hint(),
                )
        missing = legacy.missing_wheels(wanted, index.find_links)
        if missing:
            raise EnvironmentBuildError(
                f"no SDK wheelhouse is set and the task's wheelhouse lacks what the legacy layout implies: "
                f"{', '.join(missing)}",
                value=legacy.WHEELHOUSE_VAR,
                hint=f"set {legacy.WHEELHOUSE_VAR} to the folder made by base_images/common/build-sdk-wheelhouse.sh "
                "(the live-code images set it), or add these wheels to pip_find_links",
            )
        return index
    find_links = (*index.find_links, implied.wheelhouse)
    offline = index.offline or not own_lines
    if offline:
        return IndexSettings(find_links=find_links, offline=True)
    return IndexSettings(index.index_url, index.extra_index_urls, find_links, False)


@dataclass(frozen=True)
class EnvProvenance:
    """The env part of a run's provenance record."""

    key: str
    installer: str
    installer_version: str
    python: str
    platform: str
    base_python: str
    base_fingerprint: str
    #: the base's protected frameworks, name -> version
    protected: dict[str, str]
    requirements_file: str | None
    requirements_sha256: str
    #: ``file:line: text`` of each requirement not pinned to one version (framework lines that the
    #: base satisfies are in ``satisfied_by_base`` instead)
    unpinned: tuple[str, ...]
    #: what the env adds over the base, ``name==version``
    added: tuple[str, ...]
    #: the index settings, credentials redacted
    index: dict[str, Any]
    #: ``file:line: text (the base's name version)`` of framework lines the base satisfies
    satisfied_by_base: tuple[str, ...] = ()
    #: each VCS line fetched through an operator mirror: requirement (file:line), url (as the file
    #: gives it), mirror (where the installer fetched it)
    git_mirrors: tuple[dict[str, str], ...] = ()
    #: built without build isolation, against the job env (live-code.yaml's no_build_isolation)
    no_build_isolation: tuple[str, ...] = ()
    layout_version: int = LAYOUT_VERSION
    seconds: float = 0.0
    created: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        what = self.requirements_file or "no requirements"
        doc["summary"] = f"{len(self.added)} packages over {self.base_python} ({what})"
        return doc


def build_env(
    path: str | os.PathLike[str],
    spec: EnvSpec,
    *,
    installer_cache: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
) -> EnvProvenance:
    """Create the env in the empty directory ``path`` and install ``spec``'s requirements into it.

    ``installer_cache`` keeps uv's (pip's) cache between builds: keep it on the env's filesystem so
    uv can hardlink; None means a throwaway one. ``timeout`` bounds the whole build in seconds.
    ``reporter`` gets the progress lines (default: logging). Scratch files (the installer's HOME,
    stub wheels, the lock) live in ``.<name>.build`` next to ``path`` during the build. Writes the
    provenance to ``path/live-code-env.json`` and returns it; on failure the caller removes ``path``."""
    path = Path(path)
    report = reporter or log.info
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    base, inst = spec.base, spec.installer
    # next to the env (the same filesystem as the caches); one left by a killed build goes first
    scratch = path.parent / f".{path.name}.build"
    util.rmtree(scratch)
    scratch.mkdir()
    try:
        env = installer_env(
            scratch,
            Path(installer_cache) if installer_cache else scratch / "cache",
            spec.index,
            spec.git_mirrors.insteadof_config(),
        )
        before = base_fingerprint(base.executable, signatures_for=base.protected) if base.protected else base
        report(f"creating the env over {base.executable} (python {base.python_version}), {inst.name} {inst.version}")
        _create_venv(path, spec, env, deadline)
        if spec.requirements.lines:
            (scratch / "requirements.txt").write_text(spec.requirements.installer_text())
            pins = sorted(base.protected.items())
            (scratch / "constraints.txt").write_text("".join(f"{n}=={v}\n" for n, v in pins))
            for r in spec.requirements.lines:
                if r.mirror:
                    report(f"{r.origin}: {r.mirror[0]} is fetched from the mirror {r.mirror[1]}")
            try:
                if inst.name == "uv":
                    _install_with_uv(path, spec, scratch, env, deadline, report)
                else:
                    _install_with_pip(path, spec, scratch, env, deadline, report)
            except EnvironmentBuildError as e:
                raise _with_mirror_note(e, spec) from None
        added = own_dists(path)
        _verify_base_kept(before, added)
    finally:
        util.rmtree(scratch)
    for name in sorted(n for n in added if is_protected(n)):  # one the base lacks (else refused above)
        report(
            f"warning: installed {name} {added[name]}, a framework package the base does not have; "
            "a compiled one must match the base's own frameworks (better: put it in the image)"
        )
    prov = EnvProvenance(
        spec.key,
        inst.name,
        inst.version,
        base.python_version,
        base.platform,
        base.executable,
        base.fingerprint(),
        base.protected,
        spec.requirements.file,
        spec.requirements.digest(),
        spec.unpinned,
        tuple(f"{n}=={v}" for n, v in sorted(added.items())),
        spec.index.display(),
        satisfied_by_base=spec.satisfied_by_base,
        git_mirrors=tuple(
            {"requirement": r.origin, "url": r.mirror[0], "mirror": r.mirror[1]}
            for r in spec.requirements.lines
            if r.mirror
        ),
        no_build_isolation=spec.no_build_isolation,
        seconds=round(time.monotonic() - started, 3),
    )
    util.atomic_write(path / PROVENANCE_FILE, json.dumps(prov.as_dict(), sort_keys=True, indent=1))
    report(f"env {spec.key[:12]} ready: {len(added)} packages added in {prov.seconds:.1f}s")
    return prov


class EnvStore(Protocol):
    """What this module needs of ``store.Store``: ``ensure`` builds an entry once, under a lock,
    trusted only once complete, removed if the build fails."""

    def ensure(self, kind: str, key: str, build: Callable[[Path], Mapping[str, Any] | None]) -> tuple[Path, bool]: ...


class EnvResult(NamedTuple):
    path: Path
    #: the env's interpreter, to run the job with
    python: Path
    key: str
    #: False when a cached env was reused (no installer ran)
    built: bool
    provenance: dict[str, Any]


def ensure_env(
    store: EnvStore,
    spec: EnvSpec,
    *,
    installer_cache: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
) -> EnvResult:
    """The cached env for ``spec`` (cache kind ``envs``), built by :func:`build_env` if needed."""

    def _build(path: Path) -> Mapping[str, Any]:
        return build_env(path, spec, installer_cache=installer_cache, timeout=timeout, reporter=reporter).as_dict()

    path, built = store.ensure("envs", spec.key, _build)
    if not built:
        (reporter or log.info)(f"reusing env {spec.key[:12]}")
    try:
        prov = json.loads((path / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        prov = {}
    return EnvResult(path, _python(path), spec.key, built, prov)


# Compile the env's own site-packages (argv[2:]) to bytecode, then create the marker argv[1]: only
# once every file was tried, so a compile killed half-way is started again by the next run.
_COMPILE = """\
import compileall, os, sys
os.nice(10)
for site_dir in sys.argv[2:]:
    compileall.compile_dir(site_dir, quiet=2, workers=1)
open(sys.argv[1], "a").close()
"""


def start_bytecode_compile(env_path: str | os.PathLike[str]) -> subprocess.Popen[bytes] | None:
    """Start compiling a new env's packages to ``.pyc`` in the background, at low priority, so the
    job starts without waiting for it (its first imports read the sources; later runs get the
    bytecode). None when the env was compiled before or has no packages of its own. Writing a
    ``.pyc`` is atomic (a rename), so concurrent compiles and a kill half-way are safe. Pass the
    result to :func:`finish_bytecode_compile`; the process is killed if the harness dies."""
    path = Path(env_path)
    own = [str(d) for d in site_dirs(path) if any(d.iterdir())]
    if not own or (path / COMPILED_MARKER).exists() or not os.access(path, os.W_OK):
        return None  # done, nothing to do, or a read-only env (a baked image compiles at prefetch)
    argv = [str(_python(path)), "-I", "-c", _COMPILE, str(path / COMPILED_MARKER), *own]
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", os.defpath)},
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
    except OSError as e:
        log.warning("cannot compile the env's bytecode (the job imports from source): %s", e)
        return None


def finish_bytecode_compile(
    proc: subprocess.Popen[bytes] | None, timeout: float = 0.0, reporter: Reporter | None = None
) -> bool:
    """Wait up to ``timeout`` seconds for :func:`start_bytecode_compile`'s process, then kill it
    (a later run starts it again). True if it completed."""
    if proc is None:
        return True
    if proc.poll() is None and timeout > 0:
        (reporter or log.info)(f"finishing the env's bytecode compile (at most {timeout:.0f}s more)")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        return False
    return proc.returncode == 0


# -- build steps --------------------------------------------------------------------------------


def _create_venv(path: Path, spec: EnvSpec, env: Mapping[str, str], deadline: float | None) -> None:
    base = spec.base
    flags = ["--system-site-packages"] if base.system_site else []
    if spec.installer.name == "uv":
        argv = [*spec.installer.argv, "venv", "--no-config", "--python", base.executable, *flags, str(path)]
    else:
        argv = [base.executable, "-m", "venv", "--without-pip", *flags, str(path)]
    run_short(argv, env, deadline, "create the venv")
    if base.venv_site_dirs:
        # A venv made from a venv's python sees the system's site-packages, not that venv's: add them
        # (after the job's own), with their .pth files (editable installs) processed too.
        pth = "".join(f"import site; site.addsitedir({d!r})\n" for d in base.venv_site_dirs)
        for site_dir in site_dirs(path):
            (site_dir / BASE_PTH).write_text(pth)


def _with_mirror_note(e: EnvironmentBuildError, spec: EnvSpec) -> EnvironmentBuildError:
    """A failed install that fetched VCS lines from mirrors: the message names both URLs."""
    mirrored = [r for r in spec.requirements.lines if r.mirror]
    if not mirrored:
        return e
    note = "; ".join(f"{r.origin}: {r.mirror[0]} from the mirror {r.mirror[1]}" for r in mirrored if r.mirror)
    hint = f"{e.hint + '; ' if e.hint else ''}check that the mirror serves the commit ({mirrors.MIRRORS_ENV})"
    return EnvironmentBuildError(f"{e.message}\n(git mirrors: {note})", value=e.value, hint=hint)


def _no_isolation_flags(spec: EnvSpec) -> list[str]:
    return [flag for name in spec.no_build_isolation for flag in ("--no-build-isolation-package", name)]


def _install_with_pip(
    path: Path, spec: EnvSpec, scratch: Path, env: Mapping[str, str], deadline: float | None, report: Reporter
) -> None:
    """pip sees the base itself and gets the constraints; its ``--no-build-isolation`` is for a
    whole call, so the lines named by ``no_build_isolation`` are installed by a second call."""
    inst, lines = spec.installer, spec.requirements.lines
    later = [r for r in lines if r.name in spec.no_build_isolation]
    steps: list[tuple[str, list[str], int]] = [("requirements.txt", [], len(lines) - len(later))]
    if later:
        first = dataclasses.replace(spec.requirements, lines=tuple(r for r in lines if r not in later))
        (scratch / "requirements.txt").write_text(first.installer_text())
        (scratch / "no-isolation.txt").write_text(dataclasses.replace(first, lines=tuple(later)).installer_text())
        steps.append(("no-isolation.txt", ["--no-build-isolation"], len(later)))
    for name, flags, count in steps:
        if not count:
            continue
        report(f"installing {count} requirements with pip {inst.version}{' without build isolation' if flags else ''}")
        run_streaming(
            [
                *inst.argv,
                "--python",
                str(_python(path)),
                "install",
                "--no-compile",
                *flags,
                "-c",
                str(scratch / "constraints.txt"),
                "-r",
                str(scratch / name),
            ],
            env,
            deadline,
            report,
        )


#: base distributions not offered to ``uv pip compile`` as metadata-only stubs: uv also installs from
#: its find-links into the isolated environment where it builds an sdist's metadata, and a stub of
#: setuptools there has no code ("No module named 'setuptools'", e.g. for fvcore's and antlr4's
#: sdists); their base versions stay preferred through the seeded lock file
_BUILD_TOOLS = frozenset({"setuptools", "wheel"})


def _install_with_uv(
    path: Path, spec: EnvSpec, scratch: Path, env: Mapping[str, str], deadline: float | None, report: Reporter
) -> None:
    base, uv, lock = spec.base, spec.installer.argv, scratch / "lock.txt"
    vcs = any(r.kind == "vcs" for r in spec.requirements.lines)
    write_stubs(
        scratch / "stubs",
        dataclasses.replace(base, dists=tuple(d for d in base.dists if canonicalize_name(d.name) not in _BUILD_TOOLS)),
    )
    # uv takes the pins already in the output file as preferences: keep the base's versions if possible
    lock.write_text("".join(f"{d.name}=={d.version}\n" for d in base.dists if normal_version(d.version)))
    compile_env = {**env, "UV_FIND_LINKS": ",".join([str(scratch / "stubs"), *spec.index.find_links])}
    report(f"resolving {len(spec.requirements.lines)} requirements against the base's {len(base.dists)} distributions")
    run_short(
        [
            *uv,
            "pip",
            "compile",
            "--no-config",
            "--python",
            str(_python(path)),
            "--no-header",
            "--no-annotate",
            *offline_flags(spec.index, vcs=vcs),
            *_no_isolation_flags(spec),
            "-c",
            str(scratch / "constraints.txt"),
            "-o",
            str(lock),
            str(scratch / "requirements.txt"),
        ],
        compile_env,
        deadline,
        "resolve the requirements",
    )
    todo = _not_in_base(lock.read_text(), spec)
    if not todo:
        report("nothing to install: the base has every requirement")
        return
    (scratch / "install.txt").write_text("".join(f"{t}\n" for t in todo))
    report(
        f"installing {len(todo)} packages with uv {spec.installer.version}: "
        + ", ".join(t.split(" --hash")[0] for t in todo)
    )
    # no --compile-bytecode: that was three quarters of a cold start (bench/README.md); the pipeline
    # compiles while the job runs instead (start_bytecode_compile)
    if spec.no_build_isolation:
        report(
            "building without build isolation, against the job env and its base: " + ", ".join(spec.no_build_isolation)
        )
    run_streaming(
        [
            *uv,
            "pip",
            "install",
            "--no-config",
            "--python",
            str(_python(path)),
            "--no-deps",
            *offline_flags(spec.index, vcs=vcs),
            *_no_isolation_flags(spec),
            "-r",
            str(scratch / "install.txt"),
        ],
        env,
        deadline,
        report,
    )


def _not_in_base(lock: str, spec: EnvSpec) -> list[str]:
    """The resolved lines the base lacks (with the user's hashes); a protected one is an error."""
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
        name = canonicalize_name(req.name)
        pin, have = next(iter(req.specifier), None), normal_version(versions.get(name, ""))
        if req.url is None and pin is not None and have is not None and normal_version(pin.version) == have:
            continue  # the base has it
        if name in protected:
            msg = f"the requirements resolve to {line}, which would replace the base image's {name} {protected[name]}"
            hint = f"pin versions of the packages that need {name} which work with {name} {protected[name]}"
            raise RequirementError(msg, value=line, hint=hint)
        todo.append(" ".join([line, *(f"--hash={h}" for h in hashes.get(name, ()))]))
    return todo


def _verify_base_kept(before: BaseInfo, added: Mapping[str, str]) -> None:
    protected = before.protected
    for name in sorted(set(protected) & set(added)):
        msg = (
            f"the install put {name} {added[name]} into the job env, shadowing the base image's "
            f"{name} {protected[name]}"
        )
        raise EnvironmentBuildError(msg, value=name, hint="report this as a live-code bug; the env was removed")
    if not protected:
        return
    after = {d.name: d for d in base_fingerprint(before.executable, signatures_for=protected).dists}
    for d in before.dists:
        if d.name in protected and after.get(d.name) != d:
            msg = f"the install changed the base image's {d.name} {d.version} (its files differ)"
            raise EnvironmentBuildError(msg, value=d.name, hint="the base image is damaged: rebuild or restore it")


def _python(path: Path) -> Path:
    return path / "bin" / "python"
