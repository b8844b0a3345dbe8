"""ONNX export of a model stage, checked twice: ``onnx.checker`` on the file, and one image run
through onnxruntime and through torch, whose outputs must agree."""

from __future__ import annotations

import logging
import os
from typing import NamedTuple

import numpy as np
import predict
import torch

logger = logging.getLogger(__name__)

#: |onnx - torch| <= ATOL + RTOL * |torch|, elementwise, over boxes (input pixels) and probabilities
ATOL = 1e-3
RTOL = 1e-3


class ExportFailed(Exception):
    """The export or one of its checks failed (reported as a config error: export_onnx: false avoids it)."""


class Parity(NamedTuple):
    max_abs_diff: float
    worst_excess: float  # max of |diff| - tolerance; <= 0 passes
    shape: tuple[int, ...]


def export_onnx(checkpoint: str, img_size: int, opset: int, sample_image: str) -> str:
    """``<checkpoint stem>.onnx`` next to ``checkpoint``; raises ExportFailed when the export, the
    checker or the parity check fails. Exported on the CPU, fp32, static shape, without NMS."""
    from ultralytics import YOLO

    try:
        written = YOLO(checkpoint).export(
            format="onnx", imgsz=img_size, opset=opset, simplify=False, dynamic=False, nms=False, device="cpu"
        )
    except Exception as e:  # ultralytics and torch.onnx raise many types
        raise ExportFailed(f"ONNX export of {checkpoint} failed: {type(e).__name__}: {e}") from e
    path = str(written)
    if not os.path.isfile(path):
        raise ExportFailed(f"ultralytics reported {path!r} but wrote no ONNX file")
    check_model(path)
    parity = check_parity(checkpoint, path, img_size, sample_image)
    logger.info(
        "ONNX %s: onnx.checker passed; onnxruntime matches torch on %s (max |diff| %.3g, output %s, "
        "tolerance %g + %g*|torch|)",
        path,
        os.path.basename(sample_image),
        parity.max_abs_diff,
        "x".join(map(str, parity.shape)),
        ATOL,
        RTOL,
    )
    return path


def check_model(path: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as e:  # onnx.checker.ValidationError and shape inference errors
        raise ExportFailed(f"onnx.checker refuses {path}: {e}") from e


def check_parity(checkpoint: str, onnx_path: str, img_size: int, sample_image: str) -> Parity:
    """Run ``sample_image`` through both models; ExportFailed when they disagree."""
    import onnxruntime
    from ultralytics.nn.tasks import load_checkpoint

    canvas, _ = predict.letterbox(predict.read_image(sample_image), img_size)
    image = predict.to_input(canvas)[None]
    model, _ = load_checkpoint(checkpoint, device=torch.device("cpu"), fuse=True)
    expected = predict.forward(model.eval(), image).decoded.numpy()
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: image.numpy()})[:1]
    if got.shape != expected.shape:
        raise ExportFailed(f"onnxruntime gives an output of shape {got.shape} for {onnx_path}, torch {expected.shape}")
    diff = np.abs(got.astype(np.float64) - expected)
    excess = diff - (ATOL + RTOL * np.abs(expected))
    parity = Parity(float(diff.max()), float(excess.max()), tuple(got.shape))
    if not parity.worst_excess <= 0:
        raise ExportFailed(
            f"onnxruntime and torch disagree on {sample_image}: max |diff| {parity.max_abs_diff:.4g} "
            f"exceeds the tolerance {ATOL} + {RTOL}*|torch| by {parity.worst_excess:.4g}"
        )
    return parity
