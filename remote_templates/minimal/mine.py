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
    algorithm = str(config.get("mining_algorithm") or "entropy").strip().lower()
    if algorithm not in ALGORITHMS:
        raise sdk.ConfigValueError(
            f"config key 'mining_algorithm': {algorithm!r} is not one of {', '.join(ALGORITHMS)}"
        )
    model, ckpt = weights.load_model(env, config)
    device = weights.pick_device(config)
    model.to(device)
    class_names = weights.class_names_for(config, ckpt)
    class_weights = sdk.class_weights_from_config(config.get("class_distribution_scores"), class_names)
    img_size = read_img_size(config, int(ckpt["img_size"]))
    conf_thres = sdk.get_float(config, "conf_thres", 0.25)
    iou_thres = sdk.get_float(config, "iou_thres", 0.45)
    paths = [item.image_path for item in sdk.iter_items(sdk.Split.CANDIDATE)]
    logger.info("mining %d images with %s", len(paths), algorithm)

    def run_model(image: torch.Tensor) -> torch.Tensor:
        return model(image[None].to(device)).cpu()

    scores = []
    with torch.no_grad():
        for i, path in enumerate(paths):
            if algorithm == "random":
                score = sdk.random_score(path)
            else:
                image, _, _ = load_image(path, img_size)
                raw = run_model(image)
                if algorithm == "entropy":
                    _, conf, _ = decode(raw)
                    score = sdk.entropy_score(conf[conf > conf_thres].tolist())
                elif algorithm == "aldd":
                    maps = class_probability_maps(raw)[0]
                    score = sdk.aldd_score([[m.tolist()] for m in maps], class_weights, input_size=img_size)
                else:
                    base = predict(raw, conf_thres, iou_thres)[0].tolist()
                    augmented = []
                    for kind in sdk.CALD_AUGMENTATIONS:
                        found = predict(run_model(augment(kind, image, seed=i)), conf_thres, iou_thres)[0]
                        augmented.append([sdk.unaugment_box(kind, box, img_size, img_size) for box in found.tolist()])
                    score = sdk.cald_score(base, augmented)
            scores.append((path, score))
            if i % 10 == 0:
                sdk.write_progress(i / len(paths), task=sdk.TaskKind.MINING)
    sdk.write_mining_result(scores)
    sdk.write_progress(1.0, task=sdk.TaskKind.MINING)
    logger.info("wrote %d mining scores", len(scores))
