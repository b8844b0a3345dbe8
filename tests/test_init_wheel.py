"""``live-code init`` from the wheel (issue 23, acceptance 7): the templates are package data. The
wheel is built from this tree, installed in a fresh venv without the checkout anywhere on its path,
and ``init`` runs there for every template."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from live_code.commands import init as templates
from tests.helpers.repos import git

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("wheel")
    # a clean copy: setuptools' build/ of an earlier build would bring removed files along
    src = tmp / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv*", "build", "*.egg-info", ".git", "__pycache__", ".demo", "live-code-work", "dist"
        ),
    )
    build = subprocess.run(
        (
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp / "dist"),
            str(src),
        ),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp,
    )
    if build.returncode != 0 and "setuptools" in build.stderr and "No module named" in build.stderr:
        pytest.skip(f"building the wheel needs setuptools>=77 in the test venv (the dev extra): {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp / "dist").glob("live_code-*.whl"))
    venv = tmp / "venv"
    subprocess.run((sys.executable, "-m", "venv", str(venv)), check=True, timeout=300)
    python = venv / "bin" / "python"
    # the wheel alone: its dependencies come from the test venv's site-packages on PYTHONPATH (no .pth
    # files read there, so the editable install of this checkout is not seen)
    subprocess.run(
        (str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)),
        check=True,
        timeout=300,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != templates.TEMPLATES_ENV}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    where = subprocess.check_output(
        (str(python), "-c", "import live_code; print(live_code.__file__)"), env=env, cwd=tmp, text=True
    ).strip()
    assert where.startswith(str(venv)), f"live_code must come from the wheel, not {where}"
    return python, env


@pytest.mark.slow
@pytest.mark.parametrize("template", sorted(p.name for p in (ROOT / "remote_templates").iterdir() if p.is_dir()))
def test_init_from_the_installed_wheel(
    template: str, wheel_python: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    python, env = wheel_python
    proc = subprocess.run(
        (str(python), "-m", "live_code", "init", "--template", template, "mydet"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    repo = tmp_path / "mydet"
    tracked = set(git("ls-files", cwd=repo).splitlines())
    source = {
        p.relative_to(ROOT / "remote_templates" / template).as_posix()
        for p in (ROOT / "remote_templates" / template).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    }
    assert tracked == source, "every file of the template, dotfiles included"
    listed = subprocess.run(
        (str(python), "-m", "live_code", "init", "--list"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert template in listed.stdout and "_templates" in listed.stdout
