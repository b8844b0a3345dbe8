"""TensorBoard scalars without the tensorboard package: event files written by hand.

YMIR shows the files under ``/out/tensorboard`` (env.yaml ``output.tensorboard_dir``). The format,
from TensorFlow's sources:

- the file is a sequence of TFRecords (framed by :mod:`live_code.sdk.formats.tfrecord`);
- each record is a protobuf ``Event`` (``tensorflow/core/util/event.proto``): ``wall_time`` = 1
  (double), ``step`` = 2 (int64), ``file_version`` = 3 (string, ``"brain.Event:2"`` in the first
  record), ``summary`` = 5 (``Summary``, ``tensorflow/core/framework/summary.proto``: repeated
  ``value`` = 1, each with ``tag`` = 1 (string) and ``simple_value`` = 2 (float));
- files are named ``events.out.tfevents.<unix seconds>.<hostname>``; TensorBoard reads every file
  whose name contains ``tfevents``.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import time
from typing import BinaryIO

from live_code.sdk.formats.tfrecord import frame_record

_FILE_VERSION = "brain.Event:2"


def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # int64 as protobuf encodes negatives: two's complement, 10 bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str | None = None, summary: bytes | None = None) -> bytes:
    data = _key(1, 1) + struct.pack("<d", wall_time) + _key(2, 0) + _varint(step)
    if file_version is not None:
        data += _length_delimited(3, file_version.encode())
    if summary is not None:
        data += _length_delimited(5, summary)
    return data


def _scalar_summary(tag: str, value: float) -> bytes:
    item = _length_delimited(1, tag.encode("utf-8")) + _key(2, 5) + struct.pack("<f", value)
    return _length_delimited(1, item)


class ScalarWriter:
    """Write scalars (loss, mAP, ...) to a TensorBoard event file in ``log_dir``.

    ``ScalarWriter(env.output.tensorboard_dir)``, then ``add_scalar('loss', 0.7, step)``; each
    add is flushed at once, so the platform sees curves while the job runs. Usable as a context
    manager; :meth:`close` is idempotent.
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = os.fspath(log_dir)
        os.makedirs(self.log_dir, exist_ok=True)
        self.path, self._file = self._open()
        self._write(_event(time.time(), 0, file_version=_FILE_VERSION))

    def _open(self) -> tuple[str, BinaryIO]:
        host = socket.gethostname().replace(os.sep, "_") or "localhost"
        base = os.path.join(self.log_dir, f"events.out.tfevents.{int(time.time())}.{host}")
        path, n = base, 0
        while True:
            try:
                return path, open(path, "xb")
            except FileExistsError:  # two writers in one second
                n += 1
                path = f"{base}.{os.getpid()}.{n}"

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Record ``value`` for ``tag`` at ``step`` (an int >= 0); non-finite values are refused."""
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"a scalar's tag must be a non-empty string, got {tag!r}")
        try:
            if isinstance(value, (bool, str, bytes)):
                raise TypeError
            number = float(value)  # also a 0-d tensor or numpy scalar
        except (TypeError, ValueError):
            raise ValueError(f"the value of {tag!r} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"the value of {tag!r} must be finite, got {value!r}")
        if isinstance(step, bool) or int(step) != step or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        self._write(_event(time.time(), int(step), summary=_scalar_summary(tag, number)))

    def flush(self) -> None:
        """Push written records to the file (every add already does)."""
        if self._file.closed:
            return
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file; further adds raise ValueError."""
        if not self._file.closed:
            self._file.flush()
            self._file.close()

    def _write(self, data: bytes) -> None:
        if self._file.closed:
            raise ValueError(f"the event file {self.path} is closed")
        self._file.write(frame_record(data))
        self._file.flush()

    def __enter__(self) -> ScalarWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
