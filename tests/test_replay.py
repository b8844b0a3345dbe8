"""``live-code replay`` (issue 7, acceptance 4): a kept task directory runs again into
``replay-<n>/out``, the original out/ stays byte for byte, and the diff says identical for a
deterministic job and names what changed for one that is not."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from live_code.commands import local, replay, sample
from live_code.contract import TaskKind
from live_code.errors import ConfigError
from tests.helpers.jobs import LOCAL_JOB

ROOT = Path(__file__).resolve().parent.parent
MINING_INFER = frozenset({TaskKind.MINING, TaskKind.INFER})
RANDOM_JOB = LOCAL_JOB.replace("float(n)", "__import__('random').random()")


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _kept(tmp_path: Path, make_repo: Callable[..., Path], job: str, kinds: frozenset[TaskKind] = MINING_INFER) -> Path:
    repo = make_repo({"start.py": job}, tag="v1")
    result = local.run(
        local.LocalRequest(repo=f"{repo}@v1", kinds=kinds, dataset="sample", work=tmp_path / "work", sample_images=4)
    )
    assert result.ok, result.error
    return result.work


@pytest.mark.parametrize("kinds", [MINING_INFER, frozenset({TaskKind.TRAINING})], ids=["mining+infer", "training"])
def test_replay_of_a_deterministic_job_is_identical_and_keeps_the_original(
    tmp_path: Path, make_repo: Callable[..., Path], kinds: frozenset[TaskKind]
) -> None:
    work = _kept(tmp_path, make_repo, LOCAL_JOB, kinds)
    before = _tree(work / "out")
    result = replay.replay(work)
    assert result.error is None
    assert result.identical, result.render()
    assert result.out_dir == work / "replay-1" / "out"
    assert _tree(work / "out") == before, "the original out/ must stay as it was"
    names = {f.path for f in result.files}
    expected = {"result.tsv", "infer-result.json"} if TaskKind.INFER in kinds else {"models/result.yaml"}
    assert expected <= names
    assert dict((n, a == b) for n, a, b in result.provenance)["commit"] is True
    assert result.render().endswith("outputs identical to the original")
    assert replay.replay(work).out_dir == work / "replay-2" / "out"


def test_replay_names_outputs_that_differ(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    work = _kept(tmp_path, make_repo, RANDOM_JOB)
    result = replay.replay(work)
    assert not result.identical
    status = {f.path: f for f in result.files}
    assert status["result.tsv"].status == "different"
    assert status["infer-result.json"].status == "identical"
    assert "outputs differ from the original" in result.render()


def test_replay_of_a_ymir_sandbox_without_provenance(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    """A YMIR work dir: in/ with a git_url + pin in config.yaml, out/ written by another image."""
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    made = sample.write_sample_dataset(tmp_path / "sandbox", kinds=MINING_INFER, images=4)
    cfg = yaml.safe_load((made.in_dir / "config.yaml").read_text())
    cfg.update(git_url=str(repo), git_tag="v1")
    (made.in_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    (made.out_dir / "result.tsv").write_text(
        "".join(f"/in/{im.rel_path}\t{n}\n" for n, im in reversed(list(enumerate(made.images))))
    )
    (made.out_dir / "monitor.txt").write_text(f"{cfg['task_id']}\t1.0\t1.00\t4\t160004\n")
    (tmp_path / "sandbox" / "task_config.yaml").write_text(yaml.safe_dump({"executor_config": cfg, "task_context": {}}))
    result = replay.replay(tmp_path / "sandbox")
    files = {f.path: f for f in result.files}
    assert files["result.tsv"].status == "identical"
    assert files["infer-result.json"].status == "only in replay"
    assert result.provenance == (("provenance", "none (not run by live-code)", "present"),)


def test_diff_compares_meaning_not_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "models").mkdir(parents=True)
    (a / "result.tsv").write_text("x.png\t1.0\ny.png\t0.5\n")
    (b / "result.tsv").write_text("x.png\t1\ny.png\t0.50\n")
    (a / "infer-result.json").write_text('{"detection": {"x.png": {"boxes": []}}}')
    (b / "infer-result.json").write_text('{\n  "detection": {"x.png": {"boxes": []}}\n}\n')
    stage = {"stage_name": "s", "files": ["w.pt"], "mAP": 0.5}
    (a / "models" / "result.yaml").write_text(
        yaml.safe_dump({"best_stage_name": "s", "model_stages": {"s": {**stage, "timestamp": 1}}})
    )
    (b / "models" / "result.yaml").write_text(
        yaml.safe_dump({"best_stage_name": "s", "model_stages": {"s": {**stage, "timestamp": 2}}})
    )
    (a / "monitor.txt").write_text("t\t1\t1\t2\n")
    diffs = replay.diff_outputs(a, b)
    assert {(f.path, f.status) for f in diffs} == {
        ("result.tsv", "identical"),
        ("infer-result.json", "identical"),
        ("models/result.yaml", "identical"),
    }
    (b / "result.tsv").write_text("x.png\t1\ny.png\t0.4\n")
    (b / "models" / "result.yaml").write_text(
        yaml.safe_dump({"best_stage_name": "s", "model_stages": {"s": {**stage, "mAP": 0.6}}})
    )
    diffs = {f.path: f for f in replay.diff_outputs(a, b)}
    assert diffs["result.tsv"].detail == "same order, scores differ by up to 0.1"
    assert diffs["models/result.yaml"].status == "different"


def test_replay_refuses_a_dir_without_a_task(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a kept task directory"):
        replay.replay(tmp_path)


def test_cli_replay_exit_codes(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(ROOT)
    for job, code, tsv in ((LOCAL_JOB, 0, "identical"), (RANDOM_JOB, 1, "different")):
        work = _kept(tmp_path / str(code), make_repo, job)
        proc = subprocess.run(
            [sys.executable, "-m", "live_code", "replay", str(work)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == code, proc.stderr
        (line,) = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("result.tsv")]
        assert line.split()[1].rstrip(":") == tsv
        assert proc.stdout.rstrip().endswith("identical to the original" if code == 0 else "differ from the original")
