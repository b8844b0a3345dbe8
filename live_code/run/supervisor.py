"""Run the user's entry point as one supervised child: a request in, an outcome out.

- The child starts in its own session (process group) with exactly the environment the request
  gives; stdin is closed.
- stdout and stderr are pumped continuously (one pipe, so their order is kept) to a sink, the
  harness's stdout by default, line by line with secrets redacted. A thread drains the pipe so a
  chatty child never blocks on a full pipe.
- SIGTERM / SIGINT sent to the harness are forwarded to the child's group; after ``grace`` seconds
  the group gets SIGKILL. The optional wall-clock ``timeout`` stops the child the same way.
- ``run`` returns once the child has exited, even when a grandchild keeps the pipe open, and it
  leaves no process behind: the harness makes itself a child subreaper (Linux), so descendants
  that escaped the group with ``setsid`` are re-parented to it and killed when the job ends.
- If the harness itself dies (SIGKILL, the OOM killer), a small guard process it started kills
  the child's process group: the child's session would otherwise outlive it.
- ``hide_from_children`` makes the harness non-dumpable, so a job running as the same user cannot
  read its environment (a token) or memory through /proc.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import fcntl
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from live_code import util

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_DUMPABLE = 4
_CHUNK = 1 << 16
_PIPE_SIZE = 1 << 20
_TAIL_LINES = 20
#: how long the pump keeps reading after the child exited, for output still in the pipe
_DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class RunRequest:
    """What to run. ``env`` is the child's whole environment: nothing is inherited."""

    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str]
    #: wall-clock limit in seconds (``live_code_timeout``); None for none
    timeout: float | None = None
    #: seconds between SIGTERM and SIGKILL
    grace: float = 10.0
    #: strings redacted from the output (tokens); URL credentials are always redacted
    secrets: Sequence[str] = ()
    #: where the child's output goes; None means the harness's stdout
    sink: BinaryIO | None = None

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("RunRequest needs a command")


@dataclass(frozen=True)
class RunOutcome:
    """How the child ended."""

    request: RunRequest
    #: exit status, or None when it was killed by a signal
    returncode: int | None
    #: the signal that killed the child, if one did
    signal: int | None
    #: stopped because ``timeout`` passed
    timed_out: bool
    #: the signal the harness received and forwarded (SIGTERM, SIGINT), if any
    interrupted: int | None
    elapsed: float
    #: the last lines the child printed (redacted), for error messages
    tail: tuple[str, ...] = field(default=())
    #: processes that outlived the child and were killed afterwards
    stragglers: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.interrupted is None

    def describe(self) -> str:
        """One line: how the child ended."""
        if self.timed_out:
            how = f"timed out after {self.request.timeout:.0f}s and was stopped"
        elif self.interrupted is not None:
            how = f"was stopped because live-code received {signal.Signals(self.interrupted).name}"
        elif self.signal is not None:
            how = f"was killed by {_signame(self.signal)}"
        else:
            how = f"exited with code {self.returncode}"
            if self.returncode is not None and 128 < self.returncode < 128 + 65:  # a shell's or a sandbox's report
                how += f" (128 + {_signame(self.returncode - 128)}: it was killed by that signal)"
        return f"the job {how} ({self.elapsed:.1f}s)"


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux >= 3.4). True if it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _widen_pipe(fd: int) -> None:
    """Linux: a 1 MiB pipe instead of 64 KiB, so a job printing fast does not stall each time the
    pump is off the CPU (bench/README.md, "running job"). Best effort: the size is capped by
    /proc/sys/fs/pipe-max-size for unprivileged users."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)


def hide_from_children() -> bool:
    """Make this process non-dumpable (Linux): its /proc files (environ, mem) become unreadable for
    processes of the same user without CAP_SYS_PTRACE, such as the jobs it runs. True if it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# Run by the guard process: wait until the harness writes a byte (the job is over) or dies (EOF on
# the pipe), and in that case SIGKILL the job's process group.
_GUARD = """\
import os, signal, sys
fd, pgid = int(sys.argv[1]), int(sys.argv[2])
try:
    done = os.read(fd, 1)
except OSError:
    done = b""
if not done:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


def _start_guard(pgid: int) -> tuple[subprocess.Popen[bytes] | None, int | None]:
    """A process that SIGKILLs group ``pgid`` if this process dies before :func:`_stop_guard`."""
    read_fd, write_fd = os.pipe()
    try:
        # an empty environment: the guard is readable by the job (same uid), so it must hold no secret
        guard = subprocess.Popen(
            [sys.executable, "-I", "-c", _GUARD, str(read_fd), str(pgid)],
            pass_fds=(read_fd,),
            env={},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as e:
        log.warning("cannot start the guard that stops the job if live-code dies: %s", e)
        os.close(write_fd)
        return None, None
    finally:
        os.close(read_fd)
    return guard, write_fd


def _stop_guard(guard: subprocess.Popen[bytes] | None, write_fd: int | None) -> None:
    if guard is None or write_fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(write_fd, b"x")
    os.close(write_fd)
    try:
        guard.wait(timeout=10)
    except subprocess.TimeoutExpired:
        guard.kill()
        guard.wait()


def _children_of(pid: int) -> dict[int, str]:
    """The children of ``pid`` with their state letter (``Z`` for a zombie)."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the comm field may hold spaces and parentheses: parse after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids[int(entry)] = fields[0].decode()
    return kids


def _reap_stragglers(keep: set[int]) -> int:
    """SIGKILL the children of this process that the job left (descendants re-parented to us),
    reap them, and return how many were still running (zombies are only reaped).

    ``keep`` holds the children the harness had before the job started (a test's server, say).
    """
    if not sys.platform.startswith("linux"):
        return 0
    killed = 0
    for _ in range(50):  # a straggler may fork while we kill: repeat until none is left
        kids = {pid: st for pid, st in _children_of(os.getpid()).items() if pid not in keep}
        if not kids:
            break
        for pid, st in kids.items():
            if st == "Z":
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                pgid = os.getpgid(pid)
                if pgid != os.getpgid(0):
                    os.killpg(pgid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
                killed += 1
        for pid in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return killed


class _Pump(threading.Thread):
    """Copies the child's output to the sink, redacting whole lines; keeps the last lines."""

    def __init__(self, fd: int, sink: BinaryIO, secrets: Sequence[str]) -> None:
        super().__init__(name="live-code-output-pump", daemon=True)
        self.fd = fd
        self.sink = sink
        self.secrets = tuple(secrets)
        self.stop_at: float | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._pending = b""

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            if self.stop_at is not None and time.monotonic() > self.stop_at:
                break
            if not poller.poll(100):
                continue
            try:
                chunk = os.read(self.fd, _PIPE_SIZE)
            except OSError:
                break
            if not chunk:
                break
            self._feed(chunk)
        self._emit(self._pending, final=True)
        with contextlib.suppress(OSError, ValueError):
            self.sink.flush()

    def _feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        # \r ends a progress-bar line as much as \n does
        cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if cut < 0 and len(data) < _CHUNK:
            self._pending = data
            return
        if cut < 0:
            cut = len(data) - 1
        self._pending = data[cut + 1 :]
        self._emit(data[: cut + 1])

    def _emit(self, data: bytes, final: bool = False) -> None:
        if not data:
            return
        text = data.decode("utf-8", errors="replace")
        # redact only text that can hold a secret: the regex over every chunk cost more CPU than
        # the job's own printing (bench/README.md, "harness CPU while it runs")
        if "://" in text or any(s and s in text for s in self.secrets):
            text = util.redact(text, self.secrets)
        self.tail.extend(_last_lines(text, _TAIL_LINES))
        try:
            self.sink.write(text.encode())
            if final or b"\n" in data:
                self.sink.flush()
        except (OSError, ValueError):  # the sink closed (harness's stdout gone): keep draining
            pass


def _last_lines(text: str, count: int) -> list[str]:
    """The last ``count`` non-blank lines of ``text`` (a carriage return ends a line too), reading
    back from the end only as far as needed: splitting all of a 64 KiB chunk of short lines was
    most of the pump's CPU."""
    size = 4096
    while True:
        pieces = text[-size:].replace("\r", "\n").split("\n")
        if size < len(text):
            pieces = pieces[1:]  # may be the end of a line cut in two
        lines = [ln for ln in pieces if ln.strip()]
        if len(lines) >= count or size >= len(text):
            return lines[-count:]
        size *= 4


@contextlib.contextmanager
def _forward_signals(on_signal: Callable[[int], None]) -> Iterator[None]:
    """While the child runs, SIGTERM/SIGINT/SIGHUP to the harness call ``on_signal``."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    sigs = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in sigs}
    for s in sigs:
        signal.signal(s, lambda signum, frame: on_signal(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run(request: RunRequest) -> RunOutcome:
    """Run the request's command to the end and say how it ended. Never raises for the child's
    failure; raises OSError subclasses only when the command cannot be started."""
    sink = request.sink if request.sink is not None else sys.stdout.buffer
    become_subreaper()
    existing = set(_children_of(os.getpid())) if sys.platform.startswith("linux") else set()
    start = time.monotonic()
    read_fd, write_fd = os.pipe()
    _widen_pipe(write_fd)
    try:
        proc = subprocess.Popen(
            list(request.argv),
            cwd=request.cwd,
            env=dict(request.env),
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
            close_fds=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    guard, guard_fd = _start_guard(proc.pid)
    if guard is not None:
        existing.add(guard.pid)
    pump = _Pump(read_fd, sink, request.secrets)
    pump.start()

    state: dict[str, object] = {"interrupted": None, "kill_at": None, "timed_out": False}

    def _stop(reason_signal: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        if state["kill_at"] is None:
            state["kill_at"] = time.monotonic() + request.grace

    def _on_signal(signum: int) -> None:
        if state["interrupted"] is None:
            state["interrupted"] = signum
            log.warning("received %s: stopping the job (SIGKILL in %.0fs)", _signame(signum), request.grace)
        _stop(signum)

    deadline = start + request.timeout if request.timeout else None
    with _forward_signals(_on_signal):
        while True:
            try:
                proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if deadline is not None and now > deadline and not state["timed_out"]:
                state["timed_out"] = True
                log.warning(
                    "the job passed its %.0fs timeout: stopping it (SIGKILL in %.0fs)", request.timeout, request.grace
                )
                _stop(signal.SIGTERM)
            kill_at = state["kill_at"]
            if isinstance(kill_at, float) and now > kill_at:
                log.warning("the job did not stop within %.0fs of SIGTERM: sending SIGKILL", request.grace)
                util.kill_group(proc)
                state["kill_at"] = float("inf")
    elapsed = time.monotonic() - start
    # The job is over: whatever is left of its group, or escaped it, goes now.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    stragglers = _reap_stragglers(existing)
    _stop_guard(guard, guard_fd)
    if stragglers:
        log.warning("killed %d process(es) the job left running", stragglers)
    pump.stop_at = time.monotonic() + _DRAIN_SECONDS
    pump.join()
    os.close(read_fd)
    rc = proc.returncode
    interrupted = state["interrupted"]
    return RunOutcome(
        request=request,
        returncode=rc if rc >= 0 else None,
        signal=-rc if rc < 0 else None,
        timed_out=bool(state["timed_out"]),
        interrupted=interrupted if isinstance(interrupted, int) else None,
        elapsed=elapsed,
        tail=tuple(pump.tail),
        stragglers=stragglers,
    )
