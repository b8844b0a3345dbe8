"""SIGTERM, SIGHUP and SIGINT before the job runs: the harness stops with :class:`Stopped` (or
KeyboardInterrupt), so that fetch and install clean up their children and the error state is
written (the supervisor forwards signals to the job once it runs).

The handler raises in whatever frame the main thread is in, and a few frames must not get it: in
them the exception is lost or does harm (:data:`_DEFER`). There the handler only records the
signal and sends it again to the main thread shortly after, when it is somewhere else. Every
command's Ctrl-C gets the same deferral (:func:`ctrl_c_deferred`, from the CLI's start)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any


class Stopped(BaseException):
    """The harness got SIGTERM/SIGINT/SIGHUP (the platform's ``docker rm -f``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: signals that stop_on_signals' handler got: its exception is lost when the handler runs where
#: Python ignores exceptions (the at-fork hooks of a subprocess being started, a finaliser)
PENDING: list[int] = []

#: (end of the file name, function) of the frames in which the handler does not raise:
#: - a child being started: Python ignores exceptions raised in at-fork hooks, and a Popen that
#:   raises after the fork has lost the child it started, which then runs on unwaited;
#: - logging's module lock: raised as ``_releaseLock`` starts (it is also logging's at-fork hook),
#:   the lock stays held, and every later fork or logger lookup of another thread waits forever
#:   (seen: SIGTERM during the install, then the env's bytecode compile never started and the
#:   stopping harness waited for it). Python 3.13 renamed the hooks ``_prepareFork``/``_afterFork``.
_DEFER = frozenset(
    {
        (f"{os.sep}subprocess.py", "_execute_child"),
        (f"{os.sep}subprocess.py", "__init__"),
        (f"logging{os.sep}__init__.py", "_acquireLock"),
        (f"logging{os.sep}__init__.py", "_releaseLock"),
        (f"logging{os.sep}__init__.py", "_prepareFork"),
        (f"logging{os.sep}__init__.py", "_afterFork"),
    }
)
#: seconds before a deferred signal is sent again: the deferring frames last microseconds to
#: milliseconds (a fork and exec)
RETRY_AFTER = 0.05


class _State:
    """Whether the handlers are installed, and whether a Stopped was raised where it counts."""

    active = False
    raised = False
    retry: threading.Timer | None = None


def _deferred(frame: FrameType | None) -> bool:
    while frame is not None:
        code = frame.f_code
        for suffix, name in _DEFER:
            if code.co_name == name and code.co_filename.endswith(suffix):
                return True
        frame = frame.f_back
    return False


def _to_main(signum: int) -> None:
    signal.pthread_kill(threading.main_thread().ident or 0, signum)


def _send_again(signum: int) -> None:
    if _State.active and not _State.raised:
        _to_main(signum)


def _later(send: Callable[[int], None], signum: int) -> threading.Timer:
    """``send(signum)`` in :data:`RETRY_AFTER` seconds, from a daemon thread."""
    timer = threading.Timer(RETRY_AFTER, send, (signum,))
    timer.daemon = True
    timer.start()
    return timer


def _stop(signum: int) -> BaseException:
    # Ctrl-C keeps Python's own exception (the CLI says "interrupted")
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


def _raise(signum: int, frame: FrameType | None) -> None:
    PENDING.append(signum)
    if _deferred(frame):
        if _State.retry is None or not _State.retry.is_alive():
            _State.retry = _later(_send_again, signum)
        return
    _State.raised = True
    raise _stop(signum)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if _deferred(frame):
        _later(_to_main, signum)
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """For every command, from the CLI's start: Ctrl-C raises KeyboardInterrupt as Python's own
    handler does, except in the frames of :data:`_DEFER`, where it is sent again shortly after.
    Python's own handler, run as a subprocess is being forked, loses the Ctrl-C (the command goes on
    as if none came) and leaves logging's lock held, which a thread that logs (the pump of uv's
    output in ``prefetch``) then waits for forever. A run replaces this handler with
    :func:`stop_on_signals`' until its job starts. An ignored SIGINT stays ignored."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_stopped() -> None:
    """Raise the Stopped (or KeyboardInterrupt) that a signal handler raised where it could not
    propagate."""
    if PENDING:
        _State.raised = True
        raise _stop(PENDING[0])


def stop_on_signals() -> dict[int, Any]:
    """Until the job runs (the supervisor forwards signals then), SIGTERM/SIGHUP stop the harness
    with :class:`Stopped`, so that fetch and install clean up their children and the error state
    is written. SIGINT raises KeyboardInterrupt as Python's own handler does, deferred in the same
    frames; where SIGINT is ignored (a job started in the background by a shell) it stays so."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    PENDING.clear()
    _State.active, _State.raised = True, False
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        previous[sig] = signal.getsignal(sig)
        if sig != signal.SIGINT or previous[sig] in (signal.default_int_handler, _interrupt):
            signal.signal(sig, _raise)
    return previous


def restore_signals(previous: Mapping[int, Any]) -> None:
    if not previous:  # stop_on_signals was called off the main thread: it set nothing
        return
    _State.active = False
    if _State.retry is not None:
        _State.retry.cancel()
        _State.retry = None
    for sig, handler in previous.items():
        signal.signal(sig, handler)
