"""remote_templates/legacy through ``live-code run`` (issue 6, acceptance 1): a repo in the original
layout (start.py + extra-requirements.txt, PyPI ymir-exc reading /in/env.yaml itself) committed
into a temp git repo, tagged, and run for each task kind; outputs validated, provenance checked.

ymir-exc 1.1.0.523 writes YMIR 1.1's formats, so the tasks are protocol 0.0.1 with ark annotations.
Its pinned requirements come from the registry, installed once for the module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from tests.helpers.repos import git

REPO = Path(__file__).resolve().parent.parent
TASKS = {
    "training": frozenset({TaskKind.TRAINING}),
    "mining": frozenset({TaskKind.MINING}),
    "infer": frozenset({TaskKind.INFER}),
    "mining+infer": frozenset({TaskKind.MINING, TaskKind.INFER}),
}

pytestmark = [
    pytest.mark.registry,
    pytest.mark.needs_bwrap,
]


@pytest.fixture(scope="module")
def legacy_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    dest = tmp_path_factory.mktemp("legacy") / "repo"
    shutil.copytree(REPO / "remote_templates" / "legacy", dest, ignore=shutil.ignore_patterns("__pycache__"))
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "legacy template", cwd=dest)
    git("tag", "-a", "v1.0", "-m", "release", cwd=dest)  # an annotated tag: peeled to its commit
    return str(dest), git("rev-parse", "HEAD", cwd=dest)


@pytest.fixture(scope="module")
def run_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        LIVE_CODE_CACHE=str(tmp_path_factory.mktemp("cache")), LIVE_CODE_ALLOW_LOCAL_REPOS="1", PYTHONPATH=str(REPO)
    )
    return env


@pytest.mark.parametrize("task", sorted(TASKS))
def test_legacy_repo_runs_unchanged(
    tmp_path: Path, legacy_repo: tuple[str, str], run_env: dict[str, str], task: str
) -> None:
    sample.write_sample_dataset(tmp_path, kinds=TASKS[task], fmt="ark", protocol=contract.PROTOCOL_0_0_1, images=6)
    config_path = tmp_path / "in" / "config.yaml"
    data = yaml.safe_load(config_path.read_text())
    data.update(git_url=legacy_repo[0], git_branch="v1.0")  # the original image's key: a tag here
    config_path.write_text(yaml.safe_dump(data))
    cmd = [sys.executable, "-m", "live_code", "run", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out")]
    res = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "ymir-exc job done" in res.stdout
    prov = yaml.safe_load((tmp_path / "out" / "live-code-provenance.yaml").read_text())
    assert prov["source"]["commit"] == legacy_repo[1]
    assert prov["manifest"]["layout"] == "legacy"
    assert any(p.startswith("ymir-exc==1.1.0.523") for p in prov["environment"]["added"])
    res = subprocess.run(
        [sys.executable, "-m", "live_code", "validate", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out")],
        env=run_env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
