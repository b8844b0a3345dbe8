"""TFRecord framing, the container of TensorBoard's event files, with a CRC-32C in pure Python.

From TensorFlow's sources: a file is a sequence of records (``tensorflow/core/lib/io/record_writer.cc``,
``record_reader.cc``), each ``uint64 length`` (little-endian), ``uint32 masked_crc32c(length bytes)``,
``data``, ``uint32 masked_crc32c(data)``; the mask is ``((crc >> 15) | (crc << 17)) + 0xa282ead8``
(``tensorflow/core/lib/hash/crc32c.h``), the CRC is CRC-32C (Castagnoli, reflected 0x82F63B78).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO

_CRC_MASK_DELTA = 0xA282EAD8


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, table-driven, in pure Python."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The CRC as TFRecord stores it (rotated and offset, so CRCs of CRCs stay useful)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """``data`` framed as one TFRecord: length, its CRC, the data, its CRC."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


class RecordError(ValueError):
    """A damaged or cut-short record; ``good`` records came before it, ``truncated`` says whether
    the file just ends inside it (a writer may still be at work)."""

    def __init__(self, message: str, *, good: int, truncated: bool) -> None:
        super().__init__(message)
        self.good = good
        self.truncated = truncated


def read_records(f: IO[bytes]) -> Iterator[bytes]:
    """The data of each record of the open binary file ``f``, both CRCs checked; RecordError at the
    first record that is damaged or cut short (after yielding the good ones before it)."""
    good = 0
    while True:
        head = f.read(12)
        if not head:
            return
        if len(head) < 12:
            raise RecordError(f"record {good + 1} is cut short in its header", good=good, truncated=True)
        length_bytes, (length_crc,) = head[:8], struct.unpack("<I", head[8:])
        if masked_crc32c(length_bytes) != length_crc:
            raise RecordError(f"record {good + 1} fails its length CRC", good=good, truncated=False)
        (length,) = struct.unpack("<Q", length_bytes)
        data = f.read(length)
        tail = f.read(4)
        if len(data) < length or len(tail) < 4:
            raise RecordError(f"record {good + 1} is cut short in its data", good=good, truncated=True)
        if masked_crc32c(data) != struct.unpack("<I", tail)[0]:
            raise RecordError(f"record {good + 1} fails its data CRC", good=good, truncated=False)
        good += 1
        yield data
