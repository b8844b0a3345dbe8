"""Verified checkouts of a mirror's commits, copied into a run's working tree without running git.

    mirrors/<id>/live-code-checkouts/<name>/tree/      the commit's files and a .git of its own, as
                                                       ``git.materialise`` made them the first time
    mirrors/<id>/live-code-checkouts/<name>/meta.json  {"commit", "tree", "commit_time", "tag"}
    <name>: the commit id, or ``<sha>-<sha256 of the tag>[:16]`` for a checkout that carries a tag

The first run that checks a commit out does it with git (``materialise``), reads the commit's tree
id and time once (``commit_info``) and keeps a copy of the fresh checkout here. Later runs of the
same commit copy that folder, which costs no git process, and take the tree id and time from
``meta.json``. A kept checkout appears whole or not at all: it is built in a ``.tmp-*`` folder
beside it and renamed into place. It lives inside the mirror's entry, so it is counted, kept in
use and removed with the mirror (``Store.gc``), and the mirror is what proves the commit whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from live_code import util
from live_code.source import git
from live_code.source.localmirror import CHECKOUTS, KEEP

log = logging.getLogger("live_code.source.store")

#: a ``.tmp-*`` folder older than this was left by a killed run
_STALE_TMP = 3600.0


def check_out(mirror: Path, sha: str, tag: str | None, dest: Path) -> git.CommitInfo:
    """Make the empty folder ``dest`` a checkout of ``sha`` (a commit the mirror holds whole, with
    ``tag`` on it when given) and return the commit's tree id and time."""
    folder = mirror / CHECKOUTS / _name(sha, tag)
    info = _copy_kept(folder, sha, tag, dest)
    if info is not None:
        return info
    git.materialise(mirror, KEEP + sha, sha, dest, tag=tag)
    info = git.commit_info(mirror, sha)
    _keep(folder, dest, {"commit": sha, "tree": info.tree, "commit_time": info.time, "tag": tag})
    return info


def _name(sha: str, tag: str | None) -> str:
    return f"{sha}-{hashlib.sha256(tag.encode()).hexdigest()[:16]}" if tag else sha


def _copy_kept(folder: Path, sha: str, tag: str | None, dest: Path) -> git.CommitInfo | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("commit") != sha or meta.get("tag") != tag:
        return None
    tree, stamp = meta.get("tree"), meta.get("commit_time")
    if not (isinstance(tree, str) and git.is_hex(tree) and isinstance(stamp, str)):
        return None
    shutil.copytree(folder / "tree", dest, symlinks=True, dirs_exist_ok=True, copy_function=shutil.copy)
    return git.CommitInfo(tree, stamp)


def _keep(folder: Path, checkout: Path, meta: dict[str, str | None]) -> None:
    """Keep a copy of the fresh ``checkout`` as ``folder`` (best effort: a run does not need it)."""
    tmp: Path | None = None
    try:
        folder.parent.mkdir(exist_ok=True)
        _remove_stale(folder.parent)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        shutil.copytree(checkout, tmp / "tree", symlinks=True, copy_function=shutil.copy)
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        os.rename(tmp, folder)  # refused when another run kept the same checkout first
        tmp = None
    except OSError as e:
        log.debug("not keeping the checkout of %s: %s", meta["commit"], e)
    finally:
        if tmp is not None:
            util.rmtree(tmp)


def _remove_stale(parent: Path) -> None:
    now = time.time()
    for child in parent.iterdir():
        if child.name.startswith(".tmp-"):
            with contextlib.suppress(OSError):
                if now - child.stat().st_mtime > _STALE_TMP:
                    util.rmtree(child)
