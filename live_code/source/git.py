"""Stateless git calls with a hardened environment and deadlines (the facade of the git modules).

Everything that reaches git from a task (the URL, a ref) is checked before git runs, and git
itself is locked down through its environment, never through user-controlled argv:

- ``urls``: the URL, tag, branch and commit-id checks (``normalise_url``, ``check_ref``, ...).
- ``gitrun``: ``hardened_env``, deadlines, retries, ``run_git`` and the small local calls.
- ``gitnet``: the network calls (``ls_remote``, ``fetch*``), retried for transient failures only.
- here: checking a commit out of a mirror into a working tree, submodules, commit metadata.

Callers import every name from this module; the others are its parts.

Every call is a plain git subprocess. GitPython was used to read a commit's tree and time, but
it only shells out to git itself (perf-baselines.md 1) after a 70 ms import on every cold start;
its ``Repo.clone_from`` also ignores ``kill_after_timeout`` (GitPython issue #892).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from live_code.errors import UnsafeSourceError
from live_code.source.gitnet import classify, fetch, fetch_all, fetch_commit, ls_remote
from live_code.source.gitrun import (
    DEFAULT_DEADLINE,
    DEFAULT_RETRY,
    LOW_SPEED_LIMIT,
    LOW_SPEED_TIME,
    Deadline,
    Remote,
    RetryPolicy,
    _local,
    commits_with_prefix,
    delete_ref,
    hardened_env,
    init_bare,
    is_complete,
    object_type,
    remote,
    resolve,
    run_git,
    update_ref,
)
from live_code.source.urls import (
    ALLOW_LOCAL_ENV,
    DEFAULT_SCHEMES,
    TOKEN_ENV,
    TOKEN_HOSTS_ENV,
    TOKEN_USERNAME,
    NormalisedUrl,
    allow_local_from_env,
    check_ref,
    check_sha,
    is_hex,
    normalise_url,
    token_from_env,
)

__all__ = [
    "ALLOW_LOCAL_ENV",
    "DEFAULT_DEADLINE",
    "DEFAULT_RETRY",
    "DEFAULT_SCHEMES",
    "LOW_SPEED_LIMIT",
    "LOW_SPEED_TIME",
    "TOKEN_ENV",
    "TOKEN_HOSTS_ENV",
    "TOKEN_USERNAME",
    "CommitInfo",
    "Deadline",
    "NormalisedUrl",
    "Remote",
    "RetryPolicy",
    "Submodule",
    "allow_local_from_env",
    "check_ref",
    "check_sha",
    "classify",
    "commits_with_prefix",
    "delete_ref",
    "fetch",
    "fetch_all",
    "fetch_commit",
    "hardened_env",
    "init_bare",
    "is_complete",
    "is_hex",
    "ls_remote",
    "materialise",
    "normalise_url",
    "object_type",
    "read_commit",
    "remote",
    "resolve",
    "resolve_submodule_url",
    "run_git",
    "submodules",
    "token_from_env",
    "update_ref",
]


def materialise(git_dir: Path, sha: str, dest: Path, *, tag: str | None = None) -> CommitInfo:
    """Make ``dest`` (empty) a checkout of commit ``sha``, which the bare ``git_dir`` holds whole,
    and return the commit's tree id and time (:func:`read_commit`).

    ``dest/.git`` is a repository of its own holding just that commit (shallow, HEAD detached on
    it, the tag if one was pinned, no remote, no credential), so user code and build tools can
    run ``git`` there while nothing in ``dest`` points into, or can write to, ``git_dir``.

    The commit's objects go in as one pack that ``git pack-objects`` writes straight into
    ``dest/.git``: five git processes and no transport, where a depth-1 fetch from the mirror and
    a read of the commit ran nine (upload-pack, pack-objects, index-pack and the connectivity
    check among them). pack-objects runs in ``dest/.git`` and reads the mirror's objects as an
    alternate given only in its environment, so its temporary files are made on ``dest``'s
    filesystem (the cache and the run's folder may be on two) and no alternate is recorded.
    """
    tag_object = resolve(git_dir, f"refs/tags/{tag}") if tag else None
    if tag_object and resolve(git_dir, f"{tag_object}^{{commit}}") != sha:
        tag_object = None  # the commit came in for another pin: the tag is a decoration we can do without
    info, parents = read_commit(git_dir, sha)  # the object's own parents: a shallow mirror hides them
    _local(["init", "--quiet", "--template=", str(dest)])
    # the commit, then every tree and blob of it, each with its path (pack-objects' delta hint)
    _, listed, _ = _local(["--git-dir", str(git_dir), "rev-list", "--objects", "--no-walk", sha, "--"])
    wanted = listed + (f"{tag_object}\n" if tag_object else "")
    pack = dest / ".git" / "objects" / "pack" / "pack"
    env = {**hardened_env(protocols=()), "GIT_ALTERNATE_OBJECT_DIRECTORIES": _c_quoted(git_dir.absolute() / "objects")}
    _local(["--git-dir", str(dest / ".git"), "pack-objects", "--quiet", str(pack)], env, stdin=wanted.encode())
    if parents:  # as a depth-1 fetch leaves it: git knows the parents are missing
        (dest / ".git" / "shallow").write_text(f"{sha}\n")
    if tag and tag_object:
        update_ref(dest / ".git", f"refs/tags/{tag}", tag_object)
    _local(["checkout", "--quiet", "--detach", sha, "--"], cwd=dest)
    head = _detached_head(dest / ".git") or resolve(dest / ".git", "HEAD")
    if head != sha:
        raise AssertionError(f"BUG: checkout of {sha} in {dest} has HEAD {head}")
    return info


def _c_quoted(path: Path) -> str:
    """``path`` as one entry of ``GIT_ALTERNATE_OBJECT_DIRECTORIES``, whose entries a ``:``
    separates: in double quotes, C-style (git's ``unquote_c_style``), so any byte may appear."""
    raw = os.fsencode(path)
    body = "".join("\\" + chr(b) if b in b'"\\' else chr(b) if 0x20 <= b < 0x7F else f"\\{b:03o}" for b in raw)
    return f'"{body}"'


def _detached_head(git_dir: Path) -> str | None:
    """The commit id a detached ``HEAD`` file holds, read without git (None if it holds else)."""
    try:
        text = (git_dir / "HEAD").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) in (40, 64) and is_hex(text) else None


class Submodule(NamedTuple):
    path: str
    #: as .gitmodules gives it (may be relative to the parent's URL)
    url: str
    #: the commit the parent's tree records for it (the gitlink)
    sha: str


def submodules(dest: Path) -> list[Submodule]:
    """The submodules of the checkout ``dest`` (from its .gitmodules and its tree's gitlinks).

    Paths must stay inside the checkout; URLs are the caller's to check like any task URL.
    """
    if not (dest / ".gitmodules").is_file():
        return []
    rc, out, _ = _local(
        ["config", "--file", ".gitmodules", "--null", "--get-regexp", r"^submodule\..*\.(path|url)$"],
        cwd=dest,
        check=False,
    )
    entries: dict[str, dict[str, str]] = {}
    for item in out.split("\0"):
        key, _, value = item.partition("\n")
        if key.count(".") >= 2:
            name, field = key[len("submodule.") :].rsplit(".", 1)
            entries.setdefault(name, {})[field] = value
    found = []
    for name, fields in sorted(entries.items()):
        path, url = fields.get("path", ""), fields.get("url", "")
        if not path or not url:
            continue
        parts = Path(path).parts
        if os.path.isabs(path) or ".." in parts or path.startswith("-") or not parts:
            raise UnsafeSourceError(
                f"submodule {name!r} has the path {path!r}, which leaves the checkout",
                value=path,
                hint="fix .gitmodules",
            )
        _, tree, _ = _local(["ls-tree", "-z", "HEAD", "--", path], cwd=dest)
        meta, _, _ = tree.partition("\t")
        fields_ = meta.split()
        if len(fields_) == 3 and fields_[0] == "160000" and fields_[1] == "commit":
            found.append(Submodule(path, url, fields_[2]))
    return found


def resolve_submodule_url(parent: str, url: str) -> str:
    """A submodule URL relative to its parent's (``../lib.git``) made absolute, as git does."""
    if not url.startswith(("./", "../")):
        return url
    base = parent.rstrip("/")
    for part in url.split("/"):
        if part == "..":
            base = base.rsplit("/", 1)[0] if "/" in base.split("://", 1)[-1] else base
        elif part not in (".", ""):
            base = f"{base}/{part}"
    return base


class CommitInfo(NamedTuple):
    tree: str
    time: str  # ISO 8601, UTC


def read_commit(git_dir: Path, sha: str) -> tuple[CommitInfo, list[str]]:
    """Tree id, time and parents of ``sha`` (``git cat-file commit``: the header's ``tree`` and
    ``parent`` lines, and the seconds since the epoch that end its ``committer`` line before the
    zone offset)."""
    import datetime

    _, out, _ = _local(["--git-dir", str(git_dir), "cat-file", "commit", "--end-of-options", sha])
    header = out.split("\n\n", 1)[0].splitlines()
    tree = next(line[5:] for line in header if line.startswith("tree "))
    parents = [line[7:] for line in header if line.startswith("parent ")]
    committer = next(line for line in header if line.startswith("committer "))
    seconds = int(committer.rsplit(" ", 2)[1])
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return CommitInfo(tree, stamp.isoformat().replace("+00:00", "Z")), parents
