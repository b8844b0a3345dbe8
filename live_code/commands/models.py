"""``--model``: a stage of an earlier run's ``out/models`` or of a YMIR model package, and its
files installed into a new task's ``in/models``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from live_code import contract
from live_code.errors import ConfigError
from live_code.run.records import CONFIG_NAME


class Model(NamedTuple):
    stage: str
    files: tuple[Path, ...]
    class_names: tuple[str, ...]


def read_model(model_dir: Path, stage: str | None = None) -> Model:
    """A stage of an earlier run's ``out/models`` (``result.yaml``) or of a YMIR model package
    (``ymir-info.yaml``): the best one unless ``stage`` is given."""
    info: dict[str, Any] = {}
    names: tuple[Any, ...] = ()
    if (model_dir / "ymir-info.yaml").is_file():
        info = yaml.safe_load((model_dir / "ymir-info.yaml").read_text()) or {}
        names = tuple((info.get("executor_config") or {}).get("class_names") or ())
        stages, best = info.get("stages") or {}, info.get("best_stage_name")
    elif (model_dir / "result.yaml").is_file():
        result = yaml.safe_load((model_dir / "result.yaml").read_text()) or {}
        if "model" in result:  # the legacy schema: one flat stage
            stages, best = {contract.LEGACY_STAGE_NAME: {"files": result["model"]}}, contract.LEGACY_STAGE_NAME
        else:
            stages, best = result.get("model_stages") or {}, result.get("best_stage_name")
    else:
        raise ConfigError(
            f"{model_dir} holds no result.yaml or ymir-info.yaml: it is not a model",
            value=str(model_dir),
            hint="give an earlier training run's out/models, or an unpacked YMIR model package",
        )
    name = stage or best
    if name not in stages:
        raise ConfigError(
            f"{model_dir} has no stage {name!r}", value=sorted(stages), hint="pass --stage with one of them"
        )
    files = []
    for f in stages[name].get("files") or []:
        path = next((p for p in (model_dir / str(name) / f, model_dir / f) if p.is_file()), None)
        if path is None:
            raise ConfigError(f"{model_dir}: file {f} of stage {name} is missing", value=f)
        files.append(path)
    if not names:
        for cfg in (model_dir.parent / CONFIG_NAME, model_dir.parent.parent / "in" / "config.yaml"):
            if cfg.is_file():
                names = tuple((yaml.safe_load(cfg.read_text()) or {}).get("class_names") or ())
                break
    return Model(str(name), tuple(files), tuple(str(n) for n in names))


def install_model(model: Model, in_dir: Path, protocol: str) -> list[str]:
    stage_dir = contract.allows_stage_dirs(protocol)
    paths = []
    for f in model.files:
        rel = f"models/{model.stage}/{f.name}" if stage_dir else f"models/{f.name}"
        (in_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, in_dir / rel)
        paths.append(f"{contract.IN_DIR}/{rel}")
    return paths
