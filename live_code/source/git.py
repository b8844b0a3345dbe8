"""Stateless git calls with a hardened environment and deadlines.

Everything that reaches git from a task (the URL, a ref) is checked here before git runs, and git
itself is locked down through its environment, never through user-controlled argv:

- ``normalise_url`` accepts https and ssh (``http``/``git`` only when a caller lists them, which
  tests do), and local paths or ``file://`` only with ``allow_local`` (the operator's
  ``LIVE_CODE_ALLOW_LOCAL_REPOS=1``, never the task config). ``ext::``/``fd::`` and other
  ``transport::`` forms, anything starting with ``-``, control characters, ``$``, queries and
  fragments are refused. A credential in the URL is split off into ``secret``; the URL git sees,
  the cache id and every message are credential-free.
- ``hardened_env`` builds git's whole environment from an allowlist: ``GIT_ALLOW_PROTOCOL``, no
  prompts, no system/global config, hooks off, ``transfer.fsckObjects``, no submodule recursion,
  LFS smudge off, low-speed limits, no credential helper but ours. Extra config goes through
  ``GIT_CONFIG_COUNT``/``KEY``/``VALUE`` so nothing user-controlled reaches argv.
- A credential is handed to git by a credential helper scoped to the URL's scheme and host that
  prints it from an environment variable: it is never in argv, in a URL or in a repo's config.
- Network calls run through ``util.cmd_output`` with a wall-clock deadline that kills the whole
  process group, and are retried with capped, jittered backoff for transient failures only.

GitPython is used to read commit metadata from a local repository (``commit_info``). The network
calls are plain git subprocesses this module controls, because GitPython's ``Repo.clone_from``
ignores ``kill_after_timeout`` (it runs with ``as_process=True``; GitPython issue #892), so a
stalled server would hang it forever.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import os
import random
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

from live_code import util
from live_code.errors import SourceError, UnsafeSourceError

log = logging.getLogger(__name__)

ALLOW_LOCAL_ENV = "LIVE_CODE_ALLOW_LOCAL_REPOS"
TOKEN_ENV = "LIVE_CODE_GIT_TOKEN"
#: comma-separated hosts the token may be sent to; unset means the host of any URL given
TOKEN_HOSTS_ENV = "LIVE_CODE_GIT_TOKEN_HOSTS"
DEFAULT_SCHEMES = frozenset({"https", "ssh"})
_NETWORK_SCHEMES = frozenset({"https", "ssh", "http", "git"})
_DEFAULT_PORTS = {"https": "443", "http": "80", "ssh": "22", "git": "9418"}
#: seconds for the whole source step (resolve, fetch, check out), overridable per call
DEFAULT_DEADLINE = 300.0
#: abort an http transfer slower than this many bytes/s for LOW_SPEED_TIME seconds
LOW_SPEED_LIMIT = 1000
LOW_SPEED_TIME = 30
#: the username sent with a bare token (https://TOKEN@host/...); GitHub, GitLab and Gitea accept any
TOKEN_USERNAME = "x-access-token"
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
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
)
# coreutils timeout kills git's group even if this process dies first (SIGKILL of the harness).
_TIMEOUT_BIN = shutil.which("timeout")

_TRANSPORT_RE = re.compile(r"^[A-Za-z0-9+._~-]*::")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_RE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:\[\]]+):(?P<path>[^/].*|/.*)$")
_HOST_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_IPV6_RE = re.compile(r"^\[[0-9a-f:.]+\]$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")
_PATH_RE = re.compile(r"^[A-Za-z0-9._~/+=,!@%-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{7,40}$|^[0-9a-f]{64}$")
_REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+/@-]*$")


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NormalisedUrl:
    """A checked repository URL. ``url`` is what git gets: credential-free, lower-case scheme and
    host, default port and trailing slashes dropped. ``secret`` (and ``username``) travel separately
    and only ever through the credential helper."""

    scheme: str
    host: str
    path: str
    url: str
    username: str | None = None
    secret: str | None = field(default=None, repr=False, compare=False)

    @property
    def display(self) -> str:
        """The form for messages, logs and records: the credential, if any, shown as ``***``."""
        return self.url.replace("://", "://***@", 1) if self.secret else self.url

    @property
    def cache_id(self) -> str:
        """Stable key of the mirror: sha256 of the credential-free URL."""
        return hashlib.sha256(self.url.encode()).hexdigest()

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret,) if self.secret else ()

    def with_secret(self, secret: str | None, username: str | None = None) -> NormalisedUrl:
        if self.scheme not in ("https", "http"):
            return self
        return dataclasses.replace(self, secret=secret or None, username=username or TOKEN_USERNAME)


def allow_local_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the operator enabled local paths and ``file://`` (``LIVE_CODE_ALLOW_LOCAL_REPOS=1``)."""
    env = os.environ if environ is None else environ
    return env.get(ALLOW_LOCAL_ENV, "").strip().lower() in ("1", "true", "yes")


def token_from_env(url: NormalisedUrl, environ: Mapping[str, str] | None = None) -> str | None:
    """``LIVE_CODE_GIT_TOKEN`` if it may go to this URL's host (``LIVE_CODE_GIT_TOKEN_HOSTS``)."""
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV) or None
    hosts = {h.strip().lower() for h in env.get(TOKEN_HOSTS_ENV, "").split(",") if h.strip()}
    if token and hosts and url.host not in hosts and url.host.split(":")[0] not in hosts:
        return None
    return token


def _shown(raw: str) -> str:
    """A refused URL as it may appear in a message: credentials, query and fragment hidden."""
    text = util.redact(raw)
    for mark in "?#":
        if mark in text:
            text = text.split(mark, 1)[0] + mark + util.REDACTED
    return text if len(text) <= 200 else text[:200] + "..."


def _refuse(raw: str, why: str, hint: str) -> UnsafeSourceError:
    return UnsafeSourceError(f"git_url refused: {why}", value=_shown(raw), hint=hint)


def normalise_url(url: str, *, allow_local: bool, schemes: Iterable[str] = DEFAULT_SCHEMES) -> NormalisedUrl:
    """Check ``url`` and return its normalised form, or raise :class:`UnsafeSourceError`.

    ``schemes`` are the network schemes accepted (default https and ssh); local paths and
    ``file://`` are accepted only with ``allow_local``.
    """
    schemes = frozenset(schemes) & _NETWORK_SCHEMES
    raw = url.strip() if isinstance(url, str) else ""
    https_hint = "use an https:// URL such as https://github.com/owner/repo"
    if not raw:
        raise _refuse(str(url), "it is empty or not a string", https_hint)
    if len(raw) > 2048 or any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in raw):
        raise _refuse(raw, "it is too long or holds spaces, control or non-ASCII characters", https_hint)
    if raw.startswith("-"):
        raise _refuse(raw, "it starts with '-' (git would read it as an option)", https_hint)
    if _TRANSPORT_RE.match(raw) or "::" in re.sub(r"\[[^\]]*\]", "", raw):
        raise _refuse(raw, "transport::address URLs (ext::, fd::) make git run programs", https_hint)
    if any(c in raw for c in "$`\\\"'<>|;{}^*"):
        raise _refuse(raw, "it holds shell or variable characters ($ ` \\ quotes < > | ; { } ^ *)", https_hint)
    if "?" in raw or "#" in raw:
        raise _refuse(raw, "a query or fragment is not part of a git URL", "remove everything from '?' or '#'")
    m = _SCHEME_RE.match(raw)
    if m:
        scheme, rest = m.group(1).lower(), raw[m.end() :]
    elif _SCP_RE.match(raw) and not raw.startswith(("/", ".", "~")):
        scheme, rest = "scp", raw
    else:
        scheme, rest = "file", raw
    if scheme == "file":
        return _normalise_local(raw, rest if m else None, allow_local)
    if ("ssh" if scheme == "scp" else scheme) not in schemes:
        allowed = ", ".join(sorted(schemes)) or "none"
        raise _refuse(raw, f"scheme {scheme!r} is not allowed (allowed: {allowed})", https_hint)
    if scheme == "scp":
        return _normalise_scp(raw)
    netloc, _, path = rest.partition("/")
    userinfo, _, hostport = netloc.rpartition("@")
    host, port = _split_host(raw, hostport)
    port = "" if port == _DEFAULT_PORTS[scheme] else port
    path = _check_path(raw, "/" + path)
    username = secret = None
    if userinfo and scheme == "ssh":
        if ":" in userinfo or not _USER_RE.match(userinfo):
            raise _refuse(raw, "an ssh URL may name a user but not a password", "use ssh keys (ssh-agent)")
        username = userinfo
    elif userinfo and scheme == "git":
        raise _refuse(raw, "git:// has no authentication", "use https:// with a token")
    elif userinfo:
        user, colon, password = userinfo.partition(":")
        secret, username = (unquote(password), unquote(user)) if colon and password else (unquote(user), None)
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret + (username or "")):
            raise _refuse(raw, "the credential holds %-encoded control characters", "check the token")
    who = f"{username}@" if scheme == "ssh" and username else ""
    norm = f"{scheme}://{who}{host}{':' + port if port else ''}{path}"
    result = NormalisedUrl(scheme, host + (f":{port}" if port else ""), path, norm)
    return result.with_secret(secret, username) if secret else result


def _split_host(raw: str, hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        host, port = f"[{host.lower()}]", port[1:] if port.startswith(":") else port
        ok = bool(_IPV6_RE.match(host))
    else:
        host, _, port = hostport.partition(":")
        host = host.lower().rstrip(".")
        ok = bool(_HOST_RE.match(host))
    if not ok or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise _refuse(raw, "the host or port is not valid", "check the host name in git_url")
    return host, port


def _check_path(raw: str, path: str) -> str:
    path = path.rstrip("/")
    segments = path.split("/")[1:]
    if not path or not _PATH_RE.match(path) or any(s in ("..", ".") for s in segments):
        raise _refuse(
            raw,
            "the repository path is empty or holds '..' or unusual characters",
            "give the repository path, e.g. /owner/repo",
        )
    if re.search(r"%(?![0-9A-Fa-f]{2})", path):
        raise _refuse(raw, "the path holds a bad %-escape", "check the repository path")
    return path


def _normalise_scp(raw: str) -> NormalisedUrl:
    m = _SCP_RE.match(raw)
    assert m is not None
    user, host = m.group("user"), m.group("host").lower().rstrip(".")
    if (user is not None and not _USER_RE.match(user)) or not _HOST_RE.match(host):
        raise _refuse(raw, "the ssh user or host is not valid", "use ssh://user@host/owner/repo")
    path = m.group("path").rstrip("/")
    if not path or path.startswith("-") or not _PATH_RE.match(path) or ".." in path.split("/"):
        raise _refuse(raw, "the ssh path is empty or unusual", "use ssh://user@host/owner/repo")
    # Kept in scp form: host:path is relative to the login's home, ssh://host/path is absolute.
    norm = f"{user + '@' if user else ''}{host}:{path}"
    return NormalisedUrl("ssh", host, path, norm, username=user)


def _normalise_local(raw: str, after_scheme: str | None, allow_local: bool) -> NormalisedUrl:
    if not allow_local:
        raise _refuse(
            raw,
            "local paths and file:// URLs are disabled",
            f"use an https:// URL (operators enable local repositories with {ALLOW_LOCAL_ENV}=1)",
        )
    if after_scheme is not None:
        host, slash, path = after_scheme.partition("/")
        if host not in ("", "localhost") or not slash:
            raise _refuse(raw, "a file:// URL names no host", "use file:///absolute/path")
        path = "/" + path
    else:
        path = raw
    real = os.path.realpath(os.path.expanduser(path))
    return NormalisedUrl("file", "", real, f"file://{real}")


def check_ref(name: str, what: str = "tag") -> str:
    """A tag or branch name that is safe to put in a refspec, or :class:`UnsafeSourceError`."""
    bad = (
        not isinstance(name, str)
        or not _REF_RE.match(name)
        or len(name) > 255
        or ".." in name
        or "//" in name
        or "@{" in name
        or name.endswith(("/", ".", ".lock"))
        or "/." in name
        or name.startswith("refs/")
        or name == "@"
    )
    if bad:
        msg = f"git {what} {name!r} refused: not a plain {what} name"
        hint = f"give the short {what} name (letters, digits, . _ + / @ -), not starting with '-', '/' or 'refs/'"
        raise UnsafeSourceError(msg, value=name, hint=hint)
    return name


def check_sha(value: str) -> str:
    """A full (40) or abbreviated (7-39) hex commit id, lower-cased, or :class:`UnsafeSourceError`."""
    sha = value.lower() if isinstance(value, str) else ""
    if not _SHA_RE.match(sha):
        msg = f"git commit {value!r} refused: not a hex commit id"
        raise UnsafeSourceError(msg, value=value, hint="give at least 7 hex digits of the commit, quoted in YAML")
    if len(sha) == 64:
        raise SourceError("SHA-256 repositories are not supported yet", value=value, hint="use a SHA-1 repository")
    return sha


def is_hex(value: str) -> bool:
    return bool(_SHA_RE.match(value.lower()))


# -- environment and running -----------------------------------------------------------------


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


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, for transient network failures only."""

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass(frozen=True)
class Remote:
    """Everything a network call needs: the URL, git's environment, the deadline and retries."""

    url: NormalisedUrl
    env: Mapping[str, str]
    deadline: Deadline
    retry: RetryPolicy = RetryPolicy()
    #: the URL the task gave, when ``url`` is the operator's mirror of it (``live_code.source.mirrors``)
    origin: NormalisedUrl | None = None

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
    retry: RetryPolicy = RetryPolicy(),
    extra_protocols: Iterable[str] = (),
    origin: NormalisedUrl | None = None,
) -> Remote:
    """A :class:`Remote` whose ``GIT_ALLOW_PROTOCOL`` is exactly the URL's protocol (+ extras);
    ``origin``: the URL the task gave when ``url`` is a mirror of it."""
    env = hardened_env(
        url,
        protocols={url.scheme, *extra_protocols},
        low_speed_time=int(min(LOW_SPEED_TIME, max(1.0, deadline.seconds / 2))),
    )
    return Remote(url, env, deadline, retry, origin)


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
) -> tuple[int, str, str]:
    """Run ``git *args`` with ``env`` until the deadline (then its process group is killed)."""
    timeout = deadline.remaining()
    if timeout <= 0:
        raise util.CalledProcessError(["git", *args], None, "", "deadline passed before git ran", timed_out=True)
    argv = ["git", *args]
    if network and _TIMEOUT_BIN:
        argv = [_TIMEOUT_BIN, "-s", "KILL", f"{timeout + 5:.0f}", *argv]
    return util.cmd_output(*argv, cwd=cwd, env=env, timeout=timeout, secrets=secrets, pass_fds=pass_fds, check=check)


# -- network calls ---------------------------------------------------------------------------


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
        mirrored = f"the operator's LIVE_CODE_GIT_MIRRORS sends {rem.origin.display} to this mirror"
        hint = f"{hint}; {mirrored}" if hint else mirrored
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


# -- local calls -----------------------------------------------------------------------------


def _local(
    args: Sequence[str], env: Mapping[str, str] | None = None, *, check: bool = True, cwd: Path | None = None
) -> tuple[int, str, str]:
    return run_git(args, env=env or hardened_env(protocols=()), deadline=Deadline(120), cwd=cwd, check=check)


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


def materialise(git_dir: Path, ref: str, sha: str, dest: Path, *, tag: str | None = None) -> None:
    """Make ``dest`` (empty) a checkout of commit ``sha``, taken from ``ref`` in the bare ``git_dir``.

    ``dest/.git`` is a repository of its own holding just that commit (shallow, HEAD detached on
    it, the tag if one was pinned, no remote, no credential), so user code and build tools can
    run ``git`` there while nothing in ``dest`` points into, or can write to, ``git_dir``.
    """
    env = hardened_env(protocols={"file"})  # only for our own mirror, never for a task's URL
    if tag and resolve(git_dir, f"refs/tags/{tag}^{{commit}}") != sha:
        tag = None  # the commit came in for another pin: the tag is a decoration we can do without
    refspecs = [f"+{ref}:refs/live-code/pinned"] + ([f"+refs/tags/{tag}:refs/tags/{tag}"] if tag else [])
    _local(["init", "--quiet", "--template=", str(dest)], env)
    _local(
        [
            "fetch",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-recurse-submodules",
            "--quiet",
            "--depth",
            "1",
            "--",
            str(git_dir.resolve()),
            *refspecs,
        ],
        env,
        cwd=dest,
    )
    _local(["checkout", "--quiet", "--detach", sha, "--"], env, cwd=dest)
    delete_ref(dest / ".git", "refs/live-code/pinned")
    if tag and resolve(dest / ".git", f"refs/tags/{tag}^{{commit}}") != sha:
        delete_ref(dest / ".git", f"refs/tags/{tag}")  # moved meanwhile by another run: keep no stale tag
    head = resolve(dest / ".git", "HEAD")
    if head != sha:
        raise AssertionError(f"BUG: checkout of {sha} in {dest} has HEAD {head}")


class Submodule(NamedTuple):
    path: str
    #: as .gitmodules gives it (may be relative to the parent's URL)
    url: str
    #: the commit the parent's tree records for it (the gitlink)
    sha: str


def submodules(dest: Path) -> list[Submodule]:
    """The submodules of the checkout ``dest`` (from its .gitmodules and its tree's gitlinks).

    Paths must stay inside the checkout; URLs are the caller's to check like any task URL.
    """
    if not (dest / ".gitmodules").is_file():
        return []
    rc, out, _ = _local(
        ["config", "--file", ".gitmodules", "--null", "--get-regexp", r"^submodule\..*\.(path|url)$"],
        cwd=dest,
        check=False,
    )
    entries: dict[str, dict[str, str]] = {}
    for item in out.split("\0"):
        key, _, value = item.partition("\n")
        if key.count(".") >= 2:
            name, field = key[len("submodule.") :].rsplit(".", 1)
            entries.setdefault(name, {})[field] = value
    found = []
    for name, fields in sorted(entries.items()):
        path, url = fields.get("path", ""), fields.get("url", "")
        if not path or not url:
            continue
        parts = Path(path).parts
        if os.path.isabs(path) or ".." in parts or path.startswith("-") or not parts:
            raise UnsafeSourceError(
                f"submodule {name!r} has the path {path!r}, which leaves the checkout",
                value=path,
                hint="fix .gitmodules",
            )
        _, tree, _ = _local(["ls-tree", "-z", "HEAD", "--", path], cwd=dest)
        meta, _, _ = tree.partition("\t")
        fields_ = meta.split()
        if len(fields_) == 3 and fields_[0] == "160000" and fields_[1] == "commit":
            found.append(Submodule(path, url, fields_[2]))
    return found


def resolve_submodule_url(parent: str, url: str) -> str:
    """A submodule URL relative to its parent's (``../lib.git``) made absolute, as git does."""
    if not url.startswith(("./", "../")):
        return url
    base = parent.rstrip("/")
    for part in url.split("/"):
        if part == "..":
            base = base.rsplit("/", 1)[0] if "/" in base.split("://", 1)[-1] else base
        elif part not in (".", ""):
            base = f"{base}/{part}"
    return base


class CommitInfo(NamedTuple):
    tree: str
    time: str  # ISO 8601, UTC


def commit_info(git_dir: Path, sha: str) -> CommitInfo:
    """Tree id and commit time of ``sha``, read with GitPython (a local, read-only use)."""
    import git as gitpython  # GitPython; imported here because it costs ~70 ms

    repo = gitpython.Repo(str(git_dir))
    try:
        # GitPython adds to os.environ: drop inherited GIT_* that could redirect it, add our locks.
        overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GIT_")}
        overrides.update(hardened_env(protocols=()))
        repo.git.update_environment(**overrides)
        commit = repo.commit(sha)
        stamp = datetime.datetime.fromtimestamp(commit.committed_date, datetime.timezone.utc)
        return CommitInfo(commit.tree.hexsha, stamp.isoformat().replace("+00:00", "Z"))
    finally:
        repo.close()
