"""What the job sees: the commands to run (one per entry, mining before infer), the sandbox mode,
and the job's whole environment with the SDK shim on its ``PYTHONPATH``; and what a command's
outcome means (recorded, a stop, a write into /in, a failure)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from live_code import __version__, contract
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


def job_env(work: Path, env: envs.EnvResult, names: tuple[str, ...], legacy_root: Path | None = None) -> dict[str, str]:
    """The job's whole environment: the harness's variables of ``names`` and the job's own.
    ``legacy_root``: a legacy-layout repo's root, put first on ``PYTHONPATH`` as the original
    image's ``PYTHONPATH=.`` did (``from ymir.helper import ...``)."""
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
            "PYTHONPATH": os.pathsep.join([*([str(legacy_root)] if legacy_root else []), str(sdk_shim(work))]),
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


def sdk_shim(work: Path) -> Path:
    """A directory holding only ``live_code/{__init__,contract}.py`` and ``live_code/sdk``: what the
    job may import of live-code, without the harness and its dependencies. PyYAML's pure-Python
    part comes along for a base that lacks it (used only then)."""
    shim = work / "sdk"
    pkg = Path(__file__).resolve().parent.parent  # live_code/
    if not shim.exists():
        (shim / "live_code").mkdir(parents=True)
        (shim / "live_code" / "__init__.py").write_text(_SHIM_INIT.format(version=__version__))
        shutil.copy2(pkg / "contract.py", shim / "live_code" / "contract.py")
        shutil.copytree(pkg / "sdk", shim / "live_code" / "sdk", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(
            Path(yaml.__file__).parent,
            shim / "live_code" / "_vendor" / "yaml",
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"),
        )
    return shim
