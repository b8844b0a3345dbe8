"""Inference: boxes above ``conf_thres`` for every candidate image, in the image's own pixels."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import cv2
import predict
import scores

from live_code import sdk

logger = logging.getLogger(__name__)


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    predictor, class_names = predict.load_predictor(env, config)
    conf_thres = sdk.get_float(config, "conf_thres", 0.2)
    paths = [item.image_path for item in sdk.iter_items(sdk.Split.CANDIDATE)]
    found: dict[str, list[sdk.Detection]] = {}
    for i, path in enumerate(paths):
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise sdk.DatasetFormatError(path, "", "OpenCV cannot read the image")
        height, width = image.shape[:2]
        found[path] = scores.detections(predict.boxes_of(predictor, image, 0.0), class_names, conf_thres, width, height)
        if i % 10 == 0:
            sdk.write_progress(i / max(1, len(paths)), task=sdk.TaskKind.INFER)
    boxes = sdk.write_infer_result(found)
    sdk.write_progress(1.0, task=sdk.TaskKind.INFER)
    logger.info("wrote %d boxes for %d images", boxes, len(found))
