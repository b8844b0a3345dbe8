"""How this template names its model stages: framework-free.

A stage is ``<stage>.pth`` (detectron2 checkpoint: ``model`` weights) plus ``<stage>.yaml`` (the
detectron2 config it was trained with, class names included); which files of a task to use is the
SDK's choice (``sdk.find_model_files``, ``sdk.pick_checkpoint``).
"""

from __future__ import annotations

import os

#: the file beside a stage's weights that says how to build the model
CONFIG_SUFFIX = ".yaml"


def config_beside(weights: str, files: list[str]) -> str | None:
    """The stage config among ``files`` that belongs to ``weights`` (``iter_20.pth`` -> ``iter_20.yaml``)."""
    wanted = os.path.splitext(weights)[0] + CONFIG_SUFFIX
    return wanted if wanted in files else None


def stage_name(iteration: int) -> str:
    """``iter_<n>``: detectron2 trains by iterations and checkpoints every ``checkpoint_period``."""
    return f"iter_{int(iteration)}"
