"""Issue 3, acceptance 4: a repo written against PyPI ``ymir-exc==1.1.0.523`` and one written against
``live_code.sdk`` read the same sample task and produce results that validate.

Both jobs run in a bubblewrap sandbox with the task's dirs at /in (read-only) and /out, as in the
container: ymir-exc hard-codes ``/in/env.yaml``. The ymir-exc venv is installed from the registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from live_code import contract
from live_code.commands import sample
from live_code.run import sandbox
from tests.helpers.template_runs import validate as _validate

RESOURCES = Path(__file__).parent / "resources"
TEMPLATES = Path(__file__).resolve().parent.parent / "remote_templates"
TASKS = {
    "training": frozenset({contract.TaskKind.TRAINING}),
    "mining+infer": frozenset({contract.TaskKind.MINING, contract.TaskKind.INFER}),
}

pytestmark = pytest.mark.needs_bwrap


@pytest.fixture(scope="module")
def ymir_exc_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    env_dir = tmp_path_factory.mktemp("ymir-exc-venv")
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    requirements = TEMPLATES / "legacy" / "extra-requirements.txt"
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)], check=True
    )
    return py


def _run_job(task_dir: Path, python: str, job_dir: Path, *, pythonpath: str | None = None) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(task_dir), "PYTHONNOUSERSITE": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    argv = sandbox.wrap([python, "start.py"], sandbox.Mounts(task_dir / "in", task_dir / "out"), cwd=job_dir)
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.registry
@pytest.mark.parametrize("task", sorted(TASKS))
def test_ymir_exc_repo_produces_valid_results(tmp_path: Path, ymir_exc_python: str, task: str) -> None:
    # ymir-exc 1.1.0.523 writes the legacy formats: the task is YMIR 1.1's (protocol 0.0.1, ark).
    sample.write_sample_dataset(tmp_path, kinds=TASKS[task], fmt="ark", protocol=contract.PROTOCOL_0_0_1, images=6)
    _run_job(tmp_path, ymir_exc_python, TEMPLATES / "legacy")
    assert _validate(tmp_path) == []


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
@pytest.mark.parametrize("task", sorted(TASKS))
def test_sdk_repo_produces_valid_results(tmp_path: Path, task: str, protocol: str) -> None:
    fmt = "ark" if protocol == contract.PROTOCOL_0_0_1 else "voc"
    sample.write_sample_dataset(tmp_path, kinds=TASKS[task], fmt=fmt, protocol=protocol, images=6)
    repo_root = str(Path(__file__).resolve().parent.parent)
    _run_job(tmp_path, sys.executable, RESOURCES / "sdk_job", pythonpath=repo_root)
    assert _validate(tmp_path) == []


def test_validation_fails_when_the_job_writes_nothing(tmp_path: Path) -> None:
    """The check above can fail: with no job run, the missing outputs are reported."""
    sample.write_sample_dataset(tmp_path, kinds=TASKS["mining+infer"], fmt="ark", protocol="1.1.0", images=6)
    problems = _validate(tmp_path)
    assert {Path(p.file).name for p in problems} >= {"result.tsv", "infer-result.json", "monitor.txt"}
