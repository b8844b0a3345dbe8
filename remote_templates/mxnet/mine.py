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
from data import Augment, load_rgb, to_array
from detector import STRIDE, class_probability_maps, decode, predict
from mxnet import nd
from PIL import Image

from live_code import sdk

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "entropy", "aldd", "cald")


class Miner(Augment, sdk.ImageMiner[Image.Image]):
    """The tiny detector's outputs for ``sdk.mine_images``; the image stays a Pillow one, which
    the CALD augmentations draw on, until it meets the network."""

    def __init__(self, model: Any, ctx: mx.Context, img_size: int, config: Mapping[str, Any]) -> None:
        self.model, self.ctx, self.img_size = model, ctx, img_size
        self.conf_thres = sdk.get_float(config, "conf_thres", 0.25)
        self.iou_thres = sdk.get_float(config, "iou_thres", 0.45)

    def read(self, path: str) -> Image.Image:
        return load_rgb(path, self.img_size)[0]

    def size(self, img: Image.Image) -> tuple[int, int]:
        return img.size

    def forward(self, img: Image.Image) -> np.ndarray:
        return self.model(nd.array(to_array(img)[None], ctx=self.ctx)).asnumpy()

    def confidences(self, path: str) -> list[float]:
        _, conf, _ = decode(self.forward(self.read(path)))
        return conf[conf > self.conf_thres].tolist()

    def boxes(self, img: Image.Image) -> list[list[float]]:
        return predict(self.forward(img), self.conf_thres, self.iou_thres)[0].tolist()

    def class_maps(self, path: str) -> tuple[list[list[list[list[float]]]], int]:
        return [[m.tolist()] for m in class_probability_maps(self.forward(self.read(path)))[0]], self.img_size


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "entropy")
    ctx = weights.pick_context(config)
    model, meta, class_names = weights.load_model(env, config, ctx)
    class_weights = sdk.class_weights_from_config(config.get("class_distribution_scores"), class_names)
    miner = Miner(model, ctx, sdk.input_size(config, int(meta["img_size"]), STRIDE), config)
    logger.info("mining with MXNet %s", mx.__version__)
    sdk.mine_images(algorithm, miner, class_weights=class_weights, env=env)
