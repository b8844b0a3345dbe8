"""live-code.yaml's ``no_build_isolation`` (issue 21): a requirement whose build must import the base's
frameworks (detectron2's setup.py imports torch and compiles against it) is built by the installer
without build isolation, seeing the job env and so the base. Real builds by uv (and pip, the fallback)
of ``tests/resources/toyext``, whose in-tree backend records whether its build could import torch,
over test_envs.py's fake base (a venv with a fake torch 2.13.0), offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from live_code.envs import builder as envs
from live_code.errors import RequirementError
from live_code.source import store as store_mod
from tests.helpers.envs import REAL_UV, TOYEXT, job_python, offline, write_wheel


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    shutil.copytree(TOYEXT, path / "toyext")
    (path / "requirements.txt").write_text("toyext @ file:toyext\n")
    return path


def _built(
    repo: Path,
    base_python: str,
    wheelhouse: Path,
    installer_cache: Path,
    installer: str = "uv",
    **kw: object,
) -> envs.EnvResult:
    spec = envs.prepare_env(
        repo, base_python=base_python, index=offline(wheelhouse), installer=envs.find_installer(installer), **kw
    )
    return envs.ensure_env(store_mod.Store(), spec, installer_cache=installer_cache)


def test_a_requirement_is_built_in_isolation_by_default(
    repo: Path,
    base_python: str,
    wheelhouse: Path,
    installer_cache: Path,
) -> None:
    result = _built(repo, base_python, wheelhouse, installer_cache)
    assert job_python(result.path, "import toyext; print(toyext.BUILT_SEEING_TORCH)") == "False"
    assert result.provenance["no_build_isolation"] == []


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_no_build_isolation_builds_against_the_job_env_and_its_base(
    repo: Path,
    base_python: str,
    wheelhouse: Path,
    installer_cache: Path,
    installer: str,
) -> None:
    result = _built(repo, base_python, wheelhouse, installer_cache, installer, no_build_isolation=("ToyExt",))
    assert job_python(result.path, "import toyext; print(toyext.BUILT_SEEING_TORCH)") == "True"
    assert result.provenance["no_build_isolation"] == ["toyext"]
    assert result.provenance["added"] == ["toyext==1.0"]  # and torch stays the base's, never installed


def test_no_build_isolation_is_part_of_the_env_key(repo: Path, base_python: str, wheelhouse: Path) -> None:
    plain = envs.prepare_env(repo, base_python=base_python, index=offline(wheelhouse))
    against = envs.prepare_env(repo, base_python=base_python, index=offline(wheelhouse), no_build_isolation=("toyext",))
    assert plain.key != against.key and against.no_build_isolation == ("toyext",)


def test_no_build_isolation_must_name_a_requirement_line(
    repo: Path,
    base_python: str,
    wheelhouse: Path,
) -> None:
    with pytest.raises(RequirementError, match="no_build_isolation names 'detectron2'") as err:
        envs.prepare_env(repo, base_python=base_python, index=offline(wheelhouse), no_build_isolation=("detectron2",))
    assert "requirements.txt" in err.value.message and err.value.hint


def test_an_sdist_resolved_in_isolation_gets_a_real_setuptools_when_the_base_has_one(
    tmp_path: Path,
    installer_cache: Path,
) -> None:
    """The base's distributions are offered to uv's resolver as metadata-only stubs; the one of
    setuptools must not reach the isolated environment where an sdist's metadata is built (the
    detectron2 template's fvcore and antlr4 are sdists, and torch images carry setuptools)."""
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "setuptools", "999.0")  # the same version in the base and the wheelhouse
    base = tmp_path / "base"
    env = {"PATH": os.environ["PATH"], "UV_NO_CONFIG": "1", "HOME": str(tmp_path)}
    subprocess.run([REAL_UV, "venv", "--python", sys.executable, str(base)], capture_output=True, check=True, env=env)
    install = [REAL_UV, "pip", "install", "--python", str(base / "bin" / "python"), "--no-index"]
    subprocess.run(
        [*install, "--find-links", str(wheels), "setuptools==999.0"], capture_output=True, check=True, env=env
    )
    repo = tmp_path / "repo"
    shutil.copytree(TOYEXT, repo / "toyext")
    pyproject = repo / "toyext" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("requires = []", 'requires = ["setuptools"]'))
    backend = repo / "toyext" / "backend.py"
    backend.write_text(
        backend.read_text().replace(
            "import zipfile\n",
            "import zipfile\n\nimport setuptools  # noqa: F401 (the import is the test: setuptools must be found)\n",
        )
    )
    (repo / "requirements.txt").write_text("toyext @ file:toyext\n")
    spec = envs.prepare_env(
        repo, base_python=str(base / "bin" / "python"), index=offline(wheels), installer=envs.find_installer("uv")
    )
    result = envs.ensure_env(store_mod.Store(), spec, installer_cache=installer_cache)
    assert result.provenance["added"] == ["toyext==1.0"]
