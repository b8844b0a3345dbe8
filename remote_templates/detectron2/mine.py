"""Mining: one score per candidate image with cald (the original executor's), entropy or random."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import predict

from live_code import sdk

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "entropy", "cald")
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
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "cald")
    predictor, _ = predict.load_predictor(env, config)
    conf_thres = sdk.get_float(config, "conf_thres", 0.2)
    paths = sdk.candidate_paths(env)
    logger.info("mining %d images with %s", len(paths), algorithm)

    def score(path: str, index: int) -> float:
        if algorithm == "random":
            return sdk.random_score(path)
        image = predict.read_image(path)
        base = predict.boxes_of(predictor, image, conf_thres)
        if algorithm == "entropy":
            return sdk.entropy_score([b[4] for b in base if b[4] > conf_thres])
        height, width = image.shape[:2]
        augmented = {
            kind: predict.boxes_of(predictor, augment(kind, image, seed=index), conf_thres)
            for kind in sdk.CALD_AUGMENTATIONS
        }
        return sdk.cald_from_predictions(base, augmented, width, height)

    sdk.score_candidates(score, env=env, paths=paths)
