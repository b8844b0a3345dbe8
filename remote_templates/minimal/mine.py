"""Mining: score every candidate image with the configured active-learning algorithm.

The scores come from the SDK (``sdk.entropy_score`` and friends); this file only feeds them the
model's outputs: raw pre-NMS confidences (entropy), the per-class probability maps (aldd), the
predictions on the plain and the augmented image (cald).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import detector
import torch
import weights
from data import Augment, load_image
from detector import STRIDE

from live_code import sdk

ALGORITHMS = ("random", "entropy", "aldd", "cald")


class Miner(Augment, sdk.GridMiner[torch.Tensor]):
    """The tiny detector on one (3, S, S) image tensor, for ``sdk.mine_images``."""

    def __init__(self, model: torch.nn.Module, device: torch.device, img_size: int, config: Mapping[str, Any]):
        conf_thres, iou_thres = sdk.get_float(config, "conf_thres", 0.25), sdk.get_float(config, "iou_thres", 0.45)
        super().__init__(detector, img_size, conf_thres, iou_thres)
        self.model, self.device = model, device

    def read(self, path: str) -> torch.Tensor:
        return load_image(path, self.input_size)[0]

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image[None].to(self.device)).cpu()


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "entropy")
    model, ckpt, class_names = weights.load_model(env, config)
    device = weights.pick_device(config)
    class_weights = sdk.class_weights_from_config(config.get("class_distribution_scores"), class_names)
    miner = Miner(model.to(device), device, sdk.input_size(config, int(ckpt["img_size"]), STRIDE), config)
    sdk.mine_images(algorithm, miner, class_weights=class_weights, env=env)
