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

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from live_code import util
from live_code.envs.base import (
    PROTECTED_NAMES,
    PROTECTED_PREFIXES,
    BaseInfo,
    Dist,
    base_fingerprint,
    is_protected,
    own_dists,
    sha256_json,
)
from live_code.envs.bytecode import COMPILED_MARKER, finish_bytecode_compile, start_bytecode_compile
from live_code.envs.finishing import PENDING_LOCK, Finishing, can_lock_later, mark_pending
from live_code.envs.frameworks import FrameworkVerdict, check_protected, framework_verdict, verify_base_kept
from live_code.envs.installer import (
    IndexSettings,
    Installer,
    Reporter,
    find_installer,
    install_with_pip,
    installer_env,
    learn_interpreter,
    run_streaming,
    with_wheelhouse,
)
from live_code.envs.lock import LOCK_NAME, Lock, check_lock, install_argv, lock_failure
from live_code.envs.provenance import LAYOUT_VERSION, PROVENANCE_FILE, EnvProvenance, provenance, write_lock
from live_code.envs.requirements import (
    RequirementLine,
    Requirements,
    find_requirements,
    parse_requirements,
    requirements_reason,
    with_implied,
    with_mirrors,
)
from live_code.envs.resolve import Resolution, write_inputs
from live_code.envs.steps import BASE_PTH, Venv, install_with_uv
from live_code.errors import EnvironmentBuildError, RequirementError
from live_code.record import record
from live_code.source import mirrors
from live_code.task import legacy

__all__ = [
    "BASE_PTH",
    "COMPILED_MARKER",
    "DEFAULT_INDEX",
    "LOCK_NAME",
    "Lock",
    "PROVENANCE_FILE",
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
    "Finishing",
    "can_lock_later",
    "PENDING_LOCK",
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

#: the default index (PyPI), online
DEFAULT_INDEX = IndexSettings()


def env_key(
    base: BaseInfo,
    requirements: Requirements,
    index: IndexSettings,
    installer: Installer,
    no_build_isolation: tuple[str, ...] = (),
    lock: Lock | None = None,
    as_of: str | None = None,
) -> str:
    """sha256 (first 32 hex) of sorted-key JSON of everything that changes the env. Not the git
    mirrors: a VCS requirement names its commit, which is the same code from any mirror. A lock
    counts by its packages (:attr:`Lock.digest`), not its bytes; ``as_of`` is the date asked for
    (the date stepped forward to follows from it and the index)."""
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
    if lock is not None:
        facts["lock"] = lock.digest
    if as_of:
        facts["as_of"] = as_of
    return sha256_json(facts)[:32]


@record
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
    #: the lock the env is installed from (``live_code_lock``, replay) instead of a resolution
    lock: Lock | None = None
    #: resolve as of this time (RFC 3339, ``live_code_resolve_as_of``)
    as_of: str | None = None

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


class BaseAhead:
    """The base's fingerprint and the installer, read in a thread from now (neither depends on the
    repository: the pipeline starts this before the fetch, and the cold path overlaps the two);
    :meth:`result` waits for them, raising what reading them raised. With ``installer_cache``, uv
    then reads the base's facts into a new installer cache (``installer.learn_interpreter``)."""

    def __init__(
        self, base_python: str | os.PathLike[str] | None, cache_dir: Path | None, installer_cache: Path | None = None
    ) -> None:
        self._result: tuple[BaseInfo, Installer] | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        args = (base_python or sys.executable, cache_dir, installer_cache)
        self._thread = threading.Thread(target=self._read, args=args, name="live-code-base", daemon=True)
        self._thread.start()

    def _read(self, base_python: str | os.PathLike[str], cache_dir: Path | None, installer_cache: Path | None) -> None:
        try:
            self._result = (base_fingerprint(base_python, cache_dir=cache_dir), find_installer(cache_dir=cache_dir))
        except BaseException as e:
            self._error = e
        finally:
            self._ready.set()
        if self._result is not None and installer_cache is not None:
            learn_interpreter(self._result[1], self._result[0].executable, installer_cache)

    def result(self) -> tuple[BaseInfo, Installer]:
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def join(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for the thread, so that its subprocess is not left
        running when the run ends early."""
        self._thread.join(timeout)


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
    lock: Lock | None = None,
    as_of: str | None = None,
    base_cache: Path | None = None,
    base: BaseInfo | None = None,
) -> EnvSpec:
    """Find and check the repo's requirements, read the base (default: the interpreter running the
    harness; the caller reads ``LIVE_CODE_BASE_PYTHON``) and compute the key. A legacy-layout repo
    (``legacy_layout``) also gets what :mod:`live_code.task.legacy` implies, from the operator's SDK
    wheelhouse when there is one (with no index at all when the repo lists nothing else).
    ``git+https`` lines are fetched through the operator's mirrors (``LIVE_CODE_GIT_MIRRORS`` of
    ``environ``); ``no_build_isolation`` (live-code.yaml) names requirements to build against the
    job env itself, which must name each of them. ``lock``: install this lock instead of resolving
    the requirements; ``as_of``: resolve them as of this time (:mod:`live_code.envs.resolve`).
    ``base_cache``: a folder where the base's fingerprint is kept while the base does not change
    (``base.base_fingerprint``); ``base``: the base's fingerprint when the caller has read it
    (:class:`BaseAhead`).

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
        index = with_wheelhouse(index, implied, own_lines=bool(requirements.lines))
        requirements = with_implied(requirements, implied.requirements, legacy.IMPLIED)
    base = base or base_fingerprint(base_python or sys.executable, cache_dir=base_cache)
    check_protected(requirements, base)
    if lock is not None:
        check_lock(lock, base, index)
        as_of = None  # the lock says what to install
    installer = installer or find_installer()
    key = env_key(base, requirements, index, installer, no_build_isolation, lock, as_of)
    return EnvSpec(base, requirements, index, installer, key, implied, no_build_isolation, git_mirrors, lock, as_of)


def _check_no_build_isolation(names: tuple[str, ...], requirements: Requirements) -> tuple[str, ...]:
    """The canonical names, each of which a requirement line must name (a typo would silently build
    with isolation, and fail for want of the base's torch)."""
    wanted = tuple(sorted({util.canonical_name(n) for n in names}))
    listed = {r.name for r in requirements.lines if r.name}
    for name in wanted:
        if name not in listed:
            msg = f"live-code.yaml: no_build_isolation names {name!r}, which no line of {requirements.file} names"
            hint = "list the distribution names of requirement lines there (e.g. detectron2), or remove the entry"
            raise RequirementError(msg, value=name, hint=hint)
    return wanted


def build_env(
    path: str | os.PathLike[str],
    spec: EnvSpec,
    *,
    installer_cache: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
    lock_later: bool = False,
) -> EnvProvenance:
    """Create the env in the empty directory ``path`` and install ``spec``'s requirements (or its
    lock) into it. ``lock_later``: where the lock may wait (``finishing.can_lock_later``), leave
    the lines to lock in the env for :class:`Finishing` instead of writing ``pylock.toml`` now.

    ``installer_cache`` keeps uv's (pip's) cache between builds: keep it on the env's filesystem so
    uv can hardlink; None means a throwaway one. ``timeout`` bounds the whole build in seconds.
    ``reporter`` gets the progress lines (default: logging). Scratch files (the installer's HOME,
    stub wheels, the lock) live in ``.<name>.build`` next to ``path`` during the build. Writes the
    provenance to ``path/live-code-env.json`` and the env's lock to ``path/pylock.toml`` and
    returns the provenance; on failure the caller removes ``path``."""
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
        venv = Venv(path, base, inst, env, scratch)
        later = lock_later and can_lock_later(spec)
        try:  # uv resolves while the venv is made
            resolution = _install(venv, spec, not later, scratch, env, deadline, report)
            venv.ready(deadline)
        except BaseException:
            venv.kill()
            raise
        added = own_dists(path)
        verify_base_kept(before, added)
    finally:
        util.rmtree(scratch)
    for name in sorted(n for n in added if is_protected(n)):  # one the base lacks (else refused above)
        report(
            f"warning: installed {name} {added[name]}, a framework package the base does not have; "
            "a compiled one must match the base's own frameworks (better: put it in the image)"
        )
    prov = provenance(spec, added, started, _lock_now_or_later(path, spec, resolution, later), resolution)
    util.atomic_write(path / PROVENANCE_FILE, json.dumps(prov.as_dict(), sort_keys=True, indent=1))
    report(f"env {spec.key[:12]} ready: {len(added)} packages added in {prov.seconds:.1f}s")
    return prov


def _lock_now_or_later(path: Path, spec: EnvSpec, resolution: Resolution | None, later: bool) -> dict[str, Any]:
    """The env's ``pylock.toml`` written now, or the lines to lock left for the job's time."""
    if later and resolution is not None and resolution.todo:
        return mark_pending(path, resolution.todo)
    return write_lock(path, spec, resolution)


def _install(
    venv: Venv,
    spec: EnvSpec,
    lock: bool,
    scratch: Path,
    env: Mapping[str, str],
    deadline: float | None,
    report: Reporter,
) -> Resolution | None:
    """Install the lock, or resolve and install the requirements (and lock them, if ``lock``);
    what uv resolved (None: pip)."""
    path = venv.path
    if spec.lock is not None:
        venv.ready(deadline)
        return _install_lock(path, spec, scratch, env, deadline, report)
    if not spec.requirements.lines:
        return Resolution((), None)
    write_inputs(spec, scratch)
    for r in spec.requirements.lines:
        if r.mirror:
            report(f"{r.origin}: {r.mirror[0]} is fetched from the mirror {r.mirror[1]}")
    try:
        if spec.installer.name == "uv":
            return install_with_uv(venv, spec, scratch, env, deadline, report, lock=lock)
        venv.ready(deadline)
        install_with_pip(
            str(_python(path)),
            spec.installer,
            spec.requirements,
            spec.no_build_isolation,
            scratch,
            env,
            deadline,
            report,
        )
        return None
    except EnvironmentBuildError as e:
        raise _with_mirror_note(e, spec) from None


def _install_lock(
    path: Path, spec: EnvSpec, scratch: Path, env: Mapping[str, str], deadline: float | None, report: Reporter
) -> Resolution:
    """Every package of ``spec.lock`` as it records it (hashes checked by uv), nothing resolved."""
    lock = spec.lock
    assert lock is not None
    if spec.installer.name != "uv":
        msg = f"installing {lock.origin} needs uv, and only pip is available"
        raise EnvironmentBuildError(msg, value=lock.origin, hint="install uv (a dependency of live-code)")
    report(f"installing {len(lock.packages)} packages from {lock.origin} (versions and hashes as locked)")
    if lock.packages:
        (scratch / LOCK_NAME).write_text(lock.text)
        try:
            run_streaming(install_argv(spec, str(_python(path)), scratch / LOCK_NAME), env, deadline, report)
        except EnvironmentBuildError as e:
            raise lock_failure(e, lock) from None
    return Resolution((), lock.text)


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
    lock_later: bool = False,
) -> EnvResult:
    """The cached env for ``spec`` (cache kind ``envs``), built by :func:`build_env` if needed
    (``lock_later``: see there)."""

    def _build(path: Path) -> Mapping[str, Any]:
        return build_env(
            path, spec, installer_cache=installer_cache, timeout=timeout, reporter=reporter, lock_later=lock_later
        ).as_dict()

    path, built = store.ensure("envs", spec.key, _build)
    if not built:
        (reporter or log.info)(f"reusing env {spec.key[:12]}")
    try:
        prov = json.loads((path / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        prov = {}
    return EnvResult(path, _python(path), spec.key, built, prov)


# -- build steps --------------------------------------------------------------------------------


def _with_mirror_note(e: EnvironmentBuildError, spec: EnvSpec) -> EnvironmentBuildError:
    """A failed install that fetched VCS lines from mirrors: the message names both URLs."""
    mirrored = [r for r in spec.requirements.lines if r.mirror]
    if not mirrored:
        return e
    note = "; ".join(f"{r.origin}: {r.mirror[0]} from the mirror {r.mirror[1]}" for r in mirrored if r.mirror)
    hint = f"{e.hint + '; ' if e.hint else ''}check that the mirror serves the commit ({mirrors.MIRRORS_ENV})"
    return EnvironmentBuildError(f"{e.message}\n(git mirrors: {note})", value=e.value, hint=hint)


def _python(path: Path) -> Path:
    return path / "bin" / "python"
