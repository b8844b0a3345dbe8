"""Module boundaries of design.md, held by parsing every import in the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "live_code"

# design.md "Module boundaries": which live_code modules each module may import. Modules not in the
# design table (util, _requirements, _base, _installer, sample, __main__) are listed with the rule they follow.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "contract": set(),
    "util": {"errors"},
    "_yaml": {"errors"},
    "config": {"errors", "contract", "_yaml", "legacy"},
    # issue 18: what the legacy layout implies (SDK choice, packages, wheelhouse)
    "legacy": {"errors"},
    "git": {"errors", "util"},
    "store": {"git", "errors", "util", "mirrors"},
    # issue 21: the operator's git mirrors, pure URL rules used by the source cache and the installer
    "mirrors": {"errors", "util"},
    "_requirements": {"errors", "util"},
    "_installer": {"errors", "util"},
    "_base": {"errors", "util", "_installer"},
    "envs": {"errors", "contract", "util", "_requirements", "_base", "_installer", "legacy", "mirrors"},
    "supervisor": {"errors", "util"},
    "sandbox": {"contract"},
    "fallback": {"contract", "errors", "util"},
    # copied into a job run without a sandbox as its sitecustomize: the standard library only
    "_sitecustomize": set(),
    "outputs": {"contract", "errors"},
    "sample": {"contract", "errors", "util"},
    "sdk": {"contract"},
    "pipeline": {
        "errors",
        "contract",
        "config",
        "git",
        "store",
        "envs",
        "supervisor",
        "outputs",
        "util",
        "_requirements",
        "manifest",
        "sandbox",
        "fallback",
        "_base",
    },
    "manifest": {"errors", "contract", "config"},
    "cli": {
        "pipeline",
        "config",
        "store",
        "errors",
        "contract",
        "util",
        "sample",
        "git",
        "envs",
        "outputs",
        "local",
        "check",
        "replay",
        "report",
        "templates",
        "progress",
    },
    # issue 7, for researchers: local runs, check, replay, report, init; never the sdk
    "datasets": {"config", "contract", "errors", "sample"},
    # issue 23: local runs the supervisor with the job's output into the task's job.log
    "local": {
        "pipeline",
        "config",
        "contract",
        "errors",
        "datasets",
        "git",
        "store",
        "util",
        "envs",
        "manifest",
        "supervisor",
    },
    "check": {"config", "contract", "envs", "errors", "legacy", "local", "manifest", "store", "util"},
    "replay": {"config", "contract", "errors", "local", "pipeline", "report", "store", "util"},
    # issue 23: the report's libraries (the report extra) are imported by report alone
    "report": {"contract", "errors", "pipeline", "util"},
    "templates": {"errors", "util"},
    "progress": set(),
    "__main__": {"cli"},
    "__init__": set(),
}
# The SDK runs inside the job's env: only the standard library, PyYAML and live_code.contract.
SDK_THIRD_PARTY = {"yaml"}
HARNESS_THIRD_PARTY = {"yaml", "git", "filelock", "requests", "packaging", "uv"}
REPORT_THIRD_PARTY = HARNESS_THIRD_PARTY | {"PIL", "matplotlib", "tensorboard"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every absolute import in a file, including ones inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside a subpackage (sdk): resolve to live_code.sdk
                found.append((node.lineno, "live_code.sdk"))
            elif node.module == "live_code":
                found += [(node.lineno, f"live_code.{a.name}") for a in node.names]
            elif node.module:
                found.append((node.lineno, node.module))
    return found


def _files() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PKG)))
def test_module_imports_follow_design_boundaries(path: Path) -> None:
    name = _module_name(path)
    assert name in ALLOWED, f"{path.relative_to(PKG)}: module {name!r} is not in the boundary table; add it"
    stdlib = __import__("sys").stdlib_module_names
    third_party = SDK_THIRD_PARTY if name == "sdk" else REPORT_THIRD_PARTY if name == "report" else HARNESS_THIRD_PARTY
    problems = []
    for line, dotted in _imports(path):
        top = dotted.split(".")[0]
        if top == "live_code":
            parts = dotted.split(".")
            target = parts[1] if len(parts) > 1 else "__init__"
            if not ((PKG / f"{target}.py").exists() or (PKG / target).is_dir()):
                target = "__init__"  # a name from the package itself, e.g. __version__
            if target == name or (target == "__init__" and name != "__init__"):
                continue  # the package itself (__version__) and a subpackage's own modules
            if target not in ALLOWED[name]:
                problems.append(f"line {line}: {name} must not import live_code.{target}")
        elif top not in stdlib and top != "__future__" and top not in third_party:
            problems.append(f"line {line}: {name} must not import third-party {top!r}")
    assert not problems, f"{path.relative_to(PKG)}:\n" + "\n".join(problems)


def test_harness_never_imports_the_sdk() -> None:
    offenders = [
        f"{p.relative_to(PKG)}:{line}"
        for p in _files()
        if _module_name(p) != "sdk"
        for line, dotted in _imports(p)
        if dotted == "live_code.sdk" or dotted.startswith("live_code.sdk.")
    ]
    assert offenders == []


def test_boundary_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The checker itself must be able to fail: an sdk module importing live_code.git is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from live_code import git\nimport requests\n")
    assert (1, "live_code.git") in _imports(bad)
    assert "git" not in ALLOWED["sdk"] and "requests" not in SDK_THIRD_PARTY
