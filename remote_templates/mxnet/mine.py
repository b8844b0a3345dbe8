"""Mining: score every candidate image with the configured active-learning algorithm.

The scores come from the SDK (``sdk.entropy_score`` and friends); this file only feeds them the
model's outputs: raw pre-NMS confidences (entropy), the per-class probability maps (aldd), the
predictions on the plain and the augmented image (cald).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import mxnet as mx
import numpy as np
import weights
from data import augment, load_rgb, to_array
from detector import class_probability_maps, decode, predict
from mxnet import nd
from train import read_img_size

from live_code import sdk

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "entropy", "aldd", "cald")


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "entropy")
    ctx = weights.pick_context(config)
    model, meta, class_names = weights.load_model(env, config, ctx)
    class_weights = sdk.class_weights_from_config(config.get("class_distribution_scores"), class_names)
    img_size = read_img_size(config, int(meta["img_size"]))
    conf_thres = sdk.get_float(config, "conf_thres", 0.25)
    iou_thres = sdk.get_float(config, "iou_thres", 0.45)
    paths = sdk.candidate_paths(env)
    logger.info("mining %d images with %s (MXNet %s)", len(paths), algorithm, mx.__version__)

    def forward(image: np.ndarray) -> np.ndarray:
        return model(nd.array(image[None], ctx=ctx)).asnumpy()

    def score(path: str, index: int) -> float:
        if algorithm == "random":
            return sdk.random_score(path)
        img, _, _ = load_rgb(path, img_size)
        raw = forward(to_array(img))
        if algorithm == "entropy":
            _, conf, _ = decode(raw)
            return sdk.entropy_score(conf[conf > conf_thres].tolist())
        if algorithm == "aldd":
            maps = class_probability_maps(raw)[0]
            return sdk.aldd_score([[m.tolist()] for m in maps], class_weights, input_size=img_size)
        augmented = {
            kind: predict(forward(to_array(augment(kind, img, seed=index))), conf_thres, iou_thres)[0].tolist()
            for kind in sdk.CALD_AUGMENTATIONS
        }
        base = predict(raw, conf_thres, iou_thres)[0].tolist()
        return sdk.cald_from_predictions(base, augmented, img_size, img_size)

    sdk.score_candidates(score, env=env, paths=paths)
