"""The ``--repo`` argument of ``local``, ``check`` and ``prefetch``: ``PATH_OR_URL@PIN`` split and
resolved into config.yaml's keys, and a local folder without a pin committed into a snapshot.

A snapshot holds the folder's files as they are now (git's ignore rules applied when it lies in a
git work tree), committed with a fixed author and date, so the same files give the same commit;
:func:`folder_state` records what an audit needs of the folder. Local paths are allowed: the
operator is the user here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, NamedTuple

from live_code import util
from live_code.errors import ConfigError, SourceError
from live_code.source import git
from live_code.source.store import Pin

log = logging.getLogger(__name__)

_PIN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+/-]*$")

#: a fixed identity and date: a snapshot's commit id depends on its files only
_SNAPSHOT_ENV = {
    "GIT_AUTHOR_NAME": "live-code snapshot",
    "GIT_AUTHOR_EMAIL": "snapshot@live-code.invalid",
    "GIT_COMMITTER_NAME": "live-code snapshot",
    "GIT_COMMITTER_EMAIL": "snapshot@live-code.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}

_GIT_SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false")


class RepoSpec(NamedTuple):
    location: str
    pin: str | None


def parse_repo(text: str) -> RepoSpec:
    """Split ``PATH_OR_URL@PIN`` on the last ``@`` after the host part (``git@host:org/r.git@v1``,
    ``https://tok@host/r.git@abc123``); an existing path is taken whole."""
    text = text.strip()
    if not text:
        raise ConfigError("--repo is empty", hint="give PATH_OR_URL@PIN, e.g. https://host/org/repo.git@v1")
    if os.path.exists(text):
        return RepoSpec(text, None)
    if "://" in text:
        start = text.find("/", text.index("://") + 3)
        start = len(text) if start < 0 else start
    else:
        colon, slash = text.find(":"), text.find("/")
        start = colon if colon > 0 and (slash < 0 or colon < slash) else 0
    at = text.rfind("@")
    if at >= start and at > 0 and _PIN_RE.match(text[at + 1 :]):
        return RepoSpec(text[:at], text[at + 1 :])
    return RepoSpec(text, None)


class Source(NamedTuple):
    """What goes into config.yaml for the repository, and what the provenance adds. A credential
    in the URL is taken out of it: it reaches git as ``token``, never the task's files."""

    keys: dict[str, Any]
    pin: Pin
    record: dict[str, Any]
    token: str | None = None


def resolve_source(spec: RepoSpec, work: Path, *, allow_branch: bool = False) -> Source:
    """The config keys for ``spec``; a folder without pin is snapshotted into ``work/source``."""
    path = Path(spec.location).expanduser()
    local = path.exists()
    record: dict[str, Any] = {"repo": util.redact(spec.location) + (f"@{spec.pin}" if spec.pin else "")}
    if spec.pin is None:
        if not (local and path.is_dir()):
            raise ConfigError(
                f"--repo {util.redact(spec.location)} has no pin",
                value=util.redact(spec.location),
                hint="add @<tag or commit>, or give a local folder to run its files as they are",
            )
        sha, files = snapshot(path, work / "source", exclude=work)
        record.update(snapshot_of=str(path.resolve()), files=files, **folder_state(path))
        log.info("snapshot of %s (%d files, uncommitted changes included) is commit %s", path, files, sha[:12])
        return Source({"git_url": str(work / "source"), "git_commit": sha}, Pin("commit", sha), record)
    url, token = str(path.resolve()) if local else spec.location, None
    if not local:
        nurl = git.normalise_url(spec.location, allow_local=False)
        url, token = (nurl.url, nurl.secret) if nurl.secret else (url, None)
    pin = spec.pin
    if pin == "HEAD":
        if not local:
            raise ConfigError("@HEAD is for a local repository", hint="pin a tag or a commit of the remote repository")
        if not allow_branch:
            raise SourceError(
                "HEAD moves with every commit, like a branch",
                value="HEAD",
                hint="pin a tag or commit, or pass --allow-branch (recorded with its commit)",
            )
        _, out, _ = util.cmd_output(
            "git",
            *_GIT_SAFE,
            "-C",
            url,
            "rev-parse",
            "--verify",
            "HEAD^{commit}",
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            timeout=30,
        )
        sha = out.strip()
        record.update(pin="HEAD", commit=sha)
        return Source({"git_url": url, "git_commit": sha, "live_code_allow_branch": True}, Pin("commit", sha), record)
    if git.is_hex(pin) and len(pin) >= 7:
        return Source({"git_url": url, "git_commit": pin}, Pin("commit", pin), record, token)
    if local and _is_local_tag(url, pin):
        record["pin_kind"] = "tag"
        return Source({"git_url": url, "git_tag": pin}, Pin("tag", pin), record, token)
    keys: dict[str, Any] = {"git_url": url, "git_branch": pin}  # a tag or branch: _peek tells which
    if allow_branch:
        keys["live_code_allow_branch"] = True
    return Source(keys, Pin("legacy-ref", pin), record, token)


def _is_local_tag(repo: str, name: str) -> bool:
    rc, _, _ = util.cmd_output(
        "git",
        *_GIT_SAFE,
        "-C",
        repo,
        "rev-parse",
        "-q",
        "--verify",
        f"refs/tags/{name}",
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        timeout=30,
        check=False,
    )
    return rc == 0


def folder_state(folder: Path) -> dict[str, Any]:
    """What an audit needs of a snapshotted folder: its git HEAD, whether it has uncommitted
    changes (untracked files included, ignored ones not) and a hash of them; ``{"git": false}``
    outside a git work tree."""
    env = {**os.environ, **_SNAPSHOT_ENV}

    def out(*args: str) -> tuple[int, str]:
        rc, text, _ = util.cmd_output("git", *_GIT_SAFE, "-C", str(folder), *args, env=env, timeout=60, check=False)
        return rc, text

    rc, head = out("rev-parse", "--verify", "-q", "HEAD^{commit}")
    if rc != 0:
        rc, _ = out("rev-parse", "--is-inside-work-tree")
        return {"git": rc == 0, "head": None, "dirty": True}
    _, top = out("rev-parse", "--show-toplevel")
    here = ("--", ".", f":(exclude){WORK_ROOT_NAME}")  # earlier runs' task dirs are not a change
    _, status = out("status", "--porcelain=v1", "-z", "--untracked-files=all", *here)
    _, diff = out("diff", "HEAD", "--binary", *here)
    digest = hashlib.sha256(diff.encode() + status.encode())
    for entry in status.split("\0"):
        untracked = Path(top.strip()) / entry[3:]
        if entry.startswith("?? ") and untracked.is_file():  # its bytes are part of the change
            digest.update(untracked.read_bytes())
    dirty = bool(status.strip("\0"))
    return {"git": True, "head": head.strip(), "dirty": dirty, "diff_sha256": digest.hexdigest() if dirty else None}


#: the default work root of ``live-code local``: never part of a snapshot of the folder it lies in
WORK_ROOT_NAME = "live-code-work"


def snapshot(folder: Path, dest: Path, *, exclude: Path | None = None) -> tuple[str, int]:
    """Commit the files of ``folder`` into a new repository at ``dest``: (commit id, file count).
    ``exclude`` (the run's work dir), ``live-code-work/`` at the folder's root (earlier runs) and
    ``dest`` itself are left out."""
    folder = folder.resolve()
    skip = [p.resolve() for p in (exclude, dest, folder / WORK_ROOT_NAME) if p is not None]
    env = {**os.environ, **_SNAPSHOT_ENV}
    rc, out, _ = util.cmd_output(
        "git",
        *_GIT_SAFE,
        "-C",
        str(folder),
        "ls-files",
        "-z",
        "-co",
        "--exclude-standard",
        env=env,
        timeout=60,
        check=False,
    )
    if rc == 0:
        rels = sorted({r for r in out.split("\0") if r and (folder / r).is_file()})
    else:  # not inside a git work tree: every file but caches and version-control dirs
        rels = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__") and not d.startswith(".venv")]
            rels += [os.path.relpath(os.path.join(dirpath, f), folder) for f in filenames if not f.endswith(".pyc")]
    rels = [r for r in rels if not any(s == (folder / r) or s in (folder / r).parents for s in skip)]
    if not rels:
        raise ConfigError(f"{folder} holds no files to run", value=str(folder))
    dest.mkdir(parents=True)
    for rel in rels:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / rel, dest / rel, follow_symlinks=False)
    for args in (
        ("init", "-q", "-b", "main", "--template="),
        ("add", "-A"),
        ("commit", "-q", "--no-verify", "-m", "snapshot of a working folder (live-code local)"),
    ):
        util.cmd_output("git", *_GIT_SAFE, *args, cwd=dest, env=env, timeout=120)
    _, sha, _ = util.cmd_output("git", "rev-parse", "HEAD", cwd=dest, env=env, timeout=30)
    return sha.strip(), len(rels)
