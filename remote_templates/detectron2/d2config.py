"""Edits of a detectron2 config as ``KEY value`` pairs for ``CfgNode.merge_from_list``: framework-free.

Key names are detectron2's (``detectron2/config/defaults.py``): ``DATASETS.TRAIN``,
``MODEL.RETINANET.NUM_CLASSES``, ``MODEL.ROI_HEADS.NUM_CLASSES``, ``SOLVER.*``, ``TEST.EVAL_PERIOD``,
``OUTPUT_DIR``. Both class counts are set: a config uses the one of its meta-architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

TRAIN_DATASET = "ymir_train"
VAL_DATASET = "ymir_val"


class TrainingSettings(NamedTuple):
    num_classes: int
    output_dir: str
    max_iter: int
    ims_per_batch: int
    base_lr: float
    checkpoint_period: int
    num_workers: int
    device: str
    weights: str  # '' = from scratch
    img_size: int = 0  # 0: the config's own INPUT sizes
    seed: int = 0


def checkpoint_period(max_iter: int, requested: int) -> int:
    """``requested`` iterations, at most ``max_iter`` (so there is at least one stage); 0 = 10 stages."""
    if requested <= 0:
        requested = max(1, max_iter // 10)
    return max(1, min(requested, max_iter))


def scaled_steps(steps: Sequence[int], old_max_iter: int, new_max_iter: int) -> tuple[int, ...]:
    """The learning-rate decay ``SOLVER.STEPS`` at the same fractions of the new ``MAX_ITER``
    (steps at or past the end dropped: detectron2 refuses them)."""
    if old_max_iter <= 0:
        return tuple(s for s in steps if s < new_max_iter)
    out = sorted({int(round(s * new_max_iter / old_max_iter)) for s in steps})
    return tuple(s for s in out if 0 < s < new_max_iter)


def training_opts(
    s: TrainingSettings, old_max_iter: int, old_steps: Sequence[int], old_warmup: int, old_norm: str = ""
) -> list[Any]:
    """The ``merge_from_list`` pairs that make a config train on the registered YMIR datasets.

    From scratch (no weights) a ResNet with ``FrozenBN`` (``old_norm``, the model zoo's setting for
    ImageNet-initialised backbones) has no normalisation at all, and its loss goes to NaN within a few
    iterations: it gets GroupNorm in the backbone and FPN and no frozen stages instead, as
    detectron2's own from-scratch configs (``configs/Misc/scratch_*_gn.yaml``) do."""
    period = checkpoint_period(s.max_iter, s.checkpoint_period)
    opts: list[Any] = [
        "DATASETS.TRAIN",
        (TRAIN_DATASET,),
        "DATASETS.TEST",
        (VAL_DATASET,),
        "MODEL.RETINANET.NUM_CLASSES",
        s.num_classes,
        "MODEL.ROI_HEADS.NUM_CLASSES",
        s.num_classes,
        "MODEL.WEIGHTS",
        s.weights,
        "MODEL.DEVICE",
        s.device,
        "SOLVER.IMS_PER_BATCH",
        s.ims_per_batch,
        "SOLVER.BASE_LR",
        s.base_lr,
        "SOLVER.MAX_ITER",
        s.max_iter,
        "SOLVER.STEPS",
        scaled_steps(old_steps, old_max_iter, s.max_iter),
        "SOLVER.WARMUP_ITERS",
        min(old_warmup, max(0, s.max_iter // 10)),
        "SOLVER.CHECKPOINT_PERIOD",
        period,
        "TEST.EVAL_PERIOD",
        period,
        "DATALOADER.NUM_WORKERS",
        s.num_workers,
        "OUTPUT_DIR",
        s.output_dir,
        "SEED",
        s.seed,
        # the stages' AP50 is COCO's, over each image's 100 best boxes whatever their score: with the
        # zoo's 0.05 cut a young model has no box and its AP is NaN (infer and mining set their own)
        "MODEL.RETINANET.SCORE_THRESH_TEST",
        0.0,
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
        0.0,
    ]
    if not s.weights and old_norm == "FrozenBN":
        opts += ["MODEL.RESNETS.NORM", "GN", "MODEL.FPN.NORM", "GN", "MODEL.BACKBONE.FREEZE_AT", 0]
    if s.img_size > 0:
        opts += [
            "INPUT.MIN_SIZE_TRAIN",
            (s.img_size,),
            "INPUT.MAX_SIZE_TRAIN",
            s.img_size,
            "INPUT.MIN_SIZE_TEST",
            s.img_size,
            "INPUT.MAX_SIZE_TEST",
            s.img_size,
        ]
    return opts


def ap50_of(results: Any) -> float:
    """AP50 of detectron2's COCOEvaluator results (``{'bbox': {'AP50': 61.2, ...}}``, percent) in 0..1;
    0 for none or NaN."""
    try:
        value = float(results["bbox"]["AP50"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    if value != value:
        return 0.0
    return min(1.0, max(0.0, value / 100.0))
