"""Job environments in tests: tiny wheels written by hand, a session wheelhouse of them, a "base"
venv holding a fake ``torch`` 2.13.0 and ``nvidia-cublas-cu12``, and the real uv behind a logging
wrapper. The fixtures are a pytest plugin (tests/conftest.py registers it)."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from live_code.envs import builder as envs

REAL_UV = os.path.join(sysconfig.get_path("scripts"), "uv")
#: a C extension's sdist (tests/resources/toyext): builds need a compiler and setuptools
TOYEXT = Path(__file__).resolve().parents[1] / "resources" / "toyext"


def write_wheel(
    folder: Path, name: str, version: str, requires: tuple[str, ...] = (), files: Mapping[str, str] | None = None
) -> Path:
    """A minimal valid wheel: the package's files plus METADATA, WHEEL and RECORD."""
    dist = name.replace("-", "_")
    contents = dict(files if files is not None else {f"{dist}/__init__.py": f"__version__ = {version!r}\n"})
    info = f"{dist}-{version}.dist-info"
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    contents[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    contents[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in contents.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wh = tmp_path_factory.mktemp("wheelhouse")
    write_wheel(wh, "torch", "2.13.0")
    write_wheel(wh, "torch", "2.14.0")
    write_wheel(wh, "nvidia-cublas-cu12", "12.4.5.8")
    write_wheel(wh, "nvidia-cublas-cu12", "12.1.0")
    write_wheel(wh, "needs-torch", "1.0", ("torch>=2", "nvidia-cublas-cu12"))
    write_wheel(wh, "needs-new-torch", "1.0", ("torch==2.14.0",))
    write_wheel(wh, "torchaudio", "2.13.0", ("torch==2.13.0",))
    write_wheel(wh, "tinydep", "1.0")
    write_wheel(wh, "tinyapp", "1.0", ("tinydep",))
    body = "".join(f"def f{j}(x):\n    return x + {j}\n" for j in range(30))
    # slow to install (about 2.5 s here), so a deadline or a kill lands mid-install
    slow = {f"slowpkg/m{i}.py": body for i in range(40000)}
    write_wheel(wh, "slowpkg", "1.0", files={**slow, "slowpkg/__init__.py": ""})
    write_wheel(
        wh, "manymods", "1.0", files={**{f"manymods/m{i}.py": body for i in range(3000)}, "manymods/__init__.py": ""}
    )
    return wh


@pytest.fixture(scope="session")
def base_python(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> str:
    """A venv (like the harness's own) holding the fake frameworks: the job's base."""
    base = tmp_path_factory.mktemp("base") / "venv"
    env = {"PATH": os.environ["PATH"], "HOME": str(base.parent), "UV_NO_CONFIG": "1"}
    subprocess.run([REAL_UV, "venv", "--python", sys.executable, str(base)], env=env, check=True, capture_output=True)
    install = [REAL_UV, "pip", "install", "--python", str(base / "bin" / "python"), "--no-index"]
    packages = ["torch==2.13.0", "nvidia-cublas-cu12==12.4.5.8"]
    subprocess.run([*install, "--find-links", str(wheelhouse), *packages], env=env, check=True, capture_output=True)
    return str(base / "bin" / "python")


@pytest.fixture(scope="session")
def installer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("installer-cache")


@pytest.fixture
def uv_log(tmp_path: Path) -> Path:
    return tmp_path / "uv-calls"


@pytest.fixture
def uv_wrapper(tmp_path: Path, uv_log: Path) -> envs.Installer:
    """The real uv behind a script that logs each call's argv and environment (one file per call)."""
    uv_log.mkdir()
    script = tmp_path / "uv"
    script.write_text(
        f'#!/bin/sh\nf="{uv_log}/$$"\nprintf "%s\\n" "$*" > "$f.argv"\nenv > "$f.env"\nexec "{REAL_UV}" "$@"\n'
    )
    script.chmod(0o755)
    return envs.find_installer("uv", uv=str(script))


def offline(wheelhouse: Path) -> envs.IndexSettings:
    return envs.IndexSettings(find_links=(str(wheelhouse),), offline=True)


def job_python(env: Path, code: str) -> str:
    return subprocess.run(
        [str(env / "bin" / "python"), "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout.strip()
