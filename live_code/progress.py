"""The CLI's log output: one live status line for fetch and install in a terminal, plain lines otherwise.

In an interactive terminal the INFO lines of fetching and installing (the git, store, envs and
installer loggers: uv's own output included) replace each other on one line with a spinner and
the seconds since the step began, redrawn while nothing new comes. Any other line (a warning, the
job starting) first turns the status line into a permanent one, so what was done stays on screen
and the job's own output starts on a clean line. When stderr is not a terminal (YMIR's executor
log, CI, a pipe) every record is a plain ``live-code: message`` line, as before.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

#: loggers whose INFO lines are progress of fetching and installing
PROGRESS_LOGGERS = (
    "live_code.source.git",
    "live_code.source.store",
    "live_code.envs.builder",
    "live_code.envs.installer",
    "live_code.envs.base",
)
PREFIX = "live-code: "
_SPINNER = "|/-\\"
_CLEAR = "\r\x1b[K"


class ProgressHandler(logging.Handler):
    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, interval: float = 0.2) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.status: str | None = None
        self.started = 0.0
        self.frame = 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if not self.tty:
                self.stream.write(f"{PREFIX}{message}\n")
            elif record.levelno == logging.INFO and _is_progress(record):
                if self.status is None:
                    self.started = time.monotonic()
                self.status = message
                self._draw()
                self._start_ticker()
            else:
                self._settle()
                self.stream.write(f"{PREFIX}{message}\n")
            self.stream.flush()
        except Exception:  # logging must never break the run
            self.handleError(record)

    def _draw(self) -> None:
        if self.status is None:
            return
        self.frame = (self.frame + 1) % len(_SPINNER)
        elapsed = f" ({time.monotonic() - self.started:.0f}s)"
        width = shutil.get_terminal_size((100, 20)).columns - len(PREFIX) - len(elapsed) - 3
        text = self.status if len(self.status) <= width else self.status[: max(0, width - 3)] + "..."
        self.stream.write(f"{_CLEAR}{PREFIX}{_SPINNER[self.frame]} {text}{elapsed}")
        self.stream.flush()

    def _settle(self) -> None:
        """End the status line: it stays, as a plain line."""
        if self.status is not None:
            self.stream.write(f"{_CLEAR}{PREFIX}{self.status}\n")
            self.status = None

    def _start_ticker(self) -> None:
        if self._ticker is not None and self._ticker.is_alive():
            return
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="live-code-progress", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self.lock or threading.Lock():
                if self.status is None:
                    return
                try:
                    self._draw()
                except (OSError, ValueError):
                    return

    def close(self) -> None:
        self._stop.set()
        with self.lock or threading.Lock():
            if self.tty:
                self._settle()
                self.stream.flush()
        super().close()


def _is_progress(record: logging.LogRecord) -> bool:
    return record.name.startswith(PROGRESS_LOGGERS)


def install(verbose: bool = False, stream: TextIO | None = None) -> logging.Handler | None:
    """Configure the root logger like ``logging.basicConfig`` (nothing when it has handlers already)."""
    root = logging.getLogger()
    if root.handlers:
        return None
    handler = ProgressHandler(stream)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler


__all__: Sequence[str] = ("PROGRESS_LOGGERS", "ProgressHandler", "install")
