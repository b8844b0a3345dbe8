"""The lines of a requirements file (and of its ``-r`` includes) checked as input from a stranger.

A requirements file can change where packages come from and what the installer reads
(security-research.md 1.4 and threats 23-25, 28). Only these forms are accepted, each recorded with
``file:line``:

- ``name[extras] <specifier> ; markers`` with optional per-line ``--hash=sha256:...`` options;
- ``name @ git+https://host/path@<40-hex commit>`` (or the bare ``git+https://...@<sha>#egg=name``):
  VCS only pinned to a full commit;
- ``name @ https://...`` direct URLs (unpinned unless they carry a ``#sha256=`` fragment);
- local paths and ``file:`` URLs inside the repo (their bytes go into the env key);
- ``-r FILE`` includes inside the repo, followed here.

Refused, naming the line: index options (``--index-url``, ``--extra-index-url``, ``--trusted-host``,
``--find-links``, ``--no-index``), every other option line (``-e``, ``-c``, ``--pre``, ...),
``${VAR}`` expansion, paths outside the repo, other VCS or unpinned VCS, plain ``http://``, URLs
with credentials, and (with ``strict_pins``) anything not pinned with ``==``/``===``.
The installer never reads the user's file: it gets
:meth:`live_code.envs.requirements.Requirements.installer_text`, made only of lines that passed these
checks.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from live_code import util
from live_code.errors import RequirementError
from live_code.record import field, record

# pip's own comment rule (req_file.py): '#' at the start or after whitespace starts a comment
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_ENV_VAR_RE = re.compile(r"\$\{")
_INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "--trusted-host", "-f", "--find-links", "--no-index")
_HASH_RE = re.compile(r"^(sha256|sha384|sha512):[0-9a-fA-F]+$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz")
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9.+-]*://", re.I)
_NAMED_URL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")
_MAX_BYTES = 1 << 20
_SKIP_DIRS = {".git", "__pycache__", ".tox", ".venv", ".mypy_cache", ".pytest_cache"}

# (why, hint) of a path refused as home-relative, outside the repository, or missing: a -r include
# (taken from the including file's directory) and a local requirement path (from the repo root)
_INCLUDE_REFUSALS = (
    ("includes must be files inside the repository", "copy the file into the repo"),
    ("the included file is outside the repository", "include only files inside the repo"),
    ("the included file does not exist", "fix the path (relative to the including file)"),
)
_PATH_REFUSALS = (
    ("home-relative paths are not allowed", "use a path inside the repo"),
    ("the path is outside the repository", "vendor the package inside the repo"),
    ("the path does not exist", "fix the path (relative to the repo root)"),
)


@record
class RequirementLine:
    """One accepted requirement."""

    #: ``requirements.txt:3`` (repo-relative file and the line the logical line starts on)
    origin: str
    #: the line as written (comments removed, continuations joined)
    text: str
    #: what the installer gets: ``text`` without options, local paths made absolute
    spec: str
    #: canonical (PEP 503) name; None for an unnamed local path or bare VCS URL
    name: str | None
    #: version specifier of a named requirement ("" for none or for URLs)
    specifier: str
    #: "name", "vcs", "url" or "path"
    kind: str
    pinned: bool
    #: ``--hash`` values as given (``sha256:<hex>``)
    hashes: tuple[str, ...] = ()
    #: a ``git+https`` line the operator's mirror serves: (the repository as written, the mirror);
    #: ``spec`` then names the mirror, ``text`` keeps what the file says
    mirror: tuple[str, str] | None = None


def read_lines(
    top: Path, repo: Path, *, strict: bool
) -> tuple[tuple[RequirementLine, ...], tuple[tuple[str, str], ...]]:
    """The accepted lines of ``top`` and its includes, and the ``(repo-relative path, sha256)`` of every
    file read and local path named, in order; RequirementError naming ``file:line`` for the first
    refused line. ``strict``: every line must be pinned (``live_code_strict_pins``)."""
    reader = _Reader(repo, strict)
    reader.read_file(top, chain=())
    return tuple(reader.lines), tuple(reader.sources)


@record(frozen=False)
class _Reader:
    """One requirements file and its includes as they are read: the repository they must stay inside,
    whether every line must be pinned (``live_code_strict_pins``), and what is gathered, in order: the
    accepted lines and the ``(repo-relative path, sha256)`` of every file read and local path named."""

    repo: Path
    strict: bool
    lines: list[RequirementLine] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)

    def read_file(self, path: Path, chain: tuple[Path, ...]) -> None:
        """Check the lines of ``path``, which ``chain`` (the files that include it, outermost first) led to."""
        rel = repo_relative(self.repo, path)
        data = path.read_bytes()
        if len(data) > _MAX_BYTES:
            raise RequirementError(
                f"{rel} is larger than {_MAX_BYTES >> 20} MiB", value=rel, hint="is it really a requirements file?"
            )
        self.sources.append((rel, hashlib.sha256(data).hexdigest()))
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RequirementError(f"{rel} is not UTF-8 text", value=rel, hint="save it as UTF-8") from None
        for lineno, line in _logical_lines(text):
            origin = f"{rel}:{lineno}"
            line = _COMMENT_RE.sub("", line).strip()
            if not line:
                continue
            if _ENV_VAR_RE.search(line):
                _refuse(
                    origin,
                    line,
                    "${...} environment variable expansion is not allowed",
                    "write the value itself; the installer gets no secrets from the environment",
                )
            include = _include_target(line)
            if include is not None:
                self._follow_include(include, path, (*chain, path), origin, line)
                continue
            if line.startswith("-"):
                _refuse_option(origin, line)
            req = self._check_requirement(line, origin)
            if self.strict and not req.pinned:
                _refuse(
                    origin,
                    line,
                    "it is not pinned to one version and live_code_strict_pins is on",
                    "pin it as name==version (VCS: @<full commit sha>; URLs: #sha256=...)",
                )
            self.lines.append(req)

    def _follow_include(self, target: str, including: Path, chain: tuple[Path, ...], origin: str, line: str) -> None:
        if "://" in target:
            _refuse(origin, line, *_INCLUDE_REFUSALS[0])
        resolved = self._repo_path(including.parent, target, origin, line, _INCLUDE_REFUSALS, Path.is_file)
        if resolved in chain:
            _refuse(origin, line, "the include makes a cycle", "remove the circular -r line")
        self.read_file(resolved, chain)

    def _check_requirement(self, line: str, origin: str) -> RequirementLine:
        # pip's rule: the first whitespace-separated token starting with '-' begins the line's options
        tokens = line.split()
        cut = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
        body = " ".join(tokens[:cut])
        hashes = _parse_hashes(tokens[cut:], origin, line)
        if _SCHEME_RE.match(body):
            return self._check_url(body, None, "", origin, line, hashes)
        if not _NAMED_URL_RE.match(body) and _looks_like_path(body):
            return self._check_path(body, None, origin, line, hashes)
        simple = util.simple_pin(body)
        if simple is not None:  # what packaging makes of it, without importing packaging (util)
            return RequirementLine(origin, line, body, simple[0], simple[1], "name", True, hashes)
        from packaging.requirements import (  # here, not above: util.canonical_name says why
            InvalidRequirement,
            Requirement,
        )

        try:
            req = Requirement(body)
        except InvalidRequirement as e:
            _refuse(origin, line, f"it is not a valid requirement ({e})", "write name==version, e.g. numpy==1.26.4")
        name = util.canonical_name(req.name)
        if req.url:
            return self._check_url(req.url, name, body, origin, line, hashes)
        spec = list(req.specifier)
        pinned = len(spec) == 1 and spec[0].operator in ("==", "===") and not spec[0].version.endswith(".*")
        return RequirementLine(origin, line, body, name, str(req.specifier), "name", pinned, hashes)

    def _check_url(
        self, url: str, name: str | None, body: str, origin: str, line: str, hashes: tuple[str, ...]
    ) -> RequirementLine:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return self._check_path(parts.path, name, origin, line, hashes)
        if "+" in scheme and scheme != "git+https":
            _refuse(origin, line, f"{scheme} requirements are not allowed", "use git+https://... pinned to a commit")
        if parts.username or parts.password:
            _refuse(
                origin,
                "<line with credentials>",
                "URLs with credentials are not allowed",
                "use a public URL or the task's index settings",
            )
        if "+" in scheme:
            ref = parts.path.rsplit("@", 1)[1] if "@" in parts.path else ""
            if not _SHA_RE.match(ref):
                _refuse(
                    origin,
                    line,
                    "a VCS requirement must be pinned to a full commit SHA",
                    "append @<40-hex commit> to the URL (a branch or tag can move)",
                )
            if name is None:
                egg = re.search(r"egg=([A-Za-z0-9._-]+)", parts.fragment)
                name = util.canonical_name(egg.group(1)) if egg else None
            return RequirementLine(origin, line, body or url, name, "", "vcs", True, hashes)
        if scheme != "https":
            _refuse(origin, line, f"{scheme}:// downloads are not allowed", "use an https:// URL")
        pinned = bool(re.search(r"(^|&)(sha256|sha384|sha512)=[0-9a-fA-F]+", parts.fragment)) or bool(hashes)
        return RequirementLine(origin, line, body or url, name, "", "url", pinned, hashes)

    def _check_path(
        self, raw: str, name: str | None, origin: str, line: str, hashes: tuple[str, ...]
    ) -> RequirementLine:
        raw = raw.split(";")[0].strip()
        resolved = self._repo_path(self.repo, raw, origin, line, _PATH_REFUSALS, Path.exists)
        self.sources.append((repo_relative(self.repo, resolved), _hash_path(resolved)))
        spec = f"{name} @ {resolved.as_uri()}" if name else str(resolved)
        return RequirementLine(origin, line, spec, name, "", "path", True, hashes)

    def _repo_path(
        self,
        base: Path,
        raw: str,
        origin: str,
        line: str,
        refusals: tuple[tuple[str, str], ...],
        found: Callable[[Path], bool],
    ) -> Path:
        """``raw`` from ``base``, links resolved, refused (``refusals``: home-relative, outside the
        repository, not ``found``) unless it stays inside the repository."""
        home, outside, missing = refusals
        if raw.startswith("~"):
            _refuse(origin, line, *home)
        resolved = inside_repo(self.repo, base / raw)
        if resolved is None:
            _refuse(origin, line, *outside)
        if not found(resolved):
            _refuse(origin, line, *missing)
        return resolved


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, numbered by their first line (pip's rule: a
    comment line never continues)."""
    out: list[tuple[int, str]] = []
    parts: list[str] = []
    first = 0
    for number, line in enumerate(text.splitlines(), start=1):
        is_comment = bool(re.match(r"\s*#", line))
        if line.endswith("\\") and not is_comment:
            if not parts:
                first = number
            parts.append(line[:-1])
            continue
        if parts:
            parts.append(" " + line if is_comment else line)
            out.append((first, "".join(parts)))
            parts = []
        else:
            out.append((number, line))
    if parts:
        out.append((first, "".join(parts)))
    return out


def _include_target(line: str) -> str | None:
    m = re.match(r"^(?:--requirement(?:\s*=\s*|\s+)|-r\s*)(\S.*)$", line)
    return m.group(1).strip() if m else None


def _refuse_option(origin: str, line: str) -> NoReturn:
    option = line.split()[0].split("=")[0]
    if option.startswith(_INDEX_OPTIONS) and not option.startswith("--index-strategy"):
        _refuse(
            origin,
            line,
            f"{option} would change where packages come from",
            "remove it; the package index, mirrors and wheelhouses come from the task's settings",
        )
    if option in ("-e", "--editable") or option.startswith("-e"):
        _refuse(
            origin,
            line,
            "editable installs are not allowed (the run's checkout is temporary)",
            "install the path without -e, or import the code from the repo directly",
        )
    if option in ("-c", "--constraint") or option.startswith("-c"):
        why = "constraint files are not allowed (the harness sets the constraints)"
        _refuse(origin, line, why, "pin the versions in the requirements file itself")
    _refuse(
        origin,
        line,
        f"the option {option} is not allowed in requirements",
        "keep only requirement lines, -r includes and per-line --hash options",
    )


def _parse_hashes(options: list[str], origin: str, line: str) -> tuple[str, ...]:
    hashes = []
    it = iter(options)
    for opt in it:
        if opt == "--hash":
            value = next(it, "")
        elif opt.startswith("--hash="):
            value = opt[len("--hash=") :]
        else:
            _refuse(
                origin,
                line,
                f"the option {opt.split('=')[0]} is not allowed on a requirement line",
                "keep only --hash=sha256:<hex> options after a requirement",
            )
        if not _HASH_RE.match(value):
            _refuse(origin, line, f"the hash {value!r} is not sha256/sha384/sha512:<hex>", "use --hash=sha256:<hex>")
        hashes.append(value)
    return tuple(hashes)


def _looks_like_path(body: str) -> bool:
    # pip's heuristics: a separator, a leading dot or an archive name means a path, not a name
    return (
        body.startswith((".", "/", "~"))
        or "/" in body.split(";")[0]
        or "\\" in body
        or (body.lower().endswith(_ARCHIVE_SUFFIXES))
    )


def _hash_path(path: Path) -> str:
    """sha256 over a file's bytes, or over a directory's relative paths and file bytes."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for fn in sorted(filenames):
            p = Path(dirpath, fn)
            h.update(str(p.relative_to(path)).encode() + b"\0")
            h.update(os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
    return h.hexdigest()


def inside_repo(repo: Path, path: Path) -> Path | None:
    """``path`` with symlinks resolved, or None when that is outside ``repo``."""
    resolved = Path(os.path.realpath(path))
    try:
        resolved.relative_to(repo)
    except ValueError:
        return None
    return resolved


def repo_relative(repo: Path, path: Path) -> str:
    try:
        return path.relative_to(repo).as_posix()
    except ValueError:
        return path.name


def _refuse(origin: str, line: str, why: str, hint: str) -> NoReturn:
    msg = f"{origin}: refused requirement {line!r}: {why}"
    raise RequirementError(msg, value=f"{origin}: {line}", hint=hint)
