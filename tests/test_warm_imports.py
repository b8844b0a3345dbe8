"""Issue 24: what a warm run does not import. packaging's regular expressions cost about a third of
the instructions of importing the run path, so plain ``name==version`` pins are read without it
(``util.simple_pin``), and everything else still goes through packaging's ``Requirement``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from live_code import util
from live_code.envs import requirements as reqs

SIMPLE = [
    "numpy==2.2.4",
    "opencv-python-headless==4.11.0.86",
    "PyYAML==6.0.2",
    "Pillow == 11.1.0",
    "zope.interface==7.2",
    "ruamel.yaml.clib==0.2.12",
    "a==0",
    "torch==2.1.0rc1",
    "pkg_name==1.0.post2",
    "x.y-z_w==3.0.dev1",
    "x==1.0a1.post1.dev0",
    "  tqdm==4.67.1  ",
]
NOT_SIMPLE = [
    "numpy",
    "numpy>=1.24",
    "numpy==1.*",
    "numpy==1.0+cpu",
    "numpy===1.0",
    "numpy==01.0",  # valid PEP 440, but not in its canonical spelling: packaging reads it
    "numpy[extra]==1.0",
    "numpy==1.0; python_version < '3.12'",
    "numpy==1.0,<2",
    "numpy!=1.0",
    "numpy==1.0-1",
    "numpy==v1.0",
    "-numpy==1.0",
    "numpy @ https://example.org/numpy-1.0.whl",
]


@pytest.mark.parametrize("body", SIMPLE)
def test_a_plain_pin_is_read_as_packaging_reads_it(body: str) -> None:
    req = Requirement(body.strip())
    assert util.simple_pin(body) == (canonicalize_name(req.name), str(req.specifier))


@pytest.mark.parametrize("body", NOT_SIMPLE)
def test_anything_else_is_left_to_packaging(body: str) -> None:
    assert util.simple_pin(body) is None


@pytest.mark.parametrize("name", ["Django", "oslo.concurrency", "a__b--c..d", "A_.-B", "ruamel.yaml", "x"])
def test_canonical_name_is_pep_503s(name: str) -> None:
    assert util.canonical_name(name) == canonicalize_name(name)


def test_a_requirements_file_reads_the_same_with_and_without_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "requirements.txt").write_text("\n".join([*SIMPLE, *NOT_SIMPLE[:12]]) + "\n")
    fast = reqs.parse_requirements(tmp_path / "requirements.txt", tmp_path)
    monkeypatch.setattr(util, "simple_pin", lambda body: None)
    slow = reqs.parse_requirements(tmp_path / "requirements.txt", tmp_path)
    assert fast.lines == slow.lines and len(fast.lines) == len(SIMPLE) + 12
    assert all(r.pinned and r.kind == "name" for r in fast.lines[: len(SIMPLE)])


def test_the_run_path_and_plain_pins_import_no_packaging(tmp_path: Path) -> None:
    """In a fresh interpreter: the CLI, the pipeline, and reading a file of plain pins (what a warm
    run of most repositories does before its job) leave packaging unimported; a range brings it."""
    (tmp_path / "plain.txt").write_text("\n".join(SIMPLE) + "\n")
    (tmp_path / "range.txt").write_text("numpy>=1.24\n")
    code = textwrap.dedent(
        f"""
        import sys
        import live_code.cli, live_code.run.pipeline
        from live_code.envs import requirements
        requirements.parse_requirements({str(tmp_path / "plain.txt")!r}, {str(tmp_path)!r})
        print("packaging" in sys.modules)
        requirements.parse_requirements({str(tmp_path / "range.txt")!r}, {str(tmp_path)!r})
        print("packaging" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_the_run_path_makes_its_records_without_dataclasses() -> None:
    """live_code.record: the standard library's dataclasses compile six methods per class and import
    inspect; the run path's records are made without either (the SDK, run in the job, keeps them)."""
    code = (
        "import sys, live_code.cli, live_code.run.pipeline; "
        "print(sorted({'dataclasses', 'inspect'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_msgspec_is_imported_to_check_an_infer_result_and_not_a_mining_result(tmp_path: Path) -> None:
    """The output gate's fast infer check needs msgspec (about 6 ms to import); a mining task's run
    checks its result.tsv without it."""
    (tmp_path / "result.tsv").write_text("/in/assets/a.jpg\t0.5\n")
    (tmp_path / "infer-result.json").write_text('{"detection": {"a.jpg": {"boxes": []}}}')
    code = textwrap.dedent(
        f"""
        import sys
        from live_code.contract import TaskKind
        from live_code.run import outputs
        for kind in (TaskKind.MINING, TaskKind.INFER):
            problems = outputs.validate_outputs([kind], {str(tmp_path)!r}, "1.1.0", None, None)
            print(kind.value, "msgspec" in sys.modules, problems)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["mining False []", "infer True []"]
