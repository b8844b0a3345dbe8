"""Inference: boxes above ``conf_thres`` for every candidate image, in the image's own pixels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import predict

from live_code import sdk


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    predictor, class_names = predict.load_predictor(env, config)
    conf_thres = sdk.get_float(config, "conf_thres", 0.2)

    def detect(path: str) -> list[sdk.Detection]:
        image = predict.read_image(path)
        height, width = image.shape[:2]
        rows = predict.boxes_of(predictor, image, 0.0)
        return sdk.clip_detections(rows, class_names, width, height, conf_thres=conf_thres)

    sdk.detect_candidates(detect, env=env)
