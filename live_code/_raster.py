"""Pictures without an imaging library: PNG decoding, boxes, a 3x5 pixel font, line and bar charts.

The harness has no Pillow (it is not a dependency of live-code), so the report draws into plain
RGB byte arrays and writes them with :func:`live_code.sample.encode_png`. The decoder reads
non-interlaced images of the PNG specification (W3C, 2nd edition) with 8 bits per sample, colour
types 0 (grey), 2 (RGB), 3 (palette), 4 (grey + alpha) and 6 (RGBA), and grey or palette images of
1, 2 or 4 bits per pixel, with the five row filters (section 9); 16-bit images are refused.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

from live_code.sample import encode_png

Colour = tuple[int, int, int]
WHITE, BLACK, GREY, LIGHT = (255, 255, 255), (0, 0, 0), (120, 120, 120), (225, 225, 225)
#: box and line colours, picked by index
PALETTE: tuple[Colour, ...] = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                               (70, 240, 240), (240, 50, 230), (128, 128, 0))
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class Image(NamedTuple):
    width: int
    height: int
    rgb: bytearray

    def png(self) -> bytes:
        return encode_png(self.width, self.height, bytes(self.rgb))


def blank(width: int, height: int, colour: Colour = WHITE) -> Image:
    return Image(width, height, bytearray(bytes(colour) * (width * height)))


def decode_png(data: bytes) -> Image:
    """A non-interlaced PNG of 8 bits per sample (or 1, 2, 4 for grey and palette) as RGB, alpha
    dropped; ValueError for anything else."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG file")
    pos, idat, palette, header = 8, [], b"", None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("a PNG without IHDR")
    width, height, depth, colour_type, _, _, interlace = header
    small = depth in (1, 2, 4) and colour_type in (0, 3)  # several pixels per byte
    if not (depth == 8 or small) or colour_type not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG (bit depth {depth}, colour type {colour_type}, interlace {interlace})")
    bpp = _CHANNELS[colour_type] if depth == 8 else 1
    raw = zlib.decompress(b"".join(idat))
    stride = (width * _CHANNELS[colour_type] * depth + 7) // 8
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), prev, bpp)
        prev = row
        if small:
            mask, top = (1 << depth) - 1, 8 - depth
            row = bytearray(((b >> shift) & mask) * (255 // mask if colour_type == 0 else 1)
                            for b in row for shift in range(top, -1, -depth))[:width]
        rows.append(row)
    return Image(width, height, _to_rgb(b"".join(rows), colour_type, palette))


def _unfilter(kind: int, row: bytearray, prev: bytearray, bpp: int) -> bytearray:
    if kind == 1:
        for i in range(bpp, len(row)):
            row[i] = (row[i] + row[i - bpp]) & 0xFF
    elif kind == 2:
        for i in range(len(row)):
            row[i] = (row[i] + prev[i]) & 0xFF
    elif kind == 3:
        for i in range(len(row)):
            left = row[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(len(row)):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    elif kind != 0:
        raise ValueError(f"unknown PNG row filter {kind}")
    return row


def _to_rgb(data: bytes, colour_type: int, palette: bytes) -> bytearray:
    if colour_type == 2:
        return bytearray(data)
    if colour_type == 6:
        return bytearray(b for i, b in enumerate(data) if i % 4 != 3)
    if colour_type == 3:
        return bytearray(b"".join(palette[3 * i:3 * i + 3] for i in data))
    step = 1 if colour_type == 0 else 2
    return bytearray(b"".join(bytes((g, g, g)) for g in data[::step]))


def scaled(image: Image, factor: int) -> Image:
    """Nearest-neighbour enlargement by a whole ``factor``."""
    if factor <= 1:
        return image
    out = bytearray()
    for y in range(image.height):
        row = image.rgb[y * image.width * 3:(y + 1) * image.width * 3]
        wide = b"".join(row[x * 3:x * 3 + 3] * factor for x in range(image.width))
        out += wide * factor
    return Image(image.width * factor, image.height * factor, out)


def put(image: Image, x: int, y: int, colour: Colour) -> None:
    if 0 <= x < image.width and 0 <= y < image.height:
        at = (y * image.width + x) * 3
        image.rgb[at:at + 3] = bytes(colour)


def fill(image: Image, x0: int, y0: int, x1: int, y1: int, colour: Colour) -> None:
    """Fill the rectangle with inclusive corners, clipped to the image."""
    x0, x1 = max(0, min(x0, x1)), min(image.width - 1, max(x0, x1))
    for y in range(max(0, min(y0, y1)), min(image.height - 1, max(y0, y1)) + 1):
        if x0 <= x1:
            at = (y * image.width + x0) * 3
            image.rgb[at:at + 3 * (x1 - x0 + 1)] = bytes(colour) * (x1 - x0 + 1)


def rectangle(image: Image, x0: int, y0: int, x1: int, y1: int, colour: Colour, thickness: int = 2) -> None:
    for t in range(thickness):
        fill(image, x0 - t, y0 - t, x1 + t, y0 - t, colour)
        fill(image, x0 - t, y1 + t, x1 + t, y1 + t, colour)
        fill(image, x0 - t, y0 - t, x0 - t, y1 + t, colour)
        fill(image, x1 + t, y0 - t, x1 + t, y1 + t, colour)


def line(image: Image, x0: int, y0: int, x1: int, y1: int, colour: Colour) -> None:
    """Bresenham's line, both ends included."""
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        put(image, x0, y0, colour)
        if x0 == x1 and y0 == y1:
            return
        e2 = 2 * err
        if e2 >= dy:
            err, x0 = err + dy, x0 + sx
        if e2 <= dx:
            err, y0 = err + dx, y0 + sy


# 3x5 glyphs, rows top to bottom, '1' = ink
_GLYPHS = dict(zip(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_:/%=+()? ",
    """111101101101111 010110010010111 111001111100111 111001111001111 101101111001001 111100111001111
    111100111101111 111001001001001 111101111101111 111101111001111 010101111101101 110101110101110
    011100100100011 110101101101110 111100110100111 111100110100100 011100101101011 101101111101101
    111010010010111 001001001101010 101101110101101 100100100100111 101111111101101 110101101101101
    010101101101010 110101110100100 010101101110011 110101110101101 011100010001110 111010010010010
    101101101101111 101101101101010 101101111111101 101101010101101 101101010010010 111001010100111
    000000000000010 000000111000000 000000000000111 000010000010000 001001010100100 101001010100101
    000111000111000 000010111010000 010100100100010 010001001001010 111001010000010 000000000000000""".split()))


def text(image: Image, x: int, y: int, label: str, colour: Colour, scale: int = 2) -> int:
    """Draw ``label`` (upper-cased; unknown characters as '?') at (x, y); returns the width drawn."""
    cursor = x
    for ch in label.upper():
        glyph = _GLYPHS.get(ch, _GLYPHS["?"])
        for i, bit in enumerate(glyph):
            if bit == "1":
                gx, gy = cursor + (i % 3) * scale, y + (i // 3) * scale
                fill(image, gx, gy, gx + scale - 1, gy + scale - 1, colour)
        cursor += 4 * scale
    return cursor - x


def text_width(label: str, scale: int = 2) -> int:
    return len(label) * 4 * scale


def line_chart(series: Sequence[tuple[float, float]], *, width: int = 480, height: int = 240,
               colour: Colour = PALETTE[2], title: str = "") -> Image:
    """``(x, y)`` points as a line with axes, the y and x ranges written at the corners, and a title."""
    img = blank(width, height)
    text(img, width - 12 - text_width(title), 4, title, GREY)
    left, right, top, bottom = 60, width - 12, 12, height - 28
    fill(img, left, top, left, bottom, GREY)
    fill(img, left, bottom, right, bottom, GREY)
    if not series:
        return img
    xs, ys = [p[0] for p in series], [p[1] for p in series]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    x_span, y_span = (x_hi - x_lo) or 1.0, (y_hi - y_lo) or 1.0
    for k in range(1, 4):
        gy = bottom - (bottom - top) * k // 4
        fill(img, left + 1, gy, right, gy, LIGHT)

    def at(x: float, y: float) -> tuple[int, int]:
        return (left + round((x - x_lo) / x_span * (right - left)), bottom - round((y - y_lo) / y_span * (bottom - top)))

    points = [at(x, y) for x, y in series]
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        line(img, ax, ay, bx, by, colour)
        line(img, ax, ay + 1, bx, by + 1, colour)
    for px, py in points:
        fill(img, px - 1, py - 1, px + 1, py + 1, colour)
    text(img, 4, top, _num(y_hi), BLACK)
    text(img, 4, bottom - 10, _num(y_lo), BLACK)
    text(img, left, bottom + 8, _num(x_lo), BLACK)
    text(img, right - text_width(_num(x_hi)), bottom + 8, _num(x_hi), BLACK)
    return img


def bar_chart(bars: Sequence[tuple[str, float]], *, width: int = 480) -> Image:
    """Horizontal bars, each labelled with its name and value."""
    row = 22
    img = blank(width, row * len(bars) + 8)
    label_w = max((text_width(name) for name, _ in bars), default=0) + 12
    top = max((v for _, v in bars), default=0.0) or 1.0
    for i, (name, value) in enumerate(bars):
        y = 6 + i * row
        text(img, 4, y + 3, name, BLACK)
        length = round(value / top * (width - label_w - 80))
        fill(img, label_w, y, label_w + max(1, length), y + 14, PALETTE[i % len(PALETTE)])
        text(img, label_w + length + 6, y + 3, _num(value), BLACK)
    return img


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"
