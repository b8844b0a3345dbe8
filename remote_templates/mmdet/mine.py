"""Mining: one score per candidate image with random, entropy, aldd (dense heads) or cald."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import common
import numpy as np
import scores

from live_code import sdk

ALGORITHMS = ("random", "entropy", "aldd", "cald")
_FILL = 114  # the grey mmdet's YOLOX pads with


class Augment(sdk.CaldOps[np.ndarray]):
    """CALD's augmentations (``sdk.cald_augment`` decides which and how far) on an (H, W, 3) BGR
    image, with mmcv's image functions."""

    def flip(self, image: np.ndarray) -> np.ndarray:
        import mmcv

        return np.ascontiguousarray(mmcv.imflip(image, "horizontal"))

    def shrink(self, image: np.ndarray, width: int, height: int) -> np.ndarray:
        import mmcv

        small = mmcv.imresize(image, (width, height), interpolation="bilinear", backend="cv2")
        return mmcv.impad(small, shape=image.shape[:2], pad_val=(_FILL,) * image.shape[2])

    def rotate(self, image: np.ndarray, degrees: float, centre: tuple[float, float]) -> np.ndarray:
        import mmcv

        # mmcv turns clockwise for a positive angle: the SDK's counter-clockwise is its negative
        return mmcv.imrotate(image, -degrees, center=centre, border_value=(_FILL,) * image.shape[2])

    def cutout(self, image: np.ndarray, side: int, count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return sdk.cald_cutout(image, side, count, lambda high: int(rng.integers(0, high)), _FILL)


def dense_maps(model: Any, path: str) -> tuple[list[list[list[list[float]]]], int]:
    """Per feature level, per class, the head's probability map ``sigmoid(cls) * sigmoid(obj)``
    (objectness when the head has it, e.g. YOLOX; anchors of a level are taken by their maximum),
    and the network input's longer side."""
    import torch
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg

    head = getattr(model, "bbox_head", None)
    if head is None or not hasattr(model, "extract_feat"):
        raise sdk.ConfigValueError(
            "mining_algorithm aldd needs a single-stage detector with a dense head "
            f"({type(model).__name__} has none); use entropy or cald"
        )
    if not getattr(head, "use_sigmoid_cls", True):
        raise sdk.ConfigValueError(f"aldd needs sigmoid class scores; {type(head).__name__} uses softmax")
    steps = [
        s for s in get_test_pipeline_cfg(model.cfg) if s.get("type") not in ("LoadAnnotations", "mmdet.LoadAnnotations")
    ]
    data = Compose(steps)({"img_path": path, "img_id": 0})
    batch = model.data_preprocessor({"inputs": [data["inputs"]], "data_samples": [data["data_samples"]]}, False)
    with torch.no_grad():
        outs = head(model.extract_feat(batch["inputs"]))
    classes = head.num_classes
    objectness = outs[2] if len(outs) > 2 and isinstance(outs[2], (list, tuple)) else None
    levels = []
    for i, cls in enumerate(outs[0]):
        c = cls[0].sigmoid()
        anchors = c.shape[0] // classes
        probs = c.reshape(anchors, classes, *c.shape[1:])
        if objectness is not None:
            probs = probs * objectness[i][0].sigmoid().reshape(anchors, 1, *c.shape[1:])
        levels.append(probs.max(dim=0).values.cpu().tolist())
    size = max(int(v) for v in batch["inputs"].shape[-2:])
    return levels, size


class Miner(Augment, sdk.ImageMiner[np.ndarray]):
    """The detector's outputs for ``sdk.mine_images``: scores (entropy), the dense head's maps
    (aldd), boxes on the image and its augmentations (cald)."""

    def __init__(self, model: Any, conf_thres: float) -> None:
        self.model, self.conf_thres = model, conf_thres

    def confidences(self, path: str) -> list[float]:
        from mmdet.apis import inference_detector

        found = inference_detector(self.model, path).pred_instances.scores.tolist()
        return [float(s) for s in found if float(s) > self.conf_thres]

    def class_maps(self, path: str) -> tuple[list[list[list[list[float]]]], int]:
        maps, size = dense_maps(self.model, path)
        return scores.by_class(maps), size

    def read(self, path: str) -> np.ndarray:
        from mmcv import imread

        return imread(path)

    def size(self, image: np.ndarray) -> tuple[int, int]:
        return image.shape[1], image.shape[0]

    def boxes(self, image: np.ndarray) -> list[tuple[float, float, float, float, float, int]]:
        from mmdet.apis import inference_detector

        return common.boxes_of(inference_detector(self.model, image), self.conf_thres)


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "aldd")
    model, class_names = common.load_detector(env, config)
    class_weights = sdk.class_weights_from_config(config.get("class_distribution_scores"), class_names)
    miner = Miner(model, sdk.get_float(config, "conf_thres", 0.1))
    sdk.mine_images(algorithm, miner, class_weights=class_weights, env=env)
