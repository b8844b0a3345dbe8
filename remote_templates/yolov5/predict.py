"""From image files to the model's raw outputs and to boxes in each image's own pixels.

Images are letterboxed as ultralytics does for a square input (scaled to fit, centred, padded
with grey 114) so that mining, infer and the ONNX parity check all feed the model alike. The
model in eval mode gives, per anchor point of its anchor-free head (ultralytics v5u/v8/11), the
decoded box ``cx, cy, w, h`` in input pixels and a sigmoid probability per class; the raw class
logits per stride level come along for mining.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from live_code import sdk

PAD_VALUE = 114


class Letterbox(NamedTuple):
    """How an image was placed into the square input: ``input = image * ratio + (pad_x, pad_y)``."""

    ratio: float
    pad_x: float
    pad_y: float
    width: int
    height: int


def read_image(path: str) -> np.ndarray:
    """BGR uint8 pixels; ImageFormatError for a file OpenCV cannot decode."""
    pixels = cv2.imread(path, cv2.IMREAD_COLOR)
    if pixels is None:
        raise sdk.ImageFormatError(f"cannot decode the image {path}")
    return pixels


def letterbox(pixels: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """``pixels`` (BGR, HxWx3) fitted into ``size`` x ``size``, and where it went."""
    height, width = pixels.shape[:2]
    ratio = min(size / width, size / height)
    new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
    if (new_w, new_h) != (width, height):
        pixels = cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas = cv2.copyMakeBorder(
        pixels,
        top,
        size - new_h - top,
        left,
        size - new_w - left,
        cv2.BORDER_CONSTANT,
        value=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
    )
    return canvas, Letterbox(ratio, float(left), float(top), width, height)


def to_input(canvas: np.ndarray) -> torch.Tensor:
    """(3, S, S) float RGB in 0..1, the model's input."""
    rgb = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1))
    return torch.from_numpy(rgb).float() / 255.0


class _Images(Dataset):
    def __init__(self, paths: Sequence[str], size: int) -> None:
        self.paths, self.size = list(paths), size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        canvas, box = letterbox(read_image(self.paths[index]), self.size)
        return index, to_input(canvas), torch.tensor(box, dtype=torch.float64)


class Batch(NamedTuple):
    paths: list[str]
    images: torch.Tensor
    boxes: list[Letterbox]


def batches(paths: Sequence[str], size: int, batch_size: int, workers: int) -> Iterator[Batch]:
    """The images of ``paths`` letterboxed to ``size``, ``batch_size`` at a time, in order."""
    loader = DataLoader(_Images(paths, size), batch_size=batch_size, shuffle=False, num_workers=workers)
    for indices, images, boxes in loader:
        yield Batch(
            [paths[int(i)] for i in indices],
            images,
            [Letterbox(float(r), float(px), float(py), int(w), int(h)) for r, px, py, w, h in boxes.tolist()],
        )


class Raw(NamedTuple):
    """The head's outputs for a batch: ``decoded`` (B, 4 + C, A) boxes cx, cy, w, h in input pixels
    and class probabilities; ``logits`` (B, C, A) before the sigmoid; ``levels`` the (H, W) of each
    stride's grid, whose cells are the anchor points in order."""

    decoded: torch.Tensor
    logits: torch.Tensor
    levels: list[tuple[int, int]]


def forward(model: torch.nn.Module, images: torch.Tensor) -> Raw:
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model(images.to(device))
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], dict)):
        raise ValueError(
            "the model's head gives no raw outputs; this template needs an anchor-free YOLO "
            "detection head (ultralytics v5u/v8/11), not an end-to-end one"
        )
    decoded, extra = out
    raw = extra.get("one2many", extra)
    logits = raw["scores"]
    if decoded.dim() != 3 or decoded.shape[1] != 4 + logits.shape[1]:
        raise ValueError(
            f"unexpected detection output of shape {tuple(decoded.shape)}; this template needs an "
            "anchor-free, not an end-to-end, detection head"
        )
    levels = [(int(f.shape[-2]), int(f.shape[-1])) for f in raw["feats"]]
    return Raw(decoded.float().cpu(), logits.float().cpu(), levels)


def nms(decoded: torch.Tensor, conf_thres: float, iou_thres: float, max_det: int = 300) -> list[torch.Tensor]:
    """Per image a (K, 6) tensor ``x1, y1, x2, y2, score, class`` in input pixels (ultralytics' NMS,
    per class)."""
    from ultralytics.utils.nms import non_max_suppression

    return [d.cpu() for d in non_max_suppression(decoded, conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det)]


def to_image(boxes: torch.Tensor, box: Letterbox) -> torch.Tensor:
    """(K, 4) ``x1, y1, x2, y2`` from input pixels to the image's own, clipped to the image."""
    out = boxes[:, :4].clone().double()
    out[:, [0, 2]] = ((out[:, [0, 2]] - box.pad_x) / box.ratio).clamp(0, box.width)
    out[:, [1, 3]] = ((out[:, [1, 3]] - box.pad_y) / box.ratio).clamp(0, box.height)
    return out
