"""Images as arrays: read with Pillow, stretched to the square network input; the CALD augmentations."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image

from live_code import sdk

_FILL = (128, 128, 128)  # grey for uncovered pixels


class Sample(NamedTuple):
    """One image at network size, its boxes (K, 5: class, x1, y1, x2, y2 in input pixels) and its
    original width and height."""

    path: str
    image: np.ndarray
    boxes: np.ndarray
    width: int
    height: int


def load_rgb(path: str, size: int) -> tuple[Image.Image, int, int]:
    """The image as RGB at ``size`` x ``size``, its original width and height."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        width, height = rgb.size
        return rgb.resize((size, size), Image.BILINEAR), width, height


def to_array(img: Image.Image) -> np.ndarray:
    """(3, S, S) float32 in 0..1."""
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def load_image(path: str, size: int) -> tuple[np.ndarray, int, int]:
    img, width, height = load_rgb(path, size)
    return to_array(img), width, height


def load_split(split: sdk.Split, size: int, class_names: list[str]) -> list[Sample]:
    """Every image of ``split`` with its boxes scaled to the network input (YMIR's inclusive
    ``xmax`` becomes the exclusive edge ``xmax + 1``)."""
    samples = []
    for item in sdk.iter_items(split, class_names=class_names):
        image, width, height = load_image(item.image_path, size)
        sx, sy = size / width, size / height
        boxes = np.array(sdk.scaled_boxes(item.boxes, sx, sy), dtype=np.float32).reshape(-1, 5)
        samples.append(Sample(item.image_path, image, boxes, width, height))
    return samples


def augment(kind: str, img: Image.Image, seed: int) -> Image.Image:
    """``img`` (network size) after the CALD augmentation ``kind``, matching ``sdk.augment_box``."""
    size = img.size[0]
    if kind == "flip":
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if kind == "resize":
        small = round(size * sdk.CALD_RESIZE_SCALE)
        out = Image.new("RGB", img.size, _FILL)
        out.paste(img.resize((small, small), Image.BILINEAR), (0, 0))
        return out
    if kind == "rotate":
        # Pillow turns counter-clockwise on screen about the centre, as sdk.augment_box assumes
        return img.rotate(sdk.CALD_ROTATE_DEGREES, resample=Image.BILINEAR, fillcolor=_FILL)
    if kind == "cutout":
        pixels = np.array(img)
        rng = np.random.default_rng(seed)
        side = max(1, size // 8)
        for _ in range(4):
            y, x = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            pixels[y : y + side, x : x + side] = _FILL
        return Image.fromarray(pixels)
    raise ValueError(f"unknown augmentation {kind!r}")
