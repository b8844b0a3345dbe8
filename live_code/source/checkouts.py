"""Verified checkouts of a mirror's commits, copied into a run's working tree without running git.

    mirrors/<id>/live-code-checkouts/<name>/tree/      the commit's files and a .git of its own, as
                                                       ``git.materialise`` made them the first time
    mirrors/<id>/live-code-checkouts/<name>/meta.json  {"commit", "tree", "commit_time", "tag"}
    <name>: the commit id, or ``<sha>-<sha256 of the tag>[:16]`` for a checkout that carries a tag

The first run that checks a commit out does it with git (``materialise``), reads the commit's tree
id and time once (as it checks out) and keeps a copy of the fresh checkout here. Later runs of the
same commit copy that folder, which costs no git process, and take the tree id and time from
``meta.json``. A kept checkout appears whole or not at all: it is built in a ``.tmp-*`` folder
beside it and renamed into place. It lives inside the mirror's entry, so it is counted, kept in
use and removed with the mirror (``Store.gc``), and the mirror is what proves the commit whole.

With a :class:`Later` (the pipeline's), the copy to keep is made in a thread while the run goes
on (issue 24: a cold start waits for the install, not for this copy); the caller joins it before
anything may change the checkout.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from live_code import util
from live_code.source import git
from live_code.source.localmirror import CHECKOUTS

log = logging.getLogger("live_code.source.store")

#: a ``.tmp-*`` folder older than this was left by a killed run
_STALE_TMP = 3600.0
#: at most this long for ``cp`` to copy a checkout to keep (then it is killed and nothing is kept)
_CP_SECONDS = 600.0


class Later:
    """Copies of fresh checkouts made in threads: :meth:`join` before the checkout may change (the
    job, a submodule, a build in its folder) and before it is removed. Each copy holds the mirror in
    use (``hold``, entered before its thread starts) until it ends."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def start(self, job: Callable[[], None], hold: AbstractContextManager[Any]) -> None:
        hold.__enter__()
        thread = threading.Thread(target=_run_holding, args=(job, hold), name="live-code-keep", daemon=True)
        try:
            thread.start()
        except BaseException:  # no thread (e.g. a process limit): the hold ends here
            hold.__exit__(None, None, None)
            raise
        self._threads.append(thread)

    def join(self) -> None:
        while self._threads:
            self._threads.pop(0).join()


def _run_holding(job: Callable[[], None], hold: AbstractContextManager[Any]) -> None:
    try:
        job()
    finally:
        hold.__exit__(None, None, None)


def check_out(
    mirror: Path, sha: str, tag: str | None, dest: Path, schedule: Callable[[Callable[[], None]], None] | None = None
) -> git.CommitInfo:
    """Make the empty folder ``dest`` a checkout of ``sha`` (a commit the mirror holds whole, with
    ``tag`` on it when given) and return the commit's tree id and time. ``schedule``: called with the
    copy to keep of a fresh checkout, to make it while the caller goes on (``Later.start``)."""
    folder = mirror / CHECKOUTS / _name(sha, tag)
    info = _copy_kept(folder, sha, tag, dest)
    if info is not None:
        return info
    info = git.materialise(mirror, sha, dest, tag=tag)
    meta: dict[str, str | None] = {"commit": sha, "tree": info.tree, "commit_time": info.time, "tag": tag}
    if schedule is None:
        _keep(folder, dest, meta)
    else:
        schedule(functools.partial(_keep, folder, dest, meta, copy=_copy_by_cp))
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
    _copy_tree(folder / "tree", dest)
    return git.CommitInfo(tree, stamp)


def _keep(
    folder: Path, checkout: Path, meta: dict[str, str | None], copy: Callable[[Path, Path], None] | None = None
) -> None:
    """Keep a copy of the fresh ``checkout`` as ``folder`` (best effort: a run does not need it),
    made by ``copy`` (default: :func:`_copy_tree`)."""
    tmp: Path | None = None
    try:
        folder.parent.mkdir(exist_ok=True)
        _remove_stale(folder.parent)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        (tmp / "tree").mkdir()
        (copy or _copy_tree)(checkout, tmp / "tree")
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        os.rename(tmp, folder)  # refused when another run kept the same checkout first
        tmp = None
    except (OSError, util.CalledProcessError) as e:
        log.debug("not keeping the checkout of %s: %s", meta["commit"], e)
    finally:
        if tmp is not None:
            util.rmtree(tmp)


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy the folder ``src`` into the existing folder ``dest``: symlinks as links, each file's
    bytes and permission bits, each folder's permission bits (as ``shutil.copytree(symlinks=True,
    copy_function=shutil.copy)`` does, without its times of folders, which git does not keep).

    A warm run spends its fetch step here; this does a third fewer system calls per file than
    shutil (no stat of each path before opening it, no chmod by path) and raises on the first
    error, naming the path. A git checkout holds nothing but folders, files and symlinks: anything
    else (a FIFO, a socket) is refused, not read."""
    with os.scandir(src) as it:
        entries = list(it)
    for entry in entries:
        to = os.path.join(dest, entry.name)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), to)
        elif entry.is_dir():
            with contextlib.suppress(FileExistsError):
                os.mkdir(to)
            _copy_tree(Path(entry.path), Path(to))
            os.chmod(to, stat.S_IMODE(entry.stat().st_mode))
        else:
            _copy_file(entry.path, to)


def _copy_by_cp(src: Path, dest: Path) -> None:
    """The tree :func:`_copy_tree` makes (links as links, modes kept; ``cp -pR`` keeps times too), by
    ``cp`` in a child process: a copy in a thread would hold the interpreter lock that the run's
    own steps need."""
    util.cmd_output("cp", "-pR", "--", f"{src}/.", str(dest), timeout=_CP_SECONDS)


def _copy_file(src: str, dest: str) -> None:
    fd_in = os.open(src, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd_in)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{src} is not a regular file, a folder or a symlink: not copied")
        fd_out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            _copy_bytes(fd_in, fd_out, st.st_size, src)
            os.fchmod(fd_out, stat.S_IMODE(st.st_mode))
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def _copy_bytes(fd_in: int, fd_out: int, size: int, name: str) -> None:
    done = 0
    try:
        while done < size:
            sent = os.sendfile(fd_out, fd_in, done, size - done)
            if sent == 0:
                raise OSError(f"{name} shrank while it was copied")
            done += sent
    except OSError as e:
        if done or e.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP):
            raise
        # no sendfile between files here (macOS): read and write
        while chunk := os.read(fd_in, 1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd_out, view) :]


def _remove_stale(parent: Path) -> None:
    now = time.time()
    for child in parent.iterdir():
        if child.name.startswith(".tmp-"):
            with contextlib.suppress(OSError):
                if now - child.stat().st_mtime > _STALE_TMP:
                    util.rmtree(child)
