"""Training: fit the tiny detector, evaluate mAP@0.5 on the validation split after every epoch,
save a model stage whenever it improves, export the best one as ONNX at the end."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import torch
import weights
from data import Sample, load_split
from detector import STRIDE, TinyDetector, loss_fn, predict, targets_for

from live_code import sdk

logger = logging.getLogger(__name__)

EVAL_CONF_THRES = 0.01  # mAP needs the low-score predictions too


def read_img_size(config: Mapping[str, Any], default: int) -> int:
    size = sdk.get_int(config, "img_size", default)
    if size < STRIDE or size % STRIDE:
        raise sdk.ConfigValueError(f"config key 'img_size': {size} must be a positive multiple of {STRIDE}")
    return size


def evaluate(
    model: TinyDetector, samples: list[Sample], num_classes: int, iou_thres: float, device: torch.device
) -> tuple[float, list[float | None]]:
    model.eval()
    with torch.no_grad():
        images = torch.stack([s.image for s in samples]).to(device)
        preds = [p.cpu().tolist() for p in predict(model(images).cpu(), EVAL_CONF_THRES, iou_thres)]
    return sdk.mean_average_precision(preds, [s.boxes.tolist() for s in samples], num_classes)


def _flip(images: torch.Tensor, boxes: list[torch.Tensor], flips: torch.Tensor) -> list[torch.Tensor]:
    """Mirror the images where ``flips`` is true (in place) and return their boxes mirrored too."""
    size = images.shape[-1]
    out = []
    for i, b in enumerate(boxes):
        if flips[i]:
            images[i] = images[i].flip(-1)
            b = b.clone()
            b[:, 1], b[:, 3] = size - boxes[i][:, 3], size - boxes[i][:, 1]
        out.append(b)
    return out


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    class_names = sdk.training_class_names(config)
    epochs = sdk.get_int(config, "epochs", 30)
    batch_size = sdk.get_int(config, "batch_size", 8)
    learning_rate = sdk.get_float(config, "learning_rate", 0.005)
    img_size = read_img_size(config, 64)
    iou_thres = sdk.get_float(config, "iou_thres", 0.45)
    seed = sdk.get_int(config, "seed", 0)
    export = sdk.get_bool(config, "export_onnx", True)
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise sdk.ConfigValueError(
            f"epochs ({epochs}), batch_size ({batch_size}) and learning_rate ({learning_rate}) must be positive"
        )
    device = weights.pick_device(config)
    torch.manual_seed(seed)
    started = time.monotonic()

    train = load_split(sdk.Split.TRAINING, img_size, class_names)
    val = load_split(sdk.Split.VALIDATION, img_size, class_names)
    sdk.require_images(sdk.Split.TRAINING, len(train), env=env)
    sdk.require_images(sdk.Split.VALIDATION, len(val), env=env)
    logger.info(
        "training on %d images, validating on %d, %d classes, %d px, %d epochs on %s",
        len(train),
        len(val),
        len(class_names),
        img_size,
        epochs,
        device,
    )
    sdk.write_progress(0.05, task=sdk.TaskKind.TRAINING)

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
    best_map, best_stage = -1.0, ""
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
            board.add_scalar("loss", total / len(train), epoch)
            board.add_scalar("mAP", m_ap, epoch)
            logger.info(
                "epoch %d/%d: loss %.4f, mAP@0.5 %.4f (%s)",
                epoch,
                epochs,
                total / len(train),
                m_ap,
                ", ".join(f"{n} {'-' if ap is None else f'{ap:.3f}'}" for n, ap in zip(class_names, per_class)),
            )
            if m_ap > best_map:
                best_map, best_stage = m_ap, f"epoch_{epoch}"
                weights.save_stage(env, best_stage, model, class_names, img_size, m_ap)
            sdk.write_progress(0.05 + 0.9 * epoch / epochs, task=sdk.TaskKind.TRAINING)

    if export:
        best_dir = sdk.stage_dir(best_stage, env=env)
        best = torch.load(os.path.join(best_dir, f"{best_stage}.pt"), map_location="cpu", weights_only=True)
        model.load_state_dict(best["state_dict"])
        onnx_path = os.path.join(best_dir, f"{best_stage}.onnx")
        weights.export_onnx(model, img_size, onnx_path)
        sdk.write_model_stage(best_stage, [f"{best_stage}.pt", f"{best_stage}.onnx"], best_map, env=env)
        logger.info("exported %s", onnx_path)
    logger.info("best stage %s, mAP@0.5 %.4f, %.1f s", best_stage, best_map, time.monotonic() - started)
