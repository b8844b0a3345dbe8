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
      installer-cache/        uv's (pip's) cache, shared by every env build (so uv can hardlink)
      base-info/              the base interpreter's fingerprint and uv's version, each kept
                              while the file it was read from is unchanged (envs.base, installer)
      probes/                 a successful bubblewrap probe, kept while bwrap, the kernel and the
                              namespace settings are unchanged (run.sandbox); a failure never is
      sdk/<key>/              the job's SDK shim per harness version, compiled and read-only (run.job);
                              cache gc removes other versions' a week after they were made

An env whose lock is still pending holds ``.live-code-lock-pending`` (envs.finishing): its first
job's run writes ``pylock.toml``, or the next run of the env does.

An entry is trusted only when its ``.done`` marker exists: a build killed at any point leaves a
directory without a marker, which the next builder removes under the lock before building again
(check, lock, check again: style.md rule 4). Entries are built in place because a venv is not
relocatable; the marker, not a rename, is what makes the entry appear atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from live_code import util
from live_code.errors import CacheError
from live_code.source import checkouts, git, mirrors, sources
from live_code.source.pins import PIN_KINDS, Pin
from live_code.source.sources import SourceProvenance

__all__ = ["CACHE_ENV_VAR", "KINDS", "PIN_KINDS", "Entry", "Pin", "SourceProvenance", "Store", "default_root"]

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
        import filelock  # imported here: a warm run takes no build lock (it costs about 20 ms)

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

    # -- sources (``sources``, ``resolve``, ``pins``, ``localmirror``, ``checkouts``) -----------

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
        retry: git.RetryPolicy = git.DEFAULT_RETRY,
        git_mirrors: mirrors.Mirrors | None = None,
        on_network: Callable[[], None] | None = None,
        later: checkouts.Later | None = None,
    ) -> SourceProvenance:
        """Resolve ``pin`` of the repository at ``url`` and check that commit out into ``dest``.

        - ``dest`` must be new or empty and outside the cache; it gets the commit's files and a
          ``.git`` of its own (that one commit, HEAD detached on it, no remote, no credential).
        - A full SHA whose commit the mirror already holds needs no network call, and once it was
          checked out, no git process either (the checkout is copied, ``checkouts``). A tag needs
          one ``ls-remote`` (to see whether it moved); a branch too (refused unless
          ``allow_branch``).
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
        - ``on_network`` is called as each network git call starts (the pipeline starts its other
          work then, not beside this step's own). With ``later``, a fresh checkout's copy kept for
          later runs is made in a thread (``checkouts.Later``): join it before ``dest`` may change.

        Raises ``UnsafeSourceError`` before git runs for a refused URL or ref, ``SourceError``
        when the pin cannot be resolved or fetched, ``CacheError`` when the cache is unusable.
        """
        return sources.fetch_source(
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
            on_network=on_network,
            later=later,
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
