"""Where a warm run's time goes (``bench/run --profile``), and the installer's floor for a cold run.

- ``interpreter_seconds`` and ``import_seconds``: the harness's interpreter starting bare, and
  ``-X importtime``'s cumulative time of ``import live_code.cli`` in it (same environment as the
  timed runs, so the same bytecode state).
- ``profile_table``: the steps of the warm runs' provenance ``timings``, medians, with the
  interpreter and the import before them; what is left of the time to the entry's first line is
  the ``run`` step up to that line (sandbox, job interpreter, the entry's own start).
- ``cold_table``: the same for the cold runs, beside uv's install alone and git's fetch alone.
- ``uv_alone``: ``uv pip install`` of the same requirements from the same wheelhouse into a fresh
  venv with an empty uv cache, the venv made before the clock starts: the installer by itself.
- ``git_fetch_alone``: ``git fetch --depth 1`` of the commit from the same https server into a new
  bare repository (made before the clock starts): the network's floor, which a cold start pays
  before it can read the requirements.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: the provenance steps before the job starts, in the order the pipeline runs them
STEPS_BEFORE_JOB = ("task", "fetch", "configure", "environment")


def interpreter_seconds(python: Path, env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], env=dict(env), check=True, capture_output=True)
    return time.perf_counter() - start


def import_seconds(python: Path, env: Mapping[str, str]) -> tuple[float, list[tuple[str, float]]]:
    """Seconds of ``import live_code.cli`` and the five largest of what it imports (own time)."""
    err = subprocess.run(
        [str(python), "-X", "importtime", "-c", "import live_code.cli"],
        env=dict(env),
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    total, own = 0.0, []
    for line in err.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].strip()
        own.append((name, int(parts[0]) / 1e6))
        if name == "live_code.cli":
            total = int(parts[1]) / 1e6
    return total, sorted(own, key=lambda x: -x[1])[:5]


def uv_alone(
    uv: Path, base_python: Path, requirements: str, wheelhouse: Path, where: Path, env: Mapping[str, str]
) -> float:
    """Seconds of ``uv pip install -r`` into a fresh venv, uv's cache empty (the venv is untimed)."""
    where.mkdir(parents=True)
    (where / "requirements.txt").write_text(requirements)
    env = {**env, "UV_CACHE_DIR": str(where / "uv-cache"), "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [str(uv), "venv", "--python", str(base_python), str(where / "venv")], env=env, check=True, capture_output=True
    )
    argv = [str(uv), "pip", "install", "--python", str(where / "venv" / "bin" / "python"), "--no-index"]
    argv += ["--find-links", str(wheelhouse), "-r", str(where / "requirements.txt")]
    os.sync()  # as run_timed does before every timed case
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def warm_timings(runs: Sequence[Mapping[str, Any]], case: str = "lc_warm") -> dict[str, list[float]]:
    """Each provenance step's seconds over the live-code runs of ``case`` (the warm ones)."""
    steps: dict[str, list[float]] = {}
    for run in runs:
        if run.get("case") == case:
            for step, seconds in (run.get("provenance") or {}).get("timings", {}).items():
                steps.setdefault(step, []).append(float(seconds))
    return steps


def profile_table(
    m: Callable[[str], float | None], runs: Sequence[Mapping[str, Any]], biggest: Sequence[tuple[str, float]]
) -> str:
    """The warm run step by step: medians of the interpreter start, the CLI import, the steps
    before the job, and the rest up to the entry's first line."""
    steps = {k: statistics.median(v) for k, v in warm_timings(runs).items()}
    whole, bare = m("lc_warm"), m("bare_start")
    if whole is None:
        return "(no warm live-code run to profile)"
    rows = [
        ("interpreter start (python -c pass)", m("py_start"), "the harness's python, no imports"),
        (
            "import of live_code.cli",
            m("cli_import"),
            "-X importtime: " + ", ".join(f"{n} {s * 1e3:.0f} ms" for n, s in biggest[:3]),
        ),
        *((f"step {s}", steps.get(s), "provenance timings") for s in STEPS_BEFORE_JOB),
    ]
    known = sum(v for _, v, _ in rows if v is not None)
    rows.append(("run, up to the entry's first line", whole - known, "the rest: sandbox, job interpreter, entry start"))
    rows.append(("whole, to the entry's first line", whole, f"bare entry {bare:.3f} s" if bare is not None else ""))
    if bare is not None:
        rows.append(("harness overhead before 1st line", whole - bare, "whole - bare entry"))
    after = [s for s in steps if s not in STEPS_BEFORE_JOB]
    rows += [(f"(after: step {s})", steps[s], "whole job and after it") for s in after]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'step (warm run)'.ljust(width)}  seconds  share  what", f"{'-' * width}  -------  -----  ----"]
    for label, value, what in rows:
        share = f"{value / whole * 100:4.0f}%" if value is not None and not label.startswith("(") else "     "
        lines.append(f"{label.ljust(width)}  {'-' if value is None else f'{value:.3f}':>7}  {share}  {what}")
    return "\n".join(lines)


def git_fetch_alone(url: str, commit: str, where: Path, env: Mapping[str, str]) -> float:
    """Seconds of git's depth-1 fetch of ``commit`` into a new bare repository at ``where``."""
    subprocess.run(["git", "init", "--quiet", "--bare", str(where)], env=dict(env), check=True, capture_output=True)
    argv = ["git", "--git-dir", str(where), "fetch", "--quiet", "--no-tags", "--depth", "1", url, f"+{commit}:refs/x"]
    os.sync()
    start = time.perf_counter()
    subprocess.run(argv, env=dict(env), check=True, capture_output=True)
    return time.perf_counter() - start


def cold_table(m: Callable[[str], float | None], runs: Sequence[Mapping[str, Any]]) -> str:
    """The cold run step by step (medians of its provenance timings), beside uv's install alone
    and git's fetch alone: what live-code adds to the installer's and the network's floors."""
    steps = {k: statistics.median(v) for k, v in warm_timings(runs, "lc_cold").items()}
    whole, uv = m("lc_cold"), m("uv_cold")
    if whole is None or not steps:
        return "(no cold live-code run to profile)"
    rows = [(f"step {s}", steps.get(s), "provenance timings") for s in STEPS_BEFORE_JOB]
    known = sum(v for _, v, _ in rows if v is not None)
    rows.append(("the rest, to the entry's first line", whole - known, "interpreter, import, sandbox, job start"))
    rows.append(("whole, to the entry's first line", whole, ""))
    if uv is not None:
        rows.append(("(uv pip install alone)", uv, "the installer's floor: fresh venv, empty uv cache"))
        rows.append(("(what live-code adds)", whole - uv, "whole - uv alone"))
    git = m("git_fetch")
    if uv is not None and git is not None:
        rows.append(("(git fetch alone)", git, "the network's floor: depth-1 fetch of the commit, same server"))
        rows.append(("(what live-code adds to both)", whole - uv - git, "whole - uv alone - git fetch alone"))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'step (cold run)'.ljust(width)}  seconds  what", f"{'-' * width}  -------  ----"]
    lines += [f"{label.ljust(width)}  {'-' if v is None else f'{v:.3f}':>7}  {what}" for label, v, what in rows]
    return "\n".join(lines)
