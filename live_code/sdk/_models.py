"""The model files YMIR hands a task: which of them exist, which checkpoint to use, the config beside it.

A training task gets the files of a pretrained model in ``pretrained_model_params``, a mining or
infer task those of one stage in ``model_params_path`` (contract: absolute paths under
``/in/models``, or names relative to it). A template's stage is a checkpoint (``<stage>.pth``)
with, for some frameworks, the config it was trained with beside it (``<stage>.py``, ``.yaml``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from live_code import contract
from live_code.sdk._config import get_list
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ConfigValueError, ModelNotFoundError

_NUMBER_RE = re.compile(r"(?:epoch|iter|model)_(\d+)")


class ModelFiles(NamedTuple):
    """A stage's checkpoint and the config file beside it (None when it has none)."""

    weights: str
    config: str | None


def model_paths(
    config: Mapping[str, Any], key: str, *, models_dir: str | None = None, env: Env | None = None
) -> list[str]:
    """The files named by ``config[key]`` that exist, in order; a bare name is looked up in
    ``models_dir`` (default: env.yaml's ``input.models_dir``)."""
    if models_dir is None:
        models_dir = (env or read_env()).input.models_dir
    found = []
    for entry in get_list(config, key, item_type=str):
        path = entry if os.path.isabs(entry) else os.path.join(models_dir, entry)
        if os.path.isfile(path):
            found.append(path)
    return found


def pick_checkpoint(paths: Sequence[str], suffix: str = ".pth") -> str | None:
    """The checkpoint to use among ``paths``: a ``best*`` file first, then the highest
    ``epoch_<n>``/``iter_<n>``/``model_<n>`` number, then the last by name; None when no path ends
    with ``suffix``."""
    candidates = [p for p in paths if p.endswith(suffix)]
    if not candidates:
        return None

    def rank(path: str) -> tuple[int, int, str]:
        name = os.path.basename(path)
        match = _NUMBER_RE.search(name)
        return (1 if name.startswith("best") else 0, int(match.group(1)) if match else -1, name)

    return max(candidates, key=rank)


def find_model_files(
    config: Mapping[str, Any],
    key: str,
    *,
    weights_suffix: str = ".pth",
    config_suffix: str | None = None,
    need_config: bool = False,
    models_dir: str | None = None,
    env: Env | None = None,
) -> ModelFiles:
    """The checkpoint named by ``config[key]`` (see :func:`pick_checkpoint`) and the
    ``config_suffix`` file beside it (``<stem><config_suffix>`` first, else the first one named).

    ModelNotFoundError when no checkpoint exists, or no config when ``need_config``.
    """
    paths = model_paths(config, key, models_dir=models_dir, env=env)
    weights = pick_checkpoint(paths, weights_suffix)
    if weights is None:
        named = get_list(config, key, item_type=str)
        msg = f"no {weights_suffix} file among {key} {named!r}; choose a model trained with this template"
        raise ModelNotFoundError(msg)
    if not config_suffix:
        return ModelFiles(weights, None)
    configs = [p for p in paths if p.endswith(config_suffix)]
    own = f"{os.path.splitext(weights)[0]}{config_suffix}"
    cfg = own if own in configs else (configs[0] if configs else None)
    if need_config and cfg is None:
        msg = (
            f"no {config_suffix} config beside {weights} in {key}: a model of this template has "
            f"<stage>{weights_suffix} and <stage>{config_suffix}"
        )
        raise ModelNotFoundError(msg)
    return ModelFiles(weights, cfg)


def stage_dir(stage: str, *, env: Env | None = None, create: bool = True) -> str:
    """Where a stage's files go: ``<output models_dir>/<stage>`` from protocol 1.1.0 (YMIR 2.x),
    else the models dir itself (older versions read only flat files); made unless ``create`` is false."""
    env = env or read_env()
    models = env.output.models_dir
    path = os.path.join(models, stage) if contract.allows_stage_dirs(env.protocol_version) else models
    if create:
        os.makedirs(path, exist_ok=True)
    return path


def model_class_names(config: Mapping[str, Any], model_classes: Sequence[str]) -> list[str]:
    """config.yaml's ``class_names`` (the platform sends the model's), else the model's own;
    ConfigValueError when they are not as many as the model has classes."""
    names = get_list(config, "class_names", item_type=str) or list(model_classes)
    if model_classes and len(names) != len(model_classes):
        msg = f"class_names {names} do not fit the model's {len(model_classes)} classes {list(model_classes)}"
        raise ConfigValueError(msg)
    return names
