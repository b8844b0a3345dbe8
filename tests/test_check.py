"""``live-code check`` (issue 7, acceptance 3): a good repo passes; five broken repos fail naming
the problem and the fix (missing entry, unpinned torch, a schema default of the wrong type, a
write into /in, an invalid infer output); every template passes (the framework ones in the slow run)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from live_code.commands import check
from tests.helpers.jobs import LOCAL_JOB, run_researcher_cli

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "remote_templates"
PYTHON = os.environ.get("LIVE_CODE_TEST_FRAMEWORK_PYTHON", sys.executable)

MANIFEST = {
    "framework": "none",
    "entry": "python start.py",
    "hyperparameters": {"training": {"epochs": {"type": "int", "default": 3}}},
}


def _repo(make_repo: Callable[..., Path], manifest: dict[str, object] | None = None, **files: str) -> str:
    tree = {"start.py": LOCAL_JOB, "live-code.yaml": yaml.safe_dump(manifest or MANIFEST), **files}
    return f"{make_repo(tree, tag='v1')}@v1"


def _failed(report: check.CheckReport) -> dict[str, check.Finding]:
    return {f.check: f for f in report.problems}


def test_a_good_repo_passes_static_and_smoke_checks(make_repo: Callable[..., Path]) -> None:
    report = check.check_repo(_repo(make_repo, **{"requirements.txt": "PyYAML==6.0.4\n"}), sandbox="auto")
    assert report.problems == [], report.render()
    checks = {f.check: f.status for f in report.findings}
    assert checks["smoke training"] == checks["smoke mining+infer"] == check.OK
    assert checks["requirements"] == check.OK
    assert report.render().endswith("all checks passed")


def test_missing_entry_is_named(make_repo: Callable[..., Path]) -> None:
    manifest = {**MANIFEST, "entry": {"training": "python train.py", "mining": "python start.py"}}
    report = check.check_repo(_repo(make_repo, manifest))
    failed = _failed(report)
    assert "train.py" in failed["entry points"].detail and "not in the repository" in failed["entry points"].detail
    assert failed["entry points"].fix
    assert any(f.check == "smoke runs" and f.status == check.SKIP for f in report.findings)


def test_a_legacy_repo_without_start_py_is_named(make_repo: Callable[..., Path]) -> None:
    report = check.check_repo(f"{make_repo({'main.py': 'print(1)'}, tag='v1')}@v1")
    assert "start.py" in _failed(report)["entry points"].detail


@pytest.mark.parametrize("line", ["torch", "torch>=2.0", "torch==2.*"])
def test_unpinned_torch_is_named(make_repo: Callable[..., Path], line: str) -> None:
    report = check.check_repo(_repo(make_repo, **{"requirements.txt": f"PyYAML==6.0.4\n{line}\n"}))
    finding = _failed(report)["requirements"]
    assert "requirements.txt:2" in finding.detail and "framework package without an exact pin" in finding.detail
    assert "remove the line" in finding.fix and "torch==" in finding.fix
    assert any(f.check == "smoke runs" and f.status == check.SKIP for f in report.findings)


def test_other_unpinned_requirements_are_named(make_repo: Callable[..., Path]) -> None:
    report = check.check_repo(_repo(make_repo, **{"requirements.txt": "PyYAML>=6\n"}), static_only=True)
    finding = _failed(report)["requirement pins"]
    assert "requirements.txt:1: PyYAML>=6" in finding.detail
    # the exact command that locks them (issue 22): this repo at the commit checked, as of its date
    repo = report.repo.rsplit("@", 1)[0]
    assert f"live-code lock {repo}@{report.commit} --as-of commit -o pylock.toml" in finding.fix
    assert "live_code_lock: pylock.toml" in finding.fix


def test_schema_default_of_the_wrong_type_is_named(make_repo: Callable[..., Path]) -> None:
    manifest = {**MANIFEST, "hyperparameters": {"training": {"epochs": {"type": "int", "default": "ten"}}}}
    report = check.check_repo(_repo(make_repo, manifest))
    finding = _failed(report)["schema defaults"]
    assert "hyperparameters.training.epochs" in finding.detail and "'ten'" in finding.detail and "int" in finding.detail


def test_a_code_config_value_of_the_wrong_type_is_named(make_repo: Callable[..., Path]) -> None:
    manifest = {**MANIFEST, "code_config": "cfg.yaml"}
    report = check.check_repo(_repo(make_repo, manifest, **{"cfg.yaml": "epochs: many\n"}), static_only=True)
    assert "'epochs'" in _failed(report)["schema defaults"].detail


@pytest.mark.parametrize("mode", [pytest.param("bwrap", marks=pytest.mark.needs_bwrap), "off"])
def test_a_write_into_in_is_named(make_repo: Callable[..., Path], mode: str) -> None:
    """With bubblewrap the write fails at once; without a sandbox in/ is compared after the run."""
    # /in itself in the sandbox; without one, the in dir as env.yaml names it (the mapped view)
    target = "'/in/labels.cache'" if mode == "bwrap" else "os.path.join(os.path.dirname(env.input.config_file), 'x')"
    job = LOCAL_JOB + f"\nimport os\nif not env.run_training:\n    open({target}, 'w').write('x')\n"
    report = check.check_repo(_repo(make_repo, **{"start.py": job}), sandbox="off" if mode == "off" else None)
    finding = _failed(report)["no writes into /in"]
    assert "mining+infer" in finding.detail and "read-only in YMIR" in finding.detail
    assert "/out or /tmp" in finding.fix
    assert {f.check: f.status for f in report.findings}["smoke training"] == check.OK


def test_an_invalid_infer_output_is_named(make_repo: Callable[..., Path]) -> None:
    job = LOCAL_JOB + "\nif env.run_infer:\n    open(env.output.infer_result_file, 'w').write('{\"detection\": []}')\n"
    report = check.check_repo(_repo(make_repo, **{"start.py": job}))
    finding = _failed(report)["outputs of mining+infer"]
    assert "infer-result.json" in finding.detail and "live_code.sdk" in finding.fix


def test_cli_prints_the_report_and_fails(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = _repo(make_repo, **{"requirements.txt": "torch\n"})
    proc = run_researcher_cli("check", repo, "--static", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "FAIL  requirements" in proc.stdout and "fix: remove the line" in proc.stdout
    assert "check found 1 problem(s)" in proc.stderr


def _templates() -> list[str]:
    return sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir())


@pytest.mark.parametrize("name", _templates())
def test_every_template_passes_the_static_checks(name: str) -> None:
    report = check.check_repo(str(TEMPLATES / name), static_only=True, base_python=PYTHON)
    assert report.problems == [], report.render()


@pytest.mark.slow
@pytest.mark.framework
@pytest.mark.registry
@pytest.mark.needs_bwrap
@pytest.mark.parametrize("name", [n for n in _templates() if n in ("minimal", "legacy")])
def test_every_template_passes_the_smoke_runs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if subprocess.run([PYTHON, "-c", "import torch"], capture_output=True).returncode != 0 and name != "legacy":
        pytest.skip(f"needs torch in {PYTHON} (set LIVE_CODE_TEST_FRAMEWORK_PYTHON)")
    monkeypatch.setenv("LIVE_CODE_BASE_PYTHON", PYTHON)
    report = check.check_repo(str(TEMPLATES / name))
    assert report.problems == [], report.render()
    assert not any(f.status == check.SKIP for f in report.findings), report.render()
