"""The training result: ``/out/models/result.yaml`` (contract section 6).

Protocol >= 1.0.0 keeps one entry per model stage under ``model_stages`` and names the best one;
protocol 0.0.1 (YMIR 1.1) reads only the legacy ``{model: [files], map: x}``.
"""

from __future__ import annotations

import logging
import math
import operator
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from live_code import contract
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ResultError
from live_code.sdk._io import replace_file

logger = logging.getLogger(__name__)


def write_model_stage(
    stage_name: str,
    files: Sequence[str],
    metrics: float | Mapping[str, float],
    *,
    timestamp: int | None = None,
    attachments: Mapping[str, Sequence[str]] | None = None,
    evaluate_config: Mapping[str, Any] | None = None,
    env: Env | None = None,
) -> str:
    """Record one model stage (a checkpoint) in result.yaml; returns the best stage's name.

    ``files`` are basenames already saved in the models dir: ``/out/models/<stage>/<f>`` or
    ``/out/models/<f>`` for protocol 1.1.0, only ``/out/models/<f>`` before (YMIR 1.x reads flat
    files). ``metrics`` is the mAP, or a mapping of contract.STAGE_METRICS (floats in 0..1) and
    ``tp``/``fp``/``fn`` (ints >= 0) with at least one main metric (maskAP, mIoU or mAP).
    ``stage_name`` must be an identifier (``-`` is turned into ``_``). ``attachments`` maps a
    section to files under ``/out/models/attachments/<section>/``.

    Protocol >= 1.0.0: the stage is merged into ``model_stages``, ``best_stage_name`` is the stage
    with the highest main metric (ties: the newer), and at most 11 stages are kept (10 newest + the
    best; files of dropped stages are left on disk). Protocol 0.0.1: the legacy file keeps the
    better of the stage already written and this one. Every write is atomic.
    """
    env = env or read_env()
    protocol = env.protocol_version
    name = _check_stage_name(stage_name)
    values = _check_metrics(metrics)
    models_dir = env.output.models_dir
    stage_files = _check_files(models_dir, name, files, stage_dirs=contract.allows_stage_dirs(protocol))
    stamp = _check_timestamp(timestamp)
    path = env.output.training_result_file
    if not contract.uses_model_stages(protocol):
        if attachments or evaluate_config:
            logger.warning("protocol %s has no attachments or evaluate_config; not written", protocol)
        return _write_legacy(path, stage_files, values)
    result = _load_stages_result(path)
    stages: dict[str, Any] = result.setdefault("model_stages", {})
    stages.pop(name, None)  # re-insert so the newest stays last
    stages[name] = {"stage_name": name, "files": stage_files, "timestamp": stamp, **values}
    main = next(m for m in contract.MAIN_METRICS if any(m in s for s in stages.values()))
    best = max(stages, key=lambda k: (float(stages[k].get(main, 0.0)), int(stages[k].get("timestamp", 0))))
    result["model_stages"] = _prune(stages, best)
    result["best_stage_name"] = best
    # ymir_exc also writes the best stage's main metric at the top; YMIR 2.x ignores it
    result["mAP"] = float(stages[best].get(main, 0.0))
    if attachments is not None:
        result["attachments"] = _check_attachments(models_dir, attachments)
    if evaluate_config is not None:
        if not isinstance(evaluate_config, Mapping):
            raise ResultError(f"evaluate_config must be a mapping, got {evaluate_config!r}")
        result["evaluate_config"] = dict(evaluate_config)
    _dump(path, result)
    return best


def _check_stage_name(stage_name: str) -> str:
    name = str(stage_name).replace("-", "_")
    if not contract.STAGE_NAME_RE.match(name):
        msg = f"stage name {stage_name!r} must be letters, digits and '_' and not start with a digit, e.g. 'epoch_10'"
        raise ResultError(msg)
    return name


def _check_metrics(metrics: float | Mapping[str, float]) -> dict[str, float | int]:
    raw: Mapping[str, Any] = metrics if isinstance(metrics, Mapping) else {"mAP": metrics}
    known = (*contract.STAGE_METRICS, *contract.STAGE_COUNTS)
    values: dict[str, float | int] = {}
    for key, value in raw.items():
        if key in contract.STAGE_METRICS:
            values[key] = _unit_float(key, value)
        elif key in contract.STAGE_COUNTS:
            values[key] = _count(key, value)
        else:
            raise ResultError(f"unknown metric {key!r}; known metrics: {', '.join(known)}")
    if not any(m in values for m in contract.MAIN_METRICS):
        raise ResultError(f"metrics need one of {', '.join(contract.MAIN_METRICS)}, got {sorted(raw)}")
    return values


def _unit_float(key: str, value: Any) -> float:
    try:
        if isinstance(value, (bool, str)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ResultError(f"metric {key} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ResultError(f"metric {key} must be within 0..1 (YMIR refuses others), got {value!r}")
    return number


def _count(key: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        count = operator.index(value)
    except TypeError:
        raise ResultError(f"{key} must be an integer, got {value!r}") from None
    if count < 0:
        raise ResultError(f"{key} must be >= 0, got {value!r}")
    return count


def _check_timestamp(timestamp: int | None) -> int:
    if timestamp is None:
        return int(time.time())
    try:
        if isinstance(timestamp, bool):
            raise TypeError
        return operator.index(timestamp)
    except TypeError:
        raise ResultError(f"timestamp must be integer seconds, got {timestamp!r}") from None


def _check_basename(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or "/" in value or "\\" in value or value in (".", ".."):
        raise ResultError(f"{what} must be a file's basename (no directories), got {value!r}")
    return value


def _check_files(models_dir: str, stage: str, files: Sequence[str], *, stage_dirs: bool) -> list[str]:
    if isinstance(files, str) or not files:
        raise ResultError(f"files of stage {stage!r} must be a non-empty list of basenames, got {files!r}")
    names = []
    for value in files:
        name = _check_basename(value, f"file of stage {stage!r}")
        places = [os.path.join(models_dir, stage, name)] if stage_dirs else []
        places.append(os.path.join(models_dir, name))
        found = next((p for p in places if os.path.lexists(p)), None)
        if found is None:
            raise ResultError(f"model file {name!r} of stage {stage!r} not found; looked at {', '.join(places)}")
        if os.path.islink(found) or not os.path.isfile(found):
            raise ResultError(f"model file {found!r} must be a regular file (YMIR packs links as links)")
        if name not in names:
            names.append(name)
    return names


def _check_attachments(models_dir: str, attachments: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for section, files in attachments.items():
        section = _check_basename(section, "attachment section")
        if isinstance(files, str):
            raise ResultError(f"attachments[{section!r}] must be a list of basenames, got {files!r}")
        out[section] = []
        for value in files:
            name = _check_basename(value, f"attachment of {section!r}")
            path = os.path.join(models_dir, "attachments", section, name)
            if os.path.islink(path) or not os.path.isfile(path):
                raise ResultError(f"attachment {path!r} is missing or not a regular file")
            out[section].append(name)
    return out


def _prune(stages: dict[str, Any], best: str) -> dict[str, Any]:
    if len(stages) <= contract.MAX_STAGES:
        return stages
    newest = sorted((k for k in stages if k != best), key=lambda k: int(stages[k].get("timestamp", 0)))
    keep = set(newest[-(contract.MAX_STAGES - 1) :]) | {best}
    return {k: v for k, v in stages.items() if k in keep}


def _load(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ResultError(f"cannot read the existing {path!r} to merge into it: {e}; remove it") from None


def _load_stages_result(path: str) -> dict[str, Any]:
    data = _load(path)
    if data is None:
        return {}
    stages = data.get("model_stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict) or not all(isinstance(s, dict) for s in stages.values()):
        raise ResultError(f"the existing {path!r} has no model_stages mapping to merge into; remove it")
    result: dict[str, Any] = data
    return result


def _write_legacy(path: str, files: list[str], values: Mapping[str, float | int]) -> str:
    score = float(next(values[m] for m in contract.MAIN_METRICS if m in values))
    old = _load(path)
    old_map = old.get("map") if isinstance(old, dict) else None
    if isinstance(old_map, (int, float)) and not isinstance(old_map, bool) and old_map > score:
        logger.info("%s keeps its better model (map %s > %s)", path, old_map, score)
        return contract.LEGACY_STAGE_NAME
    _dump(path, {"model": files, "map": score})
    return contract.LEGACY_STAGE_NAME


def _dump(path: str, result: Mapping[str, Any]) -> None:
    try:
        text = yaml.safe_dump(dict(result), sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as e:
        raise ResultError(f"the training result cannot be written as YAML: {e}") from None
    replace_file(path, text)
