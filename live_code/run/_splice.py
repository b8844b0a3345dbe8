"""Zero-copy output for the pump (Linux): look at the job's bytes without taking them, then move
them to the sink inside the kernel.

``tee(2)`` duplicates what sits in the job's pipe into a side pipe without consuming it; the pump
reads the side pipe (one copy) to look for line ends, credentials and non-ASCII bytes, and
``splice(2)`` then moves the bytes it approved from the job's pipe to the sink, with no copy
through Python. Reading and writing every byte was most of the harness's CPU while a chatty job
ran (bench/README.md, "harness CPU while it runs").
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import stat
import sys
from typing import BinaryIO

_SPLICE_F_NONBLOCK = 2
_F_SETPIPE_SZ = 1031


class Splicer:
    """A side pipe to look at the job's output through, and the sink's descriptor to splice to."""

    def __init__(self, sink_fd: int, size: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._tee = libc.tee
        self._tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
        self._tee.restype = ctypes.c_ssize_t
        self.sink_fd = sink_fd
        self.size = size
        self.side_r, self.side_w = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.side_w, _F_SETPIPE_SZ, size)

    @classmethod
    def create(cls, sink: BinaryIO, size: int) -> Splicer | None:
        """A splicer to ``sink``, or None where splicing cannot be used (not Linux, Python 3.9,
        a sink that is not a pipe or a file, no ``tee`` in the C library)."""
        if not sys.platform.startswith("linux") or not hasattr(os, "splice"):
            return None
        try:
            fd = sink.fileno()
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
                return None
            return cls(fd, size)
        except (OSError, AttributeError, ValueError):
            return None

    def look(self, fd: int) -> bytes | None:
        """A copy of what sits in pipe ``fd``, which stays there; b"" at end of file, None when
        there is nothing to look at yet."""
        n = self._tee(fd, self.side_w, self.size, _SPLICE_F_NONBLOCK)
        if n < 0:
            err = ctypes.get_errno()
            if err == errno.EAGAIN:
                return None
            raise OSError(err, os.strerror(err))
        if n == 0:
            return b""
        return read_exactly(self.side_r, n)

    def move(self, fd: int, count: int) -> None:
        """Move ``count`` bytes from pipe ``fd`` to the sink; OSError if the sink refuses them."""
        while count:
            moved = os.splice(fd, self.sink_fd, count)
            if moved <= 0:
                raise OSError(errno.EPIPE, "the sink took nothing")
            count -= moved

    def close(self) -> None:
        for fd in (self.side_r, self.side_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def read_exactly(fd: int, count: int) -> bytes:
    """``count`` bytes that are known to be in pipe ``fd``."""
    data = os.read(fd, count)
    while len(data) < count:
        more = os.read(fd, count - len(data))
        if not more:
            break
        data += more
    return data
