"""Fetching a task's source: a pinned commit of a repository, through its mirror, into a new
working tree (``Store.fetch_source`` is the entry point; this module is its body).

Steps: check the URL, the pin and the destination before git runs; resolve the pin against the
mirror, fetching only what it lacks (``resolve``, ``pins``); check the commit out into the
destination, copying a checkout verified earlier when there is one (``checkouts``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from live_code import util
from live_code.errors import CacheError
from live_code.record import asdict, record
from live_code.source import checkouts, git, mirrors
from live_code.source.pins import Pin, Resolved
from live_code.source.resolve import check_pin, resolve

if TYPE_CHECKING:
    from live_code.source.store import Store

log = logging.getLogger("live_code.source.store")


@record
class SourceProvenance:
    """Where the code of a run came from (the record's ``source`` part; no credential anywhere)."""

    url: str  # normalised, credential-free
    pin: str  # as given
    pin_kind: str  # as given: commit | tag | branch | legacy-ref
    resolved_kind: str  # what the pin turned out to be: commit | tag | branch
    commit: str
    tree: str
    commit_time: str  # ISO 8601 UTC
    tag_verified: bool | None  # tags: True if it matched an earlier resolution, False the first time
    tag_first_commit: str | None  # a moved tag (allowed): the commit it named first
    fetched: bool  # whether anything was fetched over the network
    mirror: str | None = None  # the operator's mirror ``url`` was fetched from (LIVE_CODE_GIT_MIRRORS)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        if doc["mirror"] is None:  # the record of a run without a mirror is as it always was
            del doc["mirror"]
        return doc


def fetch_source(
    store: Store,
    url: str,
    pin: Pin,
    dest: Path,
    *,
    allow_branch: bool,
    allow_moved_tag: bool,
    allow_local: bool,
    token: str | None,
    schemes: Iterable[str],
    deadline: float,
    retry: git.RetryPolicy,
    git_mirrors: mirrors.Mirrors,
    on_network: Callable[[], None] | None = None,
    later: checkouts.Later | None = None,
) -> SourceProvenance:
    """What ``Store.fetch_source`` documents."""
    clock = git.Deadline(deadline)
    nurl = git.normalise_url(url, allow_local=allow_local, schemes=schemes)
    if token and not nurl.secret:
        nurl = nurl.with_secret(token)
    check_pin(pin, allow_branch)
    dest = check_dest(store, dest)
    murl = mirror_of(nurl, git_mirrors)
    rem = git.remote(murl or nurl, deadline=clock, retry=retry, origin=nurl if murl else None, on_network=on_network)
    log.info("source: %s, %s %s", rem.display, pin.kind, pin.value)
    schedule = None if later is None else lambda job: later.start(job, store.using("mirrors", nurl.cache_id))
    with store.using("mirrors", nurl.cache_id):
        mirror, _ = store.ensure("mirrors", nurl.cache_id, lambda p: init_mirror(p, nurl), timeout=clock.remaining())
        res = resolve(store, rem, mirror, pin, allow_branch, allow_moved_tag)
        info = _check_out(mirror, res, pin, dest, schedule)
    log.info("source: %s %s is commit %s%s", res.kind, pin.value, res.sha, " (fetched)" if res.fetched else "")
    return SourceProvenance(
        nurl.url,
        pin.value,
        pin.kind,
        res.kind,
        res.sha,
        info.tree,
        info.time,
        res.tag_verified,
        res.tag_first,
        res.fetched,
        murl.url if murl else None,
    )


def _check_out(
    mirror: Path, res: Resolved, pin: Pin, dest: Path, schedule: Callable[[Callable[[], None]], None] | None
) -> git.CommitInfo:
    dest.mkdir(parents=True, exist_ok=True)
    with util.clean_path_on_failure(dest):
        try:
            return checkouts.check_out(mirror, res.sha, pin.value if res.kind == "tag" else None, dest, schedule)
        except util.CalledProcessError as e:
            msg = f"could not check out {res.sha} into {dest}: {e.stderr.strip()[-300:]}"
            raise CacheError(msg, value=str(dest), hint="check free disk space and permissions") from None
        except (OSError, shutil.Error) as e:
            msg = f"could not check out {res.sha} into {dest}: {e}"
            raise CacheError(msg, value=str(dest), hint="check free disk space and permissions") from None


def mirror_of(nurl: git.NormalisedUrl, git_mirrors: mirrors.Mirrors) -> git.NormalisedUrl | None:
    """The operator's mirror of ``nurl``, checked like any URL, with the token its host may get."""
    target = git_mirrors.rewrite(nurl.url)
    if target is None:
        return None
    murl = git.normalise_url(target, allow_local=False, schemes={"https"})
    token = git.token_from_env(murl)
    return murl.with_secret(token) if token else murl


def check_dest(store: Store, dest: Path) -> Path:
    real, root = Path(os.path.realpath(dest)), Path(os.path.realpath(store.root))
    if real == root or root in real.parents or real in root.parents:
        msg = f"the working tree {dest} and the cache {store.root} must not contain one another"
        raise CacheError(msg, value=str(dest), hint="run the job in a directory outside the cache")
    if os.path.lexists(real) and (not real.is_dir() or any(real.iterdir())):
        msg = f"the working tree {dest} already exists and is not an empty directory"
        raise CacheError(msg, value=str(dest), hint="give each run a new directory")
    return real


def init_mirror(path: Path, nurl: git.NormalisedUrl) -> dict[str, Any]:
    git.init_bare(path)
    return {"url": nurl.url}
