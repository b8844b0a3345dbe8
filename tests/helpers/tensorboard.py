"""TensorBoard event files read back by a small reader written from the format description
(TFRecord framing with masked CRC-32C, then Event and Summary protobufs decoded field by field),
independent of the SDK writer's helpers."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, NamedTuple


class Scalar(NamedTuple):
    step: int
    tag: str
    value: float


def crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def _unmasked(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def read_records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    records, at = [], 0
    while at < len(data):
        header = data[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8 : at + 12])
        assert _unmasked(length_crc) == crc32c_bitwise(header), f"bad length CRC at byte {at}"
        body = data[at + 12 : at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length : at + 16 + length])
        assert _unmasked(body_crc) == crc32c_bitwise(body), f"bad data CRC at byte {at}"
        records.append(body)
        at += 16 + length
    assert at == len(data)
    return records


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def decode_message(data: bytes) -> dict[int, list[Any]]:
    """field number -> values (ints, raw bytes of fixed64/fixed32, or bytes of length-delimited)."""
    fields: dict[int, list[Any]] = {}
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _read_varint(data, at)
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        elif wire == 2:
            length, at = _read_varint(data, at)
            value, at = data[at : at + length], at + length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        fields.setdefault(field, []).append(value)
    return fields


def read_events(path: Path) -> tuple[dict[int, list[Any]], list[Scalar]]:
    """(the first event's fields, the scalars of the others)."""
    events = [decode_message(r) for r in read_records(path)]
    scalars = []
    for event in events[1:]:
        assert set(event) == {1, 2, 5}
        (step,) = event[2]
        for value in decode_message(event[5][0])[1]:
            item = decode_message(value)
            scalars.append(Scalar(step, item[1][0].decode(), struct.unpack("<f", item[2][0])[0]))
    return events[0], scalars
