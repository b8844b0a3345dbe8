"""Mining: one score per candidate image with random, entropy, aldd or cald.

The scores are the SDK's (``sdk.entropy_score`` and friends); this file feeds them the model's
outputs. The head is anchor-free (no objectness), so where the original yolov5 miner used
``objectness x class probability`` this uses the class probabilities alone:

- entropy: each anchor point's best class probability above ``conf_thres``, before NMS;
- aldd: per class, the sigmoid of the class logits of every anchor point, one map per stride;
- cald: the boxes after NMS on the letterboxed image and on its four augmentations (flip,
  cutout, 5 degree rotation, 0.8 resize), mapped back with ``sdk.unaugment_box``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import dist
import predict
import torch
import torch.nn.functional as F
import weights
from train import read_img_size

from live_code import sdk

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "entropy", "aldd", "cald")
_FILL = predict.PAD_VALUE / 255.0  # the letterbox grey, for pixels an augmentation uncovers


def augment(kind: str, images: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """(B, 3, S, S) after CALD augmentation ``kind``, matching ``sdk.augment_box``'s geometry."""
    size = images.shape[-1]
    if kind == "flip":
        return images.flip(-1)
    if kind == "resize":
        small = round(size * sdk.CALD_RESIZE_SCALE)
        out = torch.full_like(images, _FILL)
        out[:, :, :small, :small] = F.interpolate(images, size=(small, small), mode="bilinear", align_corners=False)
        return out
    if kind == "rotate":
        angle = math.radians(sdk.CALD_ROTATE_DEGREES)
        cos, sin = math.cos(angle), math.sin(angle)
        # affine_grid maps output to input positions: the inverse of turning counter-clockwise on screen
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=images.dtype).expand(len(images), 2, 3)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images - _FILL, grid, align_corners=False, padding_mode="zeros") + _FILL
    if kind == "cutout":
        out = images.clone()
        side = max(1, size // 8)
        for i, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(seed)
            for _ in range(4):
                y, x = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=gen))
                out[i, :, y : y + side, x : x + side] = _FILL
        return out
    raise ValueError(f"unknown augmentation {kind!r}")


def class_maps(raw: predict.Raw, index: int) -> list[list[list[list[float]]]]:
    """``maps[c][level]``: the class-``c`` probability of image ``index`` on each stride's grid."""
    probs = raw.logits[index].sigmoid()
    maps: list[list[list[list[float]]]] = [[] for _ in range(probs.shape[0])]
    start = 0
    for height, width in raw.levels:
        level = probs[:, start : start + height * width].reshape(-1, height, width)
        start += height * width
        for c, grid in enumerate(level.tolist()):
            maps[c].append(grid)
    return maps


def run(env: sdk.Env, config: Mapping[str, Any], ranks: dist.Ranks) -> None:
    algorithm = sdk.mining_algorithm(config, ALGORITHMS, "aldd")
    paths, mine, where = dist.candidates(ranks, env)
    if ranks.main:
        logger.info("mining %d images with %s%s", len(paths), algorithm, where)
    if algorithm == "random":  # needs no model
        scores = [(path, sdk.random_score(path)) for path in mine]
    else:
        scores = _score_with_model(env, config, ranks, algorithm, mine)
    everything = dist.gather(ranks, scores)
    if ranks.main:
        sdk.write_mining_result(everything, env=env)
        logger.info("wrote %d mining scores", len(everything))


def _score_with_model(
    env: sdk.Env, config: Mapping[str, Any], ranks: dist.Ranks, algorithm: str, paths: list[str]
) -> list[tuple[str, float]]:
    device = dist.device_for(config, ranks)
    loaded = weights.load_for_prediction(env, config, device)
    class_weights = sdk.class_weights_from_config(
        config.get("class_distribution_scores"), sdk.model_class_names(config, loaded.class_names)
    )
    img_size = read_img_size(config, loaded.img_size)
    conf_thres = sdk.get_float(config, "conf_thres", 0.25)
    iou_thres = sdk.get_float(config, "iou_thres", 0.45)
    batch_size = max(1, sdk.get_int(config, "batch_size_per_gpu", 16))
    workers = max(0, sdk.get_int(config, "num_workers_per_gpu", 4))
    scores: list[tuple[str, float]] = []
    for batch in predict.batches(paths, img_size, batch_size, workers):
        raw = predict.forward(loaded.model, batch.images)
        if algorithm == "entropy":
            best = raw.decoded[:, 4:, :].max(dim=1).values
            batch_scores = [sdk.entropy_score(row[row > conf_thres].tolist()) for row in best]
        elif algorithm == "aldd":
            batch_scores = [
                sdk.aldd_score(class_maps(raw, i), class_weights, input_size=img_size) for i in range(len(batch.paths))
            ]
        else:
            base = predict.nms(raw.decoded, conf_thres, iou_thres)
            seeds = [int(sdk.random_score(path, "cutout") * 2**31) for path in batch.paths]
            augmented: list[list[list[tuple[float, ...]]]] = [[] for _ in batch.paths]
            for kind in sdk.CALD_AUGMENTATIONS:
                found = predict.nms(
                    predict.forward(loaded.model, augment(kind, batch.images, seeds)).decoded, conf_thres, iou_thres
                )
                for i, boxes in enumerate(found):
                    augmented[i].append([sdk.unaugment_box(kind, b, img_size, img_size) for b in boxes.tolist()])
            batch_scores = [sdk.cald_score(b.tolist(), a) for b, a in zip(base, augmented)]
        scores.extend(zip(batch.paths, batch_scores))
        if ranks.main:
            sdk.write_progress(len(scores) / max(1, len(paths)), task=sdk.TaskKind.MINING, env=env)
    return scores
