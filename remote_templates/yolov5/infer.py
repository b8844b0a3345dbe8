"""Inference: boxes for every candidate image, in the image's own pixels, named by the task's classes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import dist
import predict
import weights
from train import read_img_size

from live_code import sdk

logger = logging.getLogger(__name__)


def run(env: sdk.Env, config: Mapping[str, Any], ranks: dist.Ranks) -> None:
    device = dist.device_for(config, ranks)
    loaded = weights.load_for_prediction(env, config, device)
    class_names = sdk.model_class_names(config, loaded.class_names)
    img_size = read_img_size(config, loaded.img_size)
    conf_thres = sdk.get_float(config, "conf_thres", 0.25)
    iou_thres = sdk.get_float(config, "iou_thres", 0.45)
    max_det = sdk.get_int(config, "max_det", 100)
    batch_size = max(1, sdk.get_int(config, "batch_size_per_gpu", 16))
    workers = max(0, sdk.get_int(config, "num_workers_per_gpu", 4))
    paths, mine, where = dist.candidates(ranks, env)
    if ranks.main:
        logger.info("inferring %d images at %d px%s", len(paths), img_size, where)
    results: list[tuple[str, list[sdk.Detection]]] = []
    for batch in predict.batches(mine, img_size, batch_size, workers):
        found = predict.nms(predict.forward(loaded.model, batch.images).decoded, conf_thres, iou_thres, max_det)
        for path, box, dets in zip(batch.paths, batch.boxes, found):
            corners = predict.to_image(dets, box).tolist()
            results.append(
                (
                    path,
                    [
                        sdk.Detection.from_xyxy(class_names[int(cls)], float(score), x1, y1, x2, y2)
                        for (x1, y1, x2, y2), score, cls in zip(corners, dets[:, 4].tolist(), dets[:, 5].tolist())
                    ],
                )
            )
        if ranks.main:
            sdk.write_progress(len(results) / max(1, len(mine)), task=sdk.TaskKind.INFER, env=env)
    everything = dict(dist.gather(ranks, results))
    if ranks.main:
        boxes = sdk.write_infer_result(everything, env=env)
        logger.info("wrote %d boxes for %d images", boxes, len(everything))
