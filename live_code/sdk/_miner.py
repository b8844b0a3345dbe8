"""Mining with a model, whatever its framework: the SDK dispatches on the algorithm, draws CALD's
augmentations with the template's image operations and scores; the template says what its model
gives for one candidate::

    class Miner(sdk.ImageMiner):
        def confidences(self, path): ...     # entropy: the raw confidences over conf_thres
        def class_maps(self, path): ...      # aldd: maps[class][level] and the network input size
        def read(self, path): ...            # cald: the image as the model takes it,
        def size(self, image): ...           #   its (width, height) in the frame of the boxes,
        def boxes(self, image): ...          #   the (x1, y1, x2, y2, score, class) rows on it
        def flip(self, image): ...           #   and the four augmentations, drawn by the framework
        ...

    sdk.mine_images(algorithm, Miner(...), class_weights=weights, env=env)

A template that offers fewer algorithms leaves the other methods out; calling one of them names
the algorithm that needs it. :class:`GridMiner` writes the first five for a single-stage detector
from its post-processing functions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from live_code.sdk._env import Env
from live_code.sdk._mining import (
    CALD_AUGMENTATIONS,
    CALD_RESIZE_SCALE,
    CALD_ROTATE_DEGREES,
    aldd_score,
    entropy_score,
    random_score,
)
from live_code.sdk._tasks import cald_from_predictions, candidate_paths, score_candidates

logger = logging.getLogger("live_code.sdk")

#: ``cutout``: how many grey squares, each of :func:`cald_cutout_side` pixels.
CALD_CUTOUT_SQUARES = 4

Image = TypeVar("Image")
_Rows = Sequence[Sequence[float]]


class CaldOps(Generic[Image]):
    """How a framework draws CALD's four augmentations on its image type (one image, its frame
    ``width`` x ``height``); :func:`cald_augment` decides which and with what geometry. Uncovered
    pixels take the template's grey."""

    def flip(self, image: Image) -> Image:
        """The image mirrored left to right."""
        raise NotImplementedError(f"{type(self).__name__} has no flip: cald needs it")

    def shrink(self, image: Image, width: int, height: int) -> Image:
        """The image scaled to ``width`` x ``height`` (bilinear) at the top-left corner of a grey
        canvas of the original size."""
        raise NotImplementedError(f"{type(self).__name__} has no shrink: cald needs it")

    def rotate(self, image: Image, degrees: float, centre: tuple[float, float]) -> Image:
        """The image turned ``degrees`` counter-clockwise on screen about ``centre`` (the image
        centre, in pixels), same size, bilinear."""
        raise NotImplementedError(f"{type(self).__name__} has no rotate: cald needs it")

    def cutout(self, image: Image, side: int, count: int, seed: Any) -> Image:
        """A copy with ``count`` grey squares of ``side`` pixels, inside the image, at positions
        drawn by the framework's generator seeded with ``seed``."""
        raise NotImplementedError(f"{type(self).__name__} has no cutout: cald needs it")


def cald_resized(width: int, height: int) -> tuple[int, int]:
    """The size the ``resize`` augmentation scales a ``width`` x ``height`` image to."""
    return max(1, round(width * CALD_RESIZE_SCALE)), max(1, round(height * CALD_RESIZE_SCALE))


def cald_cutout_side(width: int, height: int) -> int:
    """The side of the ``cutout`` augmentation's squares: an eighth of the shorter side."""
    return max(1, min(width, height) // 8)


def cald_cutout(image: Any, side: int, count: int, draw: Callable[[int], int], fill: Any) -> Any:
    """``cutout`` for an ``(H, W[, C])`` array that copies and slices like numpy's: a copy with
    ``count`` squares of ``side`` pixels set to ``fill``, the top-left corner of each at
    ``y = draw(H - side + 1)`` then ``x = draw(W - side + 1)``; ``draw(high)`` is an integer in
    ``[0, high)`` from the framework's seeded generator."""
    height, width = image.shape[:2]
    out = image.copy()
    for _ in range(count):
        y, x = draw(height - side + 1), draw(width - side + 1)
        out[y : y + side, x : x + side] = fill
    return out


def cald_augment(kind: str, image: Image, width: int, height: int, seed: Any, ops: CaldOps[Image]) -> Image:
    """``image`` after the CALD augmentation ``kind`` (one of :data:`CALD_AUGMENTATIONS`), drawn by
    ``ops`` with the geometry :func:`augment_box` maps boxes by; ``seed`` feeds ``cutout``."""
    if kind == "flip":
        return ops.flip(image)
    if kind == "resize":
        return ops.shrink(image, *cald_resized(width, height))
    if kind == "rotate":
        return ops.rotate(image, CALD_ROTATE_DEGREES, (width / 2.0, height / 2.0))
    if kind == "cutout":
        return ops.cutout(image, cald_cutout_side(width, height), CALD_CUTOUT_SQUARES, seed)
    raise ValueError(f"unknown augmentation {kind!r}")


def cald_image_score(
    image: Image, width: int, height: int, seed: Any, ops: CaldOps[Image], boxes: Callable[[Image], _Rows]
) -> float:
    """CALD's score of one image: ``boxes`` (the model's ``(x1, y1, x2, y2, score[, class])``
    rows) on the image and on each augmentation, mapped back to the image's frame and compared
    by :func:`cald_score`."""
    augmented = {kind: boxes(cald_augment(kind, image, width, height, seed, ops)) for kind in CALD_AUGMENTATIONS}
    return cald_from_predictions(boxes(image), augmented, width, height)


class ImageMiner(CaldOps[Image]):
    """What :func:`mine_images` asks of a template's model, one candidate at a time; override the
    methods of the algorithms the template offers (``random`` needs none)."""

    def confidences(self, path: str) -> Sequence[float]:
        """entropy: the model's raw (pre-NMS) confidences on the image at ``path``, those over the
        template's threshold."""
        raise NotImplementedError(f"{type(self).__name__} has no confidences: entropy needs them")

    def class_maps(self, path: str) -> tuple[Sequence[Sequence[Sequence[Sequence[float]]]], int]:
        """aldd: ``maps[class][level]`` (probability grids, see :func:`aldd_score`) of the image at
        ``path`` and the network input's size in pixels."""
        raise NotImplementedError(f"{type(self).__name__} has no class_maps: aldd needs them")

    def read(self, path: str) -> Image:
        """cald: the image at ``path`` as the model and the augmentations take it."""
        raise NotImplementedError(f"{type(self).__name__} has no read: cald needs it")

    def size(self, image: Image) -> tuple[int, int]:
        """cald: ``(width, height)`` of the frame :meth:`boxes` gives coordinates in."""
        raise NotImplementedError(f"{type(self).__name__} has no size: cald needs it")

    def boxes(self, image: Image) -> _Rows:
        """cald: the detections after NMS, ``(x1, y1, x2, y2, score, class_index)`` rows."""
        raise NotImplementedError(f"{type(self).__name__} has no boxes: cald needs them")


class GridMiner(ImageMiner[Image]):
    """An :class:`ImageMiner` for a single-stage detector with a square input of ``input_size``
    pixels (one prediction per grid cell): the template writes ``read`` (the image at that size),
    ``forward`` (one image to the raw output of a batch of one) and the CALD image operations;
    ``head`` is its post-processing (e.g. the module defining it), with

    - ``decode(raw)``: ``(boxes, confidences, classes)`` per cell (entropy takes the confidences
      over ``conf_thres``),
    - ``class_probability_maps(raw)``: per image, one probability map per class (aldd),
    - ``predict(raw, conf_thres, iou_thres)``: per image the ``(x1, y1, x2, y2, score, class)``
      rows after NMS (cald),

    on the framework's arrays: masked by a comparison and turned into lists by ``tolist()``, as
    numpy's and torch's are (the comparison stays in the framework's precision)."""

    def __init__(self, head: Any, input_size: int, conf_thres: float, iou_thres: float) -> None:
        self.head, self.input_size = head, input_size
        self.conf_thres, self.iou_thres = conf_thres, iou_thres

    def forward(self, image: Image) -> Any:
        """The network's raw output on ``image`` (a batch of one)."""
        raise NotImplementedError(f"{type(self).__name__} has no forward: every algorithm but random needs it")

    def size(self, image: Image) -> tuple[int, int]:
        return self.input_size, self.input_size

    def confidences(self, path: str) -> Sequence[float]:
        _, conf, _ = self.head.decode(self.forward(self.read(path)))
        return list(conf[conf > self.conf_thres].tolist())

    def class_maps(self, path: str) -> tuple[Sequence[Sequence[Sequence[Sequence[float]]]], int]:
        maps = self.head.class_probability_maps(self.forward(self.read(path)))[0]
        return [[m.tolist()] for m in maps], self.input_size

    def boxes(self, image: Image) -> _Rows:
        return list(self.head.predict(self.forward(image), self.conf_thres, self.iou_thres)[0].tolist())


def image_score(
    algorithm: str, miner: ImageMiner[Image], path: str, index: int, class_weights: Sequence[float] | None = None
) -> float:
    """The ``algorithm`` score (random, entropy, aldd or cald) of the candidate ``path`` (the
    ``index``-th: cald's cutout seed), from what ``miner`` gives; ``class_weights`` for aldd."""
    if algorithm == "random":
        return random_score(path)
    if algorithm == "entropy":
        return entropy_score(miner.confidences(path))
    if algorithm == "aldd":
        maps, input_size = miner.class_maps(path)
        return aldd_score(maps, class_weights, input_size=input_size)
    if algorithm == "cald":
        image = miner.read(path)
        width, height = miner.size(image)
        return cald_image_score(image, width, height, index, miner, miner.boxes)
    raise ValueError(f"unknown mining algorithm {algorithm!r}")


def mine_images(
    algorithm: str,
    miner: ImageMiner[Image],
    *,
    class_weights: Sequence[float] | None = None,
    env: Env | None = None,
    paths: Sequence[str] | None = None,
) -> list[tuple[str, float]]:
    """Score every candidate (or ``paths``) with :func:`image_score`, with mining progress; writes
    result.tsv and returns the scores in candidate order (see :func:`score_candidates`)."""
    paths = candidate_paths(env) if paths is None else list(paths)
    logger.info("mining %d images with %s", len(paths), algorithm)
    return score_candidates(
        lambda path, index: image_score(algorithm, miner, path, index, class_weights), env=env, paths=paths
    )
