"""``live-code replay WORKDIR``: run a kept task directory again and compare with what it wrote.

``WORKDIR`` is what a YMIR sandbox keeps of a task (``in/``, ``out/``, ``task_config.yaml``), or a
``live-code local`` work dir. ``in/`` is read as it is; the original ``out/`` is never written: the
replay writes to ``WORKDIR/replay-<n>/out``, which gets what the platform puts there before the
container starts (a pending ``monitor.txt``, an empty ``tensorboard/``). Then each output is
compared by its meaning, not its bytes where bytes carry times: ``result.tsv`` as (image, score)
rows, ``infer-result.json`` as parsed JSON, ``result.yaml`` by stages, files and metrics,
TensorBoard events by their scalars; other files by content. The provenance records are compared
field by field (commit, tree, env key, packages, config hash, base, sandbox).

The env is installed from the original run's lock (``out/pylock.toml``: the same packages,
versions and hashes, whatever the index serves today) unless ``resolve`` asks for a fresh
resolution; the comparison says whether the two envs are identical (:attr:`Lock.digest`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from live_code import contract, util
from live_code.commands import local, tfevents
from live_code.contract import MonitorState
from live_code.envs.lock import LOCK_NAME, read_lock
from live_code.errors import ConfigError, LiveCodeError
from live_code.record import record
from live_code.run import pipeline
from live_code.source.store import Store
from live_code.task import config as config_mod

log = logging.getLogger(__name__)

#: written by the platform or the harness with times in them: compared elsewhere or not at all
_SKIP = {"monitor.txt", contract.EXECUTOR_LOG_FILE.rsplit("/", 1)[1], pipeline.PROVENANCE_NAME, "pylock.toml"}
_PROVENANCE_FIELDS = (
    ("source.commit", "commit"),
    ("source.tree", "tree"),
    ("environment.key", "env key"),
    ("environment.added", "packages added"),
    ("environment.base_fingerprint", "base"),
    ("environment.lock.sha256", "env lock"),
    ("config.sha256", "config sha256"),
    ("sandbox.mode", "sandbox"),
    ("live_code.version", "live-code"),
    ("outcome.ok", "outcome ok"),
)


class FileDiff(NamedTuple):
    path: str
    status: str  # identical | different | only in original | only in replay
    detail: str = ""


@record
class ReplayResult:
    work: Path
    out_dir: Path
    files: tuple[FileDiff, ...]
    provenance: tuple[tuple[str, Any, Any], ...]
    error: LiveCodeError | None = None
    #: the report of the original and the replay, side by side (None without the report extra)
    report: Path | None = None

    @property
    def environment(self) -> str:
        """Whether the replay's env is the original's, from the two recorded locks."""
        locks = {name: (old, new) for name, old, new in self.provenance if name == "env lock"}
        old, new = locks.get("env lock", (None, None))
        if not old or not new:
            return "not compared (a run recorded no lock)"
        if old == new:
            return "identical (the same packages, versions and hashes)"
        return "DIFFERENT (other packages, versions or hashes)"

    @property
    def identical(self) -> bool:
        return self.error is None and all(f.status == "identical" for f in self.files)

    def render(self) -> str:
        lines = [f"replay of {self.work}: outputs in {self.out_dir}"]
        width = max((len(f.path) for f in self.files), default=0)
        for f in self.files:
            lines.append(f"  {f.path:<{width}}  {f.status}" + (f": {f.detail}" if f.detail else ""))
        if self.provenance:
            lines.append(f"environment: {self.environment}")
            lines.append("provenance:")
            from_lock = self.environment.startswith("identical")
            for name, old, new in self.provenance:
                # an env installed from the recorded lock has a key of its own (the lock is part of it)
                status = (
                    "same" if old == new else "other (the lock's)" if name == "env key" and from_lock else "CHANGED"
                )
                lines.append(
                    f"  {name:<15} {status}: " + (_short(new) if old == new else f"{_short(old)} -> {_short(new)}")
                )
        verdict = (
            "outputs identical to the original"
            if self.identical
            else "the replay failed"
            if self.error
            else "outputs differ from the original"
        )
        if self.report is not None:
            lines.append(f"report of both runs: {self.report}")
        lines.append(verdict)
        return "\n".join(lines)


def replay(
    work: Path,
    *,
    sandbox: str | None = None,
    keep_work: bool = False,
    store: Store | None = None,
    resolve: bool = False,
) -> ReplayResult:
    """Run the kept task in ``work`` again; ``resolve``: resolve its requirements afresh instead of
    installing the original run's lock."""
    work = work.absolute()
    in_dir, original = work / "in", work / "out"
    if not (in_dir / "env.yaml").is_file():
        raise ConfigError(
            f"{work} holds no in/env.yaml: it is not a kept task directory",
            value=str(work),
            hint="give the task's work dir (with in/ and out/), e.g. from YMIR's sandbox",
        )
    task = config_mod.load_task(in_dir)
    n = 1
    while (work / f"replay-{n}").exists():
        n += 1
    out = work / f"replay-{n}" / "out"
    out.mkdir(parents=True)
    (out / "tensorboard").mkdir()
    pending = contract.MonitorRecord(task.task_id, time.time(), 0.0, MonitorState.PENDING, 0, "")
    util.atomic_write(out / "monitor.txt", contract.format_monitor(pending))
    if (work / local.TASK_CONFIG).is_file():
        log.info("replaying task %s (%s)", task.task_id, work / local.TASK_CONFIG)
    overrides: dict[str, Any] = {
        "in_dir": in_dir,
        "out_dir": out,
        "allow_local": True,
        "work_root": out.parent,
        "keep_work": keep_work,
    }
    if sandbox:
        overrides["sandbox"] = sandbox
    overrides.update(_recorded_env(original, resolve))
    settings = pipeline.Settings.from_environ(**overrides)
    local.announce_sandbox(settings)
    error: LiveCodeError | None = None
    try:
        pipeline.run(settings, store=store, runner=local.job_runner(out.parent / local.JOB_LOG))
    except LiveCodeError as e:
        error = local.explain(e)
    return ReplayResult(
        work,
        out,
        tuple(diff_outputs(original, out)),
        tuple(diff_provenance(original / pipeline.PROVENANCE_NAME, out / pipeline.PROVENANCE_NAME)),
        error,
        _report(original, out, in_dir),
    )


def _recorded_env(original: Path, resolve: bool) -> dict[str, Any]:
    """The settings that give the replay the original run's env: its base, and its lock unless
    ``resolve``."""
    overrides: dict[str, Any] = {}
    base = recorded_base(original / pipeline.PROVENANCE_NAME)
    if base is not None:
        overrides["base_python"] = base
    recorded = original / LOCK_NAME
    local_paths = recorded.is_file() and any(
        "://" not in src  # a directory or file of the original checkout, gone with it
        for p in read_lock(recorded, str(recorded)).packages
        for src in p.sources
    )
    if not resolve and local_paths:
        log.warning("the original run's lock installs local paths of its own checkout: the replay resolves afresh")
    elif not resolve and recorded.is_file():
        log.info("installing the original run's env from its lock %s (--resolve to resolve afresh)", recorded)
        overrides["lock_file"] = recorded
    elif not resolve:
        log.warning("the original run recorded no lock (%s): the replay resolves the requirements afresh", recorded)
    return overrides


def _report(original: Path, replayed: Path, in_dir: Path) -> Path | None:
    """The report of both runs side by side, beside the replay's out (needs the report extra)."""
    from live_code.commands import report

    missing = report.missing_libraries()
    if missing:
        log.info("no report of the two runs: %s not installed (%s)", ", ".join(missing), report.INSTALL_EXTRA)
        return None
    try:
        return report.write_report([original, replayed], dest=replayed.parent / "report", in_dirs=[in_dir, in_dir]).html
    except (OSError, LiveCodeError) as e:
        log.warning("the report of the two runs could not be written: %s", e)
        return None


def recorded_base(provenance: Path) -> str | None:
    """The base interpreter the original run was layered over (its provenance's
    ``environment.base_python``), when it is still there; otherwise None, and a warning says why
    the replay runs over ``LIVE_CODE_BASE_PYTHON`` (or live-code's own interpreter) instead."""
    try:
        record = yaml.safe_load(provenance.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        log.warning(
            "the original provenance %s cannot be read (%s): the replay's base is LIVE_CODE_BASE_PYTHON "
            "or live-code's own interpreter",
            provenance,
            e,
        )
        return None
    env = record.get("environment") if isinstance(record, dict) else None
    base = env.get("base_python") if isinstance(env, dict) else None
    if not isinstance(base, str) or not base:
        log.warning(
            "the original provenance records no base interpreter (the run ended before its environment): "
            "the replay's base is LIVE_CODE_BASE_PYTHON or live-code's own interpreter"
        )
        return None
    if not os.access(base, os.X_OK):
        log.warning(
            "the original run's base interpreter %s is not on this machine: the replay runs over "
            "LIVE_CODE_BASE_PYTHON or live-code's own interpreter, so its environment may differ",
            base,
        )
        return None
    if os.environ.get("LIVE_CODE_BASE_PYTHON") not in (None, "", base):
        log.info("replaying over the recorded base %s, not LIVE_CODE_BASE_PYTHON", base)
    return base


def diff_outputs(old: Path, new: Path) -> list[FileDiff]:
    """Each output of ``old`` and ``new`` (tensorboard as one entry), compared by its meaning."""
    names = sorted(_outputs(old) | _outputs(new))
    diffs = []
    for rel in names:
        a, b = old / rel, new / rel
        if not a.exists() or not b.exists():
            diffs.append(FileDiff(rel, "only in original" if a.exists() else "only in replay"))
            continue
        detail = _compare(rel, a, b)
        diffs.append(FileDiff(rel, "identical" if detail is None else "different", detail or ""))
    return diffs


def _outputs(out: Path) -> set[str]:
    if not out.is_dir():
        return set()
    found = set()
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if rel.startswith("tensorboard/"):
            if "tfevents" in path.name:
                found.add("tensorboard")
        elif path.is_file() and path.name not in _SKIP and not rel.startswith("replay-"):
            found.add(rel)
    return found


def _compare(rel: str, a: Path, b: Path) -> str | None:
    """None when ``a`` and ``b`` mean the same; else what differs."""
    try:
        if rel == "tensorboard":
            sa, sb = tfevents.scalars(a), tfevents.scalars(b)
            if sa == sb:
                return None
            tags = sorted(t for t in set(sa) | set(sb) if sa.get(t) != sb.get(t))
            return f"scalars differ: {', '.join(tags)}"
        if rel.endswith("result.tsv"):
            ra, rb = _tsv(a), _tsv(b)
            if ra == rb:
                return None
            if [r[0] for r in ra] == [r[0] for r in rb]:
                delta = max(abs(x[1] - y[1]) for x, y in zip(ra, rb))
                return f"same order, scores differ by up to {delta:.3g}"
            return f"{len(ra)} vs {len(rb)} rows, another order"
        if rel.endswith("infer-result.json"):
            ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
            if ja == jb:
                return None
            da, db = ja.get("detection") or {}, jb.get("detection") or {}
            changed = sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))
            return f"predictions differ on {len(changed)} of {len(set(da) | set(db))} images"
        if rel.endswith("models/result.yaml"):
            ya, yb = _stages(a), _stages(b)
            return None if ya == yb else f"stages or metrics differ: {_short(ya)} -> {_short(yb)}"
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError) as e:
        if a.read_bytes() == b.read_bytes():
            return None
        return f"unreadable ({e}); the bytes differ"
    if _sha(a) == _sha(b):
        return None
    return f"content differs ({a.stat().st_size} vs {b.stat().st_size} bytes)"


def _tsv(path: Path) -> list[tuple[str, float]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            image, _, score = line.partition("\t")
            rows.append((image, float(score)))
    return rows


def _stages(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    stages = {
        name: {k: v for k, v in (st or {}).items() if k != "timestamp"}
        for name, st in (data.get("model_stages") or {}).items()
    }
    return {"best": data.get("best_stage_name"), "stages": stages, "model": data.get("model"), "map": data.get("map")}


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def diff_provenance(old: Path, new: Path) -> list[tuple[str, Any, Any]]:
    """(field, original, replay) for the fields that identify code, environment and config."""
    if not old.is_file() and not new.is_file():
        return []
    if not old.is_file() or not new.is_file():
        return [
            (
                "provenance",
                "present" if old.is_file() else "none (not run by live-code)",
                "present" if new.is_file() else "none",
            )
        ]
    a, b = yaml.safe_load(old.read_text()) or {}, yaml.safe_load(new.read_text()) or {}
    return [(label, _get(a, dotted), _get(b, dotted)) for dotted, label in _PROVENANCE_FIELDS]


def _get(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _short(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= 100 else text[:97] + "..."


__all__: Sequence[str] = ("FileDiff", "ReplayResult", "diff_outputs", "diff_provenance", "replay")
