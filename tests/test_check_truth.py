"""``live-code check`` tells the truth about failed smoke runs (issue 23): it points at a task dir
only when it was kept, says the training run failed (not that the repo declares none), and claims
nothing about writes into /in when a job died before it could write."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from live_code.commands import check, local

DIES_ON_IMPORT = "import no_such_module_for_live_code_tests\n"
MANIFEST = textwrap.dedent("""
    framework: none
    entry: {training: python train.py, infer: python infer.py}
""")


def _findings(report: check.CheckReport) -> dict[str, check.Finding]:
    return {f.check: f for f in report.findings}


def test_failed_smoke_runs_without_work_say_the_task_dir_is_gone(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"live-code.yaml": MANIFEST, "train.py": DIES_ON_IMPORT, "infer.py": DIES_ON_IMPORT}, tag="v1")
    report = check.check_repo(f"{repo}@v1", sandbox="off")
    found = _findings(report)
    train, infer = found["smoke training"], found["smoke infer"]
    assert train.status == infer.status == check.FAIL
    assert "kept in" not in train.detail and "run check with --work DIR to keep it" in train.detail
    assert "the training smoke run failed" in infer.detail and "declares no training" not in infer.detail
    writes = found["no writes into /in"]
    assert writes.status == check.SKIP and "did not complete" in writes.detail


def test_failed_smoke_runs_with_work_point_at_the_kept_task_and_its_log(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"live-code.yaml": MANIFEST, "train.py": DIES_ON_IMPORT, "infer.py": DIES_ON_IMPORT}, tag="v1")
    report = check.check_repo(f"{repo}@v1", sandbox="off", work=tmp_path / "kept")
    train = _findings(report)["smoke training"]
    task = tmp_path / "kept" / "smoke" / "training"
    assert f"kept in {task}" in train.detail and task.is_dir()
    log = task / local.JOB_LOG
    assert str(log) in train.fix and "no_such_module_for_live_code_tests" in log.read_text()


def test_a_repo_without_training_says_so(make_repo: Callable[..., Path]) -> None:
    manifest = "framework: none\nentry: {infer: python infer.py}\n"
    repo = make_repo({"live-code.yaml": manifest, "infer.py": DIES_ON_IMPORT}, tag="v1")
    infer = _findings(check.check_repo(f"{repo}@v1", sandbox="off"))["smoke infer"]
    assert infer.status == check.FAIL and "the repo declares no training" in infer.detail


def test_every_refused_requirement_is_reported_at_once(make_repo: Callable[..., Path]) -> None:
    reqs = (
        "six==1.16.0\n--index-url https://example.invalid/simple\n"
        "--extra-index-url https://example.invalid/other\n--trusted-host example.invalid\n"
    )
    repo = make_repo({"start.py": "print(1)\n", "requirements.txt": reqs}, tag="v1")
    report = check.check_repo(f"{repo}@v1", static_only=True)
    found = [f for f in report.findings if f.check == "requirements"]
    assert len(found) == 1 and found[0].status == check.FAIL
    for line in (2, 3, 4):
        assert f"requirements.txt:{line}: " in found[0].detail, found[0].detail
    assert "requirements.txt:1" not in found[0].detail
    assert (repo / "requirements.txt").read_text() == reqs, "the repository is left as it was"


def test_check_set_goes_to_the_smoke_runs_whose_schema_declares_it(make_repo: Callable[..., Path]) -> None:
    from tests.helpers.jobs import LOCAL_JOB

    manifest = textwrap.dedent("""
        framework: none
        entry: python start.py
        hyperparameters:
          training: {my_epochs: {type: int, default: 1}}
          infer: {my_conf: {type: float, default: 0.5}}
    """)
    repo = make_repo({"live-code.yaml": manifest, "start.py": LOCAL_JOB}, tag="v1")
    good = check.check_repo(f"{repo}@v1", sandbox="off", overrides={"my_epochs": 2, "my_conf": 0.1})
    assert good.problems == [], good.render()
    typo = check.check_repo(f"{repo}@v1", sandbox="off", overrides={"my_epoch": 2})
    assert any("'my_epoch' (did you mean 'my_epochs'?)" in f.detail for f in typo.problems), typo.render()
