from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

# Git in tests: fixed identity and dates, no user/system config, local protocols only.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "live-code tests",
    "GIT_AUTHOR_EMAIL": "tests@live-code.invalid",
    "GIT_COMMITTER_NAME": "live-code tests",
    "GIT_COMMITTER_EMAIL": "tests@live-code.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the real cache or home: each gets its own LIVE_CODE_CACHE."""
    monkeypatch.setenv("LIVE_CODE_CACHE", str(tmp_path_factory.mktemp("cache")))
    for k, v in _GIT_ENV.items():
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


def git(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    full_env = {**os.environ, **_GIT_ENV, **(env or {})}
    return subprocess.run(
        ("git", *args),
        cwd=cwd,
        env=full_env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


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
