"""Mining: one score per candidate image with cald (the original executor's), entropy or random."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import predict

from live_code import sdk

ALGORITHMS = ("random", "entropy", "cald")
_FILL = 114


class Augment(sdk.CaldOps[np.ndarray]):
    """CALD's augmentations (``sdk.cald_augment`` decides which and how far) on an (H, W, 3) BGR
    image, with OpenCV."""

    def flip(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[:, ::-1])

    def shrink(self, image: np.ndarray, width: int, height: int) -> np.ndarray:
        out = np.full_like(image, _FILL)
        out[:height, :width] = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        return out

    def rotate(self, image: np.ndarray, degrees: float, centre: tuple[float, float]) -> np.ndarray:
        # OpenCV: a positive angle turns counter-clockwise on screen, as the SDK's
        matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
        return cv2.warpAffine(image, matrix, image.shape[1::-1], borderValue=(_FILL, _FILL, _FILL))

    def cutout(self, image: np.ndarray, side: int, count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return sdk.cald_cutout(image, side, count, lambda high: int(rng.integers(0, high)), _FILL)


class Miner(Augment, sdk.ImageMiner[np.ndarray]):
    """The predictor's boxes for ``sdk.mine_images``: entropy over their scores, cald over them."""

    def __init__(self, predictor: Any, conf_thres: float) -> None:
        self.predictor, self.conf_thres = predictor, conf_thres

    def read(self, path: str) -> np.ndarray:
        return predict.read_image(path)

    def size(self, image: np.ndarray) -> tuple[int, int]:
        height, width = image.shape[:2]
        return width, height

    def boxes(self, image: np.ndarray) -> list[tuple[float, ...]]:
        return predict.boxes_of(self.predictor, image, self.conf_thres)

    def confidences(self, path: str) -> list[float]:
        return [b[4] for b in self.boxes(self.read(path)) if b[4] > self.conf_thres]


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "cald")
    predictor, _ = predict.load_predictor(env, config)
    sdk.mine_images(algorithm, Miner(predictor, sdk.get_float(config, "conf_thres", 0.2)), env=env)
