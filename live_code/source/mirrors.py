"""Operator git mirrors: ``LIVE_CODE_GIT_MIRRORS``, for sites that reach a git host (github.com) only
through a mirror of it, or not at all.

The setting is whitespace-separated ``PREFIX=MIRROR`` pairs of ``https://`` URLs::

    LIVE_CODE_GIT_MIRRORS="https://github.com/=https://git.mirror.example/github/"

A repository URL that starts with PREFIX at a path boundary is fetched from MIRROR followed by the
rest of the URL: with the setting above, ``https://github.com/facebookresearch/detectron2`` comes
from ``https://git.mirror.example/github/facebookresearch/detectron2``. The longest matching prefix
wins. Scheme and host are compared without case and the default port is dropped, as
``git.normalise_url`` does; the path is compared as written. A prefix matches only whole host names
and whole path segments: ``https://github.com/`` is not a prefix of ``https://github.com.evil/x``,
nor ``https://github.com/org`` of ``https://github.com/organisation/x``.

Where it applies: the task's ``git_url`` and its submodules (``store.fetch_source``, with the
hardened git of ``live_code.source.git``), and the ``git+https`` requirement lines that the installer gets
(``envs``; the installer's git also gets the rules as ``url.<MIRROR>.insteadOf``, so submodules of a
VCS requirement come from the mirror too). Provenance keeps the URL the task or the requirements file
gave, next to the mirror it was fetched from.

The setting holds no credential: a mirror that needs one gets ``LIVE_CODE_GIT_TOKEN`` under the
same host rule as any URL (``LIVE_CODE_GIT_TOKEN_HOSTS``), for the harness's own fetches only.
This module is pure: it parses the setting and rewrites URL strings; the callers check the result
as they check any URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import NoReturn

from live_code import util
from live_code.errors import ConfigError
from live_code.record import record

MIRRORS_ENV = "LIVE_CODE_GIT_MIRRORS"

_DEFAULT_PORT = "443"
# scheme, host (a name or a bracketed IPv6 address), optional port, path; no userinfo
_URL_RE = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[^\s?#]*)?$"
)
_HOST_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_PATH_RE = re.compile(r"^[A-Za-z0-9._~/+=,!@%-]*$")
_EXAMPLE = f'{MIRRORS_ENV}="https://github.com/=https://git.mirror.example/github/"'


@record
class Rule:
    """One ``PREFIX=MIRROR`` pair, both normalised and without a trailing slash."""

    prefix: str
    mirror: str


@record
class Mirrors:
    """The operator's mirror rules, longest prefix first."""

    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def rewrite(self, url: str) -> str | None:
        """The URL ``url`` is fetched from: MIRROR + the rest of ``url`` for the longest matching
        PREFIX; None when no rule matches (or ``url`` is not an ``https://`` URL without userinfo)."""
        norm = _normal(url)
        if norm is None:
            return None
        for rule in self.rules:  # longest first
            if norm == rule.prefix or norm.startswith(rule.prefix + "/"):
                return rule.mirror + norm[len(rule.prefix) :]
        return None

    def insteadof_config(self) -> list[tuple[str, str]]:
        """git config pairs (``url.<MIRROR>/.insteadOf`` = ``<PREFIX>/``) that send every fetch under a
        prefix to its mirror, for a git we do not drive ourselves (the installer's, with submodules).
        The trailing slashes keep git's plain string match on path boundaries."""
        return [(f"url.{rule.mirror}/.insteadOf", f"{rule.prefix}/") for rule in self.rules]


NO_MIRRORS = Mirrors()


def from_environ(environ: Mapping[str, str] | None = None) -> Mirrors:
    """The rules of ``LIVE_CODE_GIT_MIRRORS`` (no rules when it is unset or empty)."""
    env = os.environ if environ is None else environ
    return parse(env.get(MIRRORS_ENV, ""))


def parse(text: str) -> Mirrors:
    """Parse the setting; raise :class:`ConfigError` naming the first bad pair and the fix."""
    rules: dict[str, Rule] = {}
    for pair in text.split():
        prefix, sep, mirror = pair.partition("=")
        if not sep or not prefix or not mirror:
            _refuse(pair, "each entry is PREFIX=MIRROR")
        rule = Rule(_checked(prefix, pair, "prefix"), _checked(mirror, pair, "mirror"))
        if rule.prefix in rules:
            _refuse(pair, f"the prefix {rule.prefix}/ is given twice")
        if rule.mirror == rule.prefix:
            _refuse(pair, "the mirror is the prefix itself")
        rules[rule.prefix] = rule
    return Mirrors(tuple(sorted(rules.values(), key=lambda r: (-len(r.prefix), r.prefix))))


def _normal(url: str) -> str | None:
    """``url`` with scheme and host lower-cased, the default port and trailing slashes dropped;
    None for anything but an https URL without userinfo."""
    m = _URL_RE.match(url.strip())
    if m is None or m["scheme"].lower() != "https":
        return None
    host = m["host"].lower().rstrip(".")
    port = "" if m["port"] in (None, _DEFAULT_PORT) else f":{m['port']}"
    return f"https://{host}{port}{(m['path'] or '').rstrip('/')}"


def _checked(url: str, pair: str, what: str) -> str:
    scheme, sep, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    if "@" in netloc:
        _refuse(
            pair,
            f"the {what} holds a credential; the setting is logged and recorded",
            "give the mirror's token in LIVE_CODE_GIT_TOKEN, limited to its host with LIVE_CODE_GIT_TOKEN_HOSTS",
        )
    if not sep or scheme.lower() != "https":
        _refuse(
            pair,
            f"the {what} {url!r} is not an https:// URL",
            "give https URLs (a site CA goes in SSL_CERT_FILE / GIT_SSL_CAINFO)",
        )
    host, _, port = netloc.rpartition(":") if not netloc.endswith("]") and ":" in netloc else (netloc, "", "")
    host = host.lower().rstrip(".")
    bad_port = port and not (port.isdigit() and 0 < int(port) < 65536)
    if not (_HOST_RE.match(host) or re.match(r"^\[[0-9a-f:.]+\]$", host)) or bad_port:
        _refuse(pair, f"the {what} {url!r} has no valid host or port")
    path = "/" + path
    if not _PATH_RE.match(path) or any(s in (".", "..") for s in path.split("/")[1:]) or "//" in path.rstrip("/"):
        _refuse(
            pair,
            f"the {what} {url!r} has an unusual path (a query, '.', '..', '//' or characters git URLs do not hold)",
        )
    norm = _normal(url)
    assert norm is not None, url
    return norm


def _refuse(
    pair: str, why: str, hint: str = f"write PREFIX=MIRROR pairs separated by spaces, e.g. {_EXAMPLE}"
) -> NoReturn:
    raise ConfigError(f"{MIRRORS_ENV}: {why}", value=util.redact(pair), hint=hint)
