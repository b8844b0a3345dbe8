"""Mining: score every candidate image with the configured active-learning algorithm.

The scores come from the SDK (``sdk.entropy_score`` and friends); this file only feeds them the
model's outputs: raw pre-NMS confidences (entropy), the per-class probability maps (aldd), the
predictions on the plain and the augmented image (cald).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
import weights
from data import augment, load_image
from detector import class_probability_maps, decode, predict
from train import read_img_size

from live_code import sdk

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "entropy", "aldd", "cald")


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "entropy")
    model, ckpt, class_names = weights.load_model(env, config)
    device = weights.pick_device(config)
    model.to(device)
    class_weights = sdk.class_weights_from_config(config.get("class_distribution_scores"), class_names)
    img_size = read_img_size(config, int(ckpt["img_size"]))
    conf_thres = sdk.get_float(config, "conf_thres", 0.25)
    iou_thres = sdk.get_float(config, "iou_thres", 0.45)
    paths = sdk.candidate_paths(env)
    logger.info("mining %d images with %s", len(paths), algorithm)

    def boxes(image: torch.Tensor) -> list[list[float]]:
        return predict(model(image[None].to(device)).cpu(), conf_thres, iou_thres)[0].tolist()

    @torch.no_grad()
    def score(path: str, index: int) -> float:
        if algorithm == "random":
            return sdk.random_score(path)
        image, _, _ = load_image(path, img_size)
        raw = model(image[None].to(device)).cpu()
        if algorithm == "entropy":
            _, conf, _ = decode(raw)
            return sdk.entropy_score(conf[conf > conf_thres].tolist())
        if algorithm == "aldd":
            maps = class_probability_maps(raw)[0]
            return sdk.aldd_score([[m.tolist()] for m in maps], class_weights, input_size=img_size)
        augmented = {kind: boxes(augment(kind, image, seed=index)) for kind in sdk.CALD_AUGMENTATIONS}
        base = predict(raw, conf_thres, iou_thres)[0].tolist()
        return sdk.cald_from_predictions(base, augmented, img_size, img_size)

    sdk.score_candidates(score, env=env, paths=paths)
