"""Images as arrays: read with Pillow, stretched to the square network input; the CALD augmentations."""

from __future__ import annotations

import numpy as np
from PIL import Image

from live_code import sdk

_FILL = (128, 128, 128)  # grey for uncovered pixels


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


def load_split(split: sdk.Split, size: int, class_names: list[str]) -> list[sdk.Sample]:
    """Every image of ``split`` as arrays, its boxes a (K, 5) float32 array in input pixels."""
    return sdk.load_samples(split, size, class_names, load_image, box_array)


def box_array(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


class Augment(sdk.CaldOps[Image.Image]):
    """CALD's augmentations (``sdk.cald_augment`` decides which and how far) on a network-size
    Pillow image."""

    def flip(self, img: Image.Image) -> Image.Image:
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    def shrink(self, img: Image.Image, width: int, height: int) -> Image.Image:
        out = Image.new("RGB", img.size, _FILL)
        out.paste(img.resize((width, height), Image.BILINEAR), (0, 0))
        return out

    def rotate(self, img: Image.Image, degrees: float, centre: tuple[float, float]) -> Image.Image:
        # Pillow turns counter-clockwise on screen about the centre by default
        return img.rotate(degrees, resample=Image.BILINEAR, fillcolor=_FILL)

    def cutout(self, img: Image.Image, side: int, count: int, seed: int) -> Image.Image:
        pixels = np.array(img)
        rng = np.random.default_rng(seed)
        for _ in range(count):
            y, x = (int(v) for v in rng.integers(0, img.size[0] - side + 1, size=2))
            pixels[y : y + side, x : x + side] = _FILL
        return Image.fromarray(pixels)
