"""Mining scores from a detector's outputs, framework-free: the algorithms are the SDK's shared
implementations (``live_code.sdk``); this module only reshapes what mmdet gives into their input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from live_code import sdk

ALGORITHMS = ("random", "entropy", "aldd", "cald")

Box = Sequence[float]  # x1, y1, x2, y2, score, class


def check_algorithm(value: object, allowed: Sequence[str] = ALGORITHMS) -> str:
    algorithm = str(value or "").strip().lower()
    if algorithm not in allowed:
        raise sdk.ConfigValueError(f"config key 'mining_algorithm': {value!r} is not one of {', '.join(allowed)}")
    return algorithm


def entropy(scores: Sequence[float], conf_thres: float) -> float:
    """Entropy of the confidences above ``conf_thres`` (the SDK's ``-10`` for none)."""
    return sdk.entropy_score([float(s) for s in scores if float(s) > conf_thres])


def aldd(
    level_maps: Sequence[Sequence[Sequence[Sequence[float]]]], class_weights: Sequence[float], input_size: int
) -> float:
    """ALDD of a dense head: ``level_maps[level][class]`` is the 2D probability map of a class at
    one feature level (already ``sigmoid(cls) * sigmoid(objectness)``); the SDK wants them by class."""
    if not level_maps:
        raise ValueError("aldd needs at least one feature level")
    classes = len(level_maps[0])
    if any(len(level) != classes for level in level_maps):
        raise ValueError("every feature level needs a map per class")
    by_class = [[level[c] for level in level_maps] for c in range(classes)]
    return sdk.aldd_score(by_class, class_weights, input_size=input_size)


def cald(base: Sequence[Box], augmented: Mapping[str, Sequence[Box]], width: int, height: int) -> float:
    """CALD from the boxes on the plain image and on each of ``sdk.CALD_AUGMENTATIONS`` (boxes in the
    augmented image's frame, mapped back here)."""
    missing = [k for k in sdk.CALD_AUGMENTATIONS if k not in augmented]
    if missing:
        raise ValueError(f"cald needs the predictions on every augmentation; missing {', '.join(missing)}")
    back = [[sdk.unaugment_box(kind, box, width, height) for box in augmented[kind]] for kind in sdk.CALD_AUGMENTATIONS]
    return sdk.cald_score([tuple(float(v) for v in b) for b in base], back)


def detections(
    boxes: Sequence[Box], class_names: Sequence[str], conf_thres: float, width: int, height: int
) -> list[sdk.Detection]:
    """Infer results: boxes scoring at least ``conf_thres``, clipped to the image, as SDK detections
    (non-finite boxes dropped)."""
    out = []
    for x1, y1, x2, y2, score, label in (tuple(b)[:6] for b in boxes):
        if not all(math.isfinite(float(v)) for v in (x1, y1, x2, y2, score)):
            continue
        if score < conf_thres or not 0 <= int(label) < len(class_names):
            continue
        x1, y1 = max(0.0, float(x1)), max(0.0, float(y1))
        x2, y2 = min(float(width), float(x2)), min(float(height), float(y2))
        if x2 > x1 and y2 > y1:
            out.append(sdk.Detection.from_xyxy(class_names[int(label)], float(score), x1, y1, x2, y2))
    return out
