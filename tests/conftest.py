"""Shared fixtures and markers; builders and constants are in tests/helpers/."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from live_code.run import sandbox
from tests.helpers.repos import GIT_ENV, git, write_tree

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


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the real cache or home: each gets its own LIVE_CODE_CACHE."""
    monkeypatch.setenv("LIVE_CODE_CACHE", str(tmp_path_factory.mktemp("cache")))
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
