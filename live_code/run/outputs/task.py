"""monitor.txt, and all the outputs of a task."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence

from live_code import contract
from live_code.contract import TaskKind
from live_code.errors import OutputError
from live_code.run.outputs._rules import ERROR, WARNING, Problem, _not_a_file, _Report
from live_code.run.outputs.infer import validate_infer_result
from live_code.run.outputs.mining import validate_mining_result
from live_code.run.outputs.training import validate_training_result

log = logging.getLogger("live_code.run.outputs")


def validate_monitor(path: str | os.PathLike[str], task_id: str | None = None) -> list[Problem]:
    """Check monitor.txt as the platform parses it; state 3 (done) written by a job is a problem."""
    file = os.fspath(path)
    report = _Report(file)
    if _not_a_file(file, report):
        return report.done()
    try:
        with open(file, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        report.add("monitor-missing", "", "missing: YMIR 1.1's monitor crashes without it")
        return report.done()
    except (OSError, UnicodeDecodeError) as e:
        report.add("output-unreadable", "", f"cannot read: {e}")
        return report.done()
    if not text.strip():
        report.add("monitor-empty", "", "empty: YMIR 1.1's monitor crashes on an empty file")
        return report.done()
    try:
        record = contract.parse_monitor(text)
    except ValueError as e:
        report.add("monitor-malformed", "line 1", str(e))
        return report.done()
    if record.state == contract.MonitorState.DONE:
        report.add(
            "monitor-done", "line 1", "state 3 (done) ends the task before its outputs are read: write 2 (running)"
        )
    if task_id is not None and record.task_id != task_id:
        report.add("monitor-task-id", "line 1", f"task id {record.task_id!r} is not the task's {task_id!r}")
    return report.done()


def _out_path(out_dir: str | os.PathLike[str], default: str) -> str:
    return os.path.join(os.fspath(out_dir), os.path.relpath(default, contract.OUT_DIR))


def read_candidates(index_file: str | os.PathLike[str]) -> list[str] | None:
    """The image paths of a candidate-index.tsv (first column, as written), or None if unreadable."""
    try:
        with open(index_file, encoding="utf-8") as f:
            return [line.rstrip("\r\n").split("\t")[0] for line in f if line.strip()]
    except (OSError, UnicodeDecodeError):
        return None


def validate_outputs(
    task_kinds: Iterable[TaskKind],
    out_dir: str | os.PathLike[str],
    protocol: str,
    class_names: Sequence[str] | None,
    candidates: Sequence[str] | None,
) -> list[Problem]:
    """Check the outputs each kind must leave in ``out_dir`` (at YMIR's fixed places)."""
    kinds = set(task_kinds)
    problems: list[Problem] = []
    if TaskKind.TRAINING in kinds:
        problems += validate_training_result(_out_path(out_dir, contract.TRAINING_RESULT_FILE), protocol)
    if TaskKind.MINING in kinds:
        problems += validate_mining_result(_out_path(out_dir, contract.MINING_RESULT_FILE), candidates)
    if TaskKind.INFER in kinds:
        problems += validate_infer_result(
            _out_path(out_dir, contract.INFER_RESULT_FILE),
            protocol,
            class_names,
            candidates,
        )
    return problems


def log_warnings(problems: Iterable[Problem]) -> list[Problem]:
    """Log each warning among ``problems`` (one line: file, place, message); returns them."""
    warned = [p for p in problems if p.severity == WARNING]
    for p in warned:
        log.warning("warning: %s", p)
    return warned


def raise_for_problems(problems: Sequence[Problem], *, shown: int = 20) -> None:
    """Raise OutputError listing the first ``shown`` errors; do nothing when there are none
    (warnings never refuse outputs: see ``log_warnings``)."""
    errors = [p for p in problems if p.severity == ERROR]
    if not errors:
        return
    lines = [str(p) for p in errors[:shown]]
    if len(errors) > shown:
        lines.append(f"... and {len(errors) - shown} more")
    msg = f"{len(errors)} problem(s) in the task's outputs:\n  " + "\n  ".join(lines)
    hint = "fix how the job writes its results; the live_code.sdk writers produce valid files"
    raise OutputError(msg, hint=hint)
