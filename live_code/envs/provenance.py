"""What an env records of itself: its provenance (``live-code-env.json``) and its lock
(``pylock.toml``), written into the env when it is built (the lock, for the pipeline's envs, while
their first job runs: ``envs.finishing``).

Private to ``envs`` (``builder`` re-exports :class:`EnvProvenance`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from live_code import util
from live_code.envs.lock import EMPTY_LOCK, LOCK_NAME, parse_lock, tool_facts, with_tool
from live_code.envs.resolve import Resolution
from live_code.record import asdict, field, record

if TYPE_CHECKING:
    from live_code.envs.builder import EnvSpec

log = logging.getLogger(__name__)

#: bump whenever the build recipe changes: every cached env is then rebuilt
LAYOUT_VERSION = 1
PROVENANCE_FILE = "live-code-env.json"


@record
class EnvProvenance:
    """The env part of a run's provenance record."""

    key: str
    installer: str
    installer_version: str
    python: str
    platform: str
    base_python: str
    base_fingerprint: str
    #: the base's protected frameworks, name -> version
    protected: dict[str, str]
    requirements_file: str | None
    requirements_sha256: str
    #: ``file:line: text`` of each requirement not pinned to one version (framework lines that the
    #: base satisfies are in ``satisfied_by_base`` instead)
    unpinned: tuple[str, ...]
    #: what the env adds over the base, ``name==version``
    added: tuple[str, ...]
    #: the index settings, credentials redacted
    index: dict[str, Any]
    #: ``file:line: text (the base's name version)`` of framework lines the base satisfies
    satisfied_by_base: tuple[str, ...] = ()
    #: each VCS line fetched through an operator mirror: requirement (file:line), url (as the file
    #: gives it), mirror (where the installer fetched it)
    git_mirrors: tuple[dict[str, str], ...] = ()
    #: built without build isolation, against the job env (live-code.yaml's no_build_isolation)
    no_build_isolation: tuple[str, ...] = ()
    #: the env's lock (``pylock.toml`` in the env): origin, sha256 of its packages, installed (True:
    #: the env was installed from a lock, not resolved)
    lock: dict[str, Any] = field(default_factory=dict)
    #: ``live_code_resolve_as_of``: asked (the date asked for), used (the date resolved as of), note
    resolved_as_of: dict[str, str] | None = None
    layout_version: int = LAYOUT_VERSION
    seconds: float = 0.0
    created: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        what = self.requirements_file or "no requirements"
        doc["summary"] = f"{len(self.added)} packages over {self.base_python} ({what})"
        return doc


def write_lock(path: Path, spec: EnvSpec, resolution: Resolution | None) -> dict[str, Any]:
    """The env's lock, ``path/pylock.toml``, with live-code's table; its summary for the provenance."""
    if resolution is None:
        log.warning("no lock of the env is recorded: pip installed it (a lock needs uv)")
        return {}
    facts = tool_facts(spec, resolution)
    text = with_tool(resolution.lock_text or EMPTY_LOCK, facts)
    util.atomic_write(path / LOCK_NAME, text)
    summary = parse_lock(text, LOCK_NAME).summary()
    return {**summary, "file": LOCK_NAME, "installed": spec.lock is not None, "origin": facts["installed-from"]}


def provenance(
    spec: EnvSpec, added: Mapping[str, str], started: float, lock: dict[str, Any], resolution: Resolution | None
) -> EnvProvenance:
    base = spec.base
    as_of = None
    if spec.as_of and resolution is not None:
        as_of = {"asked": spec.as_of, "used": resolution.as_of or spec.as_of, "note": resolution.as_of_note}
    return EnvProvenance(
        spec.key,
        spec.installer.name,
        spec.installer.version,
        base.python_version,
        base.platform,
        base.executable,
        base.fingerprint(),
        base.protected,
        spec.requirements.file,
        spec.requirements.digest(),
        spec.unpinned,
        tuple(f"{n}=={v}" for n, v in sorted(added.items())),
        spec.index.display(),
        satisfied_by_base=spec.satisfied_by_base,
        git_mirrors=tuple(
            {"requirement": r.origin, "url": r.mirror[0], "mirror": r.mirror[1]}
            for r in spec.requirements.lines
            if r.mirror
        ),
        no_build_isolation=spec.no_build_isolation,
        lock=lock,
        resolved_as_of=as_of,
        seconds=round(time.monotonic() - started, 3),
    )
