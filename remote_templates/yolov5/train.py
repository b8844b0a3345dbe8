"""Training and finetuning with ultralytics: stages per new best and per save period, progress and
TensorBoard scalars per epoch, the best stage exported as ONNX at the end."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import dataset
import dist
import export
import weights
import yaml

from live_code import sdk

logger = logging.getLogger(__name__)

MODELS = ("yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x")
STRIDE = 32  # the largest stride of the v5 heads: input sizes are multiples of it
BEST_STAGE = "best"
#: the metric recorded as a stage's mAP (YMIR's main metric): ultralytics' box mAP at IoU 0.5
MAP_KEY = "metrics/mAP50(B)"
#: arguments this template sets itself; ultralytics_args may not override them
OWNED_ARGS = frozenset(
    {
        "data",
        "epochs",
        "imgsz",
        "batch",
        "workers",
        "device",
        "project",
        "name",
        "exist_ok",
        "save",
        "save_period",
        "plots",
        "val",
        "optimizer",
        "lr0",
        "patience",
        "seed",
        "amp",
        "pretrained",
        "resume",
        "model",
        "task",
        "mode",
    }
)
# share of the progress bar before the first epoch (conversion, model set-up) and after the last (export)
_BEFORE, _AFTER = 0.03, 0.05


class Settings(NamedTuple):
    model: str
    epochs: int
    batch_size_per_gpu: int
    num_workers_per_gpu: int
    img_size: int
    learning_rate: float
    optimizer: str
    patience: int
    save_period: int
    seed: int
    amp: bool
    export_onnx: bool
    opset: int
    extra: dict[str, Any]


def read_img_size(config: Mapping[str, Any], default: int) -> int:
    return sdk.input_size(config, default, STRIDE)


def read_extra_args(config: Mapping[str, Any]) -> dict[str, Any]:
    """``ultralytics_args``: a YAML mapping of more ultralytics train arguments (hsv_h, mosaic, ...)."""
    text = config.get("ultralytics_args")
    if text in (None, ""):
        return {}
    try:
        extra = yaml.safe_load(text) if isinstance(text, str) else text
    except yaml.YAMLError as e:
        raise sdk.ConfigValueError(f"config key 'ultralytics_args' is not YAML: {e}") from None
    if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
        raise sdk.ConfigValueError(
            f"config key 'ultralytics_args' must be a mapping such as '{{mosaic: 0.5}}', got {text!r}"
        )
    owned = sorted(set(extra) & OWNED_ARGS)
    if owned:
        raise sdk.ConfigValueError(
            f"config key 'ultralytics_args' sets {', '.join(owned)}, which this template "
            "sets from its own hyper-parameters; use those instead (see README.md)"
        )
    from ultralytics.cfg import DEFAULT_CFG_DICT

    unknown = sorted(k for k in extra if k not in DEFAULT_CFG_DICT)
    if unknown:
        raise sdk.ConfigValueError(
            f"config key 'ultralytics_args': {', '.join(unknown)} is not an ultralytics "
            "argument (see https://docs.ultralytics.com/usage/cfg/)"
        )
    return extra


def read_settings(config: Mapping[str, Any]) -> Settings:
    model = str(config.get("model") or "yolov5s").strip()
    if model not in MODELS:
        raise sdk.ConfigValueError(f"config key 'model': {model!r} is not one of {', '.join(MODELS)}")
    settings = Settings(
        model=model,
        epochs=sdk.get_int(config, "epochs", 100),
        batch_size_per_gpu=sdk.get_int(config, "batch_size_per_gpu", 16),
        num_workers_per_gpu=sdk.get_int(config, "num_workers_per_gpu", 4),
        img_size=read_img_size(config, 640),
        learning_rate=sdk.get_float(config, "learning_rate", 0.01),
        optimizer=str(config.get("optimizer") or "SGD"),
        patience=sdk.get_int(config, "patience", 100),
        save_period=sdk.get_int(config, "save_period", 10),
        seed=sdk.get_int(config, "seed", 0),
        amp=sdk.get_bool(config, "amp", True),
        export_onnx=sdk.get_bool(config, "export_onnx", True),
        opset=sdk.get_int(config, "opset", 12),
        extra=read_extra_args(config),
    )
    if settings.epochs < 1 or settings.batch_size_per_gpu < 1 or settings.num_workers_per_gpu < 0:
        raise sdk.ConfigValueError(
            f"epochs ({settings.epochs}) and batch_size_per_gpu ({settings.batch_size_per_gpu}) "
            f"must be >= 1, num_workers_per_gpu ({settings.num_workers_per_gpu}) >= 0"
        )
    if not (settings.learning_rate > 0 and math.isfinite(settings.learning_rate)):
        raise sdk.ConfigValueError(f"config key 'learning_rate': {settings.learning_rate} must be positive")
    if settings.opset < 9:
        raise sdk.ConfigValueError(f"config key 'opset': {settings.opset}; ultralytics exports ONNX opset 9 and newer")
    return settings


class _Epochs:
    """ultralytics' ``on_model_save`` callback (after each epoch's validation and checkpoint, on the
    process that saves): stages, progress, TensorBoard scalars."""

    def __init__(self, env: sdk.Env, settings: Settings, board: sdk.ScalarWriter) -> None:
        self.env, self.settings, self.board = env, settings, board
        self.best_map = -1.0

    def __call__(self, trainer: Any) -> None:
        epoch = int(trainer.epoch) + 1
        metrics = {k: float(v) for k, v in (trainer.metrics or {}).items()}
        m_ap = min(1.0, max(0.0, metrics.get(MAP_KEY, 0.0) if math.isfinite(metrics.get(MAP_KEY, 0.0)) else 0.0))
        scalars = {**trainer.label_loss_items(trainer.tloss, prefix="train"), **metrics, **(trainer.lr or {})}
        for tag, value in scalars.items():
            if math.isfinite(float(value)):
                self.board.add_scalar(tag, float(value), epoch)
        self.board.flush()
        saved = []
        if m_ap >= self.best_map:  # ties: the newer epoch, as ultralytics' best.pt and the SDK's best stage
            self.best_map = m_ap
            weights.save_stage(self.env, BEST_STAGE, str(trainer.last), m_ap)
            saved.append(BEST_STAGE)
        period = self.settings.save_period
        if period > 0 and epoch % period == 0:
            weights.save_stage(self.env, f"epoch_{epoch}", str(trainer.last), m_ap)
            saved.append(f"epoch_{epoch}")
        total = max(int(trainer.epochs), 1)
        sdk.write_progress(
            _BEFORE + (1.0 - _BEFORE - _AFTER) * min(epoch, total) / total, task=sdk.TaskKind.TRAINING, env=self.env
        )
        logger.info(
            "epoch %d/%d: mAP50 %.4f, mAP50-95 %.4f%s",
            epoch,
            total,
            m_ap,
            metrics.get("metrics/mAP50-95(B)", 0.0),
            f"; stages {', '.join(saved)}" if saved else "",
        )


def _device(config: Mapping[str, Any], ranks: dist.Ranks) -> str:
    """ultralytics' device argument: ``cpu``, one GPU, or all of them (one per torchrun process)."""
    ids = dist.check_gpus(config)
    if not ids:
        return "cpu"
    if ranks.world > 1:
        if ranks.world != len(ids):
            raise sdk.ConfigValueError(
                f"gpu_id {','.join(ids)!r} names {len(ids)} GPUs but {ranks.world} processes "
                "were started; set gpu_count to the number of GPUs"
            )
        return ",".join(ids)
    if len(ids) > 1:
        logger.warning(
            "gpu_id %s names %d GPUs but one process runs (gpu_count 1): training on GPU %s only",
            ",".join(ids),
            len(ids),
            ids[0],
        )
    return ids[0]


def run(env: sdk.Env, config: Mapping[str, Any], ranks: dist.Ranks, work: str) -> None:
    class_names = sdk.get_list(config, "class_names", item_type=str)
    if not class_names:
        raise sdk.ConfigValueError("config.yaml has no class_names: nothing to train")
    settings = read_settings(config)
    device = _device(config, ranks)
    started = time.monotonic()
    if ranks.main:
        sdk.write_progress(0.0, task=sdk.TaskKind.TRAINING, env=env)
    # every process converts into its own folder: no process waits for another before the trainer starts
    data = dataset.convert(class_names, os.path.join(work, "dataset" if ranks.main else f"dataset-rank{ranks.rank}"))
    cache_dir = str(config.get("weights_cache_dir") or "").strip() or os.path.join(work, "weights-cache")
    # every process resolves the initial weights alike (a URL is fetched into a shared cache, atomically):
    # DDP needs one architecture in all of them, and broadcasts rank 0's weights
    initial = weights.initial_weights(env, config, cache_dir)

    from ultralytics import YOLO

    if initial.path:
        logger.info(
            "finetuning from %s (%s); the architecture is the checkpoint's, config key 'model' (%s) is not used",
            initial.path,
            initial.source,
            settings.model,
        )
        model = YOLO(initial.path, task="detect")
    else:
        logger.info("no initial weights: training %s from scratch (random initialisation)", settings.model)
        model = YOLO(f"{settings.model}.yaml", task="detect")

    args = {
        **settings.extra,
        "data": data.data_yaml,
        "epochs": settings.epochs,
        "imgsz": settings.img_size,
        "batch": settings.batch_size_per_gpu * max(1, ranks.world),
        "workers": settings.num_workers_per_gpu,
        "device": device,
        "project": os.path.join(work, "runs"),
        "name": "train",
        "exist_ok": True,
        "save": True,
        "save_period": -1,
        "plots": False,
        "val": True,
        "optimizer": settings.optimizer,
        "lr0": settings.learning_rate,
        "patience": settings.patience,
        "seed": settings.seed,
        "amp": settings.amp,
        # with a checkpoint model, pretrained=False would drop its weights (ultralytics Model.train)
        "pretrained": bool(initial.path),
        "verbose": True,
    }
    if not ranks.main:  # a DDP worker: rank 0 saves, reports and exports
        model.train(**args)
        return
    logger.info("ultralytics train arguments: %s", {k: v for k, v in args.items() if k != "data"})
    with sdk.ScalarWriter(env.output.tensorboard_dir) as board:
        epochs = _Epochs(env, settings, board)
        model.add_callback("on_model_save", epochs)
        model.train(**args)
    if epochs.best_map < 0:
        raise sdk.ModelNotFoundError("training ended without a single saved epoch")
    best_dir = sdk.stage_dir(BEST_STAGE, env=env)
    best_pt = os.path.join(best_dir, f"{BEST_STAGE}.pt")
    if settings.export_onnx:
        sample = next(sdk.iter_items(sdk.Split.VALIDATION, class_names=class_names)).image_path
        onnx_path = export.export_onnx(best_pt, settings.img_size, settings.opset, sample)
        sdk.write_model_stage(
            BEST_STAGE, [os.path.basename(best_pt), os.path.basename(onnx_path)], epochs.best_map, env=env
        )
    logger.info("best stage %r: mAP50 %.4f; %.1f s", BEST_STAGE, epochs.best_map, time.monotonic() - started)
