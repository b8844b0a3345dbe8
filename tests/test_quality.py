"""The habits of the field (issue 19): the lint and type settings do what pyproject.toml says, test
modules import no other test module, and every ``noqa`` / ``type: ignore`` says why.

The checks themselves (``ruff check``, ``ruff format --check``, ``mypy``) run over the tree in
tests/run.sh before pytest; here they run over small fixture trees that break a rule, so that a
setting that stopped working shows as a failure."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.repos import write_tree

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: a ``noqa`` or ``type: ignore`` with its rule, then the reason: `` (...)``, ``  # ...`` or ``: ...``
_SAYS_WHY = re.compile(r"(noqa: [A-Z]+[0-9]+(, ?[A-Z]+[0-9]+)*|type: ignore\[[a-z-]+(, ?[a-z-]+)*\]) *(\(|# |: )\S")
_SUPPRESSION = re.compile(r"#\s*(noqa|type:\s*ignore)\b")
#: this module, whose examples are bare on purpose
_PENDING = {"tests/test_quality.py"}
UNTYPED = "def double(x):\n    return x * 2\n"


def _tool(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        pytest.skip(f"{name} is not installed next to {sys.executable} (the dev extra pins it)")
    return str(path)


def _fixture_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """``files`` under a copy of the project's pyproject.toml (its ruff and mypy settings)."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    write_tree(tmp_path, files)
    return tmp_path


def test_mypy_is_strict_on_the_sdk_and_only_there(tmp_path: Path) -> None:
    tree = _fixture_tree(
        tmp_path,
        {
            "live_code/__init__.py": "",
            "live_code/sdk/__init__.py": "",
            "live_code/sdk/helper.py": UNTYPED,
            "live_code/core.py": UNTYPED,
        },
    )
    res = subprocess.run([_tool("mypy"), "--no-incremental"], cwd=tree, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stdout + res.stderr
    errors = [line for line in res.stdout.splitlines() if ": error:" in line]
    assert errors and all(line.startswith("live_code/sdk/helper.py:1:") for line in errors), res.stdout
    assert "missing a type annotation" in res.stdout


def test_mypy_checks_the_bodies_of_untyped_functions(tmp_path: Path) -> None:
    tree = _fixture_tree(tmp_path, {"live_code/__init__.py": "", "live_code/core.py": 'def f():\n    return 1 + ""\n'})
    res = subprocess.run([_tool("mypy"), "--no-incremental"], cwd=tree, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "live_code/core.py:2: error: Unsupported operand types" in res.stdout, res.stdout


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("import os\n", "F401"),
        ("from typing import List\n\nx: List[int] = []\n", "UP006"),
        ("def f(x=[]):\n    return x\n", "B006"),
        ("import os  # noqa: E501 (not needed here)\n\nprint(os.sep)\n", "RUF100"),
    ],
)
def test_ruff_fails_a_file_that_breaks_a_selected_rule(tmp_path: Path, source: str, rule: str) -> None:
    tree = _fixture_tree(tmp_path, {"bad.py": source})
    res = subprocess.run(
        [_tool("ruff"), "check", "--no-cache", "--output-format", "concise", "bad.py"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1 and f" {rule} " in res.stdout, res.stdout + res.stderr


def test_ruff_format_check_fails_an_unformatted_file(tmp_path: Path) -> None:
    tree = _fixture_tree(tmp_path, {"ugly.py": "x = {  'a':1 }\n"})
    res = subprocess.run(
        [_tool("ruff"), "format", "--check", "--no-cache", "ugly.py"], cwd=tree, capture_output=True, text=True
    )
    assert res.returncode == 1 and "ugly.py" in res.stdout, res.stdout + res.stderr


def _test_imports(path: Path) -> list[str]:
    pattern = re.compile(
        r"^\s*(from tests(\.adversarial)?\.(test_\w+|conftest) import|import tests\.(adversarial\.)?(test_|conftest))",
        re.M,
    )
    return [m.group(0).strip() for m in pattern.finditer(path.read_text())]


def test_no_test_module_imports_another() -> None:
    found = {
        str(p.relative_to(ROOT)): hits
        for p in sorted((ROOT / "tests").rglob("*.py"))
        if "resources" not in p.parts and (hits := _test_imports(p))
    }
    assert found == {}, "shared code goes in tests/helpers/, fixtures in a conftest.py (never imported)"


def test_the_import_check_sees_an_import_of_a_test_module_or_a_conftest(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        "from tests.test_local import LOCAL_JOB\nfrom tests.helpers.jobs import RUN_JOB\n"
        "def f():\n    from tests.adversarial.conftest import Harness\n"
    )
    assert _test_imports(tmp_path / "test_x.py") == [
        "from tests.test_local import",
        "from tests.adversarial.conftest import",
    ]


def _unexplained(path: Path) -> list[str]:
    return [
        f"{path.name}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if _SUPPRESSION.search(line) and not _SAYS_WHY.search(line)
    ]


def test_every_noqa_and_type_ignore_names_its_rule_and_says_why() -> None:
    pending = set(_PENDING)
    files = [
        p
        for top in ("live_code", "tests", "bench", "remote_templates")
        for p in sorted((ROOT / top).rglob("*.py"))
        if "resources" not in p.parts and str(p.relative_to(ROOT)) not in pending
    ]
    bare = [hit for p in files for hit in _unexplained(p)]
    assert bare == [], "write the rule and the reason on the line: `# noqa: E501 (a URL)`"


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("x = 1  # noqa: E501 (a URL)", True),
        ("x = 1  # type: ignore[index]  # YAML read as object", True),
        ("x = 1  # noqa: E501", False),
        ("x = 1  # noqa", False),
        ("x = 1  # type: ignore", False),
        ("x = 1  # type: ignore[index]", False),
    ],
)
def test_the_reason_check_tells_a_bare_suppression(tmp_path: Path, line: str, ok: bool) -> None:
    (tmp_path / "m.py").write_text(line + "\n")
    assert (_unexplained(tmp_path / "m.py") == []) is ok


def test_modules_and_functions_keep_the_size_limits() -> None:
    """Issue 19: no module of live_code/ over 500 lines and at most three over 400; no function over
    60 lines (a module or function that grows past them fails here, naming it)."""
    sizes = {p: len(p.read_text().splitlines()) for p in sorted((ROOT / "live_code").rglob("*.py"))}
    assert [str(p.relative_to(ROOT)) for p, n in sizes.items() if n > 500] == []
    over_400 = [str(p.relative_to(ROOT)) for p, n in sizes.items() if n > 400]
    assert len(over_400) <= 3, over_400
    long = [
        f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({(node.end_lineno or node.lineno) - node.lineno + 1} lines)"
        for p in sizes
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (node.end_lineno or node.lineno) - node.lineno + 1 > 60
    ]
    assert long == []
