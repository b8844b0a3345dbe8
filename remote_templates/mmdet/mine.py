"""Mining: one score per candidate image with random, entropy, aldd (dense heads) or cald."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import common
import numpy as np
import scores

from live_code import sdk

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "entropy", "aldd", "cald")
_FILL = 114  # the grey mmdet's YOLOX pads with


def augment(kind: str, image: np.ndarray, seed: int) -> np.ndarray:
    """``image`` (H, W, 3 BGR) after the CALD augmentation ``kind``, with ``sdk.augment_box``'s geometry."""
    import cv2

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


def dense_maps(model: Any, path: str) -> tuple[list[list[list[list[float]]]], int]:
    """Per feature level, per class, the head's probability map ``sigmoid(cls) * sigmoid(obj)``
    (objectness when the head has it, e.g. YOLOX; anchors of a level are taken by their maximum),
    and the network input's longer side."""
    import torch
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg

    head = getattr(model, "bbox_head", None)
    if head is None or not hasattr(model, "extract_feat"):
        raise sdk.ConfigValueError(
            "mining_algorithm aldd needs a single-stage detector with a dense head "
            f"({type(model).__name__} has none); use entropy or cald"
        )
    if not getattr(head, "use_sigmoid_cls", True):
        raise sdk.ConfigValueError(f"aldd needs sigmoid class scores; {type(head).__name__} uses softmax")
    steps = [
        s for s in get_test_pipeline_cfg(model.cfg) if s.get("type") not in ("LoadAnnotations", "mmdet.LoadAnnotations")
    ]
    data = Compose(steps)({"img_path": path, "img_id": 0})
    batch = model.data_preprocessor({"inputs": [data["inputs"]], "data_samples": [data["data_samples"]]}, False)
    with torch.no_grad():
        outs = head(model.extract_feat(batch["inputs"]))
    classes = head.num_classes
    objectness = outs[2] if len(outs) > 2 and isinstance(outs[2], (list, tuple)) else None
    levels = []
    for i, cls in enumerate(outs[0]):
        c = cls[0].sigmoid()
        anchors = c.shape[0] // classes
        probs = c.reshape(anchors, classes, *c.shape[1:])
        if objectness is not None:
            probs = probs * objectness[i][0].sigmoid().reshape(anchors, 1, *c.shape[1:])
        levels.append(probs.max(dim=0).values.cpu().tolist())
    size = max(int(v) for v in batch["inputs"].shape[-2:])
    return levels, size


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    from mmcv import imread
    from mmdet.apis import inference_detector

    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "aldd")
    model, class_names = common.load_detector(env, config)
    class_weights = sdk.class_weights_from_config(config.get("class_distribution_scores"), class_names)
    conf_thres = sdk.get_float(config, "conf_thres", 0.1)
    paths = sdk.candidate_paths(env)
    logger.info("mining %d images with %s", len(paths), algorithm)

    def score(path: str, index: int) -> float:
        if algorithm == "random":
            return sdk.random_score(path)
        if algorithm == "entropy":
            found = inference_detector(model, path).pred_instances.scores.tolist()
            return sdk.entropy_score([float(s) for s in found if float(s) > conf_thres])
        if algorithm == "aldd":
            maps, size = dense_maps(model, path)
            return scores.aldd(maps, class_weights, size)
        image = imread(path)
        height, width = image.shape[:2]
        base = common.boxes_of(inference_detector(model, image), conf_thres)
        augmented = {
            kind: common.boxes_of(inference_detector(model, augment(kind, image, seed=index)), conf_thres)
            for kind in sdk.CALD_AUGMENTATIONS
        }
        return sdk.cald_from_predictions(base, augmented, width, height)

    sdk.score_candidates(score, env=env, paths=paths)
