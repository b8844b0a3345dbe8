"""What train, mine and infer share once mmdet is imported: the device, loading a model stage."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import modelfiles
import torch

from live_code import sdk

logger = logging.getLogger(__name__)


def pick_device(config: Mapping[str, Any]) -> str:
    """``cuda:0`` when the platform gave a GPU (``gpu_id`` not empty) and torch sees one, else ``cpu``."""
    return "cuda:0" if sdk.gpu_ids(config) and torch.cuda.is_available() else "cpu"


def load_detector(env: sdk.Env, config: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """The model of ``model_params_path`` in eval mode, and its class names."""
    from mmdet.apis import init_detector
    from mmdet.utils import register_all_modules

    register_all_modules()
    files = sdk.find_model_files(
        config, "model_params_path", config_suffix=modelfiles.CONFIG_SUFFIX, need_config=True, env=env
    )
    try:
        model = init_detector(files.config, files.weights, device=pick_device(config))
    except (KeyError, RuntimeError, ValueError, OSError) as e:
        raise sdk.ModelNotFoundError(f"cannot load {files.weights} with {files.config}: {e}") from None
    classes = [str(c) for c in (model.dataset_meta or {}).get("classes", ())]
    names = sdk.model_class_names(config, classes)
    logger.info("loaded %s (%d classes)", files.weights, len(names))
    return model.eval(), names


def boxes_of(result: Any, conf_thres: float) -> list[tuple[float, float, float, float, float, int]]:
    """``(x1, y1, x2, y2, score, label)`` of a DetDataSample's predictions scoring above ``conf_thres``
    (non-finite boxes, which a diverged model decodes, are dropped)."""
    pred = result.pred_instances
    rows = []
    for (x1, y1, x2, y2), score, label in zip(pred.bboxes.tolist(), pred.scores.tolist(), pred.labels.tolist()):
        if score > conf_thres and all(math.isfinite(v) for v in (x1, y1, x2, y2, score)):
            rows.append((x1, y1, x2, y2, score, int(label)))
    return rows
