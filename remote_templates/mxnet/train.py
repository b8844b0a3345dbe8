"""Training: fit the tiny detector, evaluate mAP@0.5 on the validation split after every epoch,
save a model stage whenever it improves, export the best one as a symbol graph at the end."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import mxnet as mx
import numpy as np
import weights
from data import box_array, load_split
from detector import STRIDE, TinyDetector, build, loss_fn, predict, targets_for
from mxnet import autograd, gluon, nd

from live_code import sdk

logger = logging.getLogger(__name__)

EVAL_CONF_THRES = 0.01  # mAP needs the low-score predictions too
WARMUP = 0.1  # share of the steps in which the learning rate rises (one-cycle schedule)
FINETUNE_LR_SCALE = 0.1  # of learning_rate, when training starts from a pretrained model


def one_cycle(step: int, total: int, peak: float) -> float:
    """Linear warm-up to ``peak`` over the first 10% of the steps, then cosine down to ~0."""
    rise = max(1, int(total * WARMUP))
    if step < rise:
        return peak * (0.04 + 0.96 * step / rise)
    done = (step - rise) / max(1, total - rise)
    return peak * (0.5 * (1 + math.cos(math.pi * min(1.0, done)))) + peak * 1e-4


def evaluate(
    model: TinyDetector, samples: list[sdk.Sample], num_classes: int, iou_thres: float, ctx: mx.Context
) -> tuple[float, list[float | None]]:
    images = nd.array(np.stack([s.image for s in samples]), ctx=ctx)
    raw = model(images).asnumpy()  # outside autograd.record: BatchNorm uses its running statistics
    preds = [p.tolist() for p in predict(raw, EVAL_CONF_THRES, iou_thres)]
    return sdk.mean_average_precision(preds, [s.boxes.tolist() for s in samples], num_classes)


def _flip(images: np.ndarray, boxes: list[np.ndarray], flips: np.ndarray) -> list[np.ndarray]:
    """Mirror the images where ``flips`` is true (in place) and return their boxes mirrored too."""
    images[flips] = images[flips][..., ::-1]
    size = images.shape[-1]
    return [box_array(sdk.flipped_rows(b.tolist(), size)) if f else b for b, f in zip(boxes, flips)]


def run(env: sdk.Env, config: Mapping[str, Any]) -> None:
    params = sdk.training_params(config, epochs=30, batch_size=8, learning_rate=0.005, img_size=64, stride=STRIDE)
    class_names, epochs, batch_size, learning_rate, img_size, iou_thres, seed = params
    export = sdk.get_bool(config, "export_symbol", True)
    ctx = weights.pick_context(config)
    mx.random.seed(seed)
    np.random.seed(seed)
    log = sdk.TrainingLog(params, env=env)

    train = load_split(sdk.Split.TRAINING, img_size, class_names)
    val = load_split(sdk.Split.VALIDATION, img_size, class_names)
    log.loaded(len(train), len(val), ctx)

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
    step = 0

    def save(stage: str, m_ap: float) -> None:
        weights.save_stage(env, stage, model, class_names, img_size, m_ap)

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
            log.end_epoch(board, epoch, total / len(train), m_ap, per_class, save=save)

    best_stage, best_map = log.best_stage, log.best_map
    if export:
        best_dir = sdk.stage_dir(best_stage, env=env)
        model.load_parameters(os.path.join(best_dir, f"{best_stage}.params"), ctx=ctx)
        exported = weights.export_symbol(model, img_size, os.path.join(best_dir, best_stage))
        files = [f"{best_stage}.params", f"{best_stage}.json", *exported]
        sdk.write_model_stage(best_stage, files, best_map, env=env)
        logger.info("exported %s", ", ".join(exported))
    log.finish()
