"""The env build's background steps (live_code/envs/steps.py): the venv made while uv resolves and
the lock written while uv installs. Real subprocesses and a real uv; no mocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from live_code import record
from live_code.envs import builder as envs
from live_code.envs.steps import Background, Venv
from live_code.errors import EnvironmentBuildError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose (its parent reaps it)
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_a_background_step_returns_its_output_once_waited_for(tmp_path: Path) -> None:
    step = Background([sys.executable, "-c", "print('made')"], dict(os.environ), tmp_path, "s", "make it")
    assert step.wait(None).strip() == "made"
    assert step.wait(None).strip() == "made"  # waiting again is harmless


def test_a_failed_background_step_names_the_step_and_its_output(tmp_path: Path) -> None:
    code = "import sys; print('out line'); print('the reason', file=sys.stderr); sys.exit(3)"
    step = Background([sys.executable, "-c", code], dict(os.environ), tmp_path, "s", "lock the env")
    with pytest.raises(EnvironmentBuildError) as e:
        step.wait(None)
    assert "could not lock the env (exit code 3)" in e.value.message
    assert "the reason" in e.value.message and "out line" in e.value.message


def test_a_background_step_past_the_deadline_is_killed_with_its_group(tmp_path: Path) -> None:
    # the step starts a grandchild in its group: both must be gone once the deadline stops it
    code = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(p.pid, flush=True); time.sleep(60)"
    )
    step = Background([sys.executable, "-c", code], dict(os.environ), tmp_path, "s", "create the venv")
    for _ in range(100):
        if (tmp_path / "s.out").read_text().strip():
            break
        time.sleep(0.05)
    grandchild = int((tmp_path / "s.out").read_text())
    with pytest.raises(EnvironmentBuildError) as e:
        step.wait(time.monotonic() + 0.2)
    assert "timed out" in e.value.message
    assert not _alive(step.proc.pid)
    for _ in range(50):  # SIGKILL of the group is delivered at once; reaping by init may lag
        if not _alive(grandchild):
            break
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_kill_stops_a_running_step(tmp_path: Path) -> None:
    step = Background([sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ), tmp_path, "s", "x")
    step.kill()
    assert step.proc.returncode is not None
    step.kill()  # again: a no-op


def test_the_venv_is_made_in_the_background_and_sees_a_venv_base(tmp_path: Path) -> None:
    """A venv made from this (venv) interpreter gets the .pth that adds the base venv's packages."""
    base = envs.base_fingerprint(sys.executable)
    installer = envs.find_installer()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    venv = Venv(tmp_path / "env", base, installer, dict(os.environ), scratch)
    venv.ready(None)
    python = tmp_path / "env" / "bin" / "python"
    assert python.exists()
    if base.venv_site_dirs:
        assert list((tmp_path / "env").glob(f"lib/python*/site-packages/{envs.BASE_PTH}"))
    venv.ready(None)  # again: a no-op


def test_a_venv_that_cannot_be_made_fails_with_the_installers_reason(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    base = record.replace(envs.base_fingerprint(sys.executable), executable=str(tmp_path / "no-python"))
    pip = envs.Installer("pip", (sys.executable, "-m", "pip"), "0")
    with pytest.raises(EnvironmentBuildError) as e:
        Venv(tmp_path / "env", base, pip, dict(os.environ), scratch).ready(None)
    assert "could not create the venv (not started)" in e.value.message
    assert "no-python" in e.value.message


# -- uv reads the base during the fetch (envs.BaseAhead), not in the first resolution ---------------


def test_uv_reads_the_base_into_a_new_installer_cache_once(
    tmp_path: Path, base_python: str, uv_wrapper: envs.Installer, uv_log: Path
) -> None:
    from live_code.envs.installer import learn_interpreter

    def finds() -> int:
        return sum(p.read_text().startswith("python find ") for p in uv_log.glob("*.argv"))

    cache = tmp_path / "installer-cache"
    learn_interpreter(uv_wrapper, base_python, cache)
    assert finds() == 1 and list((cache / "uv").glob("interpreter-v*/*")), "uv kept the base's facts"
    learn_interpreter(uv_wrapper, base_python, cache)
    assert finds() == 1, "a cache uv has used already is left alone"

    pip = envs.Installer("pip", (sys.executable, "-m", "pip"), "25.0")
    learn_interpreter(pip, base_python, tmp_path / "pip-cache")
    assert not (tmp_path / "pip-cache").exists()

    ahead = envs.BaseAhead(base_python, tmp_path / "base-info", tmp_path / "ahead-cache")
    base, installer = ahead.result()
    ahead.join(60)
    assert base.executable and installer.name == "uv"
    assert list((tmp_path / "ahead-cache" / "uv").glob("interpreter-v*/*"))


@pytest.mark.needs_bwrap
def test_a_read_only_installer_cache_is_not_taught_the_base(
    tmp_path: Path, base_python: str, uv_wrapper: envs.Installer, uv_log: Path
) -> None:
    """A cache baked into an image and mounted read-only: uv could not keep what it read, so asking
    it would cost every warm run a process. The cache is a real read-only bind mount (bubblewrap),
    which root cannot write either; the same call on the writable folder is the control."""
    cache = tmp_path / "installer-cache"
    cache.mkdir()
    code = (
        "import sys; from pathlib import Path; from live_code.envs import installer; "
        "installer.learn_interpreter(installer.find_installer('uv', uv=sys.argv[1]), sys.argv[2], Path(sys.argv[3]))"
    )
    argv = [sys.executable, "-c", code, uv_wrapper.argv[0], base_python, str(cache)]
    root = Path(__file__).resolve().parent.parent
    sandbox = ["bwrap", "--dev-bind", "/", "/", "--ro-bind", str(cache), str(cache), "--"]
    subprocess.run([*sandbox, *argv], check=True, cwd=root)
    assert not any(p.read_text().startswith("python find ") for p in uv_log.glob("*.argv"))
    assert not (cache / "uv").exists()
    subprocess.run(argv, check=True, cwd=root)
    assert any(p.read_text().startswith("python find ") for p in uv_log.glob("*.argv")), "the control asks uv"
    assert (cache / "uv").is_dir()
