"""Mining: score every candidate image with the configured active-learning algorithm.

The scores come from the SDK (``sdk.entropy_score`` and friends); this file only feeds them the
model's outputs: raw pre-NMS confidences (entropy), the per-class probability maps (aldd), the
predictions on the plain and the augmented image (cald).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import detector
import mxnet as mx
import numpy as np
import weights
from data import Augment, load_rgb, to_array
from detector import STRIDE
from mxnet import nd
from PIL import Image

from live_code import sdk

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "entropy", "aldd", "cald")


class Miner(Augment, sdk.GridMiner[Image.Image]):
    """The tiny detector for ``sdk.mine_images``; the image stays a Pillow one, which the CALD
    augmentations draw on, until it meets the network."""

    def __init__(self, model: Any, ctx: mx.Context, img_size: int, config: Mapping[str, Any]) -> None:
        conf_thres, iou_thres = sdk.get_float(config, "conf_thres", 0.25), sdk.get_float(config, "iou_thres", 0.45)
        super().__init__(detector, img_size, conf_thres, iou_thres)
        self.model, self.ctx = model, ctx

    def read(self, path: str) -> Image.Image:
        return load_rgb(path, self.input_size)[0]

    def forward(self, img: Image.Image) -> np.ndarray:
        return self.model(nd.array(to_array(img)[None], ctx=self.ctx)).asnumpy()


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "entropy")
    ctx = weights.pick_context(config)
    model, meta, class_names = weights.load_model(env, config, ctx)
    class_weights = sdk.class_weights_from_config(config.get("class_distribution_scores"), class_names)
    miner = Miner(model, ctx, sdk.input_size(config, int(meta["img_size"]), STRIDE), config)
    logger.info("mining with MXNet %s", mx.__version__)
    sdk.mine_images(algorithm, miner, class_weights=class_weights, env=env)
