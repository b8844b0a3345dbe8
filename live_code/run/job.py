"""What the job sees: the commands to run (one per entry, mining before infer), the sandbox mode,
and the job's whole environment with the SDK shim on its ``PYTHONPATH``; and what a command's
outcome means (recorded, a stop, a write into /in, a failure)."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from live_code import __version__, contract, util
from live_code.contract import TaskKind
from live_code.envs import builder as envs
from live_code.errors import ConfigError, JobError, LiveCodeError
from live_code.run import fallback, sandbox, supervisor
from live_code.run.records import CONFIG_NAME
from live_code.run.signals import Stopped
from live_code.task import manifest as manifest_mod
from live_code.task.config import Task

#: environment variables passed from the harness to the job; everything else is dropped
JOB_PASS_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TERM",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)
#: the operator may name more variables for the job here (comma-separated names)
JOB_ENV_VAR = "LIVE_CODE_JOB_ENV"


def sandbox_mode(in_dir: Path, out_dir: Path, setting: str, probes: Path | None = None) -> tuple[str, str | None]:
    """``container`` (the dirs are /in and /out already), ``bwrap``, or ``fallback`` with the reason.
    ``probes``: where bubblewrap's successful probe is kept between runs (in the cache)."""
    if in_dir.resolve() == Path(contract.IN_DIR) and out_dir.resolve() == Path(contract.OUT_DIR):
        return "container", None
    if setting == "off":
        return "fallback", "the sandbox is turned off (LIVE_CODE_SANDBOX=off / --no-sandbox)"
    reason = sandbox.unavailable_reason(None, probes)
    if reason is None:
        return "bwrap", None
    if setting == "on":
        raise ConfigError(f"a sandbox was required but {reason}", hint="install bubblewrap, or run without --sandbox")
    return "fallback", reason


def entries(
    task: Task, manifest: manifest_mod.Manifest, env: envs.EnvResult, gpu_count: int
) -> list[tuple[tuple[TaskKind, ...], tuple[str, ...]]]:
    """What to run, in order: one command for kinds that share an entry (mining before infer)."""
    runs: list[tuple[tuple[TaskKind, ...], tuple[str, ...]]] = []
    for kind in task.ordered_kinds:
        argv = manifest.entry_for(kind)
        if runs and runs[-1][1] == argv:
            runs[-1] = ((*runs[-1][0], kind), argv)
        else:
            runs.append(((kind,), argv))
    return [(kinds, resolve_argv(argv, env, manifest.launcher, gpu_count)) for kinds, argv in runs]


def resolve_argv(argv: tuple[str, ...], env: envs.EnvResult, launcher: str | None, gpu_count: int) -> tuple[str, ...]:
    python = str(env.python)
    if argv[0] in ("python", "python3"):
        argv = (python, *argv[1:])
    if launcher == "torchrun" and gpu_count > 1:
        script = argv[1:] if argv[0] == python else argv
        # torch.distributed.run is torchrun's module; one process per GPU on this machine
        argv = (python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpu_count}", *script)
    return argv


def job_env(
    work: Path,
    env: envs.EnvResult,
    names: tuple[str, ...],
    legacy_root: Path | None = None,
    sdk_cache: Path | None = None,
) -> dict[str, str]:
    """The job's whole environment: the harness's variables of ``names`` and the job's own.
    ``legacy_root``: a legacy-layout repo's root, put first on ``PYTHONPATH`` as the original
    image's ``PYTHONPATH=.`` did (``from ymir.helper import ...``); ``sdk_cache``: where the SDK
    shim is kept (:func:`sdk_shim`)."""
    out = {n: os.environ[n] for n in names if n in os.environ}
    home, tmp = work / "home", work / "tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    # the container's paths; without a sandbox run_job points the job at the mapped ones (fallback.job_env)
    env_file, config = contract.ENV_FILE, f"{contract.OUT_DIR}/{CONFIG_NAME}"
    out.update(
        {
            "PATH": f"{env.path / 'bin'}{os.pathsep}{out.get('PATH', os.defpath)}",
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "PYTHONNOUSERSITE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                [*([str(legacy_root)] if legacy_root else []), str(sdk_shim(work, sdk_cache))]
            ),
            "VIRTUAL_ENV": str(env.path),
            contract.ENV_FILE_VAR: env_file,
            contract.CONFIG_FILE_VAR: config,
        }
    )
    return out


def outcome_record(
    kinds: tuple[TaskKind, ...], argv: tuple[str, ...], outcome: supervisor.RunOutcome
) -> dict[str, Any]:
    """One command's outcome, as the provenance's ``job`` list holds it."""
    return {
        "kinds": [k.value for k in kinds],
        "argv": list(argv),
        "returncode": outcome.returncode,
        "signal": outcome.signal,
        "timed_out": outcome.timed_out,
        "seconds": round(outcome.elapsed, 3),
    }


def check_stop_and_in(
    outcome: supervisor.RunOutcome,
    view: fallback.View | None,
    in_before: Mapping[tuple[str, str], fallback.Entry],
    sandbox_record: dict[str, Any],
) -> None:
    """Raise :class:`Stopped` when the harness was signalled while the job ran, and, without a
    sandbox, the error for a write into /in (what the sandbox's read-only /in would have refused;
    the first paths go into ``sandbox_record``)."""
    if outcome.interrupted is not None:
        raise Stopped(outcome.interrupted)
    if view is not None:
        changes = fallback.changed_paths(in_before, fallback.snapshot(view))
        if changes:
            sandbox_record["in_written"] = changes[:20]
            raise fallback.wrote_into_in(changes)


def failure(
    outcome: supervisor.RunOutcome, view: fallback.View | None, hint: str | None = None, *, reason: str | None = None
) -> LiveCodeError:
    """The error of a failed job: a write the fallback refused, else the job's failure with the
    reason it gave in monitor.txt (``reason``: one line, what YMIR shows), or else with its last
    lines (``hint``: a better one than the default, e.g. the lock's for an unpinned env)."""
    refused = fallback.refused_write(view, outcome.tail) if view is not None else None
    if refused is not None:
        return refused
    if view is None and outcome.returncode == 1 and any(line.startswith("bwrap: ") for line in outcome.tail):
        # bubblewrap itself failed (it prints "bwrap: ..." and exits 1): maybe the kept probe is wrong now
        sandbox.forget_success()
        hint = hint or "bubblewrap could not make the sandbox (its error is above); LIVE_CODE_SANDBOX=off runs without"
    tail = "\n".join(f"    {line}" for line in outcome.tail[-10:])
    if reason:  # the job said why: its output is in the log, the record stays one line
        msg = f"{outcome.describe()}: {reason}"
    else:
        msg = outcome.describe() + (f"; its last lines:\n{tail}" if tail else "")
    return JobError(msg, hint=hint or "see the job's output above (and /out/ymir-executor-out.log in YMIR)")


_SHIM_INIT = """\
# live-code's SDK as a job sees it: live_code.sdk and live_code.contract, nothing of the harness.
__version__ = {version!r}

import importlib.util as _util
import os as _os
import sys as _sys

if _util.find_spec("yaml") is None:  # the SDK needs PyYAML: a pure-Python copy, after the job's own paths
    _sys.path.append(_os.path.join(_os.path.dirname(__file__), "_vendor"))
"""


def sdk_shim(work: Path, cache: Path | None = None, *, publish: bool = True) -> Path:
    """A directory holding only ``live_code/{__init__,contract}.py`` and ``live_code/sdk``: what the
    job may import of live-code, without the harness and its dependencies. PyYAML's pure-Python
    part comes along for a base that lacks it (used only then).

    With ``cache`` (the store's ``sdk/``, bound read-only into the sandbox like the rest of the
    store) it is made there once for this harness (its version and a digest of the copied files'
    names, sizes and mtimes), compiled, read-only and published whole by a rename. The run that
    finds none gets a copy in its ``work`` dir, as does one without a cache, and the cached one is
    made by :func:`publish_shims` once its job is done (``publish=False``: not even then): its
    bytecode compile takes about 0.2 s, which a cold start should not wait for."""
    if cache is not None:
        shim = cache / _shim_key()
        if shim.is_dir():
            return shim
        if publish and shim not in _started:  # once per process, from publish_shims()
            _started.add(shim)
            _pending.append(shim)
    shim = work / "sdk"
    if not shim.exists():
        _fill_shim(shim)
    return shim


def _shim_sources() -> tuple[tuple[Path, Path, tuple[str, ...]], ...]:
    """(source, where in the shim, names left out) of each folder copied into the shim."""
    pkg = Path(__file__).resolve().parent.parent  # live_code/
    return (
        (pkg / "sdk", Path("live_code", "sdk"), ("__pycache__",)),
        (Path(yaml.__file__).parent, Path("live_code", "_vendor", "yaml"), ("__pycache__", "*.so", "*.pyd")),
    )


def _fill_shim(shim: Path) -> None:
    (shim / "live_code").mkdir(parents=True)
    (shim / "live_code" / "__init__.py").write_text(_SHIM_INIT.format(version=__version__))
    shutil.copy2(Path(contract.__file__), shim / "live_code" / "contract.py")
    for source, dest, ignore in _shim_sources():
        shutil.copytree(source, shim / dest, ignore=shutil.ignore_patterns(*ignore))


def _shim_key() -> str:
    """This harness's shim: its version, the ``__init__`` template, and each copied file's name,
    size and mtime (0.5 ms, against 4-7 ms for making the copy; worked out once per process and
    version, though a run asks twice: ahead of the fetch and for the job's environment)."""
    return _shim_key_of(__version__)


@functools.cache
def _shim_key_of(version: str) -> str:
    files = [Path(contract.__file__)]
    for source, _, ignore in _shim_sources():
        for folder, dirs, names in os.walk(source):
            dirs[:] = sorted(d for d in dirs if not any(fnmatch.fnmatch(d, pat) for pat in ignore))
            files += [Path(folder, n) for n in sorted(names) if not any(fnmatch.fnmatch(n, pat) for pat in ignore)]
    h = hashlib.sha256(f"{version}\0{_SHIM_INIT}\0".encode())
    for path in files:
        st = path.stat()
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


#: the cached shims :func:`sdk_shim` found missing, and the threads making them
_pending: list[Path] = []
_publishing: list[threading.Thread] = []
_started: set[Path] = set()


def publish_shims() -> None:
    """Make the cached shims :func:`sdk_shim` found missing, each in a thread (not a daemon: the
    interpreter waits for it at exit). The pipeline calls this once the job is done, so that their
    bytecode compile (about 0.2 s) does not slow the job's start."""
    while _pending:
        thread = threading.Thread(target=_publish_quietly, args=(_pending.pop(),), name="live-code-sdk-shim")
        thread.start()
        _publishing.append(thread)


class RunAhead:
    """The sandbox probe and the SDK shim (in the cache at ``cache_root``, as the pipeline keeps
    them: ``probes/``, ``sdk/``), made in a thread from now (neither depends on the
    repository: the pipeline starts this before the fetch). Only a head start: the run asks
    :func:`sandbox_mode` and :func:`sdk_shim` again, which then answer at once, and reports what they
    raise. :meth:`join` before the job starts (the shim must be whole) and before ``work`` goes."""

    def __init__(self, in_dir: Path, out_dir: Path, setting: str, work: Path, cache_root: Path) -> None:
        args = (in_dir, out_dir, setting, cache_root / "probes", work, cache_root / "sdk")
        self._thread = threading.Thread(target=self._run, args=args, name="live-code-run-ahead", daemon=True)
        self._thread.start()

    @staticmethod
    def _run(in_dir: Path, out_dir: Path, setting: str, probes: Path, work: Path, sdk_cache: Path) -> None:
        with contextlib.suppress(Exception):
            if sandbox_mode(in_dir, out_dir, setting, probes)[0] == "container":
                return
        with contextlib.suppress(Exception):
            sdk_shim(work, sdk_cache, publish=False)  # the cached one is made after the job

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def wait_for_shims() -> None:
    """Make the cached shims that :func:`sdk_shim` found missing, and wait until they are made
    (or could not be)."""
    publish_shims()
    while _publishing:
        _publishing.pop().join()


#: a shim of another harness is kept this long after it was made (``cache gc``): a job of that
#: harness may still be importing from it (training runs for days)
SHIM_GRACE = 7 * 86400.0


def prune_shims(sdk_cache: Path, *, older_than: float = SHIM_GRACE, now: float | None = None) -> list[Path]:
    """Remove the shims in ``sdk_cache`` (the store's ``sdk/``) that are not this harness's and
    were made more than ``older_than`` seconds ago, with the scratch folders of publishes that died
    (an hour old); return what was removed. A harness upgraded or edited in place makes a new shim
    (:func:`_shim_key`), and nothing else removes the old one."""
    now = time.time() if now is None else now
    keep = _shim_key()
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(sdk_cache.iterdir()):
            try:
                age = now - entry.lstat().st_mtime
            except FileNotFoundError:  # removed meanwhile by another gc
                continue
            scratch = entry.name.startswith(".tmp-")
            if entry.name == keep or age <= (3600.0 if scratch else older_than):
                continue
            util.rmtree(entry)
            removed.append(entry)
    return removed


def _publish_quietly(shim: Path) -> None:
    with contextlib.suppress(OSError):  # an unwritable cache: every run makes its own copy
        _publish_shim(shim)


def _publish_shim(shim: Path) -> Path:
    """Make the shim in a temp folder beside ``shim``, read-only, and rename it into place; when
    another run published it first, theirs is used."""
    shim.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=shim.parent))
    try:
        _fill_shim(tmp / "sdk")
        # bytecode for a job on the harness's Python: the shim is read-only to the job, which could
        # not write its own (without it, importing the SDK costs about 80 ms more); imported here,
        # after the job, not on a run's way to it
        import compileall

        compileall.compile_dir(tmp / "sdk", quiet=2)
        for folder, dirs, files in os.walk(tmp / "sdk"):
            for name in files:
                os.chmod(os.path.join(folder, name), 0o444)
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o555)
        os.chmod(tmp / "sdk", 0o555)
        try:
            os.rename(tmp / "sdk", shim)
        except OSError:
            if not shim.is_dir():
                raise
    finally:
        util.rmtree(tmp)
    return shim
