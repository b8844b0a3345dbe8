"""Pretrained weights by URL: downloaded once with requests, checked by SHA-256, cached.

A URL alone does not pin a file (the server may change it), so a download needs the file's
SHA-256. Failures are bounded: a connect timeout, a read timeout per chunk, a few retries with
back-off; a network that is not there fails within seconds, never hangs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import urllib.parse

import requests

logger = logging.getLogger(__name__)

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
#: (connect, read) seconds; read is the longest silence between two chunks
TIMEOUT = (10.0, 60.0)
_CHUNK = 1 << 20
_LOG_EVERY_S = 5.0


class DownloadFailed(Exception):
    """The file could not be fetched (network, server); the caller decides whether to go on."""


class ChecksumMismatch(Exception):
    """The bytes are not the ones ``pretrained_sha256`` names (never used)."""


def is_url(value: str) -> bool:
    return urllib.parse.urlsplit(value).scheme in ("http", "https")


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _redacted(url: str) -> str:
    """The URL without user info or query (either may carry a token)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def cached_name(url: str) -> str:
    """The file name a download is kept under: the URL's last path part when it ends in ``.pt``."""
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    return name if name.endswith(".pt") and not name.startswith(".") else "weights.pt"


def fetch(url: str, sha256: str, cache_dir: str, *, retries: int = 3) -> str:
    """The local path of the file at ``url`` whose SHA-256 is ``sha256``: from ``cache_dir`` when a
    previous run fetched it, else downloaded into it. Raises DownloadFailed or ChecksumMismatch."""
    sha256 = sha256.strip().lower()
    if not SHA256_RE.match(sha256):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    folder = os.path.join(cache_dir, sha256)
    path = os.path.join(folder, cached_name(url))
    shown = _redacted(url)
    if os.path.isfile(path) and file_sha256(path) == sha256:
        logger.info("pretrained weights %s: cached at %s", shown, path)
        return path
    os.makedirs(folder, exist_ok=True)
    part = f"{path}.part-{os.getpid()}"
    last_error = ""
    for attempt in range(retries + 1):
        if attempt:
            delay = min(30.0, 2.0 ** (attempt - 1))
            logger.warning(
                "download of %s failed (%s); retry %d/%d in %.0f s", shown, last_error, attempt, retries, delay
            )
            time.sleep(delay)
        try:
            got = _download(url, part, shown)
        except _Fatal as e:
            _remove(part)
            raise DownloadFailed(f"cannot download {shown}: {e}") from None
        except (requests.RequestException, OSError) as e:
            _remove(part)
            last_error = f"{type(e).__name__}: {e}"
            continue
        if got != sha256:
            _remove(part)
            msg = (
                f"{shown} has SHA-256 {got}, not the {sha256} that pretrained_sha256 names; "
                "the file changed or the checksum is wrong"
            )
            raise ChecksumMismatch(msg)
        os.replace(part, path)
        logger.info("pretrained weights %s: downloaded to %s (sha256 ok)", shown, path)
        return path
    raise DownloadFailed(f"cannot download {shown} after {retries + 1} attempts: {last_error}")


class _Fatal(Exception):
    """An answer that a retry will not change (4xx other than 408/429)."""


def _download(url: str, dest: str, shown: str) -> str:
    digest = hashlib.sha256()
    with requests.get(url, stream=True, timeout=TIMEOUT, headers={"Accept-Encoding": "identity"}) as response:
        status = response.status_code
        if 400 <= status < 500 and status not in (408, 429):
            raise _Fatal(f"HTTP {status} {response.reason}")
        response.raise_for_status()
        total = int(response.headers.get("Content-Length") or 0)
        done, started, logged = 0, time.monotonic(), time.monotonic()
        with open(dest, "wb") as f:
            for chunk in response.iter_content(_CHUNK):
                f.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                now = time.monotonic()
                if now - logged >= _LOG_EVERY_S:
                    logged = now
                    share = f" ({100.0 * done / total:.0f}%)" if total else ""
                    logger.info(
                        "downloading %s: %.1f MB%s, %.1f MB/s",
                        shown,
                        done / 1e6,
                        share,
                        done / 1e6 / max(now - started, 1e-6),
                    )
    if total and done != total:
        raise requests.ConnectionError(f"got {done} of {total} bytes")
    return digest.hexdigest()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
