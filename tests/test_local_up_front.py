"""``live-code local`` refuses what it can know before building anything (issue 23, acceptance 4
and 8): a misspelt hyper-parameter against the repo's schema, a framework the base interpreter
lacks; ``replay`` runs over the base its provenance recorded; a folder run from inside itself
snapshots the same tree each time; a tag is recorded as a tag."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from live_code.commands import local, replay
from live_code.contract import TaskKind
from live_code.errors import EnvironmentBuildError
from live_code.source.store import Store
from live_code.task import manifest as manifest_mod
from tests.helpers.jobs import LOCAL_JOB, local_argv
from tests.helpers.repos import git

ROOT = Path(__file__).resolve().parent.parent
TRAINING = frozenset({TaskKind.TRAINING})

SCHEMA_MANIFEST = textwrap.dedent("""
    framework: none
    entry: python start.py
    hyperparameters:
      training:
        epochs: {type: int, default: 1}
        learning_rate: {type: float, default: 0.1}
""")


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "LIVE_CODE_BASE_PYTHON"}
    full.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        (sys.executable, "-m", "live_code", *args), cwd=cwd, env=full, capture_output=True, text=True, timeout=300
    )


# -- acceptance 4: --set against the schema ------------------------------------------------------


def test_a_misspelt_set_against_a_schema_fails_naming_the_declared_key(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"live-code.yaml": SCHEMA_MANIFEST, "start.py": LOCAL_JOB}, tag="v1")
    proc = _cli(
        *local_argv(f"{repo}@v1", task="training", work=tmp_path / "w", images=4),
        "--set",
        "epoch=3",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "'epoch' (did you mean 'epochs'?)" in proc.stderr and "learning_rate" in proc.stderr
    assert not (tmp_path / "w").exists(), "refused before the task dir was kept"


def test_a_set_without_a_schema_passes_with_a_warning_naming_it(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    proc = _cli(
        *local_argv(f"{repo}@v1", task="training", work=tmp_path / "w", images=4),
        "--set",
        "my_epoch=3",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no hyper-parameter schema: 'my_epoch' passed to the job unchecked" in proc.stderr
    cfg = yaml.safe_load((tmp_path / "w" / "in" / "config.yaml").read_text())
    assert cfg["my_epoch"] == 3


# -- acceptance 8: the base found or refused up front --------------------------------------------


def test_a_torch_repo_over_a_base_without_torch_fails_before_any_install(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo(
        {
            "live-code.yaml": "framework: torch\nentry: python start.py\n",
            "start.py": LOCAL_JOB,
            "requirements.txt": "six==1.16.0\n",
        },
        tag="v1",
    )
    probe = subprocess.run((sys.executable, "-c", "import torch"), capture_output=True)
    if probe.returncode == 0:
        pytest.skip("live-code's own interpreter has torch here: it is a valid base for a torch repo")
    proc = _cli(
        *local_argv(f"{repo}@v1", task="training", work=tmp_path / "w", images=4),
        cwd=tmp_path,
        LIVE_CODE_CACHE=str(tmp_path / "cache"),
    )
    assert proc.returncode == 4, proc.stderr
    assert "framework: torch" in proc.stderr and "LIVE_CODE_BASE_PYTHON is unset" in proc.stderr
    assert "export LIVE_CODE_BASE_PYTHON=" in proc.stderr
    envs = [e for e in Store(tmp_path / "cache").entries() if e.kind == "envs"]
    assert envs == [], "no environment was built"
    assert not (tmp_path / "w").exists()


def test_check_base_accepts_a_base_that_has_the_framework() -> None:
    fw = os.environ.get("LIVE_CODE_TEST_FRAMEWORK_PYTHON")
    if not fw:
        pytest.skip("LIVE_CODE_TEST_FRAMEWORK_PYTHON (a python with torch, made by tests/run.sh) is not set")
    local.check_base(manifest_mod.parse({"framework": "torch", "entry": "python x.py"}), fw)
    with pytest.raises(EnvironmentBuildError, match=f"the base interpreter {sys.executable} has no torch"):
        if subprocess.run((sys.executable, "-c", "import torch"), capture_output=True).returncode == 0:
            pytest.skip("live-code's own interpreter has torch")
        local.check_base(manifest_mod.parse({"framework": "torch", "entry": "python x.py"}), sys.executable)


def test_replay_runs_over_the_recorded_base_and_reports_the_environment_identical(
    tmp_path: Path, make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "base"
    subprocess.run((sys.executable, "-m", "venv", "--without-pip", str(base)), check=True)
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    monkeypatch.setenv("LIVE_CODE_BASE_PYTHON", str(base / "bin" / "python"))
    result = local.run(
        local.LocalRequest(
            repo=f"{repo}@v1", kinds=TRAINING, dataset="sample", sample_images=4, work=tmp_path / "w", sandbox="off"
        )
    )
    assert result.ok, result.error
    recorded = yaml.safe_load(result.provenance.read_text())["environment"]["base_python"]
    assert recorded == str(base / "bin" / "python")
    monkeypatch.delenv("LIVE_CODE_BASE_PYTHON")
    again = replay.replay(tmp_path / "w", sandbox="off")
    assert again.error is None, again.error
    fields = {name: (old, new) for name, old, new in again.provenance}
    assert fields["base"][0] == fields["base"][1] and fields["env lock"][0] == fields["env lock"][1]
    assert again.environment.startswith("identical"), again.render()  # installed from the recorded lock
    new = yaml.safe_load((again.out_dir / "live-code-provenance.yaml").read_text())
    assert new["environment"]["base_python"] == recorded
    assert "base" in again.render() and "CHANGED" not in again.render()


def test_replay_says_why_when_the_recorded_base_is_gone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    prov = tmp_path / "p.yaml"
    prov.write_text(yaml.safe_dump({"environment": {"base_python": str(tmp_path / "gone" / "python")}}))
    assert replay.recorded_base(prov) is None
    assert "is not on this machine" in caplog.text and str(tmp_path / "gone") in caplog.text


# -- acceptance 8: a folder run from inside itself -----------------------------------------------


def test_two_runs_of_repo_dot_from_inside_the_repo_record_the_same_tree(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"start.py": LOCAL_JOB, ".gitignore": "*.log\n"}, name="me")
    head = git("rev-parse", "HEAD", cwd=repo)
    provs = []
    for _ in range(2):
        proc = _cli(
            *local_argv(".", task="training", images=4),
            "--sandbox",
            "off",
            cwd=repo,
        )
        assert proc.returncode == 0, proc.stderr
        provs.append(sorted((repo / local.WORK_ROOT_NAME).glob("training-*/out/live-code-provenance.yaml"))[-1])
        if len(provs) == 2 and provs[0] == provs[1]:  # the same second: the second run refused its work dir
            pytest.fail("both runs got the same default work dir")
        import time

        time.sleep(1.1)
    a, b = (yaml.safe_load(p.read_text()) for p in provs)
    assert a["source"]["tree"] == b["source"]["tree"] and a["local"]["files"] == b["local"]["files"] == 2
    assert a["local"]["head"] == b["local"]["head"] == head
    assert a["local"]["dirty"] is False and b["local"]["dirty"] is False


def test_a_folder_with_an_edit_is_dirty_with_a_hash_of_the_change(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": "print(1)\n"})
    clean = local.folder_state(repo)
    assert clean["dirty"] is False and clean["head"] == git("rev-parse", "HEAD", cwd=repo)
    (repo / "start.py").write_text("print(2)\n")
    one = local.folder_state(repo)
    (repo / "start.py").write_text("print(3)\n")
    two = local.folder_state(repo)
    assert one["dirty"] is True and two["dirty"] is True and one["diff_sha256"] != two["diff_sha256"]
    (repo / "start.py").write_text("print(1)\n")
    (repo / "new.py").write_text("x = 1\n")
    assert local.folder_state(repo)["dirty"] is True


def test_a_tag_pin_is_recorded_as_git_tag(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    result = local.run(
        local.LocalRequest(
            repo=f"{repo}@v1", kinds=TRAINING, dataset="sample", sample_images=4, work=tmp_path / "w", sandbox="off"
        )
    )
    assert result.ok, result.error
    cfg = yaml.safe_load((tmp_path / "w" / "in" / "config.yaml").read_text())
    assert cfg["git_tag"] == "v1" and "git_branch" not in cfg
    prov = yaml.safe_load(result.provenance.read_text())
    assert prov["source"]["pin_kind"] == "tag" and prov["source"]["resolved_kind"] == "tag"
