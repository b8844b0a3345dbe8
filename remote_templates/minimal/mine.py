"""Mining: score every candidate image with the configured active-learning algorithm.

The scores come from the SDK (``sdk.entropy_score`` and friends); this file only feeds them the
model's outputs: raw pre-NMS confidences (entropy), the per-class probability maps (aldd), the
predictions on the plain and the augmented image (cald).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import weights
from data import Augment, load_image
from detector import STRIDE, class_probability_maps, decode, predict

from live_code import sdk

ALGORITHMS = ("random", "entropy", "aldd", "cald")


class Miner(Augment, sdk.ImageMiner[torch.Tensor]):
    """The tiny detector's outputs for ``sdk.mine_images``, one (3, S, S) image at a time."""

    def __init__(self, model: torch.nn.Module, device: torch.device, img_size: int, config: Mapping[str, Any]):
        self.model, self.device, self.img_size = model, device, img_size
        self.conf_thres = sdk.get_float(config, "conf_thres", 0.25)
        self.iou_thres = sdk.get_float(config, "iou_thres", 0.45)

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image[None].to(self.device)).cpu()

    def read(self, path: str) -> torch.Tensor:
        return load_image(path, self.img_size)[0]

    def size(self, image: torch.Tensor) -> tuple[int, int]:
        return self.img_size, self.img_size

    def confidences(self, path: str) -> list[float]:
        _, conf, _ = decode(self.forward(self.read(path)))
        return conf[conf > self.conf_thres].tolist()

    def class_maps(self, path: str) -> tuple[list[list[list[list[float]]]], int]:
        return [[m.tolist()] for m in class_probability_maps(self.forward(self.read(path)))[0]], self.img_size

    def boxes(self, image: torch.Tensor) -> list[list[float]]:
        return predict(self.forward(image), self.conf_thres, self.iou_thres)[0].tolist()


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "entropy")
    model, ckpt, class_names = weights.load_model(env, config)
    device = weights.pick_device(config)
    class_weights = sdk.class_weights_from_config(config.get("class_distribution_scores"), class_names)
    miner = Miner(model.to(device), device, sdk.input_size(config, int(ckpt["img_size"]), STRIDE), config)
    sdk.mine_images(algorithm, miner, class_weights=class_weights, env=env)
