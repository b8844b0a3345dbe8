"""live_code.envs.base: the base's fingerprint is kept in a cache folder and reused, with no run
of the base interpreter, until the base changes; installing or removing a package changes it.

The base is a real venv; packages go in and out with uv from a wheel the test writes. The base
interpreter is called through a script that logs each run, so a test counts the runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from live_code.envs import base as base_mod
from tests.helpers.envs import write_wheel

UV = os.path.join(sysconfig.get_path("scripts"), "uv")


class Base:
    def __init__(self, root: Path) -> None:
        self.venv, self.log = root / "venv", root / "runs"
        self.uv_env = {
            "PATH": os.environ["PATH"],
            "HOME": str(root),
            "UV_NO_CONFIG": "1",
            "UV_CACHE_DIR": str(root / "uvc"),
        }
        subprocess.run(
            [UV, "venv", "--python", sys.executable, str(self.venv)], env=self.uv_env, check=True, capture_output=True
        )
        self.python = self.venv / "bin" / "python-logged"
        self.python.write_text(f'#!/bin/sh\necho run >> "{self.log}"\nexec "{self.venv}/bin/python" "$@"\n')
        self.python.chmod(0o755)
        self.log.touch()
        self.settle()

    def runs(self) -> int:
        return len(self.log.read_text().splitlines())

    def uv(self, *args: str) -> None:
        subprocess.run(
            [UV, "pip", *args, "--python", str(self.venv / "bin" / "python")],
            env=self.uv_env,
            check=True,
            capture_output=True,
        )
        self.settle()

    @staticmethod
    def settle() -> None:
        """A base changed within half a second of a read is not cached (its stamp could be late)."""
        time.sleep(0.6)


@pytest.fixture
def base(tmp_path: Path) -> Base:
    return Base(tmp_path / "base")


def test_a_hit_runs_no_interpreter_and_a_change_of_the_base_misses(base: Base, tmp_path: Path) -> None:
    cache = tmp_path / "base-info"

    def fingerprint() -> base_mod.BaseInfo:
        return base_mod.base_fingerprint(base.python, cache_dir=cache)

    first = fingerprint()
    assert base.runs() == 1
    assert fingerprint() == first and base.runs() == 1  # a hit: the interpreter did not run
    (kept,) = cache.iterdir()
    stamp = json.loads(kept.read_text())["stamp"]

    wheel = write_wheel(tmp_path / "wheels", "tinypkg", "1.0")
    base.uv("install", "--no-index", str(wheel))
    installed = fingerprint()
    assert base.runs() == 2 and installed.versions.get("tinypkg") == "1.0"
    assert installed.fingerprint() != first.fingerprint()
    assert json.loads(kept.read_text())["stamp"] != stamp
    assert fingerprint() == installed and base.runs() == 2

    base.uv("uninstall", "tinypkg")
    removed = fingerprint()
    assert base.runs() == 3 and "tinypkg" not in removed.versions
    assert removed.fingerprint() == first.fingerprint()
    assert fingerprint() == removed and base.runs() == 3


def test_an_upgrade_in_place_misses(base: Base, tmp_path: Path) -> None:
    cache = tmp_path / "base-info"
    base.uv("install", "--no-index", str(write_wheel(tmp_path / "wheels", "tinypkg", "1.0")))
    assert base_mod.base_fingerprint(base.python, cache_dir=cache).versions["tinypkg"] == "1.0"
    base.uv("install", "--no-index", str(write_wheel(tmp_path / "wheels", "tinypkg", "2.0")))
    assert base_mod.base_fingerprint(base.python, cache_dir=cache).versions["tinypkg"] == "2.0"
    assert base.runs() == 2


def test_without_a_cache_folder_or_with_signatures_it_always_runs(base: Base, tmp_path: Path) -> None:
    base_mod.base_fingerprint(base.python)
    base_mod.base_fingerprint(base.python)
    assert base.runs() == 2
    cache = tmp_path / "base-info"
    base_mod.base_fingerprint(base.python, cache_dir=cache)
    base_mod.base_fingerprint(base.python, cache_dir=cache, signatures_for=["pip"])
    assert base.runs() == 4 and len(list(cache.iterdir())) == 1


def test_a_damaged_cache_file_is_a_miss(base: Base, tmp_path: Path) -> None:
    cache = tmp_path / "base-info"
    first = base_mod.base_fingerprint(base.python, cache_dir=cache)
    (kept,) = cache.iterdir()
    kept.write_text("{not json")
    assert base_mod.base_fingerprint(base.python, cache_dir=cache) == first
    assert base.runs() == 2
    assert base_mod.base_fingerprint(base.python, cache_dir=cache) == first and base.runs() == 2
