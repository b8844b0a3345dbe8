"""A throwaway virtual environment with what pip installs into it: the bench's pip baseline
(bench/envs.py) and the tests' tools from the registry (hadolint in tests/test_base_images.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def pip_venv(
    venv: Path,
    pip_args: Sequence[str],
    *,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Path:
    """``venv``, made by ``python``, with ``pip install -q PIP_ARGS`` run in it (within ``timeout``
    seconds); its interpreter."""
    subprocess.run([python, "-m", "venv", str(venv)], check=True, env=env)
    venv_python = venv / "bin" / "python"
    subprocess.run([str(venv_python), "-m", "pip", "install", "-q", *pip_args], check=True, env=env, timeout=timeout)
    return venv_python
