"""TensorBoard scalars for ``live-code replay``'s comparison only (replay runs without the report
extra's tensorboard): TFRecords of Event protobufs, the layout of live_code/sdk/_tensorboard.py. The records are read by
the one TFRecord reader (``live_code.sdk.formats.tfrecord``, both CRCs checked); the Event and
Summary messages are decoded here, field by field, for the scalars alone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from live_code.sdk.formats import tfrecord


def scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of every ``*tfevents*`` file under ``path``."""
    out: dict[str, list[tuple[int, float]]] = {}
    for file in sorted(p for p in path.rglob("*tfevents*") if p.is_file()):
        for body in _records(file):
            step, summaries = 0, []
            for field, value in _fields(body):
                if field == 2:
                    step = value
                elif field == 5:
                    summaries.append(value)
            for summary in summaries:
                for field, value in _fields(summary):
                    if field == 1:
                        tag, number = _scalar(value)
                        if tag is not None and number is not None:
                            out.setdefault(tag, []).append((step, number))
    return out


def _records(file: Path) -> list[bytes]:
    """The records of one event file up to the first one cut short (still being written) or damaged:
    the comparison uses what is whole."""
    records: list[bytes] = []
    with file.open("rb") as f:
        try:
            records.extend(tfrecord.read_records(f))
        except tfrecord.RecordError:
            pass
    return records


def _fields(data: bytes) -> Iterator[tuple[int, Any]]:
    """(field number, value) of a protobuf message: ints for varints, bytes for the rest."""
    pos = 0
    value: Any
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _scalar(value: bytes) -> tuple[str | None, float | None]:
    tag, number = None, None
    for field, item in _fields(value):
        if field == 1:
            tag = item.decode("utf-8", "replace")
        elif field == 2:
            (number,) = struct.unpack("<f", item)
        elif field == 8:
            for f, v in _fields(item):
                if f == 5 and len(v) >= 4:  # packed float_val
                    (number,) = struct.unpack("<f", v[:4])
    return tag, number
