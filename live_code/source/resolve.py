"""From a pin to a commit the mirror holds whole: fetch what is missing, and only that.

- A full SHA whose commit the mirror already holds needs no network call and no git process.
- A tag needs one ``ls-remote`` (to see whether it moved, ``pins``); a branch too (refused unless
  allowed). ``legacy-ref`` (the original image's ``git_branch``) may be any of the three.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from live_code.errors import SourceError
from live_code.source import git
from live_code.source.localmirror import KEEP, check_commit, holds_no_objects, mirror_lock, trusted
from live_code.source.pins import Pin, Resolved, resolve_abbrev, resolve_tag

if TYPE_CHECKING:
    from live_code.source.store import Store


def check_pin(pin: Pin, allow_branch: bool) -> None:
    """Refuse a bad pin before git runs."""
    if pin.kind == "commit":
        git.check_sha(pin.value)
        return
    git.check_ref(pin.value, {"tag": "tag", "branch": "branch"}.get(pin.kind, "ref"))
    if pin.commit is not None:
        git.check_sha(pin.commit)
    if pin.kind == "branch" and not allow_branch:
        raise branch_refused(pin.value)


def branch_refused(name: str) -> SourceError:
    msg = f"{name!r} is a branch, which can point to other code on every run"
    return SourceError(msg, value=name, hint="pin a tag or a commit, or set live_code_allow_branch: true")


def resolve(store: Store, rem: git.Remote, mirror: Path, pin: Pin, allow_branch: bool, allow_moved: bool) -> Resolved:
    value = pin.value
    if pin.kind == "commit":
        return resolve_commit(store, rem, mirror, git.check_sha(value))
    if pin.kind == "legacy-ref" and len(value) == 40 and git.is_hex(value) and trusted(mirror, value.lower()):
        return Resolved("commit", value.lower(), False)
    tag_ref, head_ref = f"refs/tags/{value}", f"refs/heads/{value}"
    refs = git.ls_remote(rem, [tag_ref, head_ref])
    if tag_ref in refs and pin.kind in ("tag", "legacy-ref"):
        return resolve_tag(store, rem, mirror, value, refs, pin.commit, allow_moved)
    if head_ref in refs and pin.kind in ("branch", "legacy-ref"):
        if not allow_branch:
            raise branch_refused(value)
        return resolve_branch(store, rem, mirror, value, refs[head_ref])
    if pin.kind == "legacy-ref" and git.is_hex(value):
        return resolve_commit(store, rem, mirror, git.check_sha(value))
    what = {"tag": "tag", "branch": "branch"}.get(pin.kind, "tag, branch or commit")
    hint = "check the name and that it was pushed"
    if pin.kind == "tag" and head_ref in refs:
        hint = "it is a branch, not a tag: tag the commit you mean, or pin the commit"
    raise SourceError(f"no {what} {value!r} in {rem.display}", value=value, hint=hint)


def resolve_commit(store: Store, rem: git.Remote, mirror: Path, sha: str) -> Resolved:
    if len(sha) < 40:
        return resolve_abbrev(store, rem, mirror, sha)
    if trusted(mirror, sha):
        return Resolved("commit", sha, False)
    with mirror_lock(store, rem, mirror) as fd:
        if trusted(mirror, sha):  # another process fetched it while we waited
            return Resolved("commit", sha, False)
        fetched = holds_no_objects(mirror) or not (
            git.object_type(mirror, sha) == "commit" and git.is_complete(mirror, sha)
        )
        if fetched:
            git.fetch_commit(rem, mirror, sha, KEEP + sha, pass_fds=(fd,))
        else:  # complete already (fetched for another pin): trust it from now on
            git.update_ref(mirror, KEEP + sha, sha)
        check_commit(mirror, sha, f"commit {sha}")
    return Resolved("commit", sha, fetched)


def resolve_branch(store: Store, rem: git.Remote, mirror: Path, branch: str, sha: str) -> Resolved:
    ref, fetched = f"refs/heads/{branch}", False
    if not trusted(mirror, sha):
        with mirror_lock(store, rem, mirror) as fd:
            git.fetch(rem, mirror, [f"+{ref}:{ref}"], depth=1, pass_fds=(fd,))
            fetched = True
            sha = git.resolve(mirror, ref) or sha  # it may have moved since ls-remote: record what we got
            check_commit(mirror, sha, f"branch {branch}")
            git.update_ref(mirror, KEEP + sha, sha)
    return Resolved("branch", sha, fetched)
