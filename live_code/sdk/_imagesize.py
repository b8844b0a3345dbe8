"""Image width and height from the file header: PNG, JPEG, BMP and GIF with the standard library.

Header layouts (facts from the format specifications): PNG's first chunk is ``IHDR`` with big-endian
width and height at bytes 16-24; GIF's logical screen size is little-endian at bytes 6-10; a BMP
``BITMAPCOREHEADER`` (size 12) has 16-bit and later headers 32-bit signed sizes at byte 18 (a
negative height means top-down rows); a JPEG's size is in its first start-of-frame segment
(markers ``C0``-``CF`` except ``C4``, ``C8``, ``CC``). Sizes are as stored, without EXIF rotation,
as Pillow's ``Image.size`` reports them. Other formats are an ImageFormatError: a job that has them
passes its own reader (``size_of=`` of ``write_coco``), e.g. Pillow's.
"""

from __future__ import annotations

import struct
from typing import IO, Optional

from live_code.sdk._errors import ImageFormatError

_Size = Optional[tuple[int, int]]
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}


def image_size(path: str) -> tuple[int, int]:
    """``(width, height)`` of the image at ``path``, read from its header.

    PNG, JPEG, BMP and GIF are read with the standard library; ImageFormatError (naming the file)
    for any other file or when the size cannot be read.
    """
    try:
        with open(path, "rb") as f:
            size = header_size(f)
    except OSError as e:
        raise ImageFormatError(f"cannot read the image {path}: {e.strerror}") from None
    if size is None:
        msg = (
            f"cannot read the size of the image {path}: not a PNG, JPEG, BMP or GIF file (or a damaged one); "
            "for other formats pass a reader of your own (size_of=), e.g. with Pillow"
        )
        raise ImageFormatError(msg)
    return size


def header_size(f: IO[bytes]) -> _Size:
    """The size in the header of the open binary file ``f``, or None for an unknown or broken header."""
    head = f.read(32)
    try:
        if head.startswith(_PNG_MAGIC) and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return width, height
        if head[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", head[6:10])
            return width, height
        if head.startswith(b"BM"):
            return _bmp_size(head)
        if head.startswith(b"\xff\xd8"):
            f.seek(2)
            return _jpeg_size(f)
    except struct.error:  # a header cut short
        return None
    return None


def _bmp_size(head: bytes) -> _Size:
    (dib_size,) = struct.unpack("<I", head[14:18])
    if dib_size == 12:
        width, height = struct.unpack("<HH", head[18:22])
        return width, height
    if dib_size >= 40:
        width, height = struct.unpack("<ii", head[18:26])
        return abs(width), abs(height)
    return None


def _jpeg_size(f: IO[bytes]) -> _Size:
    while True:
        byte = f.read(1)
        if byte != b"\xff":
            return None  # not at a marker: a broken file
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes before the marker code
            marker = f.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in _JPEG_STANDALONE:
            continue
        if code in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", f.read(2))
        if code in _JPEG_SOF:
            _precision, height, width = struct.unpack(">BHH", f.read(5))
            return width, height
        if length < 2:
            return None
        f.seek(length - 2, 1)
