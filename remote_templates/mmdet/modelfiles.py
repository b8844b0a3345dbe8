"""Which model files to use and how a stage is named and recorded: framework-free.

YMIR hands a training task the files of a pretrained model in ``pretrained_model_params`` and a
mining or infer task those of one stage in ``model_params_path`` (absolute paths under
``/in/models``, or names relative to it). This template's stage is ``<stage>.pth`` (weights and
class names) plus ``<stage>.py`` (the mmdet config it was trained with).
The choice itself is ``live_code.sdk``'s (``find_model_files``); this module fixes the suffixes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from live_code import sdk

#: the file beside a stage's weights that says how to build the model
CONFIG_SUFFIX = ".py"
#: no usable model among the files the task names (reported as ReturnCode.MODEL_NOT_FOUND)
ModelNotFound = sdk.ModelNotFoundError
ModelFiles = sdk.ModelFiles
#: the checkpoint to start from: ``best*`` first, then the highest epoch or iteration number
pick_weights = sdk.pick_checkpoint
#: config.yaml's ``class_names``, else the model's own; as many as the model has classes
class_names_for = sdk.model_class_names


def existing_files(config: Mapping[str, Any], key: str, models_dir: str) -> list[str]:
    """The files named by ``config[key]`` that exist (a bare name is looked up in ``models_dir``)."""
    return sdk.model_paths(config, key, models_dir=models_dir)


def model_files(config: Mapping[str, Any], key: str, models_dir: str, *, need_config: bool) -> ModelFiles:
    """The ``.pth`` weights (and the ``CONFIG_SUFFIX`` config beside them) named by ``config[key]``."""
    return sdk.find_model_files(
        config, key, config_suffix=CONFIG_SUFFIX, need_config=need_config, models_dir=models_dir
    )


def stage_name(epoch: int) -> str:
    return f"epoch_{int(epoch)}"


def stage_dir(models_dir: str, stage: str, stage_dirs: bool) -> str:
    """``/out/models/<stage>`` from protocol 1.1.0 (``stage_dirs``), else ``/out/models``."""
    return os.path.join(models_dir, stage) if stage_dirs else models_dir


def find_config(name: str, repo_dir: str, package_configs_dir: str | None) -> str:
    """The mmdet config ``name``: a file of this repository (relative to its root), else one of
    the configs shipped inside the mmdet package (``mmdet/.mim/configs``)."""
    name = str(name or "").strip()
    if not name.endswith(".py"):
        raise sdk.ConfigValueError(f"config key 'config_file': {name!r} is not an mmdet config (.py)")
    for root in (repo_dir, package_configs_dir):
        if root and os.path.isfile(os.path.join(root, name)):
            return os.path.join(root, name)
    where = f"{repo_dir}" + (f" or {package_configs_dir}" if package_configs_dir else "")
    raise sdk.ConfigValueError(
        f"config key 'config_file': {name!r} is neither in {where}; use e.g. yolox/yolox_tiny_8xb8-300e_coco.py"
    )
