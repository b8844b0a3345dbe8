"""The cache: where mirrors, pins and job environments live, with their locks and garbage collection.

Layout under the cache root (``LIVE_CODE_CACHE``, else ``$XDG_CACHE_HOME/live-code``, else
``~/.cache/live-code``)::

    <root>/
      mirrors/<id>/           bare git mirror per normalised URL          (kind "mirrors")
      envs/<key>/             job venv per environment key                (kind "envs")
      <kind>/<key>.done       completion marker (JSON metadata); written last, atomically
      <kind>/<key>.used       touched each time the entry is used (for gc --max-age)
      pins.json               first resolution of each (url, tag); resolved abbreviated SHAs
      locks/<kind>-<key>.lock build lock (filelock): one builder per entry, across processes
      locks/<kind>-<key>.use  held shared (flock) while a run uses the entry; gc skips held ones
      logs/                   crash logs of the CLI

An entry is trusted only when its ``.done`` marker exists: a build killed at any point leaves a
directory without a marker, which the next builder removes under the lock before building again
(check, lock, check again: style.md rule 4). Entries are built in place because a venv is not
relocatable; the marker, not a rename, is what makes the entry appear atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import filelock

from live_code import util
from live_code.errors import CacheError, SourceError
from live_code.source import git, mirrors

log = logging.getLogger(__name__)

CACHE_ENV_VAR = "LIVE_CODE_CACHE"
KINDS = ("mirrors", "envs")
#: How long a builder waits for another process's build of the same entry before giving up.
DEFAULT_LOCK_TIMEOUT = 3600.0


def default_root() -> Path:
    """The cache root: ``LIVE_CODE_CACHE``, else the user's cache dir."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "live-code"


class Entry(NamedTuple):
    kind: str
    key: str
    path: Path
    complete: bool
    size: int
    last_used: float
    meta: Mapping[str, Any]


class Store:
    """A cache directory. Cheap to construct; creates its directories on first use."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # -- layout --------------------------------------------------------------------------------

    def _ensure_dirs(self) -> None:
        try:
            for sub in (*KINDS, "locks", "logs"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            msg = f"cannot create the cache directory {self.root}: {e.strerror}"
            raise CacheError(msg, value=str(self.root), hint=f"set {CACHE_ENV_VAR} to a writable directory") from None

    def path(self, kind: str, key: str) -> Path:
        _check_kind_key(kind, key)
        return self.root / kind / key

    def _marker(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.done"

    def _used_stamp(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.used"

    @property
    def logs_dir(self) -> Path:
        self._ensure_dirs()
        return self.root / "logs"

    # -- locks ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, kind: str, key: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
        """Exclusive build lock of one entry, across threads and processes."""
        _check_kind_key(kind, key)
        self._ensure_dirs()
        lock = filelock.FileLock(str(self.root / "locks" / f"{kind}-{key}.lock"), timeout=timeout)
        try:
            with lock:
                yield
        except filelock.Timeout:
            msg = f"timed out after {timeout:.0f}s waiting for another process building {kind}/{key}"
            raise CacheError(
                msg, value=str(self.root), hint="if no other live-code runs, remove the stale lock file"
            ) from None

    @contextlib.contextmanager
    def using(self, kind: str, key: str) -> Iterator[Path]:
        """Mark a complete entry as in use for the block (a shared flock gc will not break)."""
        _check_kind_key(kind, key)
        self._ensure_dirs()
        fd = os.open(self.root / "locks" / f"{kind}-{key}.use", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            with contextlib.suppress(OSError):
                self._used_stamp(kind, key).touch()
            yield self.path(kind, key)
        finally:
            os.close(fd)

    # -- entries -------------------------------------------------------------------------------

    def is_complete(self, kind: str, key: str) -> bool:
        return self._marker(kind, key).is_file() and self.path(kind, key).is_dir()

    def meta(self, kind: str, key: str) -> dict[str, Any]:
        try:
            return json.loads(self._marker(kind, key).read_text())
        except (OSError, ValueError):
            return {}

    def ensure(
        self,
        kind: str,
        key: str,
        build: Callable[[Path], Mapping[str, Any] | None],
        *,
        timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> tuple[Path, bool]:
        """Return ``(path, built)`` for a complete entry, building it with ``build(path)`` if needed.

        ``build`` gets an empty directory at the entry's final path and returns metadata for the
        marker. If it raises anything (Ctrl-C included) the directory is removed.
        """
        path = self.path(kind, key)
        if self.is_complete(kind, key):
            return path, False
        with self.lock(kind, key, timeout=timeout):
            if self.is_complete(kind, key):  # another process finished it while we waited
                return path, False
            # the directory is made inside the guard: a signal right after mkdir (SIGTERM raises
            # Stopped in this thread) must not leave an entry without its marker
            with util.clean_path_on_failure(path):
                if os.path.lexists(path):
                    log.info("removing the incomplete %s entry %s left by an interrupted build", kind, key)
                    util.rmtree(path)
                path.mkdir(parents=True)
                meta = dict(build(path) or {})
                meta.setdefault("created", time.time())
                util.atomic_write(self._marker(kind, key), json.dumps(meta, sort_keys=True, indent=1))
            return path, True

    def entries(self, kinds: tuple[str, ...] = KINDS) -> list[Entry]:
        out = []
        for kind in kinds:
            base = self.root / kind
            if not base.is_dir():
                continue
            for child in sorted(base.iterdir()):
                if not child.is_dir() or child.name.startswith("."):
                    continue
                key = child.name
                complete = self.is_complete(kind, key)
                last_used = 0.0
                for stamp in (self._used_stamp(kind, key), self._marker(kind, key), child):
                    with contextlib.suppress(OSError):  # removed meanwhile by another gc
                        last_used = max(last_used, stamp.stat().st_mtime)
                out.append(Entry(kind, key, child, complete, _tree_size(child), last_used, self.meta(kind, key)))
        return out

    def remove(self, kind: str, key: str) -> bool:
        """Remove one entry unless it is in use or being built; True if removed.

        The use lock is held exclusively until the entry is gone, so no run can start using it
        between the in-use check and the deletion (``using`` waits instead)."""
        _check_kind_key(kind, key)
        self._ensure_dirs()
        fd = os.open(self.root / "locks" / f"{kind}-{key}.use", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with self.lock(kind, key, timeout=0):
                with contextlib.suppress(FileNotFoundError):
                    self._marker(kind, key).unlink()  # un-trust first, then delete
                util.rmtree(self.path(kind, key))
                with contextlib.suppress(FileNotFoundError):
                    self._used_stamp(kind, key).unlink()
        except BlockingIOError:  # in use
            return False
        except CacheError:  # lock held: being built right now
            return False
        finally:
            os.close(fd)
        return True

    def gc(self, *, max_size: int | None = None, max_age: float | None = None, now: float | None = None) -> list[Entry]:
        """Remove entries unused for ``max_age`` seconds, then the least recently used until the
        cache holds at most ``max_size`` bytes. Entries in use or being built are never removed.
        Returns the entries removed."""
        now = time.time() if now is None else now
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        removed: list[Entry] = []
        total = sum(e.size for e in entries)
        for e in entries:
            too_old = max_age is not None and now - e.last_used > max_age
            too_big = max_size is not None and total > max_size
            if (too_old or too_big) and self.remove(e.kind, e.key):
                removed.append(e)
                total -= e.size
        return removed

    # -- sources (the "Source cache" section at the end of this module) ------------------------

    def fetch_source(
        self,
        url: str,
        pin: Pin,
        dest: str | os.PathLike[str],
        *,
        allow_branch: bool = False,
        allow_moved_tag: bool = False,
        allow_local: bool = False,
        token: str | None = None,
        schemes: Iterable[str] = git.DEFAULT_SCHEMES,
        deadline: float = git.DEFAULT_DEADLINE,
        retry: git.RetryPolicy = git.RetryPolicy(),  # noqa: B008 (a frozen dataclass: one shared default is safe)
        git_mirrors: mirrors.Mirrors | None = None,
    ) -> SourceProvenance:
        """Resolve ``pin`` of the repository at ``url`` and check that commit out into ``dest``.

        - ``dest`` must be new or empty and outside the cache; it gets the commit's files and a
          ``.git`` of its own (that one commit, HEAD detached on it, no remote, no credential).
        - A full SHA whose commit the mirror already holds needs no network call. A tag needs one
          ``ls-remote`` (to see whether it moved); a branch too (refused unless ``allow_branch``).
        - The first resolution of a tag is remembered; a tag found later on another commit stops
          the run ("tag moved", both SHAs named) unless ``allow_moved_tag``.
        - ``allow_local`` (the operator's ``LIVE_CODE_ALLOW_LOCAL_REPOS``, see
          ``git.allow_local_from_env``) admits local paths and ``file://``; ``schemes`` are the
          network schemes admitted (https and ssh). ``token`` (``git.token_from_env``) is used
          when the URL carries no credential. ``deadline`` is the budget in seconds for the whole
          step; ``retry`` governs retries of transient network failures.
        - ``git_mirrors`` (default: the operator's ``LIVE_CODE_GIT_MIRRORS``) may send the fetch to
          a mirror of ``url``. The mirror gets ``LIVE_CODE_GIT_TOKEN`` only where
          ``LIVE_CODE_GIT_TOKEN_HOSTS`` allows its host, never a credential given for ``url``; pins
          and the cache stay keyed by ``url``, and the provenance names both.

        Raises ``UnsafeSourceError`` before git runs for a refused URL or ref, ``SourceError``
        when the pin cannot be resolved or fetched, ``CacheError`` when the cache is unusable.
        """
        return _fetch_source(
            self,
            url,
            pin,
            Path(dest),
            allow_branch=allow_branch,
            allow_moved_tag=allow_moved_tag,
            allow_local=allow_local,
            token=token,
            schemes=schemes,
            deadline=deadline,
            retry=retry,
            git_mirrors=mirrors.from_environ() if git_mirrors is None else git_mirrors,
        )


def _check_kind_key(kind: str, key: str) -> None:
    if kind not in KINDS:
        raise AssertionError(f"BUG: unknown cache kind {kind!r}")
    if not key or "/" in key or key.startswith(".") or key.endswith((".done", ".used")):
        raise AssertionError(f"BUG: bad cache key {key!r}")


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


# == Source cache: mirrors, pins, per-run working trees ========================================
#
#   mirrors/<id>/                bare mirror per normalised URL (id: sha256 of the credential-free
#                                URL); no remote and no credential in its config: every fetch names
#                                the URL itself. refs/live-code/<sha> marks a commit fetched whole;
#                                git sets it only after the objects arrived and were checked, so it
#                                is the one thing a later run trusts (a killed fetch leaves none).
#   locks/mirrors-<id>.lock      taken (flock, the same file as Store.lock) around every write to a
#                                mirror. Its descriptor is inherited by the git child, so a git
#                                orphaned by a killed harness keeps others out until it ends; git
#                                lock files and temp packs found under the lock are debris.
#   pins.json                    {"tags": {url: {tag: {"commit", "first_seen"}}},
#                                 "abbrevs": {url: {prefix: sha}}}, written atomically under
#                                locks/pins.lock.

PIN_KINDS = ("commit", "tag", "branch", "legacy-ref")
_KEEP = "refs/live-code/"


@dataclass(frozen=True)
class Pin:
    """What a task pins: ``kind`` is ``commit`` (full or abbreviated SHA), ``tag``, ``branch`` or
    ``legacy-ref`` (the original image's ``git_branch``: a commit, tag or branch name). With a tag,
    ``commit`` (full or abbreviated) is the commit the tag must name."""

    kind: str
    value: str
    commit: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in PIN_KINDS:
            raise AssertionError(f"BUG: unknown pin kind {self.kind!r}")


@dataclass(frozen=True)
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
        record = dataclasses.asdict(self)
        if record["mirror"] is None:  # the record of a run without a mirror is as it always was
            del record["mirror"]
        return record


class _Resolved(NamedTuple):
    kind: str
    sha: str
    fetched: bool
    tag_verified: bool | None = None
    tag_first: str | None = None


def _fetch_source(
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
) -> SourceProvenance:
    clock = git.Deadline(deadline)
    nurl = git.normalise_url(url, allow_local=allow_local, schemes=schemes)
    if token and not nurl.secret:
        nurl = nurl.with_secret(token)
    _check_pin(pin, allow_branch)
    dest = _check_dest(store, dest)
    murl = _mirror_of(nurl, git_mirrors)
    rem = git.remote(murl or nurl, deadline=clock, retry=retry, origin=nurl if murl else None)
    log.info("source: %s, %s %s", rem.display, pin.kind, pin.value)
    with store.using("mirrors", nurl.cache_id):
        mirror, _ = store.ensure("mirrors", nurl.cache_id, lambda p: _init_mirror(p, nurl), timeout=clock.remaining())
        res = _resolve(store, rem, mirror, pin, allow_branch, allow_moved_tag)
        dest.mkdir(parents=True, exist_ok=True)
        with util.clean_path_on_failure(dest):
            try:
                git.materialise(mirror, _KEEP + res.sha, res.sha, dest, tag=pin.value if res.kind == "tag" else None)
                info = git.commit_info(mirror, res.sha)
            except util.CalledProcessError as e:
                msg = f"could not check out {res.sha} into {dest}: {e.stderr.strip()[-300:]}"
                raise CacheError(msg, value=str(dest), hint="check free disk space and permissions") from None
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


def _mirror_of(nurl: git.NormalisedUrl, git_mirrors: mirrors.Mirrors) -> git.NormalisedUrl | None:
    """The operator's mirror of ``nurl``, checked like any URL, with the token its host may get."""
    target = git_mirrors.rewrite(nurl.url)
    if target is None:
        return None
    murl = git.normalise_url(target, allow_local=False, schemes={"https"})
    token = git.token_from_env(murl)
    return murl.with_secret(token) if token else murl


def _check_pin(pin: Pin, allow_branch: bool) -> None:
    """Refuse a bad pin before git runs."""
    if pin.kind == "commit":
        git.check_sha(pin.value)
        return
    git.check_ref(pin.value, {"tag": "tag", "branch": "branch"}.get(pin.kind, "ref"))
    if pin.commit is not None:
        git.check_sha(pin.commit)
    if pin.kind == "branch" and not allow_branch:
        raise _branch_refused(pin.value)


def _branch_refused(name: str) -> SourceError:
    msg = f"{name!r} is a branch, which can point to other code on every run"
    return SourceError(msg, value=name, hint="pin a tag or a commit, or set live_code_allow_branch: true")


def _check_dest(store: Store, dest: Path) -> Path:
    real, root = Path(os.path.realpath(dest)), Path(os.path.realpath(store.root))
    if real == root or root in real.parents or real in root.parents:
        msg = f"the working tree {dest} and the cache {store.root} must not contain one another"
        raise CacheError(msg, value=str(dest), hint="run the job in a directory outside the cache")
    if os.path.lexists(real) and (not real.is_dir() or any(real.iterdir())):
        msg = f"the working tree {dest} already exists and is not an empty directory"
        raise CacheError(msg, value=str(dest), hint="give each run a new directory")
    return real


def _init_mirror(path: Path, nurl: git.NormalisedUrl) -> dict[str, Any]:
    git.init_bare(path)
    return {"url": nurl.url}


def _trusted(mirror: Path, sha: str) -> bool:
    return git.resolve(mirror, _KEEP + sha) == sha


def _resolve(store: Store, rem: git.Remote, mirror: Path, pin: Pin, allow_branch: bool, allow_moved: bool) -> _Resolved:
    value = pin.value
    if pin.kind == "commit":
        return _resolve_commit(store, rem, mirror, git.check_sha(value))
    if pin.kind == "legacy-ref" and len(value) == 40 and git.is_hex(value) and _trusted(mirror, value.lower()):
        return _Resolved("commit", value.lower(), False)
    tag_ref, head_ref = f"refs/tags/{value}", f"refs/heads/{value}"
    refs = git.ls_remote(rem, [tag_ref, head_ref])
    if tag_ref in refs and pin.kind in ("tag", "legacy-ref"):
        return _resolve_tag(store, rem, mirror, value, refs, pin.commit, allow_moved)
    if head_ref in refs and pin.kind in ("branch", "legacy-ref"):
        if not allow_branch:
            raise _branch_refused(value)
        return _resolve_branch(store, rem, mirror, value, refs[head_ref])
    if pin.kind == "legacy-ref" and git.is_hex(value):
        return _resolve_commit(store, rem, mirror, git.check_sha(value))
    what = {"tag": "tag", "branch": "branch"}.get(pin.kind, "tag, branch or commit")
    hint = "check the name and that it was pushed"
    if pin.kind == "tag" and head_ref in refs:
        hint = "it is a branch, not a tag: tag the commit you mean, or pin the commit"
    raise SourceError(f"no {what} {value!r} in {rem.display}", value=value, hint=hint)


def _check_commit(mirror: Path, sha: str, what: str) -> None:
    kind = git.object_type(mirror, sha)
    if kind != "commit":
        git.delete_ref(mirror, _KEEP + sha)
        raise SourceError(
            f"{what} names a {kind or 'missing object'} {sha}, not a commit",
            value=sha,
            hint="pin a commit, or a tag that points to a commit",
        )


def _resolve_commit(store: Store, rem: git.Remote, mirror: Path, sha: str) -> _Resolved:
    if len(sha) < 40:
        return _resolve_abbrev(store, rem, mirror, sha)
    if _trusted(mirror, sha):
        return _Resolved("commit", sha, False)
    with _mirror_lock(store, rem, mirror) as fd:
        if _trusted(mirror, sha):  # another process fetched it while we waited
            return _Resolved("commit", sha, False)
        fetched = not (git.object_type(mirror, sha) == "commit" and git.is_complete(mirror, sha))
        if fetched:
            git.fetch_commit(rem, mirror, sha, _KEEP + sha, pass_fds=(fd,))
        else:  # complete already (fetched for another pin): trust it from now on
            git.update_ref(mirror, _KEEP + sha, sha)
        _check_commit(mirror, sha, f"commit {sha}")
    return _Resolved("commit", sha, fetched)


def _resolve_abbrev(store: Store, rem: git.Remote, mirror: Path, prefix: str) -> _Resolved:
    def known() -> str | None:
        sha = _read_pins(store).get("abbrevs", {}).get(rem.repo.url, {}).get(prefix)
        return sha if sha and _trusted(mirror, sha) else None

    earlier = known()
    if earlier:
        return _Resolved("commit", earlier, False)
    # Only the whole history proves an abbreviation unambiguous (and servers want full ids).
    with _mirror_lock(store, rem, mirror) as fd:
        earlier = known()  # resolved by another process while we waited
        if earlier:
            return _Resolved("commit", earlier, False)
        git.fetch_all(rem, mirror, pass_fds=(fd,))
        found = git.commits_with_prefix(mirror, prefix)
        if len(found) != 1:
            why = f"is ambiguous: {', '.join(found)}" if found else "matches no commit on any branch or tag"
            raise SourceError(
                f"abbreviated commit {prefix} {why} ({rem.display})",
                value=prefix,
                hint="give the full 40-hex commit id",
            )
        sha = found[0]
        git.update_ref(mirror, _KEEP + sha, sha)
    with _pins_locked(store, rem.deadline) as data:
        sha = data.setdefault("abbrevs", {}).setdefault(rem.repo.url, {}).setdefault(prefix, sha)
    return _Resolved("commit", sha, True)


def _resolve_tag(
    store: Store,
    rem: git.Remote,
    mirror: Path,
    tag: str,
    refs: Mapping[str, str],
    expect: str | None,
    allow_moved: bool,
) -> _Resolved:
    ref = f"refs/tags/{tag}"
    sha = refs.get(ref + "^{}", refs[ref])  # an annotated tag peels to its commit
    if expect and not sha.startswith(expect.lower()):
        raise SourceError(
            f"tag {tag} of {rem.display} names {sha}, not the pinned commit {expect}",
            value=tag,
            hint="make git_commit and git_tag agree, or give only one of them",
        )
    first = _read_pins(store).get("tags", {}).get(rem.repo.url, {}).get(tag, {}).get("commit")
    if first and first != sha and not allow_moved:
        raise _tag_moved(rem, tag, first, sha)
    fetched = False
    if not _trusted(mirror, sha):
        with _mirror_lock(store, rem, mirror) as fd:
            if not _trusted(mirror, sha):
                git.fetch(rem, mirror, [f"+{ref}:{ref}"], depth=1, pass_fds=(fd,))
                fetched = True
                got = git.resolve(mirror, ref + "^{}")
                if got != sha:
                    raise SourceError(
                        f"tag {tag} moved while it was fetched ({sha} -> {got})", value=tag, hint="run again"
                    )
                _check_commit(mirror, sha, f"tag {tag}")
                git.update_ref(mirror, _KEEP + sha, sha)
    with _pins_locked(store, rem.deadline) as data:
        tags = data.setdefault("tags", {}).setdefault(rem.repo.url, {})
        known = tag in tags
        record = tags.setdefault(tag, {"commit": sha, "first_seen": time.time()})
        first = record["commit"]
        record["last_seen"] = sha
    if first != sha and not allow_moved:  # another run recorded it first, meanwhile
        raise _tag_moved(rem, tag, first, sha)
    return _Resolved("tag", sha, fetched, first == sha and known, first if first != sha else None)


def _tag_moved(rem: git.Remote, tag: str, first: str, now: str) -> SourceError:
    msg = f"tag moved: {tag} of {rem.display} first resolved to {first}, now it names {now}"
    hint = "pin the commit you mean (git_commit), or set live_code_allow_moved_tag: true to accept the move"
    return SourceError(msg, value=tag, hint=hint)


def _resolve_branch(store: Store, rem: git.Remote, mirror: Path, branch: str, sha: str) -> _Resolved:
    ref, fetched = f"refs/heads/{branch}", False
    if not _trusted(mirror, sha):
        with _mirror_lock(store, rem, mirror) as fd:
            git.fetch(rem, mirror, [f"+{ref}:{ref}"], depth=1, pass_fds=(fd,))
            fetched = True
            sha = git.resolve(mirror, ref) or sha  # it may have moved since ls-remote: record what we got
            _check_commit(mirror, sha, f"branch {branch}")
            git.update_ref(mirror, _KEEP + sha, sha)
    return _Resolved("branch", sha, fetched)


@contextlib.contextmanager
def _mirror_lock(store: Store, rem: git.Remote, mirror: Path) -> Iterator[int]:
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
        _remove_debris(mirror)
        try:
            yield fd
        except BaseException:
            _remove_debris(mirror)  # a failed fetch's temp packs (git ran to its end or was killed)
            raise
    finally:
        os.close(fd)  # drops the lock, unless a git child we started still holds it


def _remove_debris(mirror: Path) -> None:
    """Under the mirror lock no git writes there, so git lock files and temp objects are leftovers
    of a killed fetch (they would make the next one fail with "File exists")."""
    temp = ("tmp_pack_", "tmp_idx_", "tmp_obj_", "tmp_rev_", "tmp_mtimes_", "incoming-", "tmp_objdir")
    for dirpath, dirnames, filenames in os.walk(mirror):
        for name in [d for d in dirnames if d.startswith(temp)]:
            util.rmtree(os.path.join(dirpath, name))
            dirnames.remove(name)
        for name in filenames:
            if name.endswith(".lock") or name.startswith(temp):
                log.info("removing %s left in the mirror by an interrupted fetch", name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))


def _read_pins(store: Store) -> dict[str, Any]:
    path = store.root / "pins.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        msg = f"cannot read the pin record {path}: {e}"
        raise CacheError(
            msg, value=str(path), hint="restore it, or remove it to forget earlier tag resolutions"
        ) from None
    if not isinstance(data, dict):
        raise CacheError(f"the pin record {path} is not a JSON object", value=str(path), hint="remove it")
    return data


@contextlib.contextmanager
def _pins_locked(store: Store, deadline: git.Deadline) -> Iterator[dict[str, Any]]:
    """The pin record for read-modify-write: written back atomically when the block ends."""
    store._ensure_dirs()
    lock = filelock.FileLock(str(store.root / "locks" / "pins.lock"), timeout=max(1.0, deadline.remaining()))
    try:
        with lock:
            data = _read_pins(store)
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                util.atomic_write(store.root / "pins.json", json.dumps(data, sort_keys=True, indent=1))
    except filelock.Timeout:
        raise CacheError("timed out waiting for the pin record lock", value=str(store.root), hint="retry") from None
