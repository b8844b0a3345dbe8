"""Which model files to use and how a stage is named and recorded: framework-free.

YMIR hands a training task the files of a pretrained model in ``pretrained_model_params`` and a
mining or infer task those of one stage in ``model_params_path`` (absolute paths under
``/in/models``, or names relative to it). This template's stage is ``<stage>.pth`` (detectron2 checkpoint:
``model`` weights) plus ``<stage>.yaml`` (the detectron2 config it was trained with, class names included).
The choice itself is ``live_code.sdk``'s (``find_model_files``); this module fixes the suffixes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from live_code import sdk

#: the file beside a stage's weights that says how to build the model
CONFIG_SUFFIX = ".yaml"
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


def config_beside(weights: str, files: list[str]) -> str | None:
    """The stage config among ``files`` that belongs to ``weights`` (``iter_20.pth`` -> ``iter_20.yaml``)."""
    wanted = os.path.splitext(weights)[0] + CONFIG_SUFFIX
    return wanted if wanted in files else None


def stage_name(iteration: int) -> str:
    """``iter_<n>``: detectron2 trains by iterations and checkpoints every ``checkpoint_period``."""
    return f"iter_{int(iteration)}"


def stage_dir(models_dir: str, stage: str, stage_dirs: bool) -> str:
    """``/out/models/<stage>`` from protocol 1.1.0 (``stage_dirs``), else ``/out/models``."""
    return os.path.join(models_dir, stage) if stage_dirs else models_dir
