"""Training: the task's data as COCO files, the chosen mmdet config edited for it, mmengine's runner.

Stages, progress and TensorBoard scalars come from hooks.py (registered in the config by cfgedit).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import cfgedit
import common
import modelfiles
import yaml
from PIL import Image

from live_code import sdk

logger = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))


def work_dir(env: sdk.Env) -> str:
    """Where the COCO files and mmengine's logs go: ``/out/mmdet-work`` (never ``/in``)."""
    return os.path.join(env.output.root_dir, "mmdet-work")


def package_configs_dir() -> str | None:
    import mmdet

    path = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs")
    return path if os.path.isdir(path) else None


def read_cfg_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg_options``: a YAML mapping of mmengine dotted keys (``'{optim_wrapper.optimizer.lr: 0.002}'``)."""
    text = str(config.get("cfg_options") or "").strip()
    if not text:
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise sdk.ConfigValueError(f"config key 'cfg_options': not YAML: {e}") from None
    if not isinstance(value, dict):
        raise sdk.ConfigValueError(f"config key 'cfg_options': {text!r} is not a mapping of config keys to values")
    return value


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    import hooks
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.runner import Runner

    register_all_modules(init_default_scope=True)
    class_names = tuple(sdk.training_class_names(config))
    epochs = sdk.get_int(config, "max_epochs", 100)
    batch_size = sdk.get_int(config, "batch_size", 16)
    if epochs < 1 or batch_size < 1:
        raise sdk.ConfigValueError(f"max_epochs ({epochs}) and batch_size ({batch_size}) must be positive")
    work = work_dir(env)
    os.makedirs(work, exist_ok=True)
    train_json, val_json = os.path.join(work, "train.json"), os.path.join(work, "val.json")
    coco = {"class_names": class_names, "env": env, "size_of": sdk.image_size_with(_pillow_size)}
    n_train, b_train = sdk.write_coco(sdk.Split.TRAINING, train_json, **coco)
    n_val, b_val = sdk.write_coco(sdk.Split.VALIDATION, val_json, **coco)
    sdk.require_images(sdk.Split.TRAINING, n_train, env=env)
    sdk.require_images(sdk.Split.VALIDATION, n_val, env=env)
    logger.info(
        "COCO files: %d training images (%d boxes), %d validation images (%d boxes)", n_train, b_train, n_val, b_val
    )
    sdk.write_progress(0.02, task=sdk.TaskKind.TRAINING)

    pretrained = sdk.pick_checkpoint(sdk.model_paths(config, "pretrained_model_params", env=env))
    if pretrained:
        logger.info("finetuning from %s", pretrained)
    source = modelfiles.find_config(str(config.get("config_file") or ""), HERE, package_configs_dir())
    settings = cfgedit.TrainingSettings(
        class_names=class_names,
        train_json=train_json,
        val_json=val_json,
        work_dir=work,
        tensorboard_dir=env.output.tensorboard_dir,
        max_epochs=epochs,
        batch_size=batch_size,
        num_workers=sdk.get_int(config, "num_workers", 2),
        val_interval=max(1, sdk.get_int(config, "val_interval", 1)),
        img_size=sdk.get_int(config, "img_size", 0),
        learning_rate=sdk.get_float(config, "learning_rate", 0.0),
        load_from=pretrained,
        seed=sdk.get_int(config, "seed", 0),
    )
    try:
        edited = cfgedit.configure_training(Config.fromfile(source).to_dict(), settings)
    except ValueError as e:
        raise sdk.ConfigValueError(f"config_file {source}: {e}") from None
    cfg = Config(edited, filename=source)
    options = read_cfg_options(config)
    if options:
        cfg.merge_from_dict(options)
    logger.info("training %s for %d epochs on %s", source, epochs, common.pick_device(config))
    runner = Runner.from_cfg(cfg)
    runner.train()
    stage_hook = next((h for h in runner.hooks if isinstance(h, hooks.LiveCodeStageHook)), None)
    if stage_hook is None or not stage_hook.stages:
        raise RuntimeError("training ended without an evaluation, so without a model stage")
    best = max(reversed(stage_hook.stages), key=lambda s: s[1])  # ties: the newer, as result.yaml
    logger.info("best stage %s, mAP@0.5 %.4f (no ONNX export: mmdet 3.x exports through mmdeploy)", *best)


def _pillow_size(path: str) -> tuple[int, int]:
    """Any format Pillow reads (the SDK reads PNG, JPEG, BMP and GIF headers itself)."""
    with Image.open(path) as img:
        return img.size
