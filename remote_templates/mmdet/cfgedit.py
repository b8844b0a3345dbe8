"""Edits of an mmdet 3.x config, done on the plain dict (``Config.to_dict()``), framework-free.

train.py loads the chosen config with mmengine, hands its dict to :func:`configure_training` and
builds the runner from the result. Key names are mmdet 3.3 / mmengine 0.10's (facts taken from
their config files: ``train_dataloader.dataset``, ``val_evaluator``, ``train_cfg.max_epochs``,
``param_scheduler``, ``custom_hooks``, ``visualizer.vis_backends``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, NamedTuple

#: dataset wrappers whose real dataset is under ``dataset`` (mmdet/mmengine 3.x names)
_WRAPPERS = ("MultiImageMixDataset", "RepeatDataset", "ClassBalancedDataset")
#: pipeline transforms whose output size follows ``img_size``: transform -> key
_SIZED = {"Resize": "scale", "Mosaic": "img_scale", "MixUp": "img_scale", "RandomResize": "scale"}
#: the scalar backend hooks.py registers into mmengine's VISBACKENDS
SCALAR_BACKEND = "LiveCodeScalarBackend"
#: the hook hooks.py registers into mmengine's HOOKS (progress + a model stage per evaluation)
STAGE_HOOK = "LiveCodeStageHook"


class TrainingSettings(NamedTuple):
    class_names: tuple[str, ...]
    train_json: str
    val_json: str
    work_dir: str
    tensorboard_dir: str
    max_epochs: int
    batch_size: int
    num_workers: int
    val_interval: int
    img_size: int = 0  # 0: the config's own sizes
    learning_rate: float = 0.0  # 0: the config's own
    load_from: str | None = None
    seed: int = 0


def set_num_classes(node: Any, count: int) -> int:
    """Set every ``num_classes`` key under ``node`` (heads, ROI heads, cascades) to ``count``; returns
    how many were set."""
    found = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "num_classes" and isinstance(value, int) and not isinstance(value, bool):
                node[key] = count
                found += 1
            else:
                found += set_num_classes(value, count)
    elif isinstance(node, list):
        for value in node:
            found += set_num_classes(value, count)
    return found


def innermost_dataset(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """The real dataset dicts inside wrappers (``dataset``) and concatenations (``datasets``)."""
    if isinstance(dataset.get("datasets"), list):
        return [d for sub in dataset["datasets"] for d in innermost_dataset(sub)]
    if dataset.get("type") in _WRAPPERS or isinstance(dataset.get("dataset"), dict):
        return innermost_dataset(dataset["dataset"])
    return [dataset]


def point_dataset(dataset: dict[str, Any], ann_file: str, class_names: Sequence[str], *, test_mode: bool) -> None:
    """Make the real datasets inside ``dataset`` read ``ann_file`` (COCO, absolute image paths)."""
    for inner in innermost_dataset(dataset):
        inner.update(
            type="CocoDataset",
            data_root="",
            ann_file=ann_file,
            data_prefix={"img": ""},
            metainfo={"classes": tuple(class_names)},
        )
        if test_mode:
            inner["test_mode"] = True
        else:  # keep images without boxes out of training only when the config asked to
            inner.setdefault("filter_cfg", {"filter_empty_gt": False, "min_size": 0})


def set_evaluators(cfg: dict[str, Any], ann_file: str) -> None:
    """COCO bbox mAP on ``ann_file`` for validation and test."""
    metric = {"type": "CocoMetric", "ann_file": ann_file, "metric": "bbox", "format_only": False}
    cfg["val_evaluator"] = dict(metric)
    cfg["test_evaluator"] = dict(metric)


def scale_schedule(schedulers: Any, old_epochs: int, new_epochs: int) -> list[dict[str, Any]]:
    """The ``param_scheduler`` list with epoch-based ``begin``/``end``/``T_max``/``milestones``
    scaled from ``old_epochs`` to ``new_epochs`` (at least one epoch each; iteration-based ones, and
    warm-ups shorter than an epoch, kept as they are; a phase squeezed to nothing dropped)."""
    items = schedulers if isinstance(schedulers, list) else [schedulers] if isinstance(schedulers, dict) else []
    if old_epochs <= 0 or old_epochs == new_epochs:
        return [copy.deepcopy(s) for s in items]
    ratio = new_epochs / float(old_epochs)
    out = []
    for item in items:
        s = copy.deepcopy(item)
        if s.get("by_epoch", True):
            for key in ("begin", "end", "T_max"):
                if isinstance(s.get(key), int) and not isinstance(s.get(key), bool):
                    s[key] = _scaled(s[key], ratio, new_epochs, keep_zero=key == "begin")
            if isinstance(s.get("milestones"), list):
                s["milestones"] = sorted({_scaled(m, ratio, new_epochs, keep_zero=False) for m in s["milestones"]})
            if isinstance(s.get("begin"), int) and isinstance(s.get("end"), int) and s["begin"] >= s["end"]:
                continue  # a phase squeezed to nothing (mmengine refuses end <= begin)
        out.append(s)
    return out


def _scaled(value: int, ratio: float, limit: int, *, keep_zero: bool) -> int:
    if value <= 0 and keep_zero:
        return 0
    if value > limit / ratio:  # e.g. end=300 of a 300-epoch schedule, or "until the end"
        return limit
    return max(1, min(limit, int(round(value * ratio))))


def set_input_size(cfg: dict[str, Any], size: int) -> int:
    """Square inputs of ``size`` px in every pipeline (Resize, Mosaic, MixUp, RandomResize, the
    RandomAffine border) and in YOLOX's batch-level random resize; returns how many were set."""
    found = 0
    for node in _walk(cfg):
        kind = node.get("type")
        key = _SIZED.get(str(kind))
        if key and key in node:
            node[key] = (size, size)
            found += 1
        elif kind == "RandomAffine" and "border" in node:
            node["border"] = (-size // 2, -size // 2)
            found += 1
        elif kind == "BatchSyncRandomResize":
            lo, hi = max(32, (size * 3 // 4) // 32 * 32), max(32, (size * 5 // 4 + 31) // 32 * 32)
            node["random_size_range"] = (lo, hi)
            found += 1
    return found


def _walk(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out.extend(_walk(value))
    elif isinstance(node, (list, tuple)):
        for value in node:
            out.extend(_walk(value))
    return out


def set_learning_rate(cfg: dict[str, Any], lr: float) -> None:
    """The optimizer's ``lr``, with absolute ``eta_min`` floors scaled by the same factor."""
    optimizer = cfg.get("optim_wrapper", {}).get("optimizer", {})
    old = optimizer.get("lr")
    optimizer["lr"] = lr
    if isinstance(old, (int, float)) and old > 0:
        for s in cfg.get("param_scheduler") or []:
            if isinstance(s, dict) and isinstance(s.get("eta_min"), (int, float)):
                s["eta_min"] = s["eta_min"] * lr / old


def scale_hooks(hooks: Any, old_epochs: int, new_epochs: int) -> list[dict[str, Any]]:
    """``custom_hooks`` with YOLOX's "last N epochs without mosaic" scaled like the schedule."""
    out = []
    for hook in hooks or []:
        h = copy.deepcopy(hook)
        if isinstance(h, dict) and isinstance(h.get("num_last_epochs"), int) and old_epochs > 0:
            h["num_last_epochs"] = min(new_epochs, int(round(h["num_last_epochs"] * new_epochs / old_epochs)))
        out.append(h)
    return out


def configure_training(source: dict[str, Any], s: TrainingSettings) -> dict[str, Any]:
    """A copy of the config ``source`` made to train on the task: returns the new dict.

    Sets the classes everywhere (``num_classes`` and the datasets' ``metainfo``), the COCO files,
    COCO evaluators, epochs (schedule and YOLOX hooks scaled), batch size and workers, the
    evaluation interval, the work dir, ``load_from``, the scalar backend writing TensorBoard files
    to ``tensorboard_dir``, the stage hook, and no checkpoints of mmengine's own (stages are saved
    by the stage hook).
    """
    cfg = copy.deepcopy(source)
    if not set_num_classes(cfg.get("model", {}), len(s.class_names)):
        raise ValueError("the config's model has no num_classes: is it a detection config?")
    train_dl, val_dl = cfg.get("train_dataloader"), cfg.get("val_dataloader")
    if not isinstance(train_dl, dict) or not isinstance(train_dl.get("dataset"), dict):
        raise ValueError("the config has no train_dataloader.dataset: is it an mmdet 3.x config?")
    if not isinstance(val_dl, dict) or not isinstance(val_dl.get("dataset"), dict):
        raise ValueError("the config has no val_dataloader.dataset: is it an mmdet 3.x config?")
    point_dataset(train_dl["dataset"], s.train_json, s.class_names, test_mode=False)
    point_dataset(val_dl["dataset"], s.val_json, s.class_names, test_mode=True)
    for dl, size in ((train_dl, s.batch_size), (val_dl, 1)):
        dl.update(batch_size=size, num_workers=s.num_workers, persistent_workers=s.num_workers > 0)
    cfg["test_dataloader"] = copy.deepcopy(val_dl)
    set_evaluators(cfg, s.val_json)

    train_cfg = cfg.setdefault("train_cfg", {})
    old_epochs = int(train_cfg.get("max_epochs") or 0)
    train_cfg.update(type="EpochBasedTrainLoop", max_epochs=s.max_epochs, val_interval=s.val_interval)
    train_cfg.pop("dynamic_intervals", None)
    train_cfg.pop("max_iters", None)
    cfg["param_scheduler"] = scale_schedule(cfg.get("param_scheduler"), old_epochs, s.max_epochs)
    cfg["custom_hooks"] = scale_hooks(cfg.get("custom_hooks"), old_epochs, s.max_epochs)
    # priority 45: before EMAHook (49) swaps the evaluated EMA weights back out
    cfg["custom_hooks"].append({"type": STAGE_HOOK, "priority": 45, "class_names": list(s.class_names)})
    if s.learning_rate > 0:
        set_learning_rate(cfg, s.learning_rate)
    if s.img_size > 0:
        set_input_size(cfg, s.img_size)
    cfg.pop("auto_scale_lr", None)

    hooks = cfg.setdefault("default_hooks", {})
    hooks["checkpoint"] = {"type": "CheckpointHook", "interval": -1, "save_last": False}
    if isinstance(hooks.get("logger"), dict):
        hooks["logger"]["interval"] = 10
    visualizer = cfg.setdefault("visualizer", {"type": "DetLocalVisualizer", "name": "visualizer"})
    visualizer["vis_backends"] = [{"type": SCALAR_BACKEND, "save_dir": s.tensorboard_dir}]
    cfg["vis_backends"] = visualizer["vis_backends"]
    cfg["work_dir"] = s.work_dir
    cfg["load_from"] = s.load_from
    cfg["resume"] = False
    cfg["randomness"] = {"seed": s.seed}
    return cfg


def metric_of(metrics: dict[str, Any]) -> float:
    """mAP@0.5 of mmdet's CocoMetric results (``coco/bbox_mAP_50``), else its mAP, else 0; COCO
    tools report -1 for "no ground truth", taken as 0."""
    for key in ("coco/bbox_mAP_50", "bbox_mAP_50", "coco/bbox_mAP", "bbox_mAP"):
        try:
            value = float(metrics[key])  # a float, or a numpy number
        except (KeyError, TypeError, ValueError):
            continue
        if value == value:  # not NaN
            return min(1.0, max(0.0, value))
    return 0.0
