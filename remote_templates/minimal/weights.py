"""Model files: finding the ones YMIR hands in, loading them, saving stages, exporting ONNX."""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from detector import TinyDetector, checkpoint, load_checkpoint, model_from_checkpoint

from live_code import sdk

logger = logging.getLogger(__name__)


class ExportFailed(Exception):
    """The ONNX export did not work: a config error, whose fix is onnx or export_onnx."""

    return_code = sdk.ReturnCode.CONFIG_ERROR


def pick_device(config: Mapping[str, Any]) -> torch.device:
    """CUDA when the platform gave a GPU (``gpu_id`` not empty) and torch sees one, else the CPU."""
    return torch.device("cuda", 0) if sdk.gpu_ids(config) and torch.cuda.is_available() else torch.device("cpu")


def load_model(env: sdk.Env, config: Mapping[str, Any]) -> tuple[TinyDetector, dict[str, Any], list[str]]:
    """The model of ``model_params_path`` (mining and infer) in eval mode, its checkpoint and the
    task's class names for it."""
    path = sdk.find_model_files(config, "model_params_path", weights_suffix=".pt", env=env).weights
    try:
        data = load_checkpoint(path)
        model = model_from_checkpoint(data)
    except (ValueError, KeyError, RuntimeError) as e:
        raise sdk.ModelNotFoundError(f"cannot load {path}: {e}") from None
    logger.info("loaded %s (trained at %s px, mAP %.3f)", path, data["img_size"], data["mAP"])
    return model.eval(), data, sdk.model_class_names(config, data["class_names"])


def load_pretrained(model: TinyDetector, path: str) -> None:
    """Start training from ``path``: every tensor whose name and shape match (a model trained on
    other classes keeps its body and gets a fresh head)."""
    try:
        state = load_checkpoint(path)["state_dict"]
    except (ValueError, RuntimeError) as e:
        raise sdk.ModelNotFoundError(f"cannot load the pretrained model {path}: {e}") from None
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    skipped = sorted(set(own) - set(usable))
    logger.info(
        "finetuning from %s (%d tensors loaded%s)",
        path,
        len(usable),
        f", {len(skipped)} new: {', '.join(skipped)}" if skipped else "",
    )


def save_stage(
    env: sdk.Env, stage: str, model: TinyDetector, class_names: list[str], img_size: int, m_ap: float
) -> str:
    """Save ``<stage>.pt`` and record the stage in result.yaml; returns the file's path."""
    path = os.path.join(sdk.stage_dir(stage, env=env), f"{stage}.pt")
    torch.save(checkpoint(model, class_names, img_size, m_ap), path)
    sdk.write_model_stage(stage, [os.path.basename(path)], m_ap, env=env)
    return path


def export_onnx(model: TinyDetector, img_size: int, path: str) -> None:
    """The model as ONNX (opset 13, dynamic batch), through torch's TorchScript exporter, which
    needs only the ``onnx`` package (the default dynamo exporter would also need onnxscript)."""
    dummy = torch.zeros(1, 3, img_size, img_size)
    # torch >= 2.9 defaults to the dynamo exporter (needs onnxscript too); older torch has no switch
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter warns that it is legacy
            torch.onnx.export(
                model.cpu().eval(),
                (dummy,),
                path,
                opset_version=13,
                input_names=["images"],
                output_names=["raw"],
                dynamic_axes={"images": {0: "batch"}, "raw": {0: "batch"}},
                **legacy,
            )
    except Exception as e:  # torch raises several types (OnnxExporterError, RuntimeError, ImportError)
        msg = (
            f"ONNX export to {path} failed: {type(e).__name__}: {e}; install onnx (requirements.txt) "
            "or set export_onnx: false"
        )
        raise ExportFailed(msg) from e
