"""Training: fit the tiny detector, evaluate mAP@0.5 on the validation split after every epoch,
save a model stage whenever it improves, export the best one as a symbol graph at the end."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import mxnet as mx
import numpy as np
import weights
from data import Sample, load_split
from detector import STRIDE, TinyDetector, build, loss_fn, predict, targets_for
from mxnet import autograd, gluon, nd

from live_code import sdk

logger = logging.getLogger(__name__)

EVAL_CONF_THRES = 0.01  # mAP needs the low-score predictions too
WARMUP = 0.1  # share of the steps in which the learning rate rises (one-cycle schedule)
FINETUNE_LR_SCALE = 0.1  # of learning_rate, when training starts from a pretrained model


def read_img_size(config: Mapping[str, Any], default: int) -> int:
    size = sdk.get_int(config, "img_size", default)
    if size < STRIDE or size % STRIDE:
        raise sdk.ConfigValueError(f"config key 'img_size': {size} must be a positive multiple of {STRIDE}")
    return size


def one_cycle(step: int, total: int, peak: float) -> float:
    """Linear warm-up to ``peak`` over the first 10% of the steps, then cosine down to ~0."""
    rise = max(1, int(total * WARMUP))
    if step < rise:
        return peak * (0.04 + 0.96 * step / rise)
    done = (step - rise) / max(1, total - rise)
    return peak * (0.5 * (1 + math.cos(math.pi * min(1.0, done)))) + peak * 1e-4


def evaluate(
    model: TinyDetector, samples: list[Sample], num_classes: int, iou_thres: float, ctx: mx.Context
) -> tuple[float, list[float | None]]:
    images = nd.array(np.stack([s.image for s in samples]), ctx=ctx)
    raw = model(images).asnumpy()  # outside autograd.record: BatchNorm uses its running statistics
    preds = [p.tolist() for p in predict(raw, EVAL_CONF_THRES, iou_thres)]
    return sdk.mean_average_precision(preds, [s.boxes.tolist() for s in samples], num_classes)


def _flip(images: np.ndarray, boxes: list[np.ndarray], flips: np.ndarray) -> list[np.ndarray]:
    """Mirror the images where ``flips`` is true (in place) and return their boxes mirrored too."""
    size = images.shape[-1]
    out = []
    for i, b in enumerate(boxes):
        if flips[i]:
            images[i] = images[i][:, :, ::-1]
            b = b.copy()
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
    export = sdk.get_bool(config, "export_symbol", True)
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise sdk.ConfigValueError(
            f"epochs ({epochs}), batch_size ({batch_size}) and learning_rate ({learning_rate}) must be positive"
        )
    ctx = weights.pick_context(config)
    mx.random.seed(seed)
    np.random.seed(seed)
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
        ctx,
    )
    sdk.write_progress(0.05, task=sdk.TaskKind.TRAINING)

    model = build(len(class_names), ctx=ctx)
    pretrained = weights.find_weights(env, config, "pretrained_model_params")
    if pretrained:
        weights.load_pretrained(model, pretrained, ctx)
        # a trained model: Adam's first steps at the full peak rate would undo much of it
        learning_rate *= FINETUNE_LR_SCALE
        logger.info("finetuning at a peak learning rate of %g", learning_rate)
    model.hybridize(static_alloc=True)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total_steps = epochs * steps_per_epoch
    trainer = gluon.Trainer(model.collect_params(), "adam", {"learning_rate": one_cycle(0, total_steps, learning_rate)})
    grid = img_size // STRIDE
    rng = np.random.default_rng(seed)
    best_map, best_stage, step = -1.0, "", 0
    with sdk.ScalarWriter(env.output.tensorboard_dir) as board:
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(train))
            total = 0.0
            for start in range(0, len(order), batch_size):
                batch = [train[i] for i in order[start : start + batch_size]]
                images = np.stack([s.image for s in batch])
                boxes = _flip(images, [s.boxes for s in batch], rng.random(len(batch)) < 0.5)
                target = nd.array(targets_for(boxes, grid, len(class_names)), ctx=ctx)
                trainer.set_learning_rate(one_cycle(step, total_steps, learning_rate))
                with autograd.record():
                    loss = loss_fn(model(nd.array(images, ctx=ctx)), target)
                loss.backward()
                value = float(loss.asscalar())
                if not math.isfinite(value):
                    raise FloatingPointError(f"the loss became {value} at epoch {epoch}; lower learning_rate")
                trainer.step(1)  # loss_fn already averages over the batch
                step += 1
                total += value * len(batch)
            m_ap, per_class = evaluate(model, val, len(class_names), iou_thres, ctx)
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
        model.load_parameters(os.path.join(best_dir, f"{best_stage}.params"), ctx=ctx)
        exported = weights.export_symbol(model, img_size, os.path.join(best_dir, best_stage))
        files = [f"{best_stage}.params", f"{best_stage}.json", *exported]
        sdk.write_model_stage(best_stage, files, best_map, env=env)
        logger.info("exported %s", ", ".join(exported))
    logger.info("best stage %s, mAP@0.5 %.4f, %.1f s", best_stage, best_map, time.monotonic() - started)
