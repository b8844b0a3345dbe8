"""Inference: boxes above ``conf_thres`` for every candidate image, in the image's own pixels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import common

from live_code import sdk


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    from mmdet.apis import inference_detector

    model, class_names = common.load_detector(env, config)
    conf_thres = sdk.get_float(config, "conf_thres", 0.2)

    def detect(path: str) -> list[sdk.Detection]:
        result = inference_detector(model, path)
        height, width = result.metainfo["ori_shape"][:2]
        return sdk.clip_detections(common.boxes_of(result, 0.0), class_names, width, height, conf_thres=conf_thres)

    sdk.detect_candidates(detect, env=env)
