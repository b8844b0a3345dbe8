"""A trained stage as a detectron2 ``DefaultPredictor``, shared by mining and infer."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import modelfiles
import torch
from detectron2.config import get_cfg
from detectron2.engine import DefaultPredictor

from live_code import sdk

logger = logging.getLogger(__name__)


def load_predictor(env: sdk.Env, config: Mapping[str, Any]) -> tuple[DefaultPredictor, list[str]]:
    files = sdk.find_model_files(
        config, "model_params_path", config_suffix=modelfiles.CONFIG_SUFFIX, need_config=True, env=env
    )
    try:
        saved = torch.load(files.weights, map_location="cpu", weights_only=True)
        cfg = get_cfg()
        cfg.merge_from_file(files.config)
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        raise sdk.ModelNotFoundError(f"cannot load {files.weights} with {files.config}: {e}") from None
    gpu = sdk.gpu_ids(config) and torch.cuda.is_available()
    cfg.merge_from_list(
        [
            "MODEL.WEIGHTS",
            files.weights,
            "MODEL.DEVICE",
            "cuda" if gpu else "cpu",
            "MODEL.RETINANET.SCORE_THRESH_TEST",
            0.01,
            "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
            0.01,
        ]
    )
    names = sdk.model_class_names(config, [str(c) for c in saved.get("class_names", [])])
    logger.info("loaded %s (%d classes)", files.weights, len(names))
    return DefaultPredictor(cfg), names


def boxes_of(predictor: DefaultPredictor, image: Any, conf_thres: float) -> list[tuple[float, ...]]:
    """``(x1, y1, x2, y2, score, class)`` of the predictions on ``image`` (BGR array) above ``conf_thres``
    (non-finite boxes dropped)."""
    instances = predictor(image)["instances"].to("cpu")
    rows = []
    for box, score, label in zip(
        instances.pred_boxes.tensor.tolist(), instances.scores.tolist(), instances.pred_classes.tolist()
    ):
        if score > conf_thres and all(math.isfinite(v) for v in (*box, score)):
            rows.append((*box, score, int(label)))
    return rows


def read_image(path: str) -> Any:
    """The image as OpenCV reads it (BGR array); DatasetFormatError when it cannot."""
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise sdk.DatasetFormatError(path, "", "OpenCV cannot read the image")
    return image
