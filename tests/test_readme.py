"""The README tells the truth (issue 23, acceptance 7): its quick start runs as it is written (the
shell block under "## Quick start", the way pytest's doctest runs examples)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def quick_start() -> str:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the quick start is one sh block"
    return blocks[0]


def test_the_quick_start_block_is_only_live_code_commands() -> None:
    lines = [line for line in quick_start().replace("\\\n", " ").splitlines() if line.strip()]
    assert lines and all(line.startswith("live-code ") for line in lines)


@pytest.mark.slow
@pytest.mark.framework
def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    base = os.environ.get("LIVE_CODE_TEST_FRAMEWORK_PYTHON")
    if not base:
        pytest.skip(
            "the quick start trains the minimal (torch) template: LIVE_CODE_TEST_FRAMEWORK_PYTHON, a python "
            "with torch made by tests/run.sh, is not set"
        )
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "live-code").is_file():
        pytest.skip(f"no live-code command next to {sys.executable}: install live-code into the test venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", LIVE_CODE_BASE_PYTHON=base)
    proc = subprocess.run(
        ("bash", "-euo", "pipefail", "-c", quick_start()),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert (tmp_path / "my-detector" / "live-code.yaml").is_file()
    assert (tmp_path / "runs" / "report" / "report.html").is_file()
    assert any(p.name.startswith("2-pred-") for p in (tmp_path / "runs" / "report").iterdir())
    assert "outputs identical to the original" in proc.stdout
