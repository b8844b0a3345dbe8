"""Run the user's entry point as one supervised child: a request in, an outcome out.

- The child starts in its own session (process group) with exactly the environment the request
  gives; stdin is closed.
- stdout and stderr are pumped continuously (one pipe, so their order is kept) to a sink, the
  harness's stdout by default, in blocks with secrets redacted (``_pump``). A thread drains the
  pipe so a chatty child never blocks on a full pipe.
- SIGTERM / SIGINT sent to the harness are forwarded to the child's group; after ``grace`` seconds
  the group gets SIGKILL. The optional wall-clock ``timeout`` stops the child the same way.
- ``run`` returns once the child has exited, even when a grandchild keeps the pipe open, and it
  leaves no process behind: the harness makes itself a child subreaper (Linux), so descendants
  that escaped the group with ``setsid`` are re-parented to it and killed when the job ends.
- If the harness itself dies (SIGKILL, the OOM killer), the job dies with it. A job in bubblewrap's
  sandbox is the first process of a PID namespace that bubblewrap ends with its parent
  (``--die-with-parent``), so nothing more is started. A job outside it gets a guard, a shell that
  waits on a pipe from the harness and SIGKILLs the job's group at end of file (``_start_guard``).
- ``hide_from_children`` makes the harness non-dumpable, so a job running as the same user cannot
  read its environment (a token) or memory through /proc.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import io
import logging
import os
import select
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from live_code import util
from live_code.record import field, record
from live_code.run import _pump, sandbox
from live_code.run._pump import _last_lines  # noqa: F401  (the tests read it here)
from live_code.run._reaper import become_subreaper, children_of, reap_stragglers

log = logging.getLogger(__name__)

_PR_SET_DUMPABLE = 4
#: how long the pump keeps reading after the child exited, for output still in the pipe
_DRAIN_SECONDS = 2.0
#: how often the supervisor looks at its timeout and grace period while the child runs
_TICK = 0.1


@record
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


@record
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


def _widen_pipe(fd: int) -> None:
    """Linux: a 1 MiB pipe instead of 64 KiB, so a job printing fast does not stall each time the
    pump is off the CPU (bench/README.md, "running job"). Best effort: the size is capped by
    /proc/sys/fs/pipe-max-size for unprivileged users."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _pump.PIPE_SIZE)


def _widen_sink(sink: BinaryIO) -> None:
    """A sink that is a pipe (the harness's stdout under docker) gets a 1 MiB buffer too: writing
    1 MiB blocks into a 64 KiB pipe cost a wake-up of its reader per 64 KiB."""
    with contextlib.suppress(OSError, AttributeError, ValueError, io.UnsupportedOperation):
        fd = sink.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            _widen_pipe(fd)


def hide_from_children() -> bool:
    """Make this process non-dumpable (Linux): its /proc files (environ, mem) become unreadable for
    processes of the same user without CAP_SYS_PTRACE, such as the jobs it runs. True if it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# The guard, for a job not in a sandbox that dies with us: a shell (no interpreter start) whose stdin
# is a pipe from the harness. A line on it means the job is over; end of file means the harness died
# (SIGKILL, the OOM killer), and then it SIGKILLs the job's process group. Only builtins: it gets an
# empty environment, since the job (same uid) can read it.
_GUARD = 'read -r _ || kill -s KILL -- "-$1"'


def _start_guard(argv: Sequence[str], pgid: int) -> tuple[subprocess.Popen[bytes] | None, int | None]:
    """A process that SIGKILLs group ``pgid`` if this process dies before :func:`_stop_guard`, unless
    the command is bubblewrap's sandbox, which the kernel ends with us (``sandbox.dies_with_parent``)."""
    if sandbox.dies_with_parent(argv):
        return None, None
    read_fd, write_fd = os.pipe()
    try:
        guard = subprocess.Popen(
            ["/bin/sh", "-c", _GUARD, "live-code-guard", str(pgid)],
            env={},
            stdin=read_fd,
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
        os.write(write_fd, b"\n")
    os.close(write_fd)
    try:
        guard.wait(timeout=10)
    except subprocess.TimeoutExpired:
        guard.kill()
        guard.wait()


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


class _Job:
    """A started child, and how it is being stopped: by a timeout, or by a signal to the harness."""

    def __init__(self, request: RunRequest, proc: subprocess.Popen[bytes]) -> None:
        self.request = request
        self.proc = proc
        self.interrupted: int | None = None
        self.timed_out = False
        self.kill_at: float | None = None

    def stop(self) -> None:
        """SIGTERM to the group now, SIGKILL after the grace period."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        if self.kill_at is None:
            self.kill_at = time.monotonic() + self.request.grace

    def on_signal(self, signum: int) -> None:
        if self.interrupted is None:
            self.interrupted = signum
            log.warning("received %s: stopping the job (SIGKILL in %.0fs)", _signame(signum), self.request.grace)
        self.stop()

    def wait(self, start: float) -> None:
        """Until the child exits, stopping it at the timeout and killing it after the grace period."""
        request = self.request
        deadline = start + request.timeout if request.timeout else None
        exited = _exit_waiter(self.proc)
        while True:
            if exited(_TICK):
                return
            now = time.monotonic()
            if deadline is not None and now > deadline and not self.timed_out:
                self.timed_out = True
                log.warning(
                    "the job passed its %.0fs timeout: stopping it (SIGKILL in %.0fs)", request.timeout, request.grace
                )
                self.stop()
            if self.kill_at is not None and now > self.kill_at:
                log.warning("the job did not stop within %.0fs of SIGTERM: sending SIGKILL", request.grace)
                util.kill_group(self.proc)
                self.kill_at = float("inf")


def _exit_waiter(proc: subprocess.Popen[bytes]) -> Callable[[float], bool]:
    """A function that waits up to ``seconds`` for ``proc`` to exit and says whether it did. On
    Linux it sleeps in poll() on a pidfd; ``Popen.wait(timeout)`` wakes about 80 times a second."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):

        def wait(seconds: float) -> bool:
            try:
                proc.wait(timeout=seconds)
                return True
            except subprocess.TimeoutExpired:
                return False

        return wait
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)

    def wait_pidfd(seconds: float) -> bool:
        if not poller.poll(seconds * 1000):
            return False
        os.close(pidfd)
        proc.wait()
        return True

    return wait_pidfd


def _spawn(request: RunRequest) -> tuple[subprocess.Popen[bytes], int]:
    """Start the child in its own session with its output on one pipe; returns it and the read end."""
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
    return proc, read_fd


def run(request: RunRequest) -> RunOutcome:
    """Run the request's command to the end and say how it ended. Never raises for the child's
    failure; raises OSError subclasses only when the command cannot be started."""
    sink = request.sink if request.sink is not None else sys.stdout.buffer
    _widen_sink(sink)
    become_subreaper()
    existing = set(children_of(os.getpid())) if sys.platform.startswith("linux") else set()
    start = time.monotonic()
    proc, read_fd = _spawn(request)
    guard, guard_fd = _start_guard(request.argv, proc.pid)
    if guard is not None:
        existing.add(guard.pid)
    pump = _pump.Pump(read_fd, sink, request.secrets)
    pump.start()
    job = _Job(request, proc)
    with _forward_signals(job.on_signal):
        job.wait(start)
    elapsed = time.monotonic() - start
    # The job is over: whatever is left of its group, or escaped it, goes now.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    stragglers = reap_stragglers(existing)
    _stop_guard(guard, guard_fd)
    if stragglers:
        log.warning("killed %d process(es) the job left running", stragglers)
    pump.stop_at = time.monotonic() + _DRAIN_SECONDS
    pump.join()
    os.close(read_fd)
    rc = proc.returncode
    return RunOutcome(
        request=request,
        returncode=rc if rc >= 0 else None,
        signal=-rc if rc < 0 else None,
        timed_out=job.timed_out,
        interrupted=job.interrupted,
        elapsed=elapsed,
        tail=tuple(pump.tail),
        stragglers=stragglers,
    )
