"""What every detector's mining and infer share, whatever its framework.

A template writes how its model scores or detects one image; these run it over the candidates
with progress and write the result::

    algorithm = sdk.mining_algorithm(config, ("random", "entropy", "cald"), default="entropy")
    sdk.score_candidates(lambda path, i: my_score(path), env=env)
    sdk.detect_candidates(lambda path: sdk.clip_detections(rows, names, width, height), env=env)

and the hyper-parameters the platform adds (``gpu_id``) read the same way in every template.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from live_code.contract import TaskKind
from live_code.sdk._config import get_list
from live_code.sdk._dataset import Split, index_file, iter_items
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ConfigValueError, DatasetFormatError, ImageFormatError
from live_code.sdk._mining import CALD_AUGMENTATIONS, cald_score, unaugment_box
from live_code.sdk._monitor import write_progress
from live_code.sdk._results import Detection, write_infer_result, write_mining_result
from live_code.sdk.formats import Box, image_size

logger = logging.getLogger("live_code.sdk")

#: how many images between two progress records
PROGRESS_EVERY = 10


def gpu_ids(config: Mapping[str, Any]) -> list[str]:
    """The platform's ``gpu_id`` (container-local numbering, e.g. ``'0,1'``) as a list; ``[]``: the CPU."""
    return [g for g in (str(x).strip() for x in get_list(config, "gpu_id", item_type=str)) if g]


def training_class_names(config: Mapping[str, Any]) -> list[str]:
    """config.yaml's ``class_names``; ConfigValueError when there are none (nothing to train)."""
    names = get_list(config, "class_names", item_type=str)
    if not names:
        raise ConfigValueError("config.yaml has no class_names: nothing to train")
    return names


def require_images(split: Split, count: int, *, env: Env | None = None) -> None:
    """DatasetFormatError naming the split's index file when ``count`` (its images) is 0."""
    if not count:
        raise DatasetFormatError(index_file(split, env), "", "the split has no images")


def scaled_boxes(boxes: Iterable[Box], sx: float, sy: float) -> list[list[float]]:
    """``[class_index, x1, y1, x2, y2]`` rows of dataset boxes scaled by ``sx``, ``sy`` (image to
    network pixels), YMIR's inclusive ``xmax``/``ymax`` turned into the exclusive edge (+1)."""
    return [[b.class_index, b.xmin * sx, b.ymin * sy, (b.xmax + 1) * sx, (b.ymax + 1) * sy] for b in boxes]


def image_size_with(fallback: Callable[[str], tuple[int, int]]) -> Callable[[str], tuple[int, int]]:
    """A size reader (for ``write_coco``'s ``size_of``): :func:`image_size` from the header (PNG,
    JPEG, BMP, GIF, WebP), else ``fallback(path)`` for other formats (e.g. Pillow's); the SDK's
    ImageFormatError, which names the file, when both fail."""

    def size_of(path: str) -> tuple[int, int]:
        try:
            return image_size(path)
        except ImageFormatError as e:
            try:
                width, height = fallback(path)
            except Exception:  # the fallback cannot read it either
                raise e from None
            return int(width), int(height)

    return size_of


def mining_algorithm(config: Mapping[str, Any], allowed: Sequence[str], default: str) -> str:
    """``config['mining_algorithm']`` (``default`` when empty), lower-cased; ConfigValueError when
    it is not one of ``allowed``."""
    value = config.get("mining_algorithm")
    algorithm = str(value or default).strip().lower()
    if algorithm not in allowed:
        raise ConfigValueError(f"config key 'mining_algorithm': {value!r} is not one of {', '.join(allowed)}")
    return algorithm


def candidate_paths(env: Env | None = None) -> list[str]:
    """The image paths of the candidate split (mining and infer), in index order."""
    return [item.image_path for item in iter_items(Split.CANDIDATE, env=env)]


def score_candidates(
    score: Callable[[str, int], float], *, env: Env | None = None, paths: Sequence[str] | None = None
) -> list[tuple[str, float]]:
    """``score(path, index)`` for every candidate (or ``paths``), with mining progress; writes
    result.tsv and returns the scores in candidate order."""
    env = env or read_env()
    paths = candidate_paths(env) if paths is None else list(paths)
    results = []
    for i, path in enumerate(paths):
        results.append((path, float(score(path, i))))
        _progress(i, len(paths), TaskKind.MINING, env)
    write_mining_result(results, env=env)
    logger.info("wrote %d mining scores", len(results))
    return results


def detect_candidates(
    detect: Callable[[str], Iterable[Detection]], *, env: Env | None = None, paths: Sequence[str] | None = None
) -> dict[str, list[Detection]]:
    """``detect(path)`` for every candidate (or ``paths``), with infer progress; writes
    infer-result.json and returns the detections by path."""
    env = env or read_env()
    paths = candidate_paths(env) if paths is None else list(paths)
    logger.info("inferring %d images", len(paths))
    found: dict[str, list[Detection]] = {}
    for i, path in enumerate(paths):
        found[path] = list(detect(path))
        _progress(i, len(paths), TaskKind.INFER, env)
    boxes = write_infer_result(found, env=env)
    logger.info("wrote %d boxes for %d images", boxes, len(found))
    return found


def _progress(index: int, total: int, kind: TaskKind, env: Env) -> None:
    if index % PROGRESS_EVERY == 0:
        write_progress(index / max(1, total), task=kind, env=env)


def clip_detections(
    rows: Iterable[Sequence[float]],
    class_names: Sequence[str],
    width: float,
    height: float,
    *,
    conf_thres: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
) -> list[Detection]:
    """Detections from ``(x1, y1, x2, y2, score, class_index)`` rows: coordinates times ``scale``
    (network input to image pixels), clipped to the image; rows scoring under ``conf_thres``, with a
    class outside ``class_names``, a non-finite value or nothing left after clipping are dropped."""
    sx, sy = scale
    out = []
    for row in rows:
        x1, y1, x2, y2, score, label = (float(v) for v in tuple(row)[:6])
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2, score, label)):
            continue
        if score < conf_thres or not 0 <= int(label) < len(class_names):
            continue
        x1, y1 = max(0.0, x1 * sx), max(0.0, y1 * sy)
        x2, y2 = min(float(width), x2 * sx), min(float(height), y2 * sy)
        if x2 > x1 and y2 > y1:
            out.append(Detection.from_xyxy(class_names[int(label)], score, x1, y1, x2, y2))
    return out


def cald_from_predictions(
    base: Sequence[Sequence[float]], augmented: Mapping[str, Sequence[Sequence[float]]], width: float, height: float
) -> float:
    """:func:`cald_score` from the boxes on the plain image and on each of ``CALD_AUGMENTATIONS``
    (``augmented[kind]``, in the augmented image's frame: mapped back here)."""
    missing = [k for k in CALD_AUGMENTATIONS if k not in augmented]
    if missing:
        raise ValueError(f"cald needs the predictions on every augmentation; missing {', '.join(missing)}")
    back = [[unaugment_box(kind, box, width, height) for box in augmented[kind]] for kind in CALD_AUGMENTATIONS]
    return cald_score([tuple(float(v) for v in b) for b in base], back)
