"""What this template adds to mmengine: a TensorBoard backend over ``live_code.sdk.ScalarWriter``
(no tensorboard package needed) and the hook that reports progress and saves a model stage after
every evaluation. Importing this module registers both (the names cfgedit.py puts in the config).
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from typing import Any

import cfgedit
import modelfiles
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, VISBACKENDS
from mmengine.visualization.vis_backend import BaseVisBackend, force_init_env

from live_code import sdk

logger = logging.getLogger(__name__)


@VISBACKENDS.register_module(name=cfgedit.SCALAR_BACKEND)
class LiveCodeScalarBackend(BaseVisBackend):
    """mmengine visualiser backend writing scalars as TensorBoard event files in ``save_dir``."""

    def __init__(self, save_dir: str) -> None:
        super().__init__(save_dir)
        self._writer: sdk.ScalarWriter | None = None

    @property  # type: ignore[misc]  # mmengine's force_init_env under a property, as its own hooks do
    @force_init_env
    def experiment(self) -> sdk.ScalarWriter | None:
        return self._writer

    def _init_env(self) -> None:
        self._writer = sdk.ScalarWriter(self._save_dir)

    @force_init_env
    def add_scalar(self, name: str, value: Any, step: int = 0, **kwargs: Any) -> None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return
        if math.isfinite(number) and self._writer is not None:
            self._writer.add_scalar(name, number, max(0, int(step)))

    @force_init_env
    def add_scalars(
        self, scalar_dict: dict[str, Any], step: int = 0, file_path: str | None = None, **kwargs: Any
    ) -> None:
        for name, value in scalar_dict.items():
            self.add_scalar(name, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@HOOKS.register_module(name=cfgedit.STAGE_HOOK)
class LiveCodeStageHook(Hook):
    """After each evaluation: a model stage ``epoch_<n>`` (``.pth`` with plain tensors and the class
    names, loadable with ``torch.load(weights_only=True)``, plus the ``.py`` config) recorded with
    its mAP@0.5, the scalar ``mAP`` for TensorBoard, and the training progress."""

    def __init__(self, class_names: list[str]) -> None:
        self.env = sdk.read_env()
        self.class_names = [str(c) for c in class_names]
        self.stages: list[tuple[str, float]] = []

    def after_val_epoch(self, runner: Any, metrics: dict[str, Any] | None = None) -> None:
        m_ap = cfgedit.metric_of(metrics or {})
        stage = modelfiles.stage_name(runner.epoch)
        directory = sdk.stage_dir(stage, env=self.env)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = OrderedDict((k, v.detach().cpu()) for k, v in model.state_dict().items())
        meta = {
            "dataset_meta": {"classes": tuple(self.class_names)},
            "epoch": int(runner.epoch),
            "mAP": m_ap,
            "template": "live-code mmdet",
        }
        torch.save({"state_dict": state, "meta": meta}, os.path.join(directory, f"{stage}.pth"))
        runner.cfg.dump(os.path.join(directory, f"{stage}.py"))
        sdk.write_model_stage(stage, [f"{stage}.pth", f"{stage}.py"], m_ap, env=self.env)
        self.stages.append((stage, m_ap))
        # the stage's metric as its own curve (CocoMetric reports nothing when there are no detections)
        runner.visualizer.add_scalars({"mAP": m_ap}, step=int(runner.epoch))
        sdk.write_progress(
            0.05 + 0.9 * runner.epoch / max(1, runner.max_epochs), task=sdk.TaskKind.TRAINING, env=self.env
        )
        logger.info("stage %s: mAP@0.5 %.4f", stage, m_ap)
