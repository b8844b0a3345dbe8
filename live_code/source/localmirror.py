"""The bare mirror of one repository in the cache: which commits it holds whole, its write lock,
and what a killed fetch leaves behind.

    mirrors/<id>/                bare mirror per normalised URL (id: sha256 of the credential-free
                                 URL); no remote and no credential in its config: every fetch names
                                 the URL itself. refs/live-code/<sha> marks a commit fetched whole;
                                 git sets it only after the objects arrived and were checked, so it
                                 is the one thing a later run trusts (a killed fetch leaves none).
    mirrors/<id>/live-code-checkouts/
                                 verified checkouts of its commits (``checkouts``), not git's
    locks/mirrors-<id>.lock      taken (flock, the same file as Store.lock) around every write to a
                                 mirror. Its descriptor is inherited by the git child, so a git
                                 orphaned by a killed harness keeps others out until it ends; git
                                 lock files and temp packs found under the lock are debris.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from live_code import util
from live_code.errors import CacheError, SourceError
from live_code.source import git

if TYPE_CHECKING:
    from live_code.source.store import Store

log = logging.getLogger("live_code.source.store")

KEEP = "refs/live-code/"
#: the folder of a mirror that holds verified checkouts (git ignores what it does not know there)
CHECKOUTS = "live-code-checkouts"


def trusted(mirror: Path, sha: str) -> bool:
    """Whether the mirror holds the commit ``sha`` whole (``refs/live-code/<sha>`` names it).

    The loose ref is read as a file, which costs no git process; git is asked only where it may
    have packed refs (a ``packed-refs`` file exists): a mirror that has none holds no other."""
    if len(sha) == 40 and git.is_hex(sha):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if (mirror / "refs" / "live-code" / sha).read_bytes().decode("ascii").strip() == sha:
                return True
        if not (mirror / "packed-refs").exists() and (mirror / "refs").is_dir():
            return False
    return git.resolve(mirror, KEEP + sha) == sha


def holds_no_objects(mirror: Path) -> bool:
    """True for a mirror with no object at all (a new one): no pack, no loose object, no
    alternates. Then there is nothing to ask git about."""
    objects = mirror / "objects"
    try:
        names = os.listdir(objects)
        packs = os.listdir(objects / "pack")
    except OSError:
        return False
    loose = any(len(n) == 2 and all(c in "0123456789abcdef" for c in n) for n in names)
    return not loose and not packs and not (objects / "info" / "alternates").exists()


def check_commit(mirror: Path, sha: str, what: str) -> None:
    """Refuse (and un-trust) ``sha`` unless it names a commit."""
    kind = git.object_type(mirror, sha)
    if kind != "commit":
        git.delete_ref(mirror, KEEP + sha)
        raise SourceError(
            f"{what} names a {kind or 'missing object'} {sha}, not a commit",
            value=sha,
            hint="pin a commit, or a tag that points to a commit",
        )


@contextlib.contextmanager
def mirror_lock(store: Store, rem: git.Remote, mirror: Path) -> Iterator[int]:
    """Exclusive write lock of one mirror until the deadline; yields the descriptor for git."""
    fd = os.open(store.root / "locks" / f"mirrors-{rem.repo.cache_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if rem.deadline.remaining() <= 0:
                    msg = f"timed out waiting for another process fetching into the mirror of {rem.display}"
                    raise CacheError(msg, value=str(mirror), hint="retry later, or raise the deadline") from None
                time.sleep(0.05)
        remove_debris(mirror)
        try:
            yield fd
        except BaseException:
            remove_debris(mirror)  # a failed fetch's temp packs (git ran to its end or was killed)
            raise
    finally:
        os.close(fd)  # drops the lock, unless a git child we started still holds it


def remove_debris(mirror: Path) -> None:
    """Under the mirror lock no git writes there, so git lock files and temp objects are leftovers
    of a killed fetch (they would make the next one fail with "File exists"). The checkouts are
    not git's and are left alone (a repository may well hold a ``poetry.lock``)."""
    temp = ("tmp_pack_", "tmp_idx_", "tmp_obj_", "tmp_rev_", "tmp_mtimes_", "incoming-", "tmp_objdir")
    for dirpath, dirnames, filenames in os.walk(mirror):
        if dirpath == str(mirror) and CHECKOUTS in dirnames:
            dirnames.remove(CHECKOUTS)
        for name in [d for d in dirnames if d.startswith(temp)]:
            util.rmtree(os.path.join(dirpath, name))
            dirnames.remove(name)
        for name in filenames:
            if name.endswith(".lock") or name.startswith(temp):
                log.info("removing %s left in the mirror by an interrupted fetch", name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
