"""Progress and failure reports in ``/out/monitor.txt`` (contract section 5).

The executor writes state 2 (running) while it works and 4 (error) with a return code right
before it exits non-zero. It never writes 3 (done): the platform treats 3 as terminal as soon as
it polls it and would finish the task before the outputs exist.
"""

from __future__ import annotations

import math
import time

from live_code import contract
from live_code.contract import MonitorRecord, MonitorState, TaskKind
from live_code.sdk._env import Env, read_env
from live_code.sdk._io import replace_file


def write_progress(percent: float, *, task: TaskKind | str | None = None, env: Env | None = None) -> float:
    """Report ``percent`` (0..1, clamped) as running; returns the percent written.

    With ``task`` given and several kinds in this container (mining + infer), ``percent`` is the
    progress of that kind and is mapped into its slice of the whole run (mining 0-0.5, infer 0.5-1).
    """
    percent = float(percent)
    if math.isnan(percent):
        raise ValueError("percent is NaN")
    percent = min(1.0, max(0.0, percent))
    env = env or read_env()
    if task is not None:
        low, high = contract.task_percent_range(TaskKind(task), env.kinds)
        percent = low + (high - low) * percent
    record = MonitorRecord(env.task_id, time.time(), percent, MonitorState.RUNNING)
    replace_file(env.output.monitor_file, contract.format_monitor(record), durable=False)
    return percent


def write_error(code: int, message: str, *, env: Env | None = None) -> None:
    """Report failure: state 4 with ``code`` (see :class:`ReturnCode`) and ``message``.

    Call it right before exiting non-zero; YMIR >= 2.3 records ``code`` as the task's error code.
    The message's first line is the short text, further lines (a traceback) the detail.
    """
    code = int(code)
    if code == 0:
        raise ValueError("an error needs a non-zero return code, e.g. ReturnCode.CONFIG_ERROR")
    env = env or read_env()
    record = MonitorRecord(env.task_id, time.time(), 1.0, MonitorState.ERROR, code, message)
    replace_file(env.output.monitor_file, contract.format_monitor(record))
