"""Progress of fetch and install (issue 7): one live status line in a terminal (checked through a
real pseudo-terminal), plain ``live-code:`` lines when stderr is not a terminal."""

from __future__ import annotations

import io
import logging
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from live_code import progress

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import logging, time
from live_code import progress
progress.install()
logging.getLogger("live_code.source.store").info("source: fetching")
time.sleep(0.5)
logging.getLogger("live_code.envs.installer").info("  + pyyaml==6.0.4")
logging.getLogger("live_code.run.pipeline").info("running job")
logging.getLogger("live_code.envs.builder").info("reusing env abc")
"""


def _records(handler: logging.Handler) -> None:
    for name, message in (
        ("live_code.source.store", "source: fetching"),
        ("live_code.envs.builder", "installing 2 packages"),
        ("live_code.run.pipeline", "running job"),
    ):
        handler.handle(logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None))


def test_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    handler = progress.ProgressHandler(stream, tty=False)
    _records(handler)
    handler.close()
    assert stream.getvalue() == (
        "live-code: source: fetching\nlive-code: installing 2 packages\nlive-code: running job\n"
    )


def test_status_line_in_a_terminal() -> None:
    stream = io.StringIO()
    handler = progress.ProgressHandler(stream, tty=True, interval=60)
    _records(handler)
    handler.close()
    text = stream.getvalue()
    assert "\r\x1b[Klive-code: | source: fetching (0s)" in text.replace("/", "|")
    # the status is replaced in place, then kept as a line when another message comes
    assert text.endswith("\r\x1b[Klive-code: installing 2 packages\nlive-code: running job\n")
    assert text.count("\n") == 2


def test_env_lines_from_the_pipelines_reporter_are_progress() -> None:
    stream = io.StringIO()
    handler = progress.ProgressHandler(stream, tty=True, interval=60)
    # pipeline.py hands ensure_env the live_code.envs.builder logger as its reporter
    record = logging.LogRecord(
        "live_code.envs.builder", logging.INFO, __file__, 1, "resolving 3 requirements", None, None
    )
    handler.handle(record)
    assert "\n" not in stream.getvalue() and "resolving 3 requirements" in stream.getvalue()
    handler.handle(logging.LogRecord("live_code.run.pipeline", logging.INFO, __file__, 1, "running job", None, None))
    assert stream.getvalue().endswith("live-code: resolving 3 requirements\nlive-code: running job\n")
    handler.close()


def test_a_pseudo_terminal_gets_a_redrawn_status_line_and_a_pipe_plain_lines() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stderr=slave, stdout=subprocess.DEVNULL, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=30)
    os.close(master)
    text = seen.decode()
    assert text.count("source: fetching") >= 2, "the ticker redraws the status while nothing new comes"
    assert "\x1b[K" in text
    assert "live-code:   + pyyaml==6.0.4\r\n" in text and "live-code: running job\r\n" in text
    assert text.rstrip().endswith("live-code: reusing env abc"), "the last status is settled at exit"

    piped = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=30)
    assert piped.stderr == (
        "live-code: source: fetching\nlive-code:   + pyyaml==6.0.4\nlive-code: running job\n"
        "live-code: reusing env abc\n"
    )
