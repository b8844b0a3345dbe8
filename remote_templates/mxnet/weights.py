"""Model files: finding the ones YMIR hands in, loading them, saving stages, exporting the symbol graph."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import mxnet as mx
from detector import TinyDetector, load_checkpoint, meta_path_for, save_checkpoint
from mxnet import nd

from live_code import sdk

logger = logging.getLogger(__name__)

EXPORT_EPOCH = 0  # <stage>-0000.params: MXNet's export names the parameter file by an epoch number


def pick_context(config: Mapping[str, Any]) -> mx.Context:
    """The first GPU when the platform gave one (``gpu_id`` not empty) and MXNet sees one, else the CPU."""
    return mx.gpu(0) if sdk.gpu_ids(config) and mx.context.num_gpus() > 0 else mx.cpu()


def _is_checkpoint(path: str) -> bool:
    """A ``<stage>.params`` of this template: its ``.json`` lies next to it (an exported
    ``<stage>-0000.params`` has none)."""
    return path.endswith(".params") and os.path.isfile(path) and os.path.isfile(meta_path_for(path))


def find_weights(env: sdk.Env, config: Mapping[str, Any], key: str) -> str | None:
    """The checkpoint named by ``config[key]`` (``/in/models/<stage>/<file>`` from the platform; a
    bare name is looked up in the models dir), by ``sdk.pick_checkpoint``'s order."""
    found = [p for p in sdk.model_paths(config, key, env=env) if _is_checkpoint(p)]
    return sdk.pick_checkpoint(found, ".params")


def load_model(
    env: sdk.Env, config: Mapping[str, Any], ctx: mx.Context
) -> tuple[TinyDetector, dict[str, Any], list[str]]:
    """The model of ``model_params_path`` (mining and infer), its metadata and the task's class
    names for it."""
    path = find_weights(env, config, "model_params_path")
    if path is None:
        named = sdk.get_list(config, "model_params_path", item_type=str)
        raise sdk.ModelNotFoundError(
            f"no .params checkpoint of this template (with its .json) among model_params_path "
            f"{named!r}; choose a model trained with this template"
        )
    try:
        model, meta = load_checkpoint(path, ctx)
    except (ValueError, KeyError, mx.base.MXNetError) as e:
        raise sdk.ModelNotFoundError(f"cannot load {path}: {e}") from None
    logger.info("loaded %s (trained at %s px, mAP %.3f)", path, meta["img_size"], meta["mAP"])
    return model, meta, sdk.model_class_names(config, meta["class_names"])


def load_pretrained(model: TinyDetector, path: str, ctx: mx.Context) -> None:
    """Start training from ``path``: every parameter whose name and shape match (a model trained on
    other classes keeps its body and gets a fresh head)."""
    try:
        saved = nd.load(path)
    except mx.base.MXNetError as e:
        raise sdk.ModelNotFoundError(f"cannot load the pretrained model {path}: {e}") from None
    own = model._collect_params_with_prefix()  # the names save_parameters writes
    used, skipped = 0, []
    for name, param in own.items():
        value = saved.get(name)
        if value is not None and value.shape == param.shape:
            param.set_data(value.as_in_context(ctx))
            used += 1
        else:
            skipped.append(name)
    logger.info(
        "finetuning from %s (%d parameters loaded%s)",
        path,
        used,
        f", {len(skipped)} new: {', '.join(skipped)}" if skipped else "",
    )


def save_stage(
    env: sdk.Env, stage: str, model: TinyDetector, class_names: list[str], img_size: int, m_ap: float
) -> list[str]:
    """Save ``<stage>.params`` + ``<stage>.json`` and record the stage in result.yaml; returns the
    files' basenames."""
    files = save_checkpoint(
        model, os.path.join(sdk.stage_dir(stage, env=env), f"{stage}.params"), class_names, img_size, m_ap
    )
    sdk.write_model_stage(stage, files, m_ap, env=env)
    return files


def export_symbol(model: TinyDetector, img_size: int, prefix: str) -> list[str]:
    """The hybridized model as ``<prefix>-symbol.json`` + ``<prefix>-0000.params`` (loadable with
    ``gluon.SymbolBlock.imports`` or MXNet's Module API, without this template's code)."""
    model.hybridize()
    model(nd.zeros((1, 3, img_size, img_size), ctx=model.head.weight.list_ctx()[0]))  # builds the graph
    model.export(prefix, epoch=EXPORT_EPOCH)
    base = os.path.basename(prefix)
    return [f"{base}-symbol.json", f"{base}-{EXPORT_EPOCH:04d}.params"]
