"""What a training loop shares whatever its framework: the hyper-parameters every detector reads,
a split loaded as network-size samples, and the per-epoch bookkeeping (scalars, log, best stage,
progress)::

    params = sdk.training_params(config, epochs=30, batch_size=8, learning_rate=0.005, img_size=64, stride=32)
    log = sdk.TrainingLog(params, env=env)    # starts the clock
    train = sdk.load_samples(sdk.Split.TRAINING, params.img_size, params.class_names, read, to_boxes)
    log.loaded(len(train), len(val), device)
    with sdk.ScalarWriter(env.output.tensorboard_dir) as board:
        for epoch in range(1, params.epochs + 1):
            ...  # the framework's steps
            log.end_epoch(board, epoch, loss, m_ap, per_class, save=save_stage)  # save_stage(stage, m_ap)
    log.finish()

The template keeps what its framework decides: how an image becomes a tensor, the steps, how a
stage is saved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from live_code.contract import TaskKind
from live_code.sdk._config import get_float, get_int
from live_code.sdk._dataset import Split, iter_items
from live_code.sdk._env import Env
from live_code.sdk._errors import ConfigValueError
from live_code.sdk._monitor import write_progress
from live_code.sdk._tasks import require_images, scaled_boxes, training_class_names
from live_code.sdk._tensorboard import ScalarWriter

logger = logging.getLogger("live_code.sdk")

#: training progress when the data is loaded, and the share the epochs then fill (to 0.95)
PROGRESS_LOADED = 0.05
PROGRESS_EPOCHS = 0.9


class TrainingParams(NamedTuple):
    """The hyper-parameters every detector's training reads, checked."""

    class_names: list[str]
    epochs: int
    batch_size: int
    learning_rate: float
    img_size: int
    iou_thres: float
    seed: int


def input_size(config: Mapping[str, Any], default: int, stride: int = 1) -> int:
    """``config['img_size']`` (``default`` when absent): the square network input; ConfigValueError
    unless it is a positive multiple of ``stride`` (the network's largest stride)."""
    size = get_int(config, "img_size", default)
    if size < stride or size % stride:
        raise ConfigValueError(f"config key 'img_size': {size} must be a positive multiple of {stride}")
    return size


def training_params(
    config: Mapping[str, Any],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    img_size: int,
    stride: int = 1,
    iou_thres: float = 0.45,
    seed: int = 0,
) -> TrainingParams:
    """``class_names``, ``epochs``, ``batch_size``, ``learning_rate``, ``img_size`` (see
    :func:`input_size`), ``iou_thres`` (the NMS of the validation) and ``seed`` from ``config``, the
    keywords being the template's defaults; ConfigValueError for no class names, a non-positive
    count or rate, or a bad size."""
    params = TrainingParams(
        training_class_names(config),
        get_int(config, "epochs", epochs),
        get_int(config, "batch_size", batch_size),
        get_float(config, "learning_rate", learning_rate),
        input_size(config, img_size, stride),
        get_float(config, "iou_thres", iou_thres),
        get_int(config, "seed", seed),
    )
    if params.epochs < 1 or params.batch_size < 1 or not params.learning_rate > 0:
        raise ConfigValueError(
            f"epochs ({params.epochs}), batch_size ({params.batch_size}) and learning_rate "
            f"({params.learning_rate}) must be positive"
        )
    return params


class Sample(NamedTuple):
    """One image at network size (the framework's type), its boxes (the framework's array of
    ``[class_index, x1, y1, x2, y2]`` rows in input pixels) and its original width and height."""

    path: str
    image: Any
    boxes: Any
    width: int
    height: int


def load_samples(
    split: Split,
    size: int,
    class_names: Sequence[str],
    read: Callable[[str, int], tuple[Any, int, int]],
    to_boxes: Callable[[list[list[float]]], Any],
    *,
    env: Env | None = None,
) -> list[Sample]:
    """Every image of ``split`` as a :class:`Sample`: ``read(path, size)`` gives the image at
    ``size`` x ``size`` with its original width and height; the boxes are scaled to it (YMIR's
    inclusive ``xmax`` becomes the exclusive edge ``xmax + 1``) and handed to ``to_boxes`` as rows.
    DatasetFormatError, naming the index file, when the split has no image."""
    samples = []
    for item in iter_items(split, class_names=class_names, env=env):
        image, width, height = read(item.image_path, size)
        rows = scaled_boxes(item.boxes, size / width, size / height)
        samples.append(Sample(item.image_path, image, to_boxes(rows), width, height))
    require_images(split, len(samples), env=env)
    return samples


def flipped_rows(rows: Iterable[Sequence[float]], width: float) -> list[list[float]]:
    """``[class_index, x1, y1, x2, y2]`` rows (exclusive right edge) mirrored left to right in an
    image ``width`` pixels wide: the training's horizontal flip."""
    return [[r[0], width - r[3], r[2], width - r[1], r[4]] for r in rows]


class TrainingLog:
    """The bookkeeping of a training loop: the log lines, the TensorBoard scalars ``loss`` and
    ``mAP``, the best stage so far (``epoch_N``) and the training progress (0.05 once the data is
    loaded, then up to 0.95 over the epochs). Made when the training starts (its clock)."""

    def __init__(self, params: TrainingParams, *, env: Env | None = None) -> None:
        self.params = params
        self.env = env
        self.best_map = -1.0
        self.best_stage = ""
        self.started = time.monotonic()

    def loaded(self, train_count: int, val_count: int, device: object) -> None:
        """Log what the training runs on and record the data loaded (progress 0.05)."""
        logger.info(
            "training on %d images, validating on %d, %d classes, %d px, %d epochs on %s",
            train_count,
            val_count,
            len(self.params.class_names),
            self.params.img_size,
            self.params.epochs,
            device,
        )
        write_progress(PROGRESS_LOADED, task=TaskKind.TRAINING, env=self.env)

    def end_epoch(
        self,
        board: ScalarWriter,
        epoch: int,
        loss: float,
        m_ap: float,
        per_class: Sequence[float | None],
        *,
        save: Callable[[str, float], object],
    ) -> bool:
        """Record epoch ``epoch`` (1-based): its mean ``loss`` and mAP (with the per-class APs,
        ``None`` for a class without ground truth); ``save(stage, m_ap)`` when the mAP beats every earlier
        epoch's, before the progress. True when it did."""
        board.add_scalar("loss", loss, epoch)
        board.add_scalar("mAP", m_ap, epoch)
        names = self.params.class_names
        aps = ", ".join(f"{n} {'-' if ap is None else f'{ap:.3f}'}" for n, ap in zip(names, per_class))
        logger.info("epoch %d/%d: loss %.4f, mAP@0.5 %.4f (%s)", epoch, self.params.epochs, loss, m_ap, aps)
        improved = m_ap > self.best_map
        if improved:
            self.best_map, self.best_stage = m_ap, f"epoch_{epoch}"
            save(self.best_stage, m_ap)
        progress = PROGRESS_LOADED + PROGRESS_EPOCHS * epoch / self.params.epochs
        write_progress(progress, task=TaskKind.TRAINING, env=self.env)
        return improved

    def finish(self) -> None:
        """Log the best stage, its mAP and the time since the start."""
        elapsed = time.monotonic() - self.started
        logger.info("best stage %s, mAP@0.5 %.4f, %.1f s", self.best_stage, self.best_map, elapsed)
