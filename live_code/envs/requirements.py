"""Which requirements file a repo has (:func:`find_requirements`, and why: :func:`requirements_reason`)
and its checked lines (:func:`parse_requirements`; the checks are :mod:`live_code.envs.requirement_lines`'s),
with what the harness adds to them: the packages the legacy layout implies and the operator's mirrors.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from live_code import util
from live_code.envs.requirement_lines import RequirementLine, inside_repo, read_lines, repo_relative
from live_code.errors import ConfigError, RequirementError
from live_code.record import record, replace

__all__ = [
    "DEFAULT_FILES",
    "LEGACY_FILES",
    "RequirementLine",
    "Requirements",
    "find_requirements",
    "parse_requirements",
    "requirements_reason",
    "with_implied",
    "with_mirrors",
]

#: requirement files looked for at the repo root when the manifest names none, in this order
DEFAULT_FILES = ("requirements.txt", "extra-requirements.txt")
#: the same for the legacy layout: the original image installed extra-requirements.txt only (a
#: requirements.txt beside it is often upstream's list, e.g. yolov5's, not what the job needs)
LEGACY_FILES = ("extra-requirements.txt", "requirements.txt")


@record
class Requirements:
    """The checked requirements of a repo (none at all is fine: an empty env over the base)."""

    #: repo-relative path of the top file, None when the repo has none
    file: str | None
    lines: tuple[RequirementLine, ...]
    #: (repo-relative path, sha256) of every file read and every local path named, in order
    sources: tuple[tuple[str, str], ...]
    #: why this file (printed and recorded in the provenance)
    reason: str = ""

    @property
    def unpinned(self) -> tuple[str, ...]:
        """``origin: text`` of every line not pinned to one version (recorded in provenance)."""
        return tuple(f"{r.origin}: {r.text}" for r in self.lines if not r.pinned)

    def digest(self) -> str:
        """sha256 over the bytes of every file read (includes too) and every local path named."""
        h = hashlib.sha256()
        for rel, sha in self.sources:
            h.update(f"{rel}\0{sha}\n".encode())
        return h.hexdigest()

    def installer_text(self) -> str:
        """The flattened, checked requirements as the installer reads them."""
        return "".join(" ".join([r.spec, *(f"--hash={h}" for h in r.hashes)]) + "\n" for r in self.lines)


# the repository URL of a checked VCS spec: git+https://host/path@<full sha>, then '#...', space or end
_VCS_REPO_RE = re.compile(r"git\+(?P<repo>https://\S+?)@(?:[0-9a-f]{40}|[0-9a-f]{64})(?=[#\s]|$)")


def with_mirrors(requirements: Requirements, mirror_of: Callable[[str], str | None]) -> Requirements:
    """``requirements`` with the repository of each ``git+https`` line replaced in ``spec`` (what the
    installer gets) by ``mirror_of(repository)`` where that is not None (the operator's mirrors).
    ``text``, the file digest and so the env key keep what the file says; ``mirror`` records both."""
    lines = []
    for r in requirements.lines:
        m = _VCS_REPO_RE.search(r.spec) if r.kind == "vcs" else None
        target = mirror_of(m["repo"]) if m else None
        if m and target:
            spec = r.spec[: m.start("repo")] + target + r.spec[m.end("repo") :]
            r = replace(r, spec=spec, mirror=(m["repo"], target))
        lines.append(r)
    return replace(requirements, lines=tuple(lines))


def find_requirements(
    repo_dir: str | os.PathLike[str], manifest_requirements: str | None = None, *, legacy: bool = False
) -> Path | None:
    """The manifest's ``requirements`` entry, else the first of :data:`DEFAULT_FILES` (a legacy-layout
    repo: :data:`LEGACY_FILES`) at the repo root; None when the repo has none."""
    repo = Path(repo_dir).resolve()
    if manifest_requirements:
        path = inside_repo(repo, repo / manifest_requirements)
        if path is None or not path.is_file():
            state = "is outside the repository" if path is None else "does not exist"
            msg = f"the requirements file {manifest_requirements!r} named in live-code.yaml {state}"
            hint = "name a file inside the repo, relative to its root"
            raise ConfigError(msg, value=manifest_requirements, hint=hint)
        return path
    for name in LEGACY_FILES if legacy else DEFAULT_FILES:
        candidate = repo / name
        if candidate.is_file() or candidate.is_symlink():
            path = inside_repo(repo, candidate)
            if path is None or not path.is_file():
                msg = f"{name} is a link to a file outside the repository"
                raise RequirementError(msg, value=name, hint="commit the requirements file itself, not a symlink")
            return path
    return None


def requirements_reason(
    repo_dir: str | os.PathLike[str], path: Path | None, manifest_requirements: str | None, *, legacy: bool
) -> str:
    """Why :func:`find_requirements` chose ``path``, in words for the log and the provenance."""
    repo = Path(repo_dir)
    if manifest_requirements:
        return f"{manifest_requirements}, named by live-code.yaml"
    present = [n for n in (LEGACY_FILES if legacy else DEFAULT_FILES) if (repo / n).is_file()]
    if path is None:
        return "the repository has no requirements file: only the base's packages" + (
            " and what the legacy layout implies" if legacy else ""
        )
    chosen = present[0] if present else path.name
    if legacy and chosen == "extra-requirements.txt":
        other = " (requirements.txt beside it is not installed, as in the original image)" if len(present) > 1 else ""
        return f"extra-requirements.txt: the legacy layout's requirements file{other}"
    if legacy:
        return "requirements.txt: the legacy layout has no extra-requirements.txt"
    other = " (extra-requirements.txt beside it is not installed)" if len(present) > 1 else ""
    return f"{chosen}: live-code.yaml names none, so the default{other}"


def parse_requirements(
    path: str | os.PathLike[str] | None,
    repo_dir: str | os.PathLike[str],
    *,
    strict_pins: bool = False,
    reason: str = "",
) -> Requirements:
    """Check every line of ``path`` (and its ``-r`` includes); raise RequirementError naming
    ``file:line`` for the first refused one. Relative local paths are taken from the repo root (the
    directory pip ran in for legacy repos); ``-r`` includes from the including file's directory."""
    if path is None:
        return Requirements(None, (), (), reason)
    repo = Path(repo_dir).resolve()
    top = inside_repo(repo, Path(path))
    if top is None:
        raise RequirementError(
            f"the requirements file {path} is outside the repository",
            value=str(path),
            hint="name a file inside the repo",
        )
    lines, sources = read_lines(top, repo, strict=strict_pins)
    return Requirements(repo_relative(repo, top), lines, sources, reason)


def with_implied(requirements: Requirements, implied: tuple[tuple[str, str], ...], origin: str) -> Requirements:
    """``requirements`` plus the pinned ``name==version`` lines the harness itself adds (for the
    legacy layout), recorded with ``origin`` and hashed into :meth:`Requirements.digest`."""
    if not implied:
        return requirements
    added = []
    for text, _why in implied:
        name, specifier = _name_and_specifier(text)
        added.append(RequirementLine(origin, text, text, name, specifier, "name", True))
    digest = hashlib.sha256("".join(f"{t}\n" for t, _ in implied).encode()).hexdigest()
    return Requirements(
        requirements.file,
        (*requirements.lines, *added),
        (*requirements.sources, (f"<{origin}>", digest)),
        requirements.reason,
    )


def _name_and_specifier(text: str) -> tuple[str, str]:
    simple = util.simple_pin(text)
    if simple is not None:
        return simple
    from packaging.requirements import Requirement  # here, not above: util.canonical_name says why

    req = Requirement(text)
    return util.canonical_name(req.name), str(req.specifier)
