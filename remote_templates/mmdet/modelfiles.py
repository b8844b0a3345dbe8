"""How this template names its model stages and finds the mmdet config to train: framework-free.

A stage is ``<stage>.pth`` (weights and class names) plus ``<stage>.py`` (the mmdet config it was
trained with); which files of a task to use is the SDK's choice (``sdk.find_model_files``,
``sdk.pick_checkpoint``).
"""

from __future__ import annotations

import os

from live_code import sdk

#: the file beside a stage's weights that says how to build the model
CONFIG_SUFFIX = ".py"


def stage_name(epoch: int) -> str:
    return f"epoch_{int(epoch)}"


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
