"""The layers of live_code/ (its __init__.py), held by parsing every import in the package.

``check_tree`` is the checker; it runs on the real tree and on fixture trees that break each rule,
so that it is seen to fail."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "live_code"

# Lowest first: a module may import its own package and the layers below it, never one above.
# The foundation modules sit at the top of live_code/ and have rules of their own (FOUNDATION).
LAYERS: dict[str, int] = {
    "foundation": 0,
    "task": 1,
    "source": 2,
    "envs": 2,
    "run": 3,
    "commands": 4,
    "cli": 5,
    "__main__": 6,
}
# Packages of one layer that may import each other, and in which direction.
SIDEWAYS = {("envs", "source")}  # the installer follows the operator's git mirrors (source/mirrors.py)
FOUNDATION: dict[str, set[str]] = {
    "errors": set(),
    "contract": set(),
    "progress": set(),
    "util": {"errors"},
    "record": set(),
    "_yaml": {"errors"},
    "__init__": set(),
}
# The SDK runs inside the job's env: its own modules, live_code.contract, the standard library, PyYAML.
SDK_ALLOWED = {"contract"}
SDK_THIRD_PARTY = {"yaml"}
# The one part of the SDK the harness may import (issue 19): the dataset formats, shared with jobs.
SDK_FOR_HARNESS = "live_code.sdk.formats"
# run/_sitecustomize.py is copied into a job as its sitecustomize: the standard library only.
STDLIB_ONLY = {"run/_sitecustomize.py"}
# tomli: Python < 3.11 reads pylock.toml with it; msgspec: the fast path of the infer-result check
HARNESS_THIRD_PARTY = {"yaml", "filelock", "packaging", "uv", "tomli", "msgspec"}
# what only type checkers import (``if TYPE_CHECKING:``): live_code.record's dataclass_transform
TYPING_ONLY = {"typing_extensions"}
# issue 23: the report's libraries (the report extra) are imported by the report's modules alone
REPORT_THIRD_PARTY = HARNESS_THIRD_PARTY | {"PIL", "matplotlib", "tensorboard"}
REPORT_MODULES = {"commands/report.py", "commands/report_pictures.py"}


def _unit(rel: Path) -> str:
    """The package (``task``, ``run``...) or foundation module (``errors``...) a file belongs to."""
    if len(rel.parts) > 1:
        return rel.parts[0]
    return rel.name.removesuffix(".py")


def _layer(unit: str) -> tuple[str, int]:
    if unit in FOUNDATION:
        return "foundation", 0
    if unit == "sdk":
        return "sdk", 0
    return unit, LAYERS[unit]


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, dotted name, whether only type checkers see it) of every absolute import in a file,
    including ones inside functions and ``if TYPE_CHECKING:``; ``from live_code.x import y`` counts
    as ``live_code.x.y``; a relative import is the file's own package."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        checker = id(node) in typing_only
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, checker) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, ".", checker))
            elif node.module == "live_code" or (node.module or "").startswith("live_code."):
                found += [(node.lineno, f"{node.module}.{a.name}", checker) for a in node.names]
            elif node.module:
                found.append((node.lineno, node.module, checker))
    return found


def _target(pkg: Path, dotted: str) -> str:
    """The unit a ``live_code...`` import reaches; ``__init__`` for a name of the package itself."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return "__init__"
    name = parts[1]
    return name if (pkg / f"{name}.py").exists() or (pkg / name).is_dir() else "__init__"


def _allowed(unit: str, target: str, dotted: str) -> bool:
    if target == unit or target == "__init__":
        return True
    if unit == "sdk":
        return target in SDK_ALLOWED
    if target == "sdk":  # the harness never imports the SDK, what jobs import, but for its formats
        return dotted == SDK_FOR_HARNESS or dotted.startswith(SDK_FOR_HARNESS + ".")
    if unit in FOUNDATION:
        return target in FOUNDATION[unit]
    (_, mine), (kind, theirs) = _layer(unit), _layer(target)
    return kind == "foundation" or theirs < mine or (unit, target) in SIDEWAYS


def check_tree(pkg: Path) -> list[str]:
    """Every import of ``pkg`` (a live_code/ tree) that breaks a layer rule, as ``file:line: why``."""
    problems = []
    stdlib = sys.stdlib_module_names
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg)
        unit = _unit(rel)
        if unit not in FOUNDATION and unit not in LAYERS and unit != "sdk":
            problems.append(f"{rel}: {unit!r} is in no layer; add it to LAYERS or FOUNDATION")
            continue
        if rel.as_posix() in STDLIB_ONLY or rel.as_posix().startswith("sdk/formats/"):  # formats: the harness's too
            third_party: set[str] = set()
        elif unit == "sdk":
            third_party = SDK_THIRD_PARTY
        elif rel.as_posix() in REPORT_MODULES:
            third_party = REPORT_THIRD_PARTY
        else:
            third_party = HARNESS_THIRD_PARTY
        typing_too = third_party | TYPING_ONLY
        for line, dotted, checker_only in _imports(path):
            top = dotted.split(".")[0]
            if dotted == ".":
                continue
            if top == "live_code":
                target = _target(pkg, dotted)
                if rel.as_posix() in STDLIB_ONLY or not _allowed(unit, target, dotted):
                    problems.append(f"{rel}:{line}: {unit} must not import {dotted}")
            elif top not in stdlib and top != "__future__" and top not in (typing_too if checker_only else third_party):
                problems.append(f"{rel}:{line}: {unit} must not import third-party {top!r}")
    return problems


def test_the_tree_keeps_its_layers() -> None:
    assert check_tree(PKG) == []


def _fixture(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / "live_code"
    for unit in ("task", "source", "envs", "run", "commands", "sdk", "sdk/formats"):
        (pkg / unit).mkdir(parents=True, exist_ok=True)
        (pkg / unit / "__init__.py").write_text("")
    for name in ("errors", "contract", "util", "cli"):
        (pkg / f"{name}.py").write_text("")
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    return pkg


@pytest.mark.parametrize(
    ("rel", "text", "why"),
    [
        ("task/config.py", "from live_code.run import pipeline\n", "task must not import live_code.run.pipeline"),
        ("source/git.py", "from live_code.envs import builder\n", "source must not import live_code.envs.builder"),
        ("run/pipeline.py", "from live_code.commands import local\n", "run must not import live_code.commands"),
        ("commands/local.py", "import live_code.cli\n", "commands must not import live_code.cli"),
        ("errors.py", "from live_code import util\n", "errors must not import live_code.util"),
        ("sdk/_io.py", "from live_code.source import git\n", "sdk must not import live_code.source.git"),
        ("run/outputs.py", "from live_code.sdk import Box\n", "run must not import live_code.sdk"),
        (
            "commands/sample.py",
            "from live_code.sdk import _dataset\n",
            "commands must not import live_code.sdk._dataset",
        ),
        ("commands/report.py", "import live_code.sdk._tensorboard\n", "must not import live_code.sdk._tensorboard"),
        ("commands/datasets.py", "from live_code.sdk.formatsx import Box\n", "must not import live_code.sdk.formatsx"),
        ("sdk/_env.py", "import requests\n", "sdk must not import third-party 'requests'"),
        ("sdk/formats/images.py", "import yaml\n", "sdk must not import third-party 'yaml'"),
        ("run/_sitecustomize.py", "from live_code import contract\n", "run must not import live_code.contract"),
        ("commands/check.py", "import matplotlib\n", "commands must not import third-party 'matplotlib'"),
        ("util.py", "from typing_extensions import dataclass_transform\n", "third-party 'typing_extensions'"),
        ("plugins.py", "", "'plugins' is in no layer"),
    ],
)
def test_the_checker_fails_on_a_tree_that_breaks_a_rule(tmp_path: Path, rel: str, text: str, why: str) -> None:
    problems = check_tree(_fixture(tmp_path, {rel: text}))
    assert len(problems) == 1 and why in problems[0], problems


def test_the_checker_passes_imports_that_keep_the_rules(tmp_path: Path) -> None:
    ok = {
        "run/pipeline.py": "from live_code.envs import builder\nfrom live_code.task import config\nimport yaml\n",
        "envs/builder.py": "from live_code.source import mirrors\nfrom live_code import util, errors\n",
        "commands/report.py": "import matplotlib\nfrom live_code.commands import local\n",
        "sdk/_io.py": "from live_code import contract\nfrom . import _env\n",
        "util.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from typing_extensions import Self\n",
        "commands/datasets.py": "from live_code.sdk import formats\nfrom live_code.sdk.formats import Box\n",
        "commands/replay.py": "import live_code.sdk.formats.tfrecord\n",
        "commands/report_pictures.py": "import PIL\nfrom live_code.sdk.formats import read_records\n",
        "run/outputs.py": "from live_code.sdk.formats import image_size\n",
    }
    assert check_tree(_fixture(tmp_path, ok)) == []


def test_every_package_of_the_tree_ships_in_the_wheel() -> None:
    """pyproject.toml lists the packages by hand (the templates are mapped in as live_code._templates):
    a new subpackage left off the list is missing from the image's harness (an ImportError at run)."""
    import tomllib

    listed = set(tomllib.loads((PKG.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(PKG.parent).parent.parts) for p in PKG.rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
