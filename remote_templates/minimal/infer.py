"""Inference: boxes for every candidate image, in the image's own pixels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import weights
from data import load_image
from detector import STRIDE, predict

from live_code import sdk


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    model, ckpt, class_names = weights.load_model(env, config)
    device = weights.pick_device(config)
    model.to(device)
    img_size = sdk.input_size(config, int(ckpt["img_size"]), STRIDE)
    conf_thres = sdk.get_float(config, "conf_thres", 0.25)
    iou_thres = sdk.get_float(config, "iou_thres", 0.45)

    @torch.no_grad()
    def detect(path: str) -> list[sdk.Detection]:
        image, width, height = load_image(path, img_size)
        found = predict(model(image[None].to(device)).cpu(), conf_thres, iou_thres)[0]
        scale = (width / img_size, height / img_size)
        return sdk.clip_detections(found.tolist(), class_names, width, height, scale=scale)

    sdk.detect_candidates(detect, env=env)
