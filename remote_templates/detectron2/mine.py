"""Mining: one score per candidate image with cald (the original executor's), entropy or random."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import predict
import scores

from live_code import sdk

logger = logging.getLogger(__name__)

_FILL = 114


def augment(kind: str, image: np.ndarray, seed: int) -> np.ndarray:
    """``image`` (H, W, 3 BGR) after the CALD augmentation ``kind``, with ``sdk.augment_box``'s geometry."""
    height, width = image.shape[:2]
    if kind == "flip":
        return np.ascontiguousarray(image[:, ::-1])
    if kind == "resize":
        w, h = max(1, round(width * sdk.CALD_RESIZE_SCALE)), max(1, round(height * sdk.CALD_RESIZE_SCALE))
        out = np.full_like(image, _FILL)
        out[:h, :w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        return out
    if kind == "rotate":  # OpenCV: a positive angle turns counter-clockwise on screen, as the SDK's
        matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), sdk.CALD_ROTATE_DEGREES, 1.0)
        return cv2.warpAffine(image, matrix, (width, height), borderValue=(_FILL, _FILL, _FILL))
    if kind == "cutout":
        out = image.copy()
        rng = np.random.default_rng(seed)
        side = max(1, min(width, height) // 8)
        for _ in range(4):
            y, x = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
            out[y : y + side, x : x + side] = _FILL
        return out
    raise ValueError(f"unknown augmentation {kind!r}")


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    algorithm = scores.check_algorithm(config.get("mining_algorithm") or "cald")
    predictor, _ = predict.load_predictor(env, config)
    conf_thres = sdk.get_float(config, "conf_thres", 0.2)
    paths = [item.image_path for item in sdk.iter_items(sdk.Split.CANDIDATE)]
    logger.info("mining %d images with %s", len(paths), algorithm)
    results = []
    for i, path in enumerate(paths):
        if algorithm == "random":
            score = sdk.random_score(path)
        else:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise sdk.DatasetFormatError(path, "", "OpenCV cannot read the image")
            base = predict.boxes_of(predictor, image, conf_thres)
            if algorithm == "entropy":
                score = scores.entropy([b[4] for b in base], conf_thres)
            else:
                height, width = image.shape[:2]
                augmented = {
                    kind: predict.boxes_of(predictor, augment(kind, image, seed=i), conf_thres)
                    for kind in sdk.CALD_AUGMENTATIONS
                }
                score = scores.cald(base, augmented, width, height)
        results.append((path, score))
        if i % 10 == 0:
            sdk.write_progress(i / max(1, len(paths)), task=sdk.TaskKind.MINING)
    sdk.write_mining_result(results)
    sdk.write_progress(1.0, task=sdk.TaskKind.MINING)
    logger.info("wrote %d mining scores", len(results))
