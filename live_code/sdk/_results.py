"""Mining and inference results: ``/out/result.tsv`` and ``/out/infer-result.json`` (contract 7, 8)."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from live_code import contract
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ResultError
from live_code.sdk._io import replace_file

logger = logging.getLogger(__name__)


class Detection(NamedTuple):
    """One predicted box: top-left ``x``, ``y`` and size ``w``, ``h`` in pixels, as YMIR stores it.

    Floats are fine; the writer rounds them and clips boxes at the image's top-left edge.
    """

    class_name: str
    score: float
    x: float
    y: float
    w: float
    h: float
    #: written only for protocol >= 1.0.0 (YMIR 1.1 refuses the key)
    rotate_angle: float | None = None

    @classmethod
    def from_xyxy(
        cls,
        class_name: str,
        score: float,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
    ) -> Detection:
        """From corner coordinates as detectors output them (``w = x2 - x1``, no ``+ 1``)."""
        return cls(class_name, score, x1, y1, x2 - x1, y2 - y1)


def write_mining_result(scores: Iterable[tuple[str, float]], *, env: Env | None = None) -> None:
    """Write ``path<TAB>score`` lines, highest score first (ties keep their order).

    ``path`` should be the image path exactly as in the candidate index. Scores must be finite and
    each path may appear once; YMIR keeps the first topk lines as written.
    """
    env = env or read_env()
    rows: list[tuple[str, float]] = []
    seen: set[str] = set()
    for path, score in scores:
        if not isinstance(path, str) or not path or any(c in path for c in "\t\r\n"):
            raise ResultError(f"a mining path must be a non-empty string without tabs or newlines, got {path!r}")
        value = _finite(score, f"score of {path!r}")
        if path in seen:
            raise ResultError(f"{path!r} is scored twice; every candidate gets one line")
        seen.add(path)
        rows.append((path, value))
    rows.sort(key=lambda row: -row[1])  # stable: ties keep the caller's order
    replace_file(env.output.mining_result_file, "".join(f"{p}\t{s!r}\n" for p, s in rows))


def write_infer_result(
    detections: Mapping[str, Iterable[Detection]],
    *,
    env: Env | None = None,
) -> int:
    """Write ``{"detection": {<image basename>: {<list key>: [boxes]}}}``; returns the boxes written.

    Keys of ``detections`` are image paths (or basenames); an image without boxes may be given an
    empty list or left out. The list key is ``boxes`` from protocol 1.0.0 on, else ``annotations``.
    Coordinates become ints; a box that is empty after rounding and clipping is dropped (logged).
    """
    env = env or read_env()
    protocol = env.protocol_version
    list_key = contract.infer_list_key(protocol)
    with_angle = contract.allows_rotate_angle(protocol)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    written = dropped = 0
    for image, boxes in detections.items():
        key = os.path.basename(str(image))
        if not key:
            raise ResultError(f"image path {image!r} has no basename")
        if key in out:
            raise ResultError(f"two images share the basename {key!r}; YMIR keys results by basename")
        items = []
        for det in boxes:
            item = _box_item(det, key, with_angle)
            if item is None:
                dropped += 1
                continue
            items.append(item)
        out[key] = {list_key: items}
        written += len(items)
    if dropped:
        logger.warning("dropped %d boxes that were empty after rounding to whole pixels", dropped)
    text = json.dumps({"detection": out}, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    replace_file(env.output.infer_result_file, text)
    return written


def _box_item(det: Detection, image: str, with_angle: bool) -> dict[str, Any] | None:
    if not isinstance(det, Detection):
        raise ResultError(f"boxes of {image!r} must be Detection records, got {det!r}")
    if not isinstance(det.class_name, str) or not det.class_name:
        raise ResultError(f"a box of {image!r} has no class name: {det!r}")
    score = _finite(det.score, f"score of a box of {image!r}")
    x, y, w, h = (_finite(v, f"coordinate of a box of {image!r}") for v in (det.x, det.y, det.w, det.h))
    # clip at the top-left edge (detectors emit -0.4 and the like); YMIR wants x, y >= 0
    x0, y0 = max(0.0, x), max(0.0, y)
    left, top = round(x0), round(y0)
    width, height = round(x + w) - left, round(y + h) - top
    if width <= 0 or height <= 0:
        return None
    box: dict[str, Any] = {"x": left, "y": top, "w": width, "h": height}
    if with_angle and det.rotate_angle is not None:
        box["rotate_angle"] = _finite(det.rotate_angle, f"rotate_angle of a box of {image!r}")
    return {"box": box, "class_name": det.class_name, "score": score}


def _finite(value: Any, what: str) -> float:
    try:
        if isinstance(value, (bool, str)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ResultError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ResultError(f"{what} must be finite, got {value!r}")
    return number
