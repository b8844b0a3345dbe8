"""SIGTERM and SIGHUP before the job runs: the harness stops with :class:`Stopped`, so that fetch
and install clean up their children and the error state is written (the supervisor forwards
signals to the job once it runs)."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any


class Stopped(BaseException):
    """The harness got SIGTERM/SIGINT/SIGHUP (the platform's ``docker rm -f``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: signals that stop_on_signals' handler got: its exception is lost when the handler runs where
#: Python ignores exceptions (the at-fork hooks of a subprocess being started, a finaliser)
PENDING: list[int] = []


def check_stopped() -> None:
    """Raise the Stopped that a signal handler raised where it could not propagate."""
    if PENDING:
        raise Stopped(PENDING[0])


def stop_on_signals() -> dict[int, Any]:
    """Until the job runs (the supervisor forwards signals then), SIGTERM/SIGHUP stop the harness
    with :class:`Stopped`, so that fetch and install clean up their children and the error state
    is written."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    PENDING.clear()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.getsignal(sig)

        def _raise(signum: int, frame: object) -> None:
            PENDING.append(signum)
            raise Stopped(signum)

        signal.signal(sig, _raise)
    return previous


def restore_signals(previous: Mapping[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
