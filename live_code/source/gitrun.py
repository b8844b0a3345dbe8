"""Running git: its hardened environment, the deadline of a step, retries, and the local calls.

``hardened_env`` builds git's whole environment from an allowlist: ``GIT_ALLOW_PROTOCOL``, no
prompts, no system/global config, hooks off, ``transfer.fsckObjects``, no submodule recursion,
LFS smudge off, low-speed limits, no credential helper but ours. Extra config goes through
``GIT_CONFIG_COUNT``/``KEY``/``VALUE`` so nothing user-controlled reaches argv. A credential is
handed to git by a credential helper scoped to the URL's scheme and host that prints it from an
environment variable: it is never in argv, in a URL or in a repo's config.

``git.py`` re-exports these names; callers use them from there.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from live_code import util
from live_code.record import record
from live_code.source.urls import TOKEN_USERNAME, NormalisedUrl, is_hex

#: seconds for the whole source step (resolve, fetch, check out), overridable per call
DEFAULT_DEADLINE = 300.0
#: abort an http transfer slower than this many bytes/s for LOW_SPEED_TIME seconds
LOW_SPEED_LIMIT = 1000
LOW_SPEED_TIME = 30
_USER_VAR, _SECRET_VAR = "LIVE_CODE_GIT_HELPER_USERNAME", "LIVE_CODE_GIT_HELPER_SECRET"
# The helper answers only "get"; git runs it through the shell with the operation appended, so the
# command line holds variable names, never values.
_HELPER = f'!f() {{ test "$1" = get && printf "username=%s\\npassword=%s\\n" "${_USER_VAR}" "${_SECRET_VAR}"; }}; f'
_PASS_ENV = (
    "PATH",
    "HOME",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    *(name for proxy in ("http", "https", "no", "all") for name in (f"{proxy}_proxy", f"{proxy.upper()}_PROXY")),
)
# coreutils timeout kills git's group even if this process dies first (SIGKILL of the harness).
_TIMEOUT_BIN = shutil.which("timeout")


def _config_env(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for i, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def hardened_env(
    url: NormalisedUrl | None = None,
    *,
    protocols: Iterable[str],
    low_speed_time: int = LOW_SPEED_TIME,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """git's whole environment: an allowlist of ``base`` (default ``os.environ``) plus the locks.

    ``protocols`` become ``GIT_ALLOW_PROTOCOL`` (``ext`` and ``fd`` are never allowed). With a
    ``url`` that carries a secret, a credential helper scoped to its scheme and host supplies it.
    """
    src = os.environ if base is None else base
    env = {k: src[k] for k in _PASS_ENV if k in src}
    env.setdefault("PATH", os.defpath)
    if "SSL_CERT_FILE" in env and "GIT_SSL_CAINFO" not in env and "GIT_SSL_CAPATH" not in env:
        # git linked with GnuTLS (Debian's) ignores SSL_CERT_FILE: a site CA given there must reach it
        env["GIT_SSL_CAINFO"] = env["SSL_CERT_FILE"]
    allowed = sorted(set(protocols) - {"ext", "fd"})
    env.update(
        {
            "GIT_ALLOW_PROTOCOL": ":".join(allowed),
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_SYSTEM": os.devnull,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ATTR_NOSYSTEM": "1",
            "GIT_LFS_SKIP_SMUDGE": "1",
            "GIT_NO_LAZY_FETCH": "1",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GCM_INTERACTIVE": "never",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=30 -o ControlMaster=no -o ControlPath=none",
            "LC_ALL": "C",  # stable messages: failures are classified from git's stderr
        }
    )
    pairs = [
        ("protocol.allow", "never"),
        ("core.hooksPath", os.devnull),
        ("core.fsmonitor", "false"),
        ("transfer.fsckObjects", "true"),
        ("transfer.credentialsInUrl", "die"),
        ("protocol.version", "2"),
        ("gc.auto", "0"),
        ("maintenance.auto", "false"),
        ("fetch.recurseSubmodules", "false"),
        ("submodule.recurse", "false"),
        ("http.lowSpeedLimit", str(LOW_SPEED_LIMIT)),
        ("http.lowSpeedTime", str(max(1, low_speed_time))),
        ("http.followRedirects", "initial"),
        ("advice.detachedHead", "false"),
        ("credential.helper", ""),  # an empty value clears any helper from other config
    ]
    if url is not None and url.secret:
        pairs.append((f"credential.{url.scheme}://{url.host}.helper", _HELPER))
        env[_USER_VAR], env[_SECRET_VAR] = url.username or TOKEN_USERNAME, url.secret
    env.update(_config_env(pairs))
    return env


class Deadline:
    """A wall-clock budget shared by every git call of one step."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())


@record
class RetryPolicy:
    """Capped exponential backoff with full jitter, for transient network failures only."""

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


#: three attempts, 1 s to 8 s apart
DEFAULT_RETRY = RetryPolicy()


@record
class Remote:
    """Everything a network call needs: the URL, git's environment, the deadline and retries."""

    url: NormalisedUrl
    env: Mapping[str, str]
    deadline: Deadline
    retry: RetryPolicy = DEFAULT_RETRY
    #: the URL the task gave, when ``url`` is the operator's mirror of it (``live_code.source.mirrors``)
    origin: NormalisedUrl | None = None
    #: called as each network call starts (``Store.fetch_source``'s ``on_network``)
    on_network: Callable[[], None] | None = None

    @property
    def repo(self) -> NormalisedUrl:
        """The repository's identity, which pins and the cache are keyed by: the URL the task gave."""
        return self.origin or self.url

    @property
    def display(self) -> str:
        """The remote for messages: a mirror names the URL it stands for too (credential-free)."""
        return f"{self.url.display}, the mirror of {self.origin.display}" if self.origin else self.url.display


def remote(
    url: NormalisedUrl,
    *,
    deadline: Deadline,
    retry: RetryPolicy = DEFAULT_RETRY,
    extra_protocols: Iterable[str] = (),
    origin: NormalisedUrl | None = None,
    on_network: Callable[[], None] | None = None,
) -> Remote:
    """A :class:`Remote` whose ``GIT_ALLOW_PROTOCOL`` is exactly the URL's protocol (+ extras);
    ``origin``: the URL the task gave when ``url`` is a mirror of it; ``on_network``: see
    :class:`Remote`."""
    env = hardened_env(
        url,
        protocols={url.scheme, *extra_protocols},
        low_speed_time=int(min(LOW_SPEED_TIME, max(1.0, deadline.seconds / 2))),
    )
    return Remote(url, env, deadline, retry, origin, on_network)


def run_git(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    deadline: Deadline,
    cwd: str | os.PathLike[str] | None = None,
    secrets: Iterable[str] = (),
    pass_fds: Sequence[int] = (),
    check: bool = True,
    network: bool = False,
    stdin: bytes | None = None,
) -> tuple[int, str, str]:
    """Run ``git *args`` with ``env`` until the deadline (then its process group is killed);
    ``stdin``: bytes to feed it (else its stdin is closed)."""
    timeout = deadline.remaining()
    if timeout <= 0:
        raise util.CalledProcessError(["git", *args], None, "", "deadline passed before git ran", timed_out=True)
    argv = ["git", *args]
    if network and _TIMEOUT_BIN:
        argv = [_TIMEOUT_BIN, "-s", "KILL", f"{timeout + 5:.0f}", *argv]
    return util.cmd_output(
        *argv, cwd=cwd, env=env, timeout=timeout, secrets=secrets, pass_fds=pass_fds, check=check, stdin=stdin
    )


# -- local calls -----------------------------------------------------------------------------


def _local(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    check: bool = True,
    cwd: Path | None = None,
    stdin: bytes | None = None,
) -> tuple[int, str, str]:
    return run_git(
        args, env=env or hardened_env(protocols=()), deadline=Deadline(120), cwd=cwd, check=check, stdin=stdin
    )


def init_bare(path: Path) -> None:
    """An empty bare repository at ``path`` without template hooks."""
    _local(["init", "--bare", "--quiet", "--template=", str(path)])


def object_type(git_dir: Path, obj: str) -> str | None:
    rc, out, _ = _local(["--git-dir", str(git_dir), "cat-file", "-t", "--end-of-options", obj], check=False)
    return out.strip() if rc == 0 else None


def resolve(git_dir: Path, rev: str) -> str | None:
    """The object id ``rev`` names in ``git_dir`` (e.g. ``refs/tags/v1^{}``), or None."""
    args = ["--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", "--end-of-options", rev]
    rc, out, _ = _local(args, check=False)
    return out.strip() if rc == 0 else None


def is_complete(git_dir: Path, sha: str) -> bool:
    """Whether the commit and its whole tree are present (a killed fetch may leave parts)."""
    rc, _, _ = _local(["--git-dir", str(git_dir), "rev-list", "--objects", "--no-walk", sha, "--"], check=False)
    return rc == 0


def update_ref(git_dir: Path, ref: str, sha: str) -> None:
    _local(["--git-dir", str(git_dir), "update-ref", "--no-deref", ref, sha])


def delete_ref(git_dir: Path, ref: str) -> None:
    _local(["--git-dir", str(git_dir), "update-ref", "--no-deref", "-d", ref], check=False)


def commits_with_prefix(git_dir: Path, prefix: str) -> list[str]:
    """Every commit in ``git_dir`` whose id starts with ``prefix`` (to resolve abbreviations)."""
    _, out, _ = _local(["--git-dir", str(git_dir), "rev-parse", f"--disambiguate={prefix}"], check=False)
    ids = [x for x in out.split() if is_hex(x)]
    return sorted(i for i in ids if object_type(git_dir, i) == "commit")
