"""Images as tensors: read with Pillow, stretched to the square network input, no numpy needed."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from PIL import Image

from live_code import sdk


def load_image(path: str, size: int) -> tuple[torch.Tensor, int, int]:
    """(3, size, size) float tensor in 0..1, original width, original height."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        width, height = rgb.size
        rgb = rgb.resize((size, size), Image.BILINEAR)
        pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return pixels.view(size, size, 3).permute(2, 0, 1).float() / 255.0, width, height


def load_split(split: sdk.Split, size: int, class_names: list[str]) -> list[sdk.Sample]:
    """Every image of ``split`` as tensors, its boxes a (K, 5) float tensor in input pixels."""
    return sdk.load_samples(split, size, class_names, load_image, box_tensor)


def box_tensor(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)


# -- the augmentations CALD predicts on (sdk.cald_augment decides which and how far) -----------

_FILL = 0.5  # grey for uncovered pixels


class Augment(sdk.CaldOps[torch.Tensor]):
    """CALD's augmentations on one (3, S, S) image tensor."""

    def flip(self, image: torch.Tensor) -> torch.Tensor:
        return image.flip(-1)

    def shrink(self, image: torch.Tensor, width: int, height: int) -> torch.Tensor:
        out = torch.full_like(image, _FILL)
        out[:, :height, :width] = F.interpolate(
            image[None], size=(height, width), mode="bilinear", align_corners=False
        )[0]
        return out

    def rotate(self, image: torch.Tensor, degrees: float, centre: tuple[float, float]) -> torch.Tensor:
        angle = torch.tensor(math.radians(degrees))
        cos, sin = torch.cos(angle), torch.sin(angle)
        # affine_grid turns about the centre and maps output to input coordinates: the inverse of
        # turning counter-clockwise on screen
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]])[None]
        grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
        moved = F.grid_sample(image[None] - _FILL, grid, align_corners=False, padding_mode="zeros")[0]
        return moved + _FILL

    def cutout(self, image: torch.Tensor, side: int, count: int, seed: int) -> torch.Tensor:
        out = image.clone()
        gen = torch.Generator().manual_seed(seed)
        size = image.shape[-1]
        for _ in range(count):
            y, x = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=gen))
            out[:, y : y + side, x : x + side] = _FILL
        return out
