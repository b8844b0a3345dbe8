"""Model files: which one a run starts from, loading one for prediction, saving model stages.

A model of this template is an ultralytics checkpoint (``.pt``, optimizer stripped): the model
(EMA weights, fp16) with its class names, and its training arguments (``train_args.imgsz`` is
the size mining and infer default to).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from typing import Any, NamedTuple

import download
import torch
import yaml

from live_code import sdk

logger = logging.getLogger(__name__)

_EPOCH_STAGE = re.compile(r"^epoch_[0-9]+$")


class Initial(NamedTuple):
    """What training starts from: a checkpoint path (None: random init) and where it came from."""

    path: str | None
    source: str


def initial_weights(env: sdk.Env, config: Mapping[str, Any], cache_dir: str) -> Initial:
    """The checkpoint training starts from, in this order: a YMIR model of an earlier run
    (``pretrained_model_params``: finetuning), ``pretrained_weights`` (a path, or a URL with
    ``pretrained_sha256``), else none (from scratch). A URL that cannot be fetched (no network)
    means from scratch with a warning, unless ``pretrained_required`` is true."""
    ymir = sdk.pick_checkpoint(sdk.model_paths(config, "pretrained_model_params", env=env), ".pt")
    if ymir:
        return Initial(ymir, "pretrained_model_params")
    named = sdk.get_list(config, "pretrained_model_params", item_type=str)
    if named:
        logger.warning("pretrained_model_params %s holds no .pt file of this template; not finetuning from it", named)
    value = str(config.get("pretrained_weights") or "").strip()
    sha256 = str(config.get("pretrained_sha256") or "").strip().lower()
    required = sdk.get_bool(config, "pretrained_required", False)
    if not value:
        return Initial(None, "")
    if sha256 and not download.SHA256_RE.match(sha256):
        raise sdk.ConfigValueError(f"config key 'pretrained_sha256': {sha256!r} is not 64 hex digits")
    if download.is_url(value):
        if not sha256:
            msg = (
                "config key 'pretrained_weights' is a URL, which does not pin a file: set pretrained_sha256 "
                "to the file's SHA-256 (the output of `sha256sum FILE`)"
            )
            raise sdk.ConfigValueError(msg)
        retries = sdk.get_int(config, "download_retries", 3)
        try:
            return Initial(download.fetch(value, sha256, cache_dir, retries=max(0, retries)), "pretrained_weights")
        except download.ChecksumMismatch as e:
            raise sdk.ConfigValueError(str(e)) from None
        except download.DownloadFailed as e:
            if required:
                raise
            logger.warning("%s; pretrained_required is false, so training starts from scratch", e)
            return Initial(None, "")
    path = value if os.path.isabs(value) else os.path.join(env.input.models_dir, value)
    if not os.path.isfile(path):
        raise sdk.ConfigValueError(f"config key 'pretrained_weights': {path} is not a file")
    if sha256 and download.file_sha256(path) != sha256:
        raise sdk.ConfigValueError(f"{path} does not have the SHA-256 {sha256} that pretrained_sha256 names")
    return Initial(path, "pretrained_weights")


class Loaded(NamedTuple):
    """A model ready to predict: eval mode, fp32, on its device."""

    model: torch.nn.Module
    path: str
    class_names: list[str]
    #: the input size it was trained at
    img_size: int
    stride: int


def load_for_prediction(env: sdk.Env, config: Mapping[str, Any], device: torch.device) -> Loaded:
    """The model of ``model_params_path`` (mining and infer)."""
    from ultralytics.nn.tasks import load_checkpoint

    path = sdk.find_model_files(config, "model_params_path", weights_suffix=".pt", env=env).weights
    try:
        model, ckpt = load_checkpoint(path, device=device, fuse=True)
    except Exception as e:  # torch.load and ultralytics raise many types for a foreign file
        raise sdk.ModelNotFoundError(f"cannot load {path} as an ultralytics model: {type(e).__name__}: {e}") from None
    names = getattr(model, "names", None) or {}
    class_names = [str(names[i]) for i in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]
    train_args = ckpt.get("train_args") or {}
    img_size = train_args.get("imgsz", 640)
    img_size = int(img_size if isinstance(img_size, int) else max(img_size))
    stride = int(max(getattr(model, "stride", torch.tensor([32])).tolist()))
    logger.info(
        "loaded %s: %d classes, trained at %d px, stride %d, on %s", path, len(class_names), img_size, stride, device
    )
    return Loaded(model.eval(), path, class_names, img_size, stride)


def save_stage(env: sdk.Env, stage: str, checkpoint: str, m_ap: float) -> str:
    """Copy ultralytics' ``checkpoint`` without its optimizer state to ``<stage>.pt`` and record the
    stage in result.yaml; returns the saved file's path."""
    from ultralytics.utils.torch_utils import strip_optimizer

    path = os.path.join(sdk.stage_dir(stage, env=env), f"{stage}.pt")
    strip_optimizer(checkpoint, s=path)
    if not os.path.isfile(path):
        raise sdk.ModelNotFoundError(f"ultralytics wrote no model from {checkpoint} to {path}")
    sdk.write_model_stage(stage, [os.path.basename(path)], m_ap, env=env)
    drop_unlisted_epochs(env)
    return path


def drop_unlisted_epochs(env: sdk.Env) -> None:
    """Delete the files of ``epoch_N`` stages that result.yaml no longer lists (the SDK keeps the
    10 newest stages and the best), so that a small save_period does not fill /out/models."""
    with open(env.output.training_result_file, encoding="utf-8") as f:
        result = yaml.safe_load(f) or {}
    stages = result.get("model_stages") or {}
    listed = {name for stage in stages.values() for name in stage.get("files", [])} | set(result.get("model") or [])
    models = env.output.models_dir
    for name in os.listdir(models):
        path = os.path.join(models, name)
        if _EPOCH_STAGE.match(name) and os.path.isdir(path) and name not in stages:
            shutil.rmtree(path)
        elif _EPOCH_STAGE.match(name.rsplit(".", 1)[0]) and os.path.isfile(path) and name not in listed:
            os.remove(path)
