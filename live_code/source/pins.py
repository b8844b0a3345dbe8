"""What a task pins, and the pin record that makes a tag's first resolution binding.

    pins.json       {"tags": {url: {tag: {"commit", "first_seen", "last_seen"}}},
                     "abbrevs": {url: {prefix: sha}}}, written atomically under locks/pins.lock.

The tag policy: a tag costs one ``ls-remote`` per run (to see whether it moved); the first commit
it named is remembered, and a tag found later on another commit stops the run ("tag moved", both
SHAs named) unless the task allows the move. An abbreviated commit id is resolved once against
the whole history and remembered.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from live_code import util
from live_code.errors import CacheError, SourceError
from live_code.record import record
from live_code.source import git
from live_code.source.localmirror import KEEP, check_commit, mirror_lock, trusted

if TYPE_CHECKING:
    from live_code.source.store import Store
    from live_code.task import config as config_mod

PIN_KINDS = ("commit", "tag", "branch", "legacy-ref")


@record
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


class Resolved(NamedTuple):
    kind: str
    sha: str
    fetched: bool
    tag_verified: bool | None = None
    tag_first: str | None = None


def resolve_tag(
    store: Store,
    rem: git.Remote,
    mirror: Path,
    tag: str,
    refs: Mapping[str, str],
    expect: str | None,
    allow_moved: bool,
) -> Resolved:
    ref = f"refs/tags/{tag}"
    sha = refs.get(ref + "^{}", refs[ref])  # an annotated tag peels to its commit
    if expect and not sha.startswith(expect.lower()):
        raise SourceError(
            f"tag {tag} of {rem.display} names {sha}, not the pinned commit {expect}",
            value=tag,
            hint="make git_commit and git_tag agree, or give only one of them",
        )
    first = read_pins(store).get("tags", {}).get(rem.repo.url, {}).get(tag, {}).get("commit")
    if first and first != sha and not allow_moved:
        raise tag_moved(rem, tag, first, sha)
    fetched = False
    if not trusted(mirror, sha):
        with mirror_lock(store, rem, mirror) as fd:
            if not trusted(mirror, sha):
                git.fetch(rem, mirror, [f"+{ref}:{ref}"], depth=1, pass_fds=(fd,))
                fetched = True
                got = git.resolve(mirror, ref + "^{}")
                if got != sha:
                    raise SourceError(
                        f"tag {tag} moved while it was fetched ({sha} -> {got})", value=tag, hint="run again"
                    )
                check_commit(mirror, sha, f"tag {tag}")
                git.update_ref(mirror, KEEP + sha, sha)
    with pins_locked(store, rem.deadline) as data:
        tags = data.setdefault("tags", {}).setdefault(rem.repo.url, {})
        known = tag in tags
        record = tags.setdefault(tag, {"commit": sha, "first_seen": time.time()})
        first = record["commit"]
        record["last_seen"] = sha
    if first != sha and not allow_moved:  # another run recorded it first, meanwhile
        raise tag_moved(rem, tag, first, sha)
    return Resolved("tag", sha, fetched, first == sha and known, first if first != sha else None)


def tag_moved(rem: git.Remote, tag: str, first: str, now: str) -> SourceError:
    msg = f"tag moved: {tag} of {rem.display} first resolved to {first}, now it names {now}"
    hint = "pin the commit you mean (git_commit), or set live_code_allow_moved_tag: true to accept the move"
    return SourceError(msg, value=tag, hint=hint)


def resolve_abbrev(store: Store, rem: git.Remote, mirror: Path, prefix: str) -> Resolved:
    def known() -> str | None:
        sha = read_pins(store).get("abbrevs", {}).get(rem.repo.url, {}).get(prefix)
        return sha if sha and trusted(mirror, sha) else None

    earlier = known()
    if earlier:
        return Resolved("commit", earlier, False)
    # Only the whole history proves an abbreviation unambiguous (and servers want full ids).
    with mirror_lock(store, rem, mirror) as fd:
        earlier = known()  # resolved by another process while we waited
        if earlier:
            return Resolved("commit", earlier, False)
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
        git.update_ref(mirror, KEEP + sha, sha)
    with pins_locked(store, rem.deadline) as data:
        sha = data.setdefault("abbrevs", {}).setdefault(rem.repo.url, {}).setdefault(prefix, sha)
    return Resolved("commit", sha, True)


def read_pins(store: Store) -> dict[str, Any]:
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
def pins_locked(store: Store, deadline: git.Deadline) -> Iterator[dict[str, Any]]:
    """The pin record for read-modify-write: written back atomically when the block ends."""
    import filelock  # imported here: a run pinned to a commit never needs it (about 20 ms)

    store._ensure_dirs()
    lock = filelock.FileLock(str(store.root / "locks" / "pins.lock"), timeout=max(1.0, deadline.remaining()))
    try:
        with lock:
            data = read_pins(store)
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                util.atomic_write(store.root / "pins.json", json.dumps(data, sort_keys=True, indent=1))
    except filelock.Timeout:
        raise CacheError("timed out waiting for the pin record lock", value=str(store.root), hint="retry") from None


def from_config(source: config_mod.SourcePin) -> Pin:
    """The pin a task's source settings make (``task.config``'s keys)."""
    from live_code.task import config as config_mod  # here: the task layer is not needed to fetch

    if source.tag is not None and source.kind in (config_mod.PinKind.COMMIT, config_mod.PinKind.TAG):
        return Pin("tag", source.tag, commit=source.commit)  # both given: the tag must name the commit
    if source.kind is config_mod.PinKind.COMMIT:
        return Pin("commit", source.ref)
    if source.kind is config_mod.PinKind.TAG:
        return Pin("tag", source.ref, commit=source.commit)
    return Pin("legacy-ref", source.ref)
