"""The output pump: copies a job's output from its pipe to a sink, redacted, keeping the last lines.

It works on bytes in blocks of up to 1 MiB, and does per block only what C does fast: find the last
line end, test for ``://`` and the secrets (``util.BytesRedactor``), check the block is ASCII. The
regex runs only on a block that may hold a credential; text is decoded only for the last lines
and for a block that is not valid UTF-8 (written with replacement characters, as a text pump
would). A block is cut at its last line end, so a secret (never spanning lines) is whole in one
block; a line longer than a block is cut where no secret and no URL credentials can straddle the
cut (``_cut_without_line_end``).
"""

from __future__ import annotations

import collections
import os
import re
import select
import threading
import time
from collections.abc import Sequence
from typing import AnyStr, BinaryIO

from live_code import util
from live_code.run._splice import Splicer, read_exactly

#: a line with no end is held back until it is this long
_CHUNK = 1 << 16
#: the size of one read, and of the pipe (supervisor._widen_pipe)
PIPE_SIZE = 1 << 20
_TAIL_LINES = 20
#: bytes held back at a cut inside a line: a URL's scheme and "://" fit in them
_HOLD = 64
#: an unended line is written out at this size even if it ends in an unfinished URL
_MAX_PENDING = 4 << 20
#: what ends the userinfo of a URL (util._URL_USERINFO_RE)
_USERINFO_END = re.compile(rb"[/@\s]")


class Pump(threading.Thread):
    """Copies the child's output to the sink, redacted; keeps the last lines."""

    def __init__(self, fd: int, sink: BinaryIO, secrets: Sequence[str]) -> None:
        super().__init__(name="live-code-output-pump", daemon=True)
        self.fd = fd
        self.sink = sink
        self.redactor = util.BytesRedactor(secrets)
        self.stop_at: float | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._pending = b""

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        splicer = Splicer.create(self.sink, PIPE_SIZE)
        try:
            while self.stop_at is None or time.monotonic() <= self.stop_at:
                if not poller.poll(100):
                    continue
                try:
                    more = self._splice_step(splicer) if splicer is not None else self._copy_step()
                except OSError:
                    break
                if not more:
                    break
        finally:
            if splicer is not None:
                splicer.close()
        self._emit(self._pending)
        self._pending = b""

    def _copy_step(self) -> bool:
        chunk = os.read(self.fd, PIPE_SIZE)
        self.feed(chunk)
        return bool(chunk)

    def _splice_step(self, splicer: Splicer) -> bool:
        """One block through the kernel: look at it, and move the lines that need no redaction
        straight to the sink; anything else (a credential, non-ASCII text, a line not ended yet)
        is read and goes through :meth:`feed`, as without splicing."""
        view = splicer.look(self.fd)
        if view is None:
            return True
        if not view:
            return False
        cut = _after_last_line_end(view)
        if cut == 0:  # no line end in the pipe: take it, or the pipe stays readable forever
            self.feed(read_exactly(self.fd, len(view)))
        elif self._pending or not view.isascii() or self.redactor.needed(view):
            self.feed(read_exactly(self.fd, cut))  # ends at a line end: nothing stays pending
        else:
            lines = view[:cut]
            try:
                self.sink.flush()
                splicer.move(self.fd, cut)
            except (OSError, ValueError):  # the sink is gone: keep draining the job's pipe
                self._copy_step()
            self.tail.extend(_last_lines(lines, _TAIL_LINES))
        return True

    def feed(self, chunk: bytes) -> None:
        """Take one block read from the pipe: write out all that ends a line, keep the rest."""
        data = self._pending + chunk if self._pending else chunk
        cut = _after_last_line_end(data)
        if cut == 0:
            cut = self._cut_without_line_end(data) if len(data) >= _CHUNK else 0
        self._pending = data[cut:]
        if cut:
            self._emit(data[:cut])

    def _cut_without_line_end(self, data: bytes) -> int:
        """Where to cut a long line: never inside a secret or a URL's credentials, which may go on
        in the next read. 0 means keep it all for now."""
        cut = len(data) - max(self.redactor.overlap, _HOLD)
        scheme_end = data.rfind(b"://")
        if scheme_end >= 0 and not _USERINFO_END.search(data, scheme_end + 3):
            cut = min(cut, scheme_end - _HOLD)  # the credentials may not have ended yet
        if cut <= 0:
            if len(data) < _MAX_PENDING:
                return 0
            cut = len(data) - _HOLD
        for m in self.redactor.matches(data, max(0, cut - _CHUNK)):
            if m.start() < cut < m.end():
                return m.start()
        return cut

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        data = self.redactor.redact(data)
        if not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError:
                data = data.decode(errors="replace").encode()
        self.tail.extend(_last_lines(data, _TAIL_LINES))
        try:
            self.sink.write(data)
            self.sink.flush()
        except (OSError, ValueError):  # the sink closed (harness's stdout gone): keep draining
            pass


def _after_last_line_end(data: bytes) -> int:
    """Where the text after the last line end starts (0: no line end). A carriage return ends a
    progress-bar line as much as a newline does; it is looked for only after the last newline, as
    a search of the whole block for a ``\\r`` that most output lacks was a tenth of the pump's CPU."""
    newline = data.rfind(b"\n")
    return max(newline, data.rfind(b"\r", newline + 1)) + 1


def _decoded(piece: str | bytes) -> str:
    return piece if isinstance(piece, str) else piece.decode(errors="replace")


def _last_lines(text: AnyStr, count: int) -> list[str]:
    """The last ``count`` non-blank lines of ``text`` (str or bytes; a carriage return ends a line
    too), reading back from the end only as far as needed: splitting all of a block of short lines
    was most of the pump's CPU."""
    nl, cr = ("\n", "\r") if isinstance(text, str) else (b"\n", b"\r")
    size = 4096
    while True:
        pieces = text[-size:].replace(cr, nl).split(nl)
        if size < len(text):
            pieces = pieces[1:]  # may be the end of a line cut in two
        lines = [ln for ln in map(_decoded, pieces) if ln.strip()]
        if len(lines) >= count or size >= len(text):
            return lines[-count:]
        size *= 4
