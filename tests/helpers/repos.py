"""Git repositories and file trees for tests: git with a fixed identity and no user config."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

# Git in tests: fixed identity and dates, no user/system config, local protocols only.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "live-code tests",
    "GIT_AUTHOR_EMAIL": "tests@live-code.invalid",
    "GIT_COMMITTER_NAME": "live-code tests",
    "GIT_COMMITTER_EMAIL": "tests@live-code.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}


def git(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    full_env = {**os.environ, **GIT_ENV, **(env or {})}
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
