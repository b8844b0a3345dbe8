"""A job's entry point: ``sdk.main(train=..., mine=..., infer=...)`` runs what env.yaml asks.

A repository's ``start.py`` needs only::

    from live_code import sdk
    import infer, mine, train

    if __name__ == "__main__":
        sdk.main(train=train.run, mine=mine.run, infer=infer.run)

Each function gets ``(env, config)``: the :class:`Env` and the merged hyper-parameters. A function
may also be named ``"module:function"`` (``sdk.main(train="train:run")``): its module is imported
only when that kind runs, so an infer task never loads the training code. The kinds
run in the contract's order (training, then mining, then infer: the reference executors' "tmi"
order, contract section 10), each between a progress of 0 and of 1 in its slice of monitor.txt.
The executor never writes the done state (contract section 5): the last record is running at 1.

When a function raises, the task ends in the error state with a YMIR return code and a one-line
reason in monitor.txt (contract 9.2); the traceback goes to stderr, which YMIR keeps in
``/out/ymir-executor-out.log``. The code is, first match wins:

1. ``errors[type]`` for the first type in ``errors`` (a mapping given to :func:`main`) that the
   exception is an instance of;
2. the exception's ``return_code`` attribute (every :class:`SdkError` has one; a job's own class
   may set it too, e.g. ``return_code = sdk.ReturnCode.NO_GPU``);
3. out of memory (``MemoryError``, a class named ``OutOfMemoryError`` as torch's, or "out of memory"
   in the message as CUDA and MXNet write it), ``FloatingPointError`` (NaN in training), a network
   error (``ConnectionError``, ``urllib.error.URLError``, ``TimeoutError``);
4. anything else: ``ReturnCode.CONTAINER_ERROR``, what YMIR itself reports for a failed container.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
import urllib.error
from collections.abc import Callable, Mapping
from typing import Any, Union, cast

from live_code.contract import TASK_ORDER, ReturnCode, TaskKind
from live_code.sdk._config import read_config
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ConfigValueError, SdkError
from live_code.sdk._monitor import write_error, write_progress

logger = logging.getLogger("live_code.sdk")

#: what a task kind's function is called with: the task's env.yaml and its hyper-parameters
TaskFunction = Callable[[Env, dict[str, Any]], Any]
#: a task function, or its ``"module:function"`` name
TaskRef = Union[TaskFunction, str]

#: the longest reason that goes into monitor.txt (the rest is in the log)
MAX_REASON = 500

_BUILTIN_CODES: tuple[tuple[type[BaseException], ReturnCode], ...] = (
    (MemoryError, ReturnCode.OUT_OF_MEMORY),
    (FloatingPointError, ReturnCode.NAN_IN_TRAINING),
    (ConnectionError, ReturnCode.NETWORK_ERROR),
    (urllib.error.URLError, ReturnCode.NETWORK_ERROR),
    (TimeoutError, ReturnCode.NETWORK_ERROR),
)


def main(
    train: TaskRef | None = None,
    mine: TaskRef | None = None,
    infer: TaskRef | None = None,
    *,
    errors: Mapping[type[BaseException], int] | None = None,
    exit: bool = True,
) -> int:
    """Run the task kinds env.yaml asks for; 0 when all succeed, else 1 after reporting the error.

    With ``exit`` (the default) the process exits with that status; ``exit=False`` returns it.
    A kind env.yaml asks for without a function here fails the task with CONFIG_ERROR before
    anything runs.
    """
    status = _run({TaskKind.TRAINING: train, TaskKind.MINING: mine, TaskKind.INFER: infer}, errors or {})
    if exit:
        sys.exit(status)
    return status


def _run(functions: Mapping[TaskKind, TaskRef | None], errors: Mapping[type[BaseException], int]) -> int:
    _configure_logging()
    try:
        env = read_env()
    except SdkError as e:  # no env.yaml: there is no monitor.txt to write either
        logger.error("cannot start the task: %s", e)
        return 1
    kind: TaskKind | None = None
    try:
        config = read_config(env)
        kinds = [k for k in TASK_ORDER if k in env.kinds]
        missing = [k.value for k in kinds if functions.get(k) is None]
        if missing:
            msg = f"env.yaml asks for {' and '.join(missing)}, which this repository does not implement"
            raise ConfigValueError(msg)
        logger.info("task %s: %s (protocol %s)", env.task_id, ", ".join(k.value for k in kinds), env.protocol_version)
        for kind in kinds:
            _progress(0.0, kind, env)
            _resolve(functions[kind])(env, config)
            _progress(1.0, kind, env)
    except Exception as e:
        _fail(e, kind, env, errors)
        return 1
    logger.info("done")
    return 0


def _resolve(ref: TaskRef | None) -> TaskFunction:
    """The function ``ref`` names: itself, or ``module:function`` imported now."""
    if callable(ref):
        return ref
    module, sep, name = str(ref).partition(":")
    if not (sep and module and name):
        raise ConfigValueError(f"sdk.main: {ref!r} is neither a function nor 'module:function'")
    function = getattr(importlib.import_module(module), name, None)
    if not callable(function):
        raise ConfigValueError(f"sdk.main: module {module!r} has no function {name!r}")
    return cast(TaskFunction, function)  # getattr's result is Any; callable() checked it


def return_code_for(exc: BaseException, errors: Mapping[type[BaseException], int] | None = None) -> int:
    """The YMIR return code :func:`main` reports for ``exc`` (see the module's docstring)."""
    for kind, code in (errors or {}).items():
        if isinstance(exc, kind):
            return int(code)
    own = getattr(exc, "return_code", None)
    if isinstance(own, int) and not isinstance(own, bool) and own != 0:
        return own
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__) or "out of memory" in str(exc).lower():
        return ReturnCode.OUT_OF_MEMORY
    for kind, code in _BUILTIN_CODES:
        if isinstance(exc, kind):
            return code
    return ReturnCode.CONTAINER_ERROR


def one_line_reason(exc: BaseException, limit: int = MAX_REASON) -> str:
    """``exc`` as one line for monitor.txt: the message of an error that names its code (an
    :class:`SdkError`, a class with ``return_code``), else ``Type: message``; whitespace runs
    become one space, and a reason over ``limit`` characters is cut."""
    text = " ".join(str(exc).split())
    if not text or getattr(exc, "return_code", None) is None:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(exc: Exception, kind: TaskKind | None, env: Env, errors: Mapping[type[BaseException], int]) -> None:
    code = return_code_for(exc, errors)
    reason = one_line_reason(exc)
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    sys.stderr.flush()
    name = ReturnCode(code).name if code in ReturnCode._value2member_map_ else "job's own code"
    logger.error("%s failed with YMIR code %d (%s): %s", kind.value if kind else "the task", code, name, reason)
    try:
        write_error(code, reason, env=env)
    except OSError as e:
        logger.error("cannot write monitor.txt: %s", e)


def _progress(percent: float, kind: TaskKind, env: Env) -> None:
    """Progress from the main process only: under a launcher (torchrun sets ``RANK``) the other
    ranks leave monitor.txt to rank 0."""
    if os.environ.get("RANK", "0") in ("", "0"):
        write_progress(percent, task=kind, env=env)


def _configure_logging() -> None:
    """INFO and above to stdout with a timestamp, unless the job configured logging itself."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
