"""Which model files to use and how a stage is named and recorded: framework-free.

YMIR hands a training task the files of a pretrained model in ``pretrained_model_params`` and a
mining or infer task those of one stage in ``model_params_path`` (absolute paths under
``/in/models``, or names relative to it). This template's stage is ``<stage>.pth`` (weights and
class names) plus ``<stage>.py`` (the mmdet config it was trained with).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from live_code import sdk

_EPOCH_RE = re.compile(r"(?:epoch|iter|model)_(\d+)")
#: the file beside a stage's weights that says how to build the model
CONFIG_SUFFIX = ".py"


class ModelNotFound(Exception):
    """No usable model among the files the task names (reported as ReturnCode.MODEL_NOT_FOUND)."""


class ModelFiles(NamedTuple):
    weights: str
    config: str | None


def existing_files(config: Mapping[str, Any], key: str, models_dir: str) -> list[str]:
    """The files named by ``config[key]`` that exist (a bare name is looked up in ``models_dir``)."""
    found = []
    for entry in sdk.get_list(config, key, item_type=str):
        path = entry if os.path.isabs(entry) else os.path.join(models_dir, entry)
        if os.path.isfile(path):
            found.append(path)
    return found


def pick_weights(paths: Sequence[str], suffix: str = ".pth") -> str | None:
    """The checkpoint to start from among ``paths``: ``best*`` first, then the highest epoch or
    iteration number, then the newest by name; None when none has ``suffix``."""
    candidates = [p for p in paths if p.endswith(suffix)]
    if not candidates:
        return None

    def rank(path: str) -> tuple[int, int, str]:
        name = os.path.basename(path)
        match = _EPOCH_RE.search(name)
        return (1 if name.startswith("best") else 0, int(match.group(1)) if match else -1, name)

    return max(candidates, key=rank)


def model_files(config: Mapping[str, Any], key: str, models_dir: str, *, need_config: bool,
                config_suffix: str = CONFIG_SUFFIX) -> ModelFiles:
    """The weights (and the config beside them, ``<stem><config_suffix>`` first) named by ``config[key]``."""
    paths = existing_files(config, key, models_dir)
    weights = pick_weights(paths)
    if weights is None:
        named = sdk.get_list(config, key, item_type=str)
        raise ModelNotFound(f"no .pth file among {key} {named!r}; choose a model trained with this template")
    stem = os.path.splitext(weights)[0]
    configs = [p for p in paths if p.endswith(config_suffix)]
    own = f"{stem}{config_suffix}"
    cfg = own if own in configs else (configs[0] if configs else None)
    if need_config and cfg is None:
        raise ModelNotFound(f"no {config_suffix} config beside {weights} in {key}: a model of this template has "
                            f"<stage>.pth and <stage>{config_suffix}")
    return ModelFiles(weights, cfg)


def stage_name(epoch: int) -> str:
    return f"epoch_{int(epoch)}"


def stage_dir(models_dir: str, stage: str, stage_dirs: bool) -> str:
    """``/out/models/<stage>`` from protocol 1.1.0 (``stage_dirs``), else ``/out/models``."""
    return os.path.join(models_dir, stage) if stage_dirs else models_dir


def class_names_for(config: Mapping[str, Any], model_classes: Sequence[str]) -> list[str]:
    """config.yaml's ``class_names`` (the platform sends the model's), else the model's own; they
    must be as many as the model has classes."""
    names = sdk.get_list(config, "class_names", item_type=str) or list(model_classes)
    if model_classes and len(names) != len(model_classes):
        raise sdk.ConfigValueError(f"class_names {names} do not fit the model's {len(model_classes)} classes "
                                   f"{list(model_classes)}")
    return names


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
    raise sdk.ConfigValueError(f"config key 'config_file': {name!r} is neither in {where}; use e.g. "
                               "yolox/yolox_tiny_8xb8-300e_coco.py")
