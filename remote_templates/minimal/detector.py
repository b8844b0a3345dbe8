"""A tiny single-stage detector: a few convolutions down to a stride-8 grid, one prediction per cell.

Each cell predicts (YOLO-like, one anchor-free box per cell) an objectness logit, a box and a
logit per class:

- box centre = (cell + sigmoid(tx, ty)) * stride, size = exp(tw, th) * stride;
- score of class c = sigmoid(objectness) * sigmoid(class c), the maps ALDD mines.

Training assigns each ground-truth box to the cell holding its centre.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 8
CHECKPOINT_FORMAT = 1
_MAX_LOG_SIZE = 4.0  # exp(4) * 8 = 436 px: larger boxes are clamped


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.SiLU(inplace=True),
    )


class TinyDetector(nn.Module):
    """Input (N, 3, S, S) in 0..1 with S a multiple of 8; output (N, 5 + classes, S/8, S/8) raw logits:
    channel 0 objectness, 1-4 box (tx, ty, tw, th), 5.. classes."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.width = width
        self.body = nn.Sequential(
            _block(3, width // 2, 2),
            _block(width // 2, width, 2),
            _block(width, width * 2, 2),
            _block(width * 2, width * 2, 1),
            _block(width * 2, width * 2, 1),
        )
        self.head = nn.Conv2d(width * 2, 5 + num_classes, 1)
        nn.init.constant_(self.head.bias[0], -4.0)  # few cells hold an object: start near "no object"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))


def checkpoint(model: TinyDetector, class_names: list[str], img_size: int, m_ap: float) -> dict[str, Any]:
    """What a ``.pt`` file holds: weights plus what mining and infer need to rebuild the model."""
    return {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "num_classes": model.num_classes,
        "width": model.width,
        "class_names": list(class_names),
        "img_size": img_size,
        "mAP": m_ap,
    }


def load_checkpoint(path: str) -> dict[str, Any]:
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT or "state_dict" not in data:
        raise ValueError(f"{path} is not a checkpoint of this template (format {CHECKPOINT_FORMAT})")
    return data


def model_from_checkpoint(data: dict[str, Any]) -> TinyDetector:
    model = TinyDetector(int(data["num_classes"]), int(data["width"]))
    model.load_state_dict(data["state_dict"])
    return model


def class_probability_maps(raw: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W): sigmoid(objectness) * sigmoid(class c) per cell."""
    return torch.sigmoid(raw[:, :1]) * torch.sigmoid(raw[:, 5:])


def decode(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every cell's prediction, in input pixels: boxes (N, H*W, 4) x1y1x2y2, score (N, H*W) of the
    best class, class index (N, H*W)."""
    n, _, h, w = raw.shape
    gy, gx = torch.meshgrid(torch.arange(h, dtype=raw.dtype), torch.arange(w, dtype=raw.dtype), indexing="ij")
    cx = (gx + torch.sigmoid(raw[:, 1])) * STRIDE
    cy = (gy + torch.sigmoid(raw[:, 2])) * STRIDE
    bw = torch.exp(raw[:, 3].clamp(max=_MAX_LOG_SIZE)) * STRIDE
    bh = torch.exp(raw[:, 4].clamp(max=_MAX_LOG_SIZE)) * STRIDE
    boxes = torch.stack((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), dim=-1).reshape(n, h * w, 4)
    score, cls = class_probability_maps(raw).max(dim=1)
    return boxes, score.reshape(n, h * w), cls.reshape(n, h * w)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_thres: float) -> list[int]:
    """Greedy non-maximum suppression; indices kept, best first (torchvision is not needed)."""
    order = scores.argsort(descending=True).tolist()
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(i)
        if not order:
            break
        rest = torch.tensor(order)
        ious = box_iou(boxes[i : i + 1], boxes[rest])[0]
        order = [j for j, iou in zip(order, ious.tolist()) if iou <= iou_thres]
    return keep


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) IoU of x1y1x2y2 boxes."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-9)


def predict(raw: torch.Tensor, conf_thres: float, iou_thres: float, max_det: int = 100) -> list[torch.Tensor]:
    """Per image a (K, 6) tensor x1, y1, x2, y2, score, class after the threshold and per-class NMS."""
    boxes, scores, classes = decode(raw)
    out = []
    for b, s, c in zip(boxes, scores, classes):
        mask = s > conf_thres
        b, s, c = b[mask], s[mask], c[mask]
        # per-class NMS in one pass: shift each class's boxes apart
        keep = nms(b + c[:, None].to(b.dtype) * 4096.0, s, iou_thres)[:max_det]
        out.append(torch.cat((b[keep], s[keep, None], c[keep, None].to(b.dtype)), dim=1))
    return out


def targets_for(boxes: list[torch.Tensor], grid: int, num_classes: int) -> torch.Tensor:
    """(N, 5 + C, grid, grid) targets: objectness 0/1, box (dx, dy, log w, log h) and one-hot class
    at the cell of each box centre. ``boxes[i]`` is (K, 5): class, x1, y1, x2, y2 in input pixels."""
    target = torch.zeros(len(boxes), 5 + num_classes, grid, grid)
    for i, image_boxes in enumerate(boxes):
        for cls, x1, y1, x2, y2 in image_boxes.tolist():
            cx, cy, w, h = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE, (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
            gx, gy = min(grid - 1, max(0, int(cx))), min(grid - 1, max(0, int(cy)))
            target[i, 0, gy, gx] = 1.0
            target[i, 1:5, gy, gx] = torch.tensor([cx - gx, cy - gy, _log(w), _log(h)])
            target[i, 5 + int(cls), gy, gx] = 1.0
    return target


def _log(value: float) -> float:
    return float(torch.log(torch.tensor(max(value, 1e-3))))


def loss_fn(raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Objectness BCE over all cells (positives weighted up), box L1 and class BCE on positives."""
    obj = target[:, 0]
    positive = obj > 0.5
    n = raw.shape[0]
    obj_loss = F.binary_cross_entropy_with_logits(raw[:, 0], obj, pos_weight=raw.new_tensor(5.0), reduction="sum")
    if positive.any():
        pred = raw.permute(0, 2, 3, 1)[positive]
        tgt = target.permute(0, 2, 3, 1)[positive]
        xy_loss = F.l1_loss(torch.sigmoid(pred[:, 1:3]), tgt[:, 1:3], reduction="sum")
        wh_loss = F.l1_loss(pred[:, 3:5], tgt[:, 3:5], reduction="sum")
        cls_loss = F.binary_cross_entropy_with_logits(pred[:, 5:], tgt[:, 5:], reduction="sum")
    else:
        xy_loss = wh_loss = cls_loss = raw.sum() * 0.0
    return (obj_loss + 2.0 * (xy_loss + wh_loss) + cls_loss) / n
