"""The README's demo (issue 7, acceptance 1): examples/demo.sh with the setup skipped (the venvs
are what tests/run.sh provides) trains then mines+infers the minimal template on the sample dataset
through ``live-code local``, and writes validated outputs, the provenance and the report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from live_code.run import outputs, sandbox
from live_code.task import config

ROOT = Path(__file__).resolve().parent.parent
PYTHON = os.environ.get("LIVE_CODE_TEST_FRAMEWORK_PYTHON", sys.executable)
_HAS_TORCH = subprocess.run([PYTHON, "-c", "import torch"], capture_output=True).returncode == 0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.framework,
    pytest.mark.registry,
    pytest.mark.skipif(not _HAS_TORCH, reason=f"needs torch in {PYTHON} (set LIVE_CODE_TEST_FRAMEWORK_PYTHON)"),
]


def _valid(task_dir: Path) -> list[outputs.Problem]:
    task = config.load_task(task_dir / "in", out_dir=task_dir / "out")
    index = task.env.input.candidate_index_file
    candidates = outputs.read_candidates(task.host_path(index)) if index else None
    return outputs.validate_outputs(task.kinds, task_dir / "out", task.protocol, task.config.class_names, candidates)


def test_demo_script_trains_mines_infers_and_reports(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        LIVE_CODE_DEMO_SKIP_SETUP="1",
        LIVE_CODE_DEMO_DIR=str(demo),
        LIVE_CODE_BASE_PYTHON=PYTHON,
        LIVE_CODE=f"{sys.executable} -m live_code",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.run(
        ["bash", str(ROOT / "examples" / "demo.sh")], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("training", "mining-infer"):
        assert _valid(demo / name) == []
        prov = yaml.safe_load((demo / name / "out" / "live-code-provenance.yaml").read_text())
        assert prov["outcome"]["ok"] is True and isinstance(prov["local"]["dirty"], bool) and prov["local"]["head"]
        assert prov["sandbox"]["mode"] == ("bwrap" if sandbox.unavailable_reason() is None else "fallback")
    result = yaml.safe_load((demo / "training" / "out" / "models" / "result.yaml").read_text())
    assert result["model_stages"][result["best_stage_name"]]["mAP"] > 0.3
    report = demo / "report" / "report.html"
    assert report.is_file()
    pngs = sorted((demo / "report").glob("*.png"))
    assert any("pred-" in p.name for p in pngs) and any("curve-loss" in p.name for p in pngs)
    for png in pngs:
        Image.open(png).load()
    for where in ("results", "report", "provenance", str(report)):
        assert where in proc.stdout
