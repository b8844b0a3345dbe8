"""Shared fixtures and markers; builders and constants are in tests/helpers/."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from live_code.run import sandbox
from live_code.util import rmtree
from tests.helpers.gitserver import make_cert
from tests.helpers.repos import GIT_ENV, git, write_tree

# Tests send SIGINT to a harness they start, as Ctrl-C at a terminal does. A script that starts
# the suite in the background (``cmd &``) makes the shell ignore SIGINT in it, and an ignored
# signal stays ignored across exec, so each harness would ignore it too (as it should: it keeps
# an ignored SIGINT ignored). A Python handler here is reset to the default in every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# the job-environment fixtures (wheelhouse, base_python, ...): tests/helpers/envs.py
pytest_plugins = ["tests.helpers.envs"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_bwrap: runs jobs in the bubblewrap sandbox (read-only /in, writable /out); skipped, saying why, "
        "where bubblewrap is missing or cannot create namespaces",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_bwrap") is None:
        return
    reason = sandbox.unavailable_reason()  # probed once per process
    if reason is not None:
        pytest.skip(f"needs bubblewrap, the sandbox jobs run in (tests/test_fallback.py runs them without): {reason}")


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture(autouse=True)
def _isolated_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """No test writes to the real cache or home: each gets its own LIVE_CODE_CACHE.

    The cache of a test that ran and did not fail is removed when it ends, as pytest removes its ``tmp_path``
    (``tmp_path_retention_policy = "failed"`` in pyproject.toml): the suite's caches hold envs, about
    8 GB over a whole run, and CI runs on a machine whose disk earlier runs also fill. A failed test's
    cache is kept to be read."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("LIVE_CODE_CACHE", str(cache))
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    for k in (
        "LIVE_CODE_GIT_TOKEN",
        "LIVE_CODE_GIT_TOKEN_HOSTS",
        "LIVE_CODE_GIT_MIRRORS",
        "LIVE_CODE_ALLOW_LOCAL_REPOS",
        "PIP_INDEX_URL",
        "PIP_CONSTRAINT",
        "UV_CONSTRAINT",
    ):
        monkeypatch.delenv(k, raising=False)
    yield
    if request.node.stash.get(_FAILED, True) is False:  # no call report: its setup failed
        rmtree(cache)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """``make_repo({'start.py': '...'}, name='repo', tag='v1')`` -> a real git repo with one commit."""
    counter = iter(range(1000))

    def _make(files: Mapping[str, str | bytes], *, name: str | None = None, tag: str | None = None) -> Path:
        repo = tmp_path / (name or f"repo{next(counter)}")
        repo.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=repo)
        write_tree(repo, files)
        git("add", "-A", cwd=repo)
        git("commit", "-q", "-m", "initial", cwd=repo)
        if tag:
            git("tag", tag, cwd=repo)
        return repo

    return _make


@pytest.fixture(scope="module")
def shared_root() -> Iterator[Path]:
    """A folder every uid may enter (pytest's own temp folders are root's, 0700), for runs as another uid."""
    root = Path(tempfile.mkdtemp(prefix="live-code-images-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 (the local https git servers)."""
    cert = make_cert(tmp_path_factory.mktemp("tls"))
    if cert is None:
        pytest.skip("needs the openssl command to make a certificate for the local https git server")
    return cert
