"""Training: models/result.yaml."""

from __future__ import annotations

import math
import os
from typing import Any

import yaml

from live_code import contract
from live_code.run.outputs._rules import Problem, _as_float, _as_int, _is_int, _is_number, _read_text, _Report


def validate_training_result(path: str | os.PathLike[str], protocol: str) -> list[Problem]:
    """Check ``result.yaml`` (or ``<out_dir>/models/result.yaml`` when given a directory).

    Model files are looked up next to result.yaml: ``<models>/<stage>/<file>`` (protocol >= 1.1.0)
    or ``<models>/<file>``. The legacy ``{model, map}`` schema is accepted for every protocol (YMIR
    2.x converts it); ``model_stages`` is a problem for 0.0.1, which YMIR 1.1 cannot read.
    """
    file = os.fspath(path)
    if os.path.isdir(file):
        file = os.path.join(file, "models", "result.yaml")
    report = _Report(file)
    data = _load_yaml(file, report)
    if data is None:
        return report.done()
    if not isinstance(data, dict):
        report.add("yaml-not-mapping", "", f"must be a YAML mapping, got {type(data).__name__}")
        return report.done()
    models_dir = os.path.dirname(file)
    if "model_stages" in data or "model" not in data:
        if not contract.uses_model_stages(protocol):
            report.add(
                "stages-on-protocol-0.0.1",
                "model_stages",
                f"protocol {protocol} (YMIR 1.1) reads only the legacy 'model' and 'map' keys",
            )
        else:
            _check_stages(data, models_dir, contract.allows_stage_dirs(protocol), report)
    else:
        _check_files(report, "model", data.get("model"), models_dir, None)
        if "map" not in data:
            report.add("legacy-map-missing", "map", "missing: the legacy schema needs the model's mAP as 'map'")
        else:
            _check_unit(report, "map", data["map"])
    return report.done()


def _load_yaml(file: str, report: _Report) -> Any:
    text = _read_text(file, report, "a training")
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        place = f"line {mark.line + 1}" if mark is not None else ""
        reason = getattr(e, "problem", None) or str(e)
        report.add("yaml-invalid", place, f"not valid YAML (truncated?): {reason}")
        return None
    if data is None:
        report.add("yaml-not-mapping", "", "empty")
    return data


def _check_stages(data: dict[Any, Any], models_dir: str, stage_dirs: bool, report: _Report) -> None:
    stages = data.get("model_stages")
    if not isinstance(stages, dict) or not stages:
        report.add(
            "stages-missing", "model_stages", f"must be a non-empty mapping of stage name to stage, got {stages!r}"
        )
        return
    for key, stage in stages.items():
        _check_stage(key, stage, models_dir, stage_dirs, report)
    best = data.get("best_stage_name")
    if best is None:
        report.add("best-stage-missing", "best_stage_name", "missing: must name the best of model_stages")
    elif not isinstance(best, (str, int, float)) or best not in stages:  # YMIR looks the key up as written
        report.add(
            "best-stage-unknown",
            "best_stage_name",
            f"{best!r} is not a stage of model_stages ({', '.join(map(str, stages))})",
        )
    attachments = data.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, dict):
            report.add(
                "attachments-not-mapping",
                "attachments",
                f"must be a mapping of section to file names, got {attachments!r}",
            )
        else:
            for section, files in attachments.items():
                where = os.path.join(models_dir, "attachments", str(section))
                _check_files(report, f"attachments.{section}", files, where, None)
    if "evaluate_config" in data and not isinstance(data["evaluate_config"], dict):
        report.add(
            "evaluate-config-not-mapping", "evaluate_config", f"must be a mapping, got {data['evaluate_config']!r}"
        )


def _check_stage(key: Any, stage: Any, models_dir: str, stage_dirs: bool, report: _Report) -> None:
    place = f"model_stages.{key}"
    name = str(key)  # pydantic makes a key text; YMIR packs the stage under that directory
    if not isinstance(key, str) or not key or "/" in key or key in (".", ".."):
        report.add(
            "stage-key-not-plain",
            place,
            "a stage name should be a plain name (it becomes a directory of the model package): letters, digits and _",
        )
    if not isinstance(stage, dict):
        report.add("stage-not-mapping", place, f"must be a mapping, got {type(stage).__name__}")
        return
    given = stage.get("stage_name")
    if not isinstance(given, (str, int, float)):
        report.add("stage-name-missing", f"{place}.stage_name", f"must be the stage's key {key!r}, got {given!r}")
    elif str(given) != name:
        report.add("stage-name-differs", f"{place}.stage_name", f"should equal the stage's key {key!r}, got {given!r}")
    _check_files(report, f"{place}.files", stage.get("files"), models_dir, name if stage_dirs else None)
    if "timestamp" not in stage:
        report.add("timestamp-missing", f"{place}.timestamp", "missing: integer seconds")
    else:
        _check_int(report, f"{place}.timestamp", stage["timestamp"], "timestamp")
    for metric in contract.STAGE_METRICS:
        if metric in stage:
            _check_unit(report, f"{place}.{metric}", stage[metric])
    if not any(m in stage for m in contract.MAIN_METRICS):
        report.add(
            "main-metric-missing",
            place,
            f"no main metric: needs one of {', '.join(contract.MAIN_METRICS)} (YMIR records 0)",
        )
    for count in contract.STAGE_COUNTS:
        if count in stage:
            _check_int(report, f"{place}.{count}", stage[count], "count")


def _check_int(report: _Report, place: str, value: Any, kind: str) -> None:
    """A timestamp (any integer) or a count (>= 0) as ModelStageStorage reads it."""
    if _is_int(value) and (kind == "timestamp" or value >= 0):
        return
    number = _as_int(value)
    wanted = "integer seconds" if kind == "timestamp" else "an integer >= 0"
    if number is None or (kind == "count" and number < 0):
        report.add(f"{kind}-invalid", place, f"must be {wanted}, got {value!r}")
    else:
        report.add(f"{kind}-coerced", place, f"must be {wanted}, got {value!r}: YMIR reads it as {number}")


def _check_unit(report: _Report, place: str, value: Any) -> None:
    number = _as_float(value)
    if number is None:
        report.add("metric-invalid", place, f"must be a number within 0..1, got {value!r}")
    elif not math.isfinite(number):
        report.add("metric-invalid", place, f"must be finite, got {value!r}")
    elif not 0.0 <= number <= 1.0:
        report.add("metric-invalid", place, f"must be within 0..1 (YMIR refuses it), got {value!r}")
    elif not _is_number(value):
        report.add("metric-coerced", place, f"must be a number, got {value!r}: YMIR reads it as {number!r}")


def _check_files(report: _Report, place: str, files: Any, base: str, stage: str | None) -> None:
    if not isinstance(files, list):
        report.add("files-not-list", place, f"must be a non-empty list of file basenames, got {files!r}")
        return
    if not files:
        report.add("files-empty", place, "empty: list the files of the model (YMIR packs none)")
        return
    for i, name in enumerate(files):
        where = f"{place}[{i}]"
        if not isinstance(name, str) or not name:
            report.add("file-name-invalid", where, f"must be a file's basename, got {name!r}")
        elif os.path.isabs(name):
            report.add("file-absolute", where, f"absolute path {name!r}: list basenames of files in the models dir")
        else:
            places = ([os.path.join(base, stage, name)] if stage is not None else []) + [os.path.join(base, name)]
            found = next((p for p in places if os.path.lexists(p)), None)
            if found is None:
                report.add("file-not-found", where, f"file not found: looked at {' and '.join(places)}")
            elif os.path.islink(found):
                report.add(
                    "file-symlink", where, f"{found} is a symlink: YMIR packs it as a link, which breaks the next task"
                )
            elif not os.path.isfile(found):
                report.add("file-not-regular", where, f"{found} is not a regular file")
            elif "/" in name or "\\" in name:
                report.add(
                    "file-not-basename",
                    where,
                    f"{name!r} is not a basename: list files of the stage's directory by name",
                )
