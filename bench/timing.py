"""Run one command and time it: from just before it starts to the first stdout line holding a
marker, and to its exit. Its stdout is read as it comes (1 MiB reads, the tail kept); its stderr
goes to a log file.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_TAIL = 8192


@dataclass(frozen=True)
class Timed:
    argv: tuple[str, ...]
    returncode: int
    #: seconds from start to the first stdout line holding the marker (None: never seen)
    first_line: float | None
    #: seconds from start to exit (and stdout closed)
    total: float
    stdout_bytes: int
    stdout_tail: str
    log: str
    #: CPU seconds (user + system) of the process and every descendant it waited for
    cpu: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.first_line is not None

    def after_marker(self) -> float:
        """Seconds from the marker to the exit: the job's run as the caller sees it."""
        assert self.first_line is not None
        return self.total - self.first_line

    def describe(self) -> str:
        tail = "\n".join(self.stdout_tail.splitlines()[-15:])
        return (
            f"{' '.join(self.argv[:6])} ... exited {self.returncode}, marker "
            f"{'seen' if self.first_line is not None else 'never seen'}; stderr in {self.log}\n{tail}"
        )


def run_timed(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, marker: str, log: Path, keep_stdout: bool = True
) -> Timed:
    """Run ``argv`` to its end; stdout is appended to ``log`` too unless ``keep_stdout`` is False
    (the burn job's 250 MB)."""
    needle = marker.encode()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as err:
        os.sync()  # the case before may have left hundreds of MB to write back: not this case's cost
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        first: float | None = None
        window = b""  # the bytes since the last newline, while the marker is not yet seen
        tail = b""
        total_bytes = 0
        kept: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total_bytes += len(chunk)
            if first is None:
                window += chunk
                if needle in window:
                    first = time.perf_counter() - start
                else:
                    window = window[-len(needle) :]
            tail = (tail + chunk)[-_TAIL:]
            if keep_stdout:
                kept.append(chunk)
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        total = time.perf_counter() - start
        returncode = os.waitstatus_to_exitcode(status)
        proc.returncode = returncode
        if keep_stdout:
            err.write(b"\n---- stdout ----\n" + b"".join(kept))
    return Timed(
        tuple(argv),
        returncode,
        first,
        total,
        total_bytes,
        tail.decode(errors="replace"),
        str(log),
        usage.ru_utime + usage.ru_stime,
    )


def disk_usage(*paths: Path) -> int:
    """Bytes used by ``paths`` together (``du``: a file hardlinked twice counts once)."""
    existing = [str(p) for p in paths if p.exists()]
    if not existing:
        return 0
    out = subprocess.run(["du", "-sck", *existing], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split()[0]) * 1024
