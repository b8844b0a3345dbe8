"""Inference: boxes for every candidate image, in the image's own pixels."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
import weights
from data import load_image
from detector import predict
from train import read_img_size

from live_code import sdk

logger = logging.getLogger(__name__)


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    model, ckpt = weights.load_model(env, config)
    device = weights.pick_device(config)
    model.to(device)
    class_names = weights.class_names_for(config, ckpt)
    img_size = read_img_size(config, int(ckpt["img_size"]))
    conf_thres = sdk.get_float(config, "conf_thres", 0.25)
    iou_thres = sdk.get_float(config, "iou_thres", 0.45)
    paths = [item.image_path for item in sdk.iter_items(sdk.Split.CANDIDATE)]
    logger.info("inferring %d images", len(paths))
    results: dict[str, list[sdk.Detection]] = {}
    with torch.no_grad():
        for i, path in enumerate(paths):
            image, width, height = load_image(path, img_size)
            found = predict(model(image[None].to(device)).cpu(), conf_thres, iou_thres)[0]
            sx, sy = width / img_size, height / img_size
            results[path] = [
                sdk.Detection.from_xyxy(
                    class_names[int(c)],
                    score,
                    max(0.0, x1 * sx),
                    max(0.0, y1 * sy),
                    min(width, x2 * sx),
                    min(height, y2 * sy),
                )
                for x1, y1, x2, y2, score, c in found.tolist()
            ]
            if i % 10 == 0:
                sdk.write_progress(i / len(paths), task=sdk.TaskKind.INFER)
    boxes = sdk.write_infer_result(results)
    sdk.write_progress(1.0, task=sdk.TaskKind.INFER)
    logger.info("wrote %d boxes for %d images", boxes, len(results))
