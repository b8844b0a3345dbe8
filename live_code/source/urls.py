"""Checks of what a task gives git: the repository URL, tag and branch names, commit ids.

Everything here runs before git does (``git.py`` re-exports these names):

- ``normalise_url`` accepts https and ssh (``http``/``git`` only when a caller lists them, which
  tests do), and local paths or ``file://`` only with ``allow_local`` (the operator's
  ``LIVE_CODE_ALLOW_LOCAL_REPOS=1``, never the task config). ``ext::``/``fd::`` and other
  ``transport::`` forms, anything starting with ``-``, control characters, ``$``, queries and
  fragments are refused. A credential in the URL is split off into ``secret``; the URL git sees,
  the cache id and every message are credential-free.
- ``check_ref`` and ``check_sha`` admit only plain tag/branch names and hex commit ids, so what
  reaches a refspec cannot be read as an option or a revision expression.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from live_code import util
from live_code.errors import LiveCodeError, SourceError, UnsafeSourceError
from live_code.record import field, record, replace

ALLOW_LOCAL_ENV = "LIVE_CODE_ALLOW_LOCAL_REPOS"
TOKEN_ENV = "LIVE_CODE_GIT_TOKEN"
#: comma-separated hosts the token may be sent to; unset means the host of any URL given
TOKEN_HOSTS_ENV = "LIVE_CODE_GIT_TOKEN_HOSTS"
DEFAULT_SCHEMES = frozenset({"https", "ssh"})
_NETWORK_SCHEMES = frozenset({"https", "ssh", "http", "git"})
_DEFAULT_PORTS = {"https": "443", "http": "80", "ssh": "22", "git": "9418"}
#: the username sent with a bare token (https://TOKEN@host/...); GitHub, GitLab and Gitea accept any
TOKEN_USERNAME = "x-access-token"

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


@record
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
        return replace(self, secret=secret or None, username=username or TOKEN_USERNAME)


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


def url_secrets(url: str) -> list[str]:
    """The credentials in ``url`` (for redaction), or none when it is not a URL live-code reads."""
    with contextlib.suppress(LiveCodeError):
        return [s for s in normalise_url(url, allow_local=True, schemes=("https", "http")).secrets if s]
    return []
