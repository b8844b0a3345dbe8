"""Shared machinery of the adversarial suite (issue 12): run the real ``live-code run`` in a
subprocess against a hostile input, then check the invariants every run must keep.

``Harness`` is one task (mining + infer, 4 images) with its own work root and the per-test cache
of tests/conftest.py. Every run gets canary secrets in places a careless harness would leak them:
``LIVE_CODE_GIT_TOKEN`` and ``AWS_SECRET_ACCESS_KEY`` in the harness's environment, and (tests
against the https server) a token in the URL. After a run, ``expect_failure`` /
``expect_success`` check:

- the exit code of the error class (never 70, the crash code) and no traceback;
- monitor.txt: state 4 with the class's YMIR code and a message naming the problem (or state 2
  at 100% after a success);
- no process left whose argv or cwd is under the task, the work root or the cache;
- no ``live-code-run-*`` dir left in the work root, nothing left in the harness's TMPDIR;
- no canary in stdout, stderr, any file under /out (provenance, monitor, the job's own dump of
  its environment), the work root or the cache (every byte), nor in the job's environment;
- the cache intact: every mirror passes ``git fsck`` and its ``refs/live-code/<sha>`` name their
  commits; every env and mirror has its completion marker and nothing half-built is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.adversarial import Harness
from tests.helpers.envs import write_wheel

# the machinery itself (Harness, the canaries, the invariant checks) is in tests/helpers/adversarial.py


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# -- https -----------------------------------------------------------------------------------------


@pytest.fixture
def https(harness: Harness, tls_cert: tuple[Path, Path]) -> tuple[Path, Path]:
    """The harness trusts the test certificate (git reads GIT_SSL_CAINFO); local repos stay off."""
    harness.env["GIT_SSL_CAINFO"] = str(tls_cert[0])
    harness.allow_local = False
    return tls_cert


# -- a fake framework base (a venv with a protected "torch") ---------------------------------------


@pytest.fixture(scope="session")
def fake_torch_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv holding a metadata-only ``torch`` 2.13.0: a base whose framework is protected."""
    uv = os.path.join(os.path.dirname(sys.executable), "uv")
    base = tmp_path_factory.mktemp("torchbase")
    wheels = base / "wheels"
    write_wheel(wheels, "torch", "2.13.0")
    env = {"PATH": os.environ["PATH"], "HOME": str(base), "UV_NO_CONFIG": "1"}
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(base / "venv")], env=env, check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(base / "venv" / "bin" / "python"),
            "--no-index",
            "--find-links",
            str(wheels),
            "torch==2.13.0",
        ],
        env=env,
        check=True,
    )
    return str(base / "venv" / "bin" / "python")
