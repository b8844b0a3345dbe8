"""Warnings of the output gate outside live_code.run.outputs (issue 18, acceptance 5): a real ``live-code
run`` whose job writes an infer-result.json that YMIR accepts but the contract frowns on (both
``boxes`` and ``annotations``) succeeds, prints the warning and lists it in the provenance; the
``validate`` command prints warnings as warnings and exits 0 on them alone; ``check`` names them."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from live_code import cli, contract
from live_code.commands import check, sample
from tests.helpers.jobs import LOCAL_JOB, RUN_JOB, Task, run_cli
from tests.helpers.repos import git

# after the SDK wrote infer-result.json: the same boxes under 'annotations' too (YMIR 1.1 reads those)
BOTH_KEYS = """
import json
if env.run_infer:
    with open(env.output.infer_result_file) as f:
        data = json.load(f)
    for image in data["detection"].values():
        image["annotations"] = json.loads(json.dumps(image["boxes"]))
    {more}
    with open(env.output.infer_result_file, "w") as f:
        json.dump(data, f)
"""
BOTH_KEYS_MESSAGE = "has both 'boxes' and 'annotations', the same boxes"


def _both_keys(job: str, more: str = "pass") -> str:
    return textwrap.dedent(job) + textwrap.dedent(BOTH_KEYS).replace("{more}", more)


@pytest.fixture
def task(tmp_path: Path) -> Task:
    sample.write_sample_dataset(
        tmp_path / "task",
        kinds=frozenset({contract.TaskKind.MINING, contract.TaskKind.INFER}),
        fmt="voc",
        protocol=contract.PROTOCOL_1_1_0,
        images=3,
    )
    return Task(tmp_path / "task")


def _use(task: Task, make_repo: Callable[..., Path], start_py: str) -> None:
    repo = make_repo({"start.py": start_py})
    task.set_config(git_url=str(repo), git_commit=git("rev-parse", "HEAD", cwd=repo))


def test_a_run_with_both_list_keys_succeeds_and_records_the_warnings(
    task: Task,
    make_repo: Callable[..., Path],
) -> None:
    _use(task, make_repo, _both_keys(RUN_JOB))
    res = run_cli(task)
    assert res.returncode == 0, res.stderr
    printed = [line for line in res.stderr.splitlines() if line.startswith("live-code: warning: ")]
    assert len(printed) == 3 and all("infer-result.json: detection[" in line for line in printed), res.stderr
    prov = task.provenance()
    assert prov["outcome"]["ok"] is True
    assert len(prov["warnings"]) == 3 and all(BOTH_KEYS_MESSAGE in w for w in prov["warnings"])
    assert all(w.startswith(str(task.out_dir / "infer-result.json")) for w in prov["warnings"])


def test_a_refused_run_keeps_its_warnings_in_the_provenance_and_out_of_the_error(
    task: Task,
    make_repo: Callable[..., Path],
) -> None:
    unknown = 'next(iter(data["detection"].values()))["boxes"][0]["class_name"] = "zebra"'
    _use(task, make_repo, _both_keys(RUN_JOB, unknown))
    res = run_cli(task)
    assert res.returncode == 6, res.stderr
    rec = task.monitor()
    assert "unknown class 'zebra'" in rec.message and "has both" not in rec.message
    prov = task.provenance()
    assert prov["outcome"]["ok"] is False
    assert [BOTH_KEYS_MESSAGE in w for w in prov["warnings"]] == [False, True, True]  # the first lists differ now
    assert "they differ" in prov["warnings"][0]


def test_a_run_without_warnings_has_no_warnings_key(task: Task, make_repo: Callable[..., Path]) -> None:
    _use(task, make_repo, RUN_JOB)
    res = run_cli(task)
    assert res.returncode == 0, res.stderr
    assert "warning:" not in res.stderr and "warnings" not in task.provenance()


# -- live-code validate ---------------------------------------------------------------------------


def _task_outputs(root: Path, boxes: dict[str, object]) -> tuple[Path, Path]:
    """A sample mining+infer task and outputs for it: every candidate in result.tsv, ``boxes`` as
    the object of every image of infer-result.json, a running monitor.txt."""
    sample.write_sample_dataset(root, kinds=frozenset({contract.TaskKind.MINING, contract.TaskKind.INFER}), images=3)
    in_dir, out_dir = root / "in", root / "out"
    out_dir.mkdir(exist_ok=True)
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    task_id = yaml.safe_load((in_dir / "env.yaml").read_text())["task_id"]
    (out_dir / "result.tsv").write_text("".join(f"{c}\t{1 - n / 10}\n" for n, c in enumerate(candidates)))
    detection = {c.rpartition("/")[2]: boxes for c in candidates}
    (out_dir / "infer-result.json").write_text(json.dumps({"detection": detection}))
    (out_dir / "monitor.txt").write_text(f"{task_id}\t1.0\t1.0\t2\t0\n")
    return in_dir, out_dir


BOX = {"box": {"x": 1, "y": 1, "w": 5, "h": 5}, "class_name": "cat", "score": 0.5}


def test_validate_prints_warnings_and_exits_0_on_warnings_alone(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    in_dir, out_dir = _task_outputs(tmp_path / "t", {"boxes": [BOX], "annotations": [BOX]})
    assert cli.main(["validate", "--in", str(in_dir), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("  warning: ") and BOTH_KEYS_MESSAGE in line for line in out) == 3, out
    assert out[-1].endswith("are valid (protocol 1.1.0), with 3 warning(s): YMIR accepts them")


def test_validate_fails_on_an_error_and_still_shows_the_warnings(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    in_dir, out_dir = _task_outputs(tmp_path / "t", {"boxes": [BOX], "annotations": [{**BOX, "box": [1, 1, 5, 5]}]})
    assert cli.main(["validate", "--in", str(in_dir), "--out", str(out_dir)]) == 6
    captured = capsys.readouterr()
    warned = [line for line in captured.out.splitlines() if line.startswith("  warning: ")]
    refused = [line for line in captured.out.splitlines() if ".annotations[0].box: must be an object" in line]
    assert len(warned) == len(refused) == 3 and all("they differ" in line for line in warned)
    assert not any(line.startswith("  warning: ") for line in refused)
    assert "3 problem(s)" in captured.err and "they differ" not in captured.err


# -- live-code check ------------------------------------------------------------------------------


def test_check_names_the_warnings_of_a_passing_smoke_run(make_repo: Callable[..., Path]) -> None:
    manifest = {"framework": "none", "entry": "python start.py"}
    repo = make_repo({"start.py": _both_keys(LOCAL_JOB), "live-code.yaml": yaml.safe_dump(manifest)}, tag="v1")
    report = check.check_repo(f"{repo}@v1")
    assert report.problems == [], report.render()
    (finding,) = [f for f in report.findings if f.status == check.WARN]
    assert finding.check == "outputs of mining+infer" and BOTH_KEYS_MESSAGE in finding.detail
    assert "YMIR reads these outputs" in finding.fix
    rendered = report.render()
    assert "  warn  outputs of mining+infer" in rendered and rendered.endswith("all checks passed")
