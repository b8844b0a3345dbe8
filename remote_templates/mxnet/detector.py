"""A tiny single-stage gluon detector: a few convolutions down to a stride-8 grid, one prediction per cell.

Each cell predicts (YOLO-like, one anchor-free box per cell) an objectness logit, a box and a
logit per class:

- box centre = (cell + sigmoid(tx, ty)) * stride, size = exp(tw, th) * stride;
- score of class c = sigmoid(objectness) * sigmoid(class c), the maps ALDD mines.

Training assigns each ground-truth box to the cell holding its centre. The network runs in MXNet
(a hybridizable block, so it exports as a symbol graph); decoding, NMS and the targets are numpy.
"""

from __future__ import annotations

import json
import os
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import gluon, nd
from mxnet.gluon import nn

STRIDE = 8
CHECKPOINT_FORMAT = 1
_MAX_LOG_SIZE = 4.0  # exp(4) * 8 = 436 px: larger boxes are clamped
_OBJECTNESS_BIAS = -4.0  # few cells hold an object: start near "no object"


class TinyDetector(gluon.HybridBlock):
    """Input (N, 3, S, S) in 0..1 with S a multiple of 8; output (N, 5 + classes, S/8, S/8) raw logits:
    channel 0 objectness, 1-4 box (tx, ty, tw, th), 5.. classes."""

    def __init__(self, num_classes: int, width: int = 32, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.width = width
        layers = (
            (3, width // 2, 2),
            (width // 2, width, 2),
            (width, width * 2, 2),
            (width * 2, width * 2, 1),
            (width * 2, width * 2, 1),
        )
        with self.name_scope():
            self.body = nn.HybridSequential()
            for c_in, c_out, stride in layers:
                # in_channels given: every shape is known at once (no deferred init), so the head's
                # bias can be set right after initialize()
                self.body.add(
                    nn.Conv2D(c_out, 3, strides=stride, padding=1, use_bias=False, in_channels=c_in),
                    nn.BatchNorm(in_channels=c_out),
                    nn.Swish(),
                )
            self.head = nn.Conv2D(5 + num_classes, 1, in_channels=width * 2)

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return self.head(self.body(x))


def build(num_classes: int, width: int = 32, ctx: mx.Context | None = None) -> TinyDetector:
    """A freshly initialised detector (Xavier weights, objectness bias near "no object")."""
    model = TinyDetector(num_classes, width)
    model.initialize(mx.init.Xavier(), ctx=ctx or mx.cpu())
    bias = np.zeros(5 + num_classes, dtype=np.float32)
    bias[0] = _OBJECTNESS_BIAS
    model.head.bias.set_data(nd.array(bias))
    return model


# -- checkpoints: <stage>.params (gluon parameters) + <stage>.json (what rebuilding the model needs)


def save_checkpoint(
    model: TinyDetector, params_path: str, class_names: list[str], img_size: int, m_ap: float
) -> list[str]:
    """Write ``<name>.params`` and its ``<name>.json``; returns both basenames."""
    model.save_parameters(params_path)
    meta_path = meta_path_for(params_path)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "num_classes": model.num_classes,
        "width": model.width,
        "class_names": list(class_names),
        "img_size": img_size,
        "mAP": m_ap,
    }
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    return [os.path.basename(params_path), os.path.basename(meta_path)]


def meta_path_for(params_path: str) -> str:
    return params_path[: -len(".params")] + ".json"


def load_checkpoint(params_path: str, ctx: mx.Context | None = None) -> tuple[TinyDetector, dict[str, Any]]:
    """The model saved at ``params_path`` and its metadata."""
    meta_path = meta_path_for(params_path)
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{meta_path} (next to {os.path.basename(params_path)}) cannot be read: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{params_path} is not a checkpoint of this template (format {CHECKPOINT_FORMAT})")
    model = TinyDetector(int(meta["num_classes"]), int(meta["width"]))
    model.load_parameters(params_path, ctx=ctx or mx.cpu())
    return model, meta


# -- decoding (numpy) ------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def class_probability_maps(raw: np.ndarray) -> np.ndarray:
    """(N, C, H, W): sigmoid(objectness) * sigmoid(class c) per cell."""
    return _sigmoid(raw[:, :1]) * _sigmoid(raw[:, 5:])


def decode(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell's prediction, in input pixels: boxes (N, H*W, 4) x1y1x2y2, score (N, H*W) of the
    best class, class index (N, H*W)."""
    n, _, h, w = raw.shape
    gy, gx = np.meshgrid(np.arange(h, dtype=raw.dtype), np.arange(w, dtype=raw.dtype), indexing="ij")
    cx = (gx + _sigmoid(raw[:, 1])) * STRIDE
    cy = (gy + _sigmoid(raw[:, 2])) * STRIDE
    bw = np.exp(np.minimum(raw[:, 3], _MAX_LOG_SIZE)) * STRIDE
    bh = np.exp(np.minimum(raw[:, 4], _MAX_LOG_SIZE)) * STRIDE
    boxes = np.stack((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), axis=-1).reshape(n, h * w, 4)
    maps = class_probability_maps(raw)
    return boxes, maps.max(axis=1).reshape(n, h * w), maps.argmax(axis=1).reshape(n, h * w)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of x1y1x2y2 boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thres: float) -> list[int]:
    """Greedy non-maximum suppression; indices kept, best first."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        if not order:
            break
        ious = box_iou(boxes[i : i + 1], boxes[order])[0]
        order = [j for j, iou in zip(order, ious) if iou <= iou_thres]
    return keep


def predict(raw: np.ndarray, conf_thres: float, iou_thres: float, max_det: int = 100) -> list[np.ndarray]:
    """Per image a (K, 6) array x1, y1, x2, y2, score, class after the threshold and per-class NMS."""
    boxes, scores, classes = decode(raw)
    out = []
    for b, s, c in zip(boxes, scores, classes):
        mask = s > conf_thres
        b, s, c = b[mask], s[mask], c[mask].astype(b.dtype)
        # per-class NMS in one pass: shift each class's boxes apart
        keep = nms(b + c[:, None] * 4096.0, s, iou_thres)[:max_det]
        out.append(np.concatenate((b[keep], s[keep, None], c[keep, None]), axis=1).reshape(-1, 6))
    return out


# -- training targets and loss ------------------------------------------------------------------


def targets_for(boxes: list[np.ndarray], grid: int, num_classes: int) -> np.ndarray:
    """(N, 5 + C, grid, grid) targets: objectness 0/1, box (dx, dy, log w, log h) and one-hot class
    at the cell of each box centre. ``boxes[i]`` is (K, 5): class, x1, y1, x2, y2 in input pixels."""
    target = np.zeros((len(boxes), 5 + num_classes, grid, grid), dtype=np.float32)
    for i, image_boxes in enumerate(boxes):
        for cls, x1, y1, x2, y2 in image_boxes.tolist():
            cx, cy, w, h = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE, (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
            gx, gy = min(grid - 1, max(0, int(cx))), min(grid - 1, max(0, int(cy)))
            target[i, 0, gy, gx] = 1.0
            target[i, 1:5, gy, gx] = (cx - gx, cy - gy, np.log(max(w, 1e-3)), np.log(max(h, 1e-3)))
            target[i, 5 + int(cls), gy, gx] = 1.0
    return target


def _bce_with_logits(logits: nd.NDArray, target: nd.NDArray, pos_weight: float = 1.0) -> nd.NDArray:
    """Element-wise binary cross-entropy of sigmoid(logits), stable for large logits:
    ``(1 - z) x + (1 + (w - 1) z) softplus(-x)`` with ``softplus(-x) = log1p(exp(-|x|)) + relu(-x)``."""
    softplus_neg = nd.log1p(nd.exp(-nd.abs(logits))) + nd.relu(-logits)
    return (1 - target) * logits + (1 + (pos_weight - 1) * target) * softplus_neg


def _channels(x: nd.NDArray, begin: int, end: int | None = None) -> nd.NDArray:
    """Channels ``begin:end`` of an (N, C, H, W) array. ``slice_axis``, not ``x[:, a:b]``: MXNet 1.9.1's
    basic indexing of a recorded array dies with SIGFPE on CPU (seen with the PyPI wheel)."""
    return nd.slice_axis(x, axis=1, begin=begin, end=end)


def loss_fn(raw: nd.NDArray, target: nd.NDArray) -> nd.NDArray:
    """Objectness BCE over all cells (positives weighted up), box L1 and class BCE on positives;
    a scalar, averaged over the images."""
    positive = _channels(target, 0, 1)  # (N, 1, H, W) 0/1 mask
    obj_loss = _bce_with_logits(_channels(raw, 0, 1), positive, pos_weight=5.0).sum()
    xy_loss = nd.broadcast_mul(nd.abs(nd.sigmoid(_channels(raw, 1, 3)) - _channels(target, 1, 3)), positive).sum()
    wh_loss = nd.broadcast_mul(nd.abs(_channels(raw, 3, 5) - _channels(target, 3, 5)), positive).sum()
    cls_loss = nd.broadcast_mul(_bce_with_logits(_channels(raw, 5), _channels(target, 5)), positive).sum()
    return (obj_loss + 2.0 * (xy_loss + wh_loss) + cls_loss) / raw.shape[0]
