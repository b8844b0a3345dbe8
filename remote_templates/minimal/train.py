"""Training: fit the tiny detector, evaluate mAP@0.5 on the validation split after every epoch,
save a model stage whenever it improves, export the best one as ONNX at the end."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import torch
import weights
from data import box_tensor, load_split
from detector import STRIDE, TinyDetector, loss_fn, predict, targets_for

from live_code import sdk

logger = logging.getLogger(__name__)

EVAL_CONF_THRES = 0.01  # mAP needs the low-score predictions too


def evaluate(
    model: TinyDetector, samples: list[sdk.Sample], num_classes: int, iou_thres: float, device: torch.device
) -> tuple[float, list[float | None]]:
    model.eval()
    with torch.no_grad():
        images = torch.stack([s.image for s in samples]).to(device)
        preds = [p.cpu().tolist() for p in predict(model(images).cpu(), EVAL_CONF_THRES, iou_thres)]
    return sdk.mean_average_precision(preds, [s.boxes.tolist() for s in samples], num_classes)


def _flip(images: torch.Tensor, boxes: list[torch.Tensor], flips: torch.Tensor) -> list[torch.Tensor]:
    """Mirror the images where ``flips`` is true (in place) and return their boxes mirrored too."""
    images[flips] = images[flips].flip(-1)
    size = images.shape[-1]
    return [box_tensor(sdk.flipped_rows(b.tolist(), size)) if f else b for b, f in zip(boxes, flips.tolist())]


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    params = sdk.training_params(config, epochs=30, batch_size=8, learning_rate=0.005, img_size=64, stride=STRIDE)
    class_names, epochs, batch_size, learning_rate, img_size, iou_thres, seed = params
    export = sdk.get_bool(config, "export_onnx", True)
    device = weights.pick_device(config)
    torch.manual_seed(seed)
    log = sdk.TrainingLog(params, env=env)

    train = load_split(sdk.Split.TRAINING, img_size, class_names)
    val = load_split(sdk.Split.VALIDATION, img_size, class_names)
    log.loaded(len(train), len(val), device)

    model = TinyDetector(len(class_names))
    pretrained = sdk.pick_checkpoint(sdk.model_paths(config, "pretrained_model_params", env=env), ".pt")
    if pretrained:
        weights.load_pretrained(model, pretrained)
    model.to(device)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=epochs * steps_per_epoch, pct_start=0.1
    )
    grid = img_size // STRIDE
    shuffle = torch.Generator().manual_seed(seed)

    def save(stage: str, m_ap: float) -> None:
        weights.save_stage(env, stage, model, class_names, img_size, m_ap)

    with sdk.ScalarWriter(env.output.tensorboard_dir) as board:
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(len(train), generator=shuffle).tolist()
            total = 0.0
            for start in range(0, len(order), batch_size):
                batch = [train[i] for i in order[start : start + batch_size]]
                images = torch.stack([s.image for s in batch])
                boxes = _flip(images, [s.boxes for s in batch], torch.rand(len(batch), generator=shuffle) < 0.5)
                target = targets_for(boxes, grid, len(class_names))
                loss = loss_fn(model(images.to(device)), target.to(device))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"the loss became {loss.item()} at epoch {epoch}; lower learning_rate")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
            m_ap, per_class = evaluate(model, val, len(class_names), iou_thres, device)
            log.end_epoch(board, epoch, total / len(train), m_ap, per_class, save=save)

    best_stage, best_map = log.best_stage, log.best_map
    if export:
        best_dir = sdk.stage_dir(best_stage, env=env)
        best = torch.load(os.path.join(best_dir, f"{best_stage}.pt"), map_location="cpu", weights_only=True)
        model.load_state_dict(best["state_dict"])
        onnx_path = os.path.join(best_dir, f"{best_stage}.onnx")
        weights.export_onnx(model, img_size, onnx_path)
        sdk.write_model_stage(best_stage, [f"{best_stage}.pt", f"{best_stage}.onnx"], best_map, env=env)
        logger.info("exported %s", onnx_path)
    log.finish()
