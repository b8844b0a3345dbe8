"""git's network calls: listing refs and fetching, with retries of transient failures only.

Every call runs through ``gitrun.run_git`` with the step's wall-clock deadline, which kills the
whole process group, and ``coreutils timeout`` around git, which kills it even when the harness
dies first. Failures are classified from git's ``LC_ALL=C`` stderr into a reason and a hint.

``git.py`` re-exports these names; callers use them from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from live_code import util
from live_code.errors import SourceError
from live_code.source.gitrun import Remote, object_type, run_git, update_ref
from live_code.source.urls import TOKEN_ENV, is_hex

log = logging.getLogger("live_code.source.git")


class _Failure(NamedTuple):
    reason: str  # auth | not-found | no-ref | sha-not-allowed | refused | timeout | network | error
    transient: bool
    hint: str


_PERMANENT = (
    ("refused", ("' not allowed", "strange pathname"), "only checked URLs of allowed schemes reach git"),
    (
        "tls",
        ("ssl certificate problem", "certificate verify failed", "server certificate verification failed"),
        "check the server's certificate and the CA bundle (SSL_CERT_FILE, GIT_SSL_CAINFO)",
    ),
    ("sha-not-allowed", ("does not allow request for unadvertised object",), ""),
    # protocol v2 serves any commit by id, so there "not our ref" means the commit does not exist
    (
        "no-ref",
        ("couldn't find remote ref", "not our ref", "no such ref", "invalid refspec"),
        "check that the tag, branch or commit exists in the repository (was it pushed?)",
    ),
    (
        "auth",
        (
            "authentication failed",
            "could not read username",
            "could not read password",
            "returned error: 401",
            "returned error: 403",
            "permission denied (publickey",
            "host key verification failed",
            "invalid username or password",
            "invalid credentials",
        ),
        f"check the credential (https://user:TOKEN@host/... or {TOKEN_ENV}) and that it can read the repository",
    ),
    (
        "not-found",
        (
            "repository not found",
            "' not found",
            "returned error: 404",
            "does not appear to be a git repository",
            "not a git repository",
            "repository not exported",
            "no such repository",
        ),
        "check git_url: the repository does not exist, or it is private and needs a token",
    ),
)
_TRANSIENT = (
    "could not resolve host",
    "temporary failure in name resolution",
    "connection refused",
    "connection reset",
    "connection timed out",
    "timed out",
    "operation too slow",
    "early eof",
    "remote end hung up unexpectedly",
    "rpc failed",
    "returned error: 5",
    "returned error: 429",
    "failed to connect",
    "unable to connect",
    "network is unreachable",
    "unexpected disconnect",
    "broken pipe",
    "gnutls",
    "ssl_connect",
    "ssl_error",
    "tls connection",
)


def classify(stderr: str, timed_out: bool = False) -> _Failure:
    """Why a git network call failed, from its (``LC_ALL=C``) stderr."""
    if timed_out:
        return _Failure("timeout", False, "the server did not answer in time: check the network, or raise the deadline")
    text = stderr.lower()
    for reason, needles, hint in _PERMANENT:
        if any(n in text for n in needles):
            return _Failure(reason, False, hint)
    if any(n in text for n in _TRANSIENT):
        return _Failure("network", True, "check the network and the host name")
    return _Failure("error", False, "see git's message above")


class _GitFailure(Exception):
    def __init__(self, failure: _Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure, self.detail = failure, detail


def _network(
    what: str, rem: Remote, args: Sequence[str], *, cwd: Path | None = None, pass_fds: Sequence[int] = ()
) -> str:
    """Run a network git call with retries; raise :class:`_GitFailure` when it finally fails."""
    if rem.on_network is not None:
        rem.on_network()
    attempt = 0
    while True:
        try:
            return run_git(
                args,
                env=rem.env,
                deadline=rem.deadline,
                cwd=cwd,
                secrets=rem.url.secrets,
                pass_fds=pass_fds,
                network=True,
            )[1]
        except util.CalledProcessError as e:
            failure = classify(e.stderr, e.timed_out)
            lines = [ln.strip() for ln in e.stderr.splitlines() if ln.strip()]
            detail = "; ".join(lines[-3:]) or f"exit code {e.returncode}"
            if e.timed_out:
                detail = f"no answer within the {rem.deadline.seconds:.0f}s deadline"
            attempt += 1
            delay = rem.retry.delay(attempt - 1)
            if not failure.transient or attempt >= rem.retry.attempts or delay + 1 > rem.deadline.remaining():
                raise _GitFailure(failure, f"{what} failed after {attempt} attempt(s): {detail}") from None
            log.warning("%s of %s failed (%s); retrying in %.1fs", what, rem.display, detail, delay)
            time.sleep(delay)


def _source_error(rem: Remote, e: _GitFailure) -> SourceError:
    hint = e.failure.hint or None
    if rem.origin is not None:
        note = f"the operator's LIVE_CODE_GIT_MIRRORS sends {rem.origin.display} to this mirror"
        hint = f"{hint}; {note}" if hint else note
    return SourceError(f"{e.detail} ({rem.display})", value=rem.display, hint=hint)


def ls_remote(rem: Remote, refs: Sequence[str]) -> dict[str, str]:
    """``{ref: sha}`` for exactly the named refs the server has (peeled tags as ``ref^{}``)."""
    patterns = [p for r in refs for p in (r, r + "^{}")]
    try:
        out = _network("listing refs", rem, ["ls-remote", "--", rem.url.url, *patterns])
    except _GitFailure as e:
        raise _source_error(rem, e) from None
    found = {}
    for line in out.split("\n"):  # not splitlines(): other separators must not split a line (as pip)
        sha, _, name = line.partition("\t")
        if name in patterns and is_hex(sha):
            found[name] = sha.lower()
    return found


def _fetch_args(git_dir: Path, url: str, refspecs: Sequence[str], depth: int | None, unshallow: bool) -> list[str]:
    opts = ["--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", "--no-auto-gc", "--quiet"]
    if depth:
        opts += ["--depth", str(depth)]
    if unshallow:
        opts.append("--unshallow")
    # The URL is validated and credential-free, so it may be a positional argument: it and the
    # refspecs (built from validated names) come after "--", where git reads no option.
    return ["--git-dir", str(git_dir), "fetch", *opts, "--", url, *refspecs]


def fetch(
    rem: Remote, git_dir: Path, refspecs: Sequence[str], *, depth: int | None = None, pass_fds: Sequence[int] = ()
) -> None:
    """Fetch ``refspecs`` from the remote into the bare repo ``git_dir``."""
    try:
        _network("fetching", rem, _fetch_args(git_dir, rem.url.url, refspecs, depth, False), pass_fds=pass_fds)
    except _GitFailure as e:
        raise _source_error(rem, e) from None


def fetch_all(rem: Remote, git_dir: Path, *, pass_fds: Sequence[int] = ()) -> None:
    """Fetch every branch and tag with full history (when a single commit cannot be asked for)."""
    shallow = (git_dir / "shallow").exists()
    args = _fetch_args(git_dir, rem.url.url, ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], None, shallow)
    try:
        _network("fetching all branches and tags", rem, args, pass_fds=pass_fds)
    except _GitFailure as e:
        raise _source_error(rem, e) from None


def fetch_commit(rem: Remote, git_dir: Path, sha: str, ref: str, *, pass_fds: Sequence[int] = ()) -> bool:
    """Fetch the single commit ``sha`` (full id) into ``ref``; True if that was allowed.

    Servers speaking protocol v2 (GitHub, GitLab, git >= 2.18) hand out any commit by id. Older
    ones refuse unadvertised objects unless ``uploadpack.allow*SHA1InWant`` is set: then every
    branch and tag is fetched and the commit must be among them (False is returned).
    """
    try:
        _network(
            "fetching a commit", rem, _fetch_args(git_dir, rem.url.url, [f"+{sha}:{ref}"], 1, False), pass_fds=pass_fds
        )
        return True
    except _GitFailure as e:
        if e.failure.reason != "sha-not-allowed":
            raise _source_error(rem, e) from None
    log.info("%s does not serve single commits; fetching its branches and tags", rem.display)
    fetch_all(rem, git_dir, pass_fds=pass_fds)
    if object_type(git_dir, sha) is None:
        msg = f"commit {sha} is not on any branch or tag of {rem.display}"
        raise SourceError(msg, value=sha, hint="check the commit id and that it was pushed")
    update_ref(git_dir, ref, sha)
    return False
