"""How the harness runs, on the operator's side: the CLI's flags and the harness's environment
(``LIVE_CODE_*``), and the check that the task's dirs are there before anything starts."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from live_code import contract
from live_code.errors import ConfigError
from live_code.record import field, record
from live_code.run.job import JOB_ENV_VAR
from live_code.source import git


@record
class Settings:
    """How the harness runs (operator side: CLI flags and the harness's environment)."""

    in_dir: Path = Path(contract.IN_DIR)
    out_dir: Path = Path(contract.OUT_DIR)
    #: where per-run working dirs go (default: the system temp dir)
    work_root: Path | None = None
    #: the interpreter the job's env is layered over (``LIVE_CODE_BASE_PYTHON``)
    base_python: str = sys.executable
    #: ``auto``: bubblewrap when the dirs are not already /in and /out and it works; ``on``; ``off``
    sandbox: str = "auto"
    allow_local: bool = False
    token: str | None = field(default=None, repr=False)
    grace: float = 10.0
    fetch_deadline: float = git.DEFAULT_DEADLINE
    install_timeout: float | None = 3600.0
    keep_work: bool = False
    #: extra variable names passed to the job
    job_env: tuple[str, ...] = ()
    #: install the env from this lock, whatever the task says (``live-code replay``)
    lock_file: Path | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        fields: dict[str, Any] = {
            "base_python": env.get("LIVE_CODE_BASE_PYTHON") or sys.executable,
            "allow_local": git.allow_local_from_env(env),
            "token": env.get("LIVE_CODE_GIT_TOKEN") or None,
            "job_env": tuple(n.strip() for n in env.get(JOB_ENV_VAR, "").split(",") if n.strip()),
        }
        if env.get("LIVE_CODE_GRACE"):
            try:
                fields["grace"] = float(env["LIVE_CODE_GRACE"])
            except ValueError:
                raise ConfigError("LIVE_CODE_GRACE must be a number of seconds", value=env["LIVE_CODE_GRACE"]) from None
        if env.get("LIVE_CODE_SANDBOX"):
            fields["sandbox"] = env["LIVE_CODE_SANDBOX"]
        fields.update(overrides)
        return cls(**fields)


def check_dirs(s: Settings) -> None:
    """The in dir holds env.yaml and the out dir is writable (before anything is written)."""
    if not (s.in_dir / "env.yaml").is_file():
        raise ConfigError(
            f"{s.in_dir} holds no env.yaml: it is not a YMIR task's in dir",
            value=str(s.in_dir),
            hint="pass --in DIR (a task dir made by YMIR or `live-code sample-dataset`)",
        )
    if not s.out_dir.is_dir() or not os.access(s.out_dir, os.W_OK):
        raise ConfigError(
            f"the out dir {s.out_dir} does not exist or is not writable",
            value=str(s.out_dir),
            hint="create it, or pass --out DIR",
        )
