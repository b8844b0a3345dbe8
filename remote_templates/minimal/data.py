"""Images as tensors: read with Pillow, stretched to the square network input, no numpy needed."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from PIL import Image

from live_code import sdk


class Sample(NamedTuple):
    """One image at network size, its boxes (K, 5: class, x1, y1, x2, y2 in input pixels) and its
    original width and height."""

    path: str
    image: torch.Tensor
    boxes: torch.Tensor
    width: int
    height: int


def load_image(path: str, size: int) -> tuple[torch.Tensor, int, int]:
    """(3, size, size) float tensor in 0..1, original width, original height."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        width, height = rgb.size
        rgb = rgb.resize((size, size), Image.BILINEAR)
        pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return pixels.view(size, size, 3).permute(2, 0, 1).float() / 255.0, width, height


def load_split(split: sdk.Split, size: int, class_names: list[str]) -> list[Sample]:
    """Every image of ``split`` with its boxes scaled to the network input (YMIR's inclusive
    ``xmax`` becomes the exclusive edge ``xmax + 1``)."""
    samples = []
    for item in sdk.iter_items(split, class_names=class_names):
        image, width, height = load_image(item.image_path, size)
        sx, sy = size / width, size / height
        boxes = torch.tensor(sdk.scaled_boxes(item.boxes, sx, sy), dtype=torch.float32).reshape(-1, 5)
        samples.append(Sample(item.image_path, image, boxes, width, height))
    return samples


# -- the augmentations CALD predicts on (sdk.CALD_AUGMENTATIONS), on one (3, S, S) image --------

_FILL = 0.5  # grey for uncovered pixels


def augment(kind: str, image: torch.Tensor, seed: int) -> torch.Tensor:
    """``image`` after the CALD augmentation ``kind``, matching ``sdk.augment_box`` geometry."""
    size = image.shape[-1]
    if kind == "flip":
        return image.flip(-1)
    if kind == "resize":
        small = round(size * sdk.CALD_RESIZE_SCALE)
        out = torch.full_like(image, _FILL)
        out[:, :small, :small] = F.interpolate(image[None], size=(small, small), mode="bilinear", align_corners=False)[
            0
        ]
        return out
    if kind == "rotate":
        angle = torch.tensor(math.radians(sdk.CALD_ROTATE_DEGREES))
        cos, sin = torch.cos(angle), torch.sin(angle)
        # affine_grid maps output to input coordinates: the inverse of turning counter-clockwise on screen
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]])[None]
        grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
        moved = F.grid_sample(image[None] - _FILL, grid, align_corners=False, padding_mode="zeros")[0]
        return moved + _FILL
    if kind == "cutout":
        out = image.clone()
        gen = torch.Generator().manual_seed(seed)
        side = max(1, size // 8)
        for _ in range(4):
            y, x = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=gen))
            out[:, y : y + side, x : x + side] = _FILL
        return out
    raise ValueError(f"unknown augmentation {kind!r}")
