"""``live-code init`` (issue 7): a template becomes a git repository with its first commit, ready
to push; a template that does not exist (yet) and a used directory are clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from live_code.commands import init as templates
from live_code.errors import ConfigError
from tests.helpers.repos import git

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path, drop: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k not in drop}
    full.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        (sys.executable, "-m", "live_code", *args), cwd=cwd, env=full, capture_output=True, text=True, timeout=60
    )


def test_init_makes_a_committed_repo_of_the_template(tmp_path: Path) -> None:
    proc = run_cli("init", "--template", "minimal", "mydet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    repo = tmp_path / "mydet"
    assert git("status", "--porcelain", cwd=repo) == ""
    assert git("rev-list", "--count", "HEAD", cwd=repo) == "1"
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo) == "main"
    tracked = set(git("ls-files", cwd=repo).splitlines())
    source = {
        p.relative_to(ROOT / "remote_templates" / "minimal").as_posix()
        for p in (ROOT / "remote_templates" / "minimal").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert tracked == source
    assert "git push -u origin main" in proc.stdout and "live-code check" in proc.stdout


def test_init_without_a_git_identity_still_commits(tmp_path: Path) -> None:
    drop = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL")
    proc = run_cli("init", "legacy-repo", "--template", "legacy", cwd=tmp_path, drop=drop, HOME=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert git("log", "-1", "--format=%ae", cwd=tmp_path / "legacy-repo") == "init@live-code.invalid"


def test_a_missing_template_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no template 'nosuch'") as e:
        templates.init("nosuch", tmp_path / "x")
    assert "minimal" in (e.value.hint or "")
    assert not (tmp_path / "x").exists()


def test_a_used_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not an empty directory"):
        templates.init("minimal", tmp_path / "x")
    assert os.listdir(tmp_path / "x") == ["mine.txt"]


def test_list_and_the_templates_env(tmp_path: Path) -> None:
    proc = run_cli("init", "--list", cwd=tmp_path)
    assert proc.returncode == 0 and "minimal" in proc.stdout and "legacy" in proc.stdout
    (tmp_path / "tpl" / "tiny").mkdir(parents=True)
    (tmp_path / "tpl" / "tiny" / "start.py").write_text("print('hi')\n")
    proc = run_cli("init", "--template", "tiny", "t", cwd=tmp_path, LIVE_CODE_TEMPLATES=str(tmp_path / "tpl"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t" / "start.py").is_file()
    proc = run_cli("init", "--template", "minimal", "m", cwd=tmp_path, LIVE_CODE_TEMPLATES=str(tmp_path / "tpl"))
    assert proc.returncode == ConfigError.exit_code and "choose one of: tiny" in proc.stderr
