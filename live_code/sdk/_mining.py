"""Mining scores: how much an unlabelled image would teach the model, one float per candidate.

The four algorithms of the reference YMIR executors (original-live-code-and-detectors.md, B.1;
IndustryEssentials/ymir-executor ``det-yolov5-tmi/mining/``), rewritten over plain Python sequences
so that any framework can feed them: the template turns its tensors into lists (``t.tolist()``)
and passes them here. Every score is "higher = more worth labelling", the order
:func:`write_mining_result` writes and YMIR's top-k keeps.

- ``random``: a uniform number per image, fixed for a seed (:func:`random_score`);
- ``entropy``: entropy of the raw confidences (:func:`entropy_score`);
- ``aldd``: local disagreement of the class probability maps (:func:`aldd_score`);
- ``cald``: inconsistency of the predictions under four augmentations (:func:`cald_score`).

Boxes are ``(x1, y1, x2, y2[, confidence[, class_index]])`` in pixels of one image frame.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

from live_code.sdk._config import get_list
from live_code.sdk._errors import ConfigValueError

#: Score of an image without any prediction, as the original entropy miner writes it (ranks last).
ENTROPY_EMPTY_SCORE = -10.0
#: CALD's beta: the score of an image without any box on the plain image (ranks it last).
CALD_BETA = 1.3
#: The augmentations CALD predicts on, in the original's order.
CALD_AUGMENTATIONS = ("flip", "cutout", "rotate", "resize")
#: ``resize``: the image is scaled by this factor and placed at the top-left corner.
CALD_RESIZE_SCALE = 0.8
#: ``rotate``: degrees, counter-clockwise on screen, about the image centre.
CALD_ROTATE_DEGREES = 5.0

# ALDD's window sizes, in pixels of the network input (the original: 9x9 mean, 32x32 max-pool).
_ALDD_AVG_KERNEL = 9
_ALDD_MAX_KERNEL = 32

_Xyxy = Sequence[float]
_Map = Sequence[Sequence[float]]


# -- random ---------------------------------------------------------------------------------------


def random_score(seed_key: str, seed: int | str = 0) -> float:
    """A uniform score in [0, 1) for ``seed_key`` (e.g. the image path), the same on every run.

    The "random" baseline of the reference executors, made reproducible: a SHA-256 of
    ``seed`` and ``seed_key`` instead of a global random generator, so a re-run ranks alike and
    the order of the candidates does not matter.
    """
    digest = hashlib.sha256(f"{seed}\0{seed_key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


# -- entropy --------------------------------------------------------------------------------------


def entropy_score(confidences: Sequence[float]) -> float:
    """``-sum(p * log2(p))`` over the raw (pre-NMS) confidences of one image's predictions.

    Source: "Multi-class active learning for image classification" (Joshi et al., CVPR 2009), as
    the ymir yolov5 executor applies it to objectness (``mining/ymir_mining_entropy.py``). Many
    half-sure boxes score high; no prediction at all gives :data:`ENTROPY_EMPTY_SCORE` (-10).
    Confidences must lie within 0..1.
    """
    total = 0.0
    count = 0
    for value in confidences:
        p = _probability(value, "confidence")
        count += 1
        if p > 0.0:
            total -= p * math.log2(p)
    return total if count else ENTROPY_EMPTY_SCORE


# -- aldd -----------------------------------------------------------------------------------------


def aldd_score(
    prob_maps: Sequence[Sequence[_Map]],
    class_weights: Sequence[float] | None = None,
    *,
    input_size: int | None = None,
) -> float:
    """ALDD: how much neighbouring positions of the probability maps disagree, summed over classes.

    Source: "Active Learning for Deep Detection Neural Networks" (Aghdam et al., ICCV 2019), as
    the ymir yolov5 executor computes it (``mining/ymir_mining_aldd.py``).

    ``prob_maps[c]`` is the list of 2D maps (rows of floats in 0..1) of class ``c``, one per head
    scale (or anchor): already ``sigmoid(objectness) * sigmoid(class)``. Per class the maps are
    resized (nearest) to the largest one's size and stacked; per position, uncertainty = binary
    entropy of the local mean minus the local mean of the binary entropy (natural log), summed
    over the stack; then max-pooled and averaged into the class's score. The score is the sum
    of the class scores times ``class_weights`` (default 1.0 each; see
    :func:`class_weights_from_config`).

    The windows are the original's 9x9 mean and 32x32 max-pool in network-input pixels:
    ``input_size`` (the input's longer side) scales them to the maps, with at least a 3x3 mean,
    so stride-8 maps of a 64-pixel input work. Without ``input_size`` the maps are taken to be
    at input resolution. A map of constant probability, sure or not, scores 0: ALDD rewards
    local disagreement, not a uniform 0.5.
    """
    if not prob_maps:
        raise ValueError("aldd_score needs the maps of at least one class")
    weights = [1.0] * len(prob_maps) if class_weights is None else [float(w) for w in class_weights]
    if len(weights) != len(prob_maps):
        raise ValueError(f"{len(weights)} class weights for {len(prob_maps)} classes")
    checked = [
        [_check_map(m, f"prob_maps[{c}][{s}]") for s, m in enumerate(scales)] for c, scales in enumerate(prob_maps)
    ]
    if any(not scales for scales in checked):
        raise ValueError("every class needs at least one probability map")
    height = max(len(m) for scales in checked for m in scales)
    width = max(len(m[0]) for scales in checked for m in scales)
    if input_size is not None and not input_size > 0:
        raise ValueError(f"input_size must be positive, got {input_size!r}")
    ratio = 1.0 if input_size is None else max(height, width) / float(input_size)
    avg_kernel = max(3, int(round(_ALDD_AVG_KERNEL * ratio)) | 1)
    max_kernel = max(1, min(int(round(_ALDD_MAX_KERNEL * ratio)), height, width))
    total = 0.0
    for weight, scales in zip(weights, checked):
        stack = [_resize_nearest(m, height, width) for m in scales]
        total += weight * _aldd_class_score(stack, avg_kernel, max_kernel)
    return total


def _aldd_class_score(stack: list[list[list[float]]], avg_kernel: int, max_kernel: int) -> float:
    height, width = len(stack[0]), len(stack[0][0])
    uncertainty = [[0.0] * width for _ in range(height)]
    for probs in stack:
        mean_p = _box_mean(probs, avg_kernel)
        mean_h = _box_mean([[_binary_entropy(p) for p in row] for row in probs], avg_kernel)
        for y in range(height):
            row_u, row_p, row_h = uncertainty[y], mean_p[y], mean_h[y]
            for x in range(width):
                row_u[x] += _binary_entropy(row_p[x]) - row_h[x]
    pooled = [
        max(uncertainty[y][x] for y in range(top, top + max_kernel) for x in range(left, left + max_kernel))
        for top in range(0, height - max_kernel + 1, max_kernel)
        for left in range(0, width - max_kernel + 1, max_kernel)
    ]
    return sum(pooled) / len(pooled)


def _binary_entropy(p: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))


def _box_mean(grid: list[list[float]], kernel: int) -> list[list[float]]:
    """Mean over a ``kernel`` x ``kernel`` window centred on each cell, clipped at the borders
    (average pooling, stride 1, padding not counted), through a summed-area table."""
    height, width = len(grid), len(grid[0])
    table = [[0.0] * (width + 1) for _ in range(height + 1)]
    for y in range(height):
        run = 0.0
        above, row, src = table[y], table[y + 1], grid[y]
        for x in range(width):
            run += src[x]
            row[x + 1] = above[x + 1] + run
    half = kernel // 2
    out = []
    for y in range(height):
        y0, y1 = max(0, y - half), min(height, y + half + 1)
        line = []
        for x in range(width):
            x0, x1 = max(0, x - half), min(width, x + half + 1)
            area = (y1 - y0) * (x1 - x0)
            line.append((table[y1][x1] - table[y0][x1] - table[y1][x0] + table[y0][x0]) / area)
        out.append(line)
    return out


def _resize_nearest(grid: list[list[float]], height: int, width: int) -> list[list[float]]:
    h, w = len(grid), len(grid[0])
    if (h, w) == (height, width):
        return grid
    rows = [grid[min(h - 1, y * h // height)] for y in range(height)]
    columns = [min(w - 1, x * w // width) for x in range(width)]
    return [[row[x] for x in columns] for row in rows]


def _check_map(grid: _Map, where: str) -> list[list[float]]:
    rows = [[_probability(v, where) for v in row] for row in grid]
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError(f"{where} must be a non-empty rectangle of rows")
    return rows


# -- cald -----------------------------------------------------------------------------------------


def cald_score(base_boxes: Sequence[_Xyxy], aug_boxes_list: Sequence[Sequence[_Xyxy]]) -> float:
    """CALD: how inconsistent the predictions are under augmentation; 0 (consistent) .. 1.

    Source: "Consistency-based Active Learning for Object Detection" (Yu et al., CVPR 2022
    workshop), as the ymir yolov5 executor applies it (``mining/mining_cald.py``).

    ``base_boxes`` are the predictions on the plain image; ``aug_boxes_list`` holds, per
    augmentation (see :data:`CALD_AUGMENTATIONS`), the predictions on the augmented image mapped
    back to the plain image's frame (:func:`unaugment_box`). Each base box is matched to the
    augmented box of highest IoU; its consistency is that IoU times the agreement of the two
    confidences, ``1 - JS([p, 1-p], [q, 1-q])`` (Jensen-Shannon divergence, base 2; a missing
    confidence counts as 1, different class indices agree 0). Per augmentation the least
    consistent box counts (an augmentation without predictions: 0); the image's consistency is
    the mean over augmentations and the score ``1 - consistency``.

    An image without base boxes scores ``-CALD_BETA`` (-1.3), as the original, so it ranks last.
    The original writes ``|IoU + conf_agreement - beta|`` per box; this keeps its matching and
    ordering intent with a score bounded to 0..1.
    """
    base = [_check_box(b, "base box") for b in base_boxes]
    if not base:
        return -CALD_BETA
    if not aug_boxes_list:
        raise ValueError("cald_score needs the predictions of at least one augmentation")
    consistencies = []
    for aug_index, aug_boxes in enumerate(aug_boxes_list):
        aug = [_check_box(b, f"box of augmentation {aug_index}") for b in aug_boxes]
        worst = 1.0
        for box in base:
            best_iou, match = 0.0, None
            for other in aug:
                iou = box_iou(box, other)
                if iou > best_iou:
                    best_iou, match = iou, other
            agreement = _agreement(box, match) if match is not None else 0.0
            worst = min(worst, best_iou * agreement)
        consistencies.append(worst)
    return 1.0 - sum(consistencies) / len(consistencies)


def box_iou(a: _Xyxy, b: _Xyxy) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2, ...)`` boxes (continuous coordinates)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def augment_box(kind: str, box: _Xyxy, width: float, height: float) -> tuple[float, ...]:
    """``box`` as it lies in the image after CALD augmentation ``kind`` (of a ``width`` x ``height``
    image); items after the four coordinates (confidence, class) are kept.

    ``flip`` mirrors left-right, ``resize`` scales by :data:`CALD_RESIZE_SCALE` towards the
    top-left corner, ``rotate`` turns the box's centre by :data:`CALD_ROTATE_DEGREES` about the
    image centre keeping its size (a fair approximation for small angles), ``cutout`` (patches
    blanked out) leaves boxes where they are.
    """
    return _transform(kind, box, width, height, inverse=False)


def unaugment_box(kind: str, box: _Xyxy, width: float, height: float) -> tuple[float, ...]:
    """The inverse of :func:`augment_box`: a box predicted on the augmented image, mapped back to the
    plain image's frame (``width`` x ``height`` of the plain image), ready for :func:`cald_score`."""
    return _transform(kind, box, width, height, inverse=True)


def _transform(kind: str, box: _Xyxy, width: float, height: float, *, inverse: bool) -> tuple[float, ...]:
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    rest = tuple(box[4:])
    if kind == "flip":
        return (width - x2, y1, width - x1, y2, *rest)
    if kind == "cutout":
        return (x1, y1, x2, y2, *rest)
    if kind == "resize":
        s = 1.0 / CALD_RESIZE_SCALE if inverse else CALD_RESIZE_SCALE
        return (x1 * s, y1 * s, x2 * s, y2 * s, *rest)
    if kind == "rotate":
        angle = math.radians(-CALD_ROTATE_DEGREES if inverse else CALD_ROTATE_DEGREES)
        cx, cy = width / 2.0, height / 2.0
        bx, by = (x1 + x2) / 2.0 - cx, (y1 + y2) / 2.0 - cy
        # counter-clockwise on screen with y pointing down
        nx = cx + bx * math.cos(angle) + by * math.sin(angle)
        ny = cy - bx * math.sin(angle) + by * math.cos(angle)
        hw, hh = (x2 - x1) / 2.0, (y2 - y1) / 2.0
        return (nx - hw, ny - hh, nx + hw, ny + hh, *rest)
    raise ValueError(f"unknown CALD augmentation {kind!r}; use one of {', '.join(CALD_AUGMENTATIONS)}")


def _agreement(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    class_a, class_b = _class_of(a), _class_of(b)
    if class_a is not None and class_b is not None and class_a != class_b:
        return 0.0
    p, q = _confidence_of(a), _confidence_of(b)
    return max(0.0, 1.0 - _js_binary(p, q))


def _js_binary(p: float, q: float) -> float:
    """Jensen-Shannon divergence (bits, 0..1) of the distributions [p, 1-p] and [q, 1-q]."""

    def kl(a: float, m: float) -> float:
        return a * math.log2(a / m) if a > 0.0 else 0.0

    mp, mq = (p + q) / 2.0, ((1.0 - p) + (1.0 - q)) / 2.0
    return 0.5 * (kl(p, mp) + kl(1.0 - p, mq)) + 0.5 * (kl(q, mp) + kl(1.0 - q, mq))


def _confidence_of(box: tuple[float, ...]) -> float:
    return float(box[4]) if len(box) > 4 else 1.0


def _class_of(box: tuple[float, ...]) -> int | None:
    return int(box[5]) if len(box) > 5 else None


def _check_box(box: Any, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"a {what} must be numbers (x1, y1, x2, y2[, confidence[, class]]), got {box!r}") from None
    if not 4 <= len(values) <= 6 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"a {what} must be 4 to 6 finite numbers (x1, y1, x2, y2[, confidence[, class]]), got {box!r}")
    if len(values) > 4:
        _probability(values[4], f"confidence of a {what}")
    return values


def _probability(value: Any, what: str) -> float:
    if isinstance(value, (bool, str)):
        raise ValueError(f"{what} must be a number within 0..1, got {value!r}")
    p = float(value)
    if not 0.0 <= p <= 1.0:  # also refuses NaN
        raise ValueError(f"{what} must be within 0..1, got {value!r}")
    return p


# -- configuration --------------------------------------------------------------------------------


def class_weights_from_config(value: Any, class_names: Sequence[str]) -> list[float]:
    """The per-class weights of ``class_distribution_scores``: one float per class name.

    ``value`` is the hyper-parameter as it arrives: ``''``/None (every class 1.0), ``'1,0.5,2'``,
    ``'[1, 0.5]'`` or a list. A shorter list is padded with 1.0 and a longer one cut to the
    classes, as the original does. Raises ConfigValueError for a value that is not a number.
    """
    weights = get_list({"class_distribution_scores": value}, "class_distribution_scores", item_type=float)
    for weight in weights:
        if not math.isfinite(weight) or weight < 0.0:
            msg = f"config key 'class_distribution_scores': {weight!r} must be a finite number >= 0"
            raise ConfigValueError(msg)
    count = len(class_names)
    return (weights + [1.0] * count)[:count]
