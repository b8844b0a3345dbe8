"""Training: the task's data registered as COCO datasets (files under /out), the chosen detectron2
config edited for it, ``DefaultTrainer`` with a stage per periodic checkpoint (AP50 of the
COCOEvaluator on the validation split) and TensorBoard scalars through ``live_code.sdk``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import d2config
import modelfiles
import torch
from detectron2 import model_zoo
from detectron2.config import get_cfg
from detectron2.data.datasets import register_coco_instances
from detectron2.engine import DefaultTrainer, HookBase
from detectron2.evaluation import COCOEvaluator
from detectron2.utils.events import CommonMetricPrinter, EventWriter, get_event_storage
from PIL import Image

from live_code import sdk

logger = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))


def work_dir(env: sdk.Env) -> str:
    """Where the COCO files, evaluator caches and detectron2's own checkpoints go (never ``/in``)."""
    return os.path.join(env.output.root_dir, "detectron2-work")


def config_path(name: str) -> str:
    """A config of this repository, else one of detectron2's model zoo (``COCO-Detection/...``)."""
    if os.path.isfile(os.path.join(HERE, name)):
        return os.path.join(HERE, name)
    try:
        return model_zoo.get_config_file(name)
    except RuntimeError as e:
        raise sdk.ConfigValueError(f"config key 'config_file': {name!r}: {e}") from None


class ScalarWriter(EventWriter):
    """detectron2 event writer: the storage's latest scalars as TensorBoard files via the SDK."""

    def __init__(self, log_dir: str) -> None:
        self._writer = sdk.ScalarWriter(log_dir)
        self._last = -1

    def write(self) -> None:
        storage = get_event_storage()
        newest = self._last
        for name, (value, it) in storage.latest_with_smoothing_hint(20).items():
            if it > self._last and isinstance(value, (int, float)) and value == value:
                self._writer.add_scalar(name, float(value), int(it))
                newest = max(newest, it)
        self._last = newest

    def close(self) -> None:
        self._writer.close()


class StageHook(HookBase):
    """After each periodic evaluation (EvalHook runs before, in the same step): a model stage with
    the checkpoint, the config and AP50; and the progress. The last iteration's evaluation runs in
    EvalHook's ``after_train``, so its stage is written in this hook's (registered later)."""

    def __init__(self, env: sdk.Env, cfg: Any, class_names: list[str]) -> None:
        self.env, self.cfg, self.class_names = env, cfg, class_names
        self.stages: list[tuple[str, float]] = []

    def after_step(self) -> None:
        done = self.trainer.iter + 1
        if done % self.cfg.TEST.EVAL_PERIOD == 0 and done != self.cfg.SOLVER.MAX_ITER:
            self._stage(done)

    def after_train(self) -> None:
        if self.trainer.iter >= self.cfg.SOLVER.MAX_ITER:  # detectron2's sign of a training that finished
            self._stage(self.cfg.SOLVER.MAX_ITER)

    def _stage(self, done: int) -> None:
        last = self.cfg.SOLVER.MAX_ITER
        latest = self.trainer.storage.latest()
        ap50 = d2config.ap50_of({"bbox": {"AP50": latest["bbox/AP50"][0]}}) if "bbox/AP50" in latest else 0.0
        stage = modelfiles.stage_name(done)
        directory = sdk.stage_dir(stage, env=self.env)
        model = self.trainer.model
        model = model.module if hasattr(model, "module") else model
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(
            {"model": state, "class_names": list(self.class_names), "iteration": done, "AP50": ap50},
            os.path.join(directory, f"{stage}.pth"),
        )
        with open(os.path.join(directory, f"{stage}.yaml"), "w", encoding="utf-8") as f:
            f.write(self.cfg.dump())
        sdk.write_model_stage(stage, [f"{stage}.pth", f"{stage}.yaml"], ap50, env=self.env)
        self.stages.append((stage, ap50))
        sdk.write_progress(0.05 + 0.9 * done / last, task=sdk.TaskKind.TRAINING, env=self.env)
        logger.info("stage %s: AP50 %.4f", stage, ap50)


class Trainer(DefaultTrainer):
    @classmethod
    def build_evaluator(cls, cfg: Any, dataset_name: str) -> COCOEvaluator:
        return COCOEvaluator(dataset_name, output_dir=os.path.join(cfg.OUTPUT_DIR, "eval"))

    def build_writers(self) -> list[EventWriter]:
        env = sdk.read_env()
        return [CommonMetricPrinter(self.cfg.SOLVER.MAX_ITER), ScalarWriter(env.output.tensorboard_dir)]


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    class_names = sdk.training_class_names(config)
    work = work_dir(env)
    os.makedirs(work, exist_ok=True)
    jsons = {}
    for split, name in ((sdk.Split.TRAINING, d2config.TRAIN_DATASET), (sdk.Split.VALIDATION, d2config.VAL_DATASET)):
        path = os.path.join(work, f"{name}.json")
        images, _ = sdk.write_coco(
            split, path, class_names=class_names, env=env, size_of=sdk.image_size_with(_pillow_size)
        )
        sdk.require_images(split, images, env=env)
        register_coco_instances(name, {}, path, work)
        jsons[name] = path
    sdk.write_progress(0.02, task=sdk.TaskKind.TRAINING)

    given = sdk.model_paths(config, "pretrained_model_params", env=env)
    pretrained = sdk.pick_checkpoint(given)
    stage_config = modelfiles.config_beside(pretrained, given) if pretrained else None
    cfg = get_cfg()
    # finetuning a stage of this template: its own config says how its model is built (GroupNorm
    # when it was trained from scratch); else the config_file hyper-parameter
    cfg.merge_from_file(stage_config or config_path(str(config.get("config_file") or "")))
    device = "cuda" if sdk.gpu_ids(config) and torch.cuda.is_available() else "cpu"
    max_iter = sdk.get_int(config, "max_iter", 90000)
    settings = d2config.TrainingSettings(
        num_classes=len(class_names),
        output_dir=work,
        max_iter=max_iter,
        ims_per_batch=sdk.get_int(config, "batch_size", 2),
        base_lr=sdk.get_float(config, "learning_rate", 0.001),
        checkpoint_period=sdk.get_int(config, "checkpoint_period", 0),
        num_workers=sdk.get_int(config, "num_workers", 2),
        device=device,
        weights=pretrained or str(config.get("backbone_weights") or ""),
        img_size=sdk.get_int(config, "img_size", 0),
        seed=sdk.get_int(config, "seed", 0),
    )
    cfg.merge_from_list(
        d2config.training_opts(
            settings, cfg.SOLVER.MAX_ITER, list(cfg.SOLVER.STEPS), cfg.SOLVER.WARMUP_ITERS, cfg.MODEL.RESNETS.NORM
        )
    )
    cfg.freeze()
    logger.info(
        "training %s for %d iterations on %s%s",
        stage_config or config.get("config_file"),
        max_iter,
        device,
        f", from {settings.weights}" if settings.weights else " from scratch",
    )
    trainer = Trainer(cfg)
    hook = StageHook(env, cfg, list(class_names))
    trainer.register_hooks([hook])
    trainer.resume_or_load(resume=False)
    trainer.train()
    if not hook.stages:
        raise RuntimeError("training ended without a checkpoint, so without a model stage")
    logger.info("best stage %s, AP50 %.4f (no ONNX: see README.md)", *max(hook.stages, key=lambda s: s[1]))


def _pillow_size(path: str) -> tuple[int, int]:
    """Any format Pillow reads (the SDK reads PNG, JPEG, BMP and GIF headers itself)."""
    with Image.open(path) as img:
        return img.size
