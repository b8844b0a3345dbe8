"""Validate a task's outputs in /out against the contract; every check returns Problems, never bools.

The gate judges as YMIR does (ymir-contract.md sections 6-8 and "What YMIR's own parsers
enforce"): each check is a rule of ``RULES``, an *error* where a YMIR version (2.5.0 or 1.1.0)
rejects the file or silently loses data for it, a *warning* where none does. ``RULES`` names the
parser for each; ``raise_for_problems`` refuses only errors.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import os
import stat
import sys
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import yaml

from live_code import contract
from live_code.contract import TaskKind
from live_code.errors import OutputError

log = logging.getLogger(__name__)

#: at most this many errors, and as many warnings, are listed per file; the rest are counted
MAX_PROBLEMS_PER_FILE = 50

ERROR = "error"
WARNING = "warning"


class Rule(NamedTuple):
    """One check of the gate and what YMIR does with a file that breaks it."""

    severity: str
    #: an error: the YMIR parser that rejects the file or silently loses data for it; a warning:
    #: what the parsers do instead. ``mir/...`` is ``ymir/command/mir/...`` of IndustryEssentials/ymir
    #: (ymir-contract.md, "Sources"), read for this table: 2.x infer.py @5b29ea9, training.py and
    #: mining.py @23bd445, models.py and annotations.py @2bb1c37, class_ids.py @afa6fa9, ymir_monitor
    #: crontab_job.py @fa92d2c; 1.x infer.py @01b2e3d, mining.py @052b2e5; with the runs of the
    #: 2.5.0 and 1.1.0 parsers in ymir-contract.md ("What YMIR's own parsers enforce").
    ymir: str


_TRAIN, _MODELS = "mir/commands/training.py", "mir/tools/models.py"
_MINE, _INFER = "mir/commands/mining.py", "mir/commands/infer.py"
_PARSE_DICT = f"YMIR 2.5.0 {_INFER} parses 'box' with protobuf json_format.ParseDict into a Rect"

RULES: dict[str, Rule] = {
    # -- every output file
    "output-missing": Rule(
        ERROR, f"YMIR 2.5.0 and 1.1.0: {_TRAIN} and {_MINE} fail the task with 160011, {_INFER} with 160011 or 169999"
    ),
    "output-symlink": Rule(
        ERROR,
        f"YMIR 2.5.0 and 1.1.0 open the file on the host ({_TRAIN}, {_MINE}, {_INFER}), "
        "where a link made in the container resolves among the host's paths: a link to "
        "/in/... dangles (160011, 169999); live-code reads through no link a job made",
    ),
    "output-special": Rule(
        ERROR,
        f"YMIR 2.5.0 and 1.1.0 open() the file ({_TRAIN}, {_MINE}, {_INFER}): a FIFO "
        "blocks the task forever, a socket fails",
    ),
    "output-unreadable": Rule(
        ERROR, "YMIR 2.5.0 and 1.1.0 open() it and fail the same way (a directory, no permission)"
    ),
    "output-not-utf8": Rule(
        ERROR, "YMIR 2.5.0 and 1.1.0 read it as UTF-8 text (open(path, 'r')) and fail to decode it"
    ),
    # -- training: models/result.yaml
    "yaml-invalid": Rule(ERROR, f"YMIR 2.5.0 {_TRAIN} yaml.safe_load raises: the task fails (160011)"),
    "yaml-not-mapping": Rule(
        ERROR,
        f"YMIR 2.5.0 {_TRAIN} looks up 'model' and 'model_stages' in it: nothing, "
        "a list or a scalar has neither, and the task fails",
    ),
    "stages-on-protocol-0.0.1": Rule(ERROR, f"YMIR 1.1.0 {_TRAIN} reads only the legacy keys (KeyError: 'model')"),
    "stages-missing": Rule(
        ERROR,
        f"YMIR 2.5.0 {_TRAIN}: no non-empty model_stages mapping (and no legacy "
        "'model') fails the task ('can not find model stages')",
    ),
    "stage-not-mapping": Rule(ERROR, f"YMIR 2.5.0 {_MODELS} ModelStageStorage.parse_obj fails"),
    "stage-key-not-plain": Rule(
        WARNING,
        f"YMIR 2.5.0 {_MODELS} takes any key as the stage's directory in the "
        "model package; identifiers are what the SDK writes (ymir-contract.md 6.1)",
    ),
    "stage-name-missing": Rule(ERROR, f"YMIR 2.5.0 {_MODELS} ModelStageStorage: stage_name is a required str"),
    "stage-name-differs": Rule(
        WARNING,
        f"YMIR 2.5.0 {_MODELS} never compares stage_name with the stage's key (the key names the stage's directory)",
    ),
    "files-not-list": Rule(
        ERROR,
        f"YMIR 2.5.0 {_MODELS}: stage files and attachment sections are List[str] (pydantic); anything else fails",
    ),
    "files-empty": Rule(WARNING, f"YMIR 2.5.0 {_MODELS} accepts an empty list and packs no file for it"),
    "file-name-invalid": Rule(
        ERROR,
        f"YMIR 2.5.0 {_MODELS}: null fails List[str], and '' or a number names no file, so packing fails (160011)",
    ),
    "file-absolute": Rule(
        ERROR,
        f"YMIR 2.5.0 {_MODELS} looks the name up on the host, where the container's "
        "absolute path is not (ymir-contract.md: absolute paths fail)",
    ),
    "file-not-found": Rule(
        ERROR,
        f"YMIR 2.5.0 {_MODELS} _find_model_file (stage dir, then models dir) raises "
        "FileNotFoundError: packing fails (160011)",
    ),
    "file-symlink": Rule(
        ERROR,
        f"YMIR 2.5.0 {_MODELS} packs a link as a link (tarfile.add), which breaks the next task that unpacks the model",
    ),
    "file-not-regular": Rule(
        ERROR, f"YMIR 2.5.0 {_MODELS} finds only regular files (os.path.isfile): packing fails (160011)"
    ),
    "file-not-basename": Rule(
        WARNING,
        f"YMIR 2.5.0 {_MODELS} joins the name to the stage dir or the models dir, "
        "so a relative path below them is found and packed",
    ),
    "timestamp-missing": Rule(ERROR, f"YMIR 2.5.0 {_MODELS} ModelStageStorage: timestamp is a required int"),
    "timestamp-invalid": Rule(ERROR, f"YMIR 2.5.0 {_MODELS} ModelStageStorage.timestamp: int() of it fails"),
    "timestamp-coerced": Rule(WARNING, f"YMIR 2.5.0 {_MODELS} (pydantic) stores int() of it"),
    "metric-invalid": Rule(
        ERROR,
        f"YMIR 2.5.0 {_MODELS} ModelStageStorage metrics are floats within 0..1 "
        f"(Field(ge=0, le=1)); {_TRAIN} reads the legacy map with float(): 72, NaN or "
        "text fail",
    ),
    "metric-coerced": Rule(WARNING, f"YMIR 2.5.0 {_MODELS} (pydantic) stores float() of it"),
    "main-metric-missing": Rule(WARNING, f"YMIR 2.5.0 {_MODELS} defaults a missing metric to 0"),
    "count-invalid": Rule(ERROR, f"YMIR 2.5.0 {_MODELS} ModelStageStorage tp, fp, fn are ints >= 0 (Field(ge=0))"),
    "count-coerced": Rule(WARNING, f"YMIR 2.5.0 {_MODELS} (pydantic) stores int() of it"),
    "best-stage-missing": Rule(ERROR, f"YMIR 2.5.0 {_TRAIN} reads result['best_stage_name'] (KeyError)"),
    "best-stage-unknown": Rule(ERROR, f"YMIR 2.5.0 {_TRAIN} looks it up in model_stages (KeyError)"),
    "attachments-not-mapping": Rule(ERROR, f"YMIR 2.5.0 {_MODELS} ModelStorage.attachments is a Dict[str, List[str]]"),
    "evaluate-config-not-mapping": Rule(
        ERROR, f"YMIR 2.5.0 {_MODELS} ModelStorage.evaluate_config is a Dict[str, float]"
    ),
    "legacy-map-missing": Rule(
        ERROR, f"YMIR 2.5.0 {_TRAIN} reads float(result['map']) for the legacy schema (KeyError)"
    ),
    # -- mining: result.tsv
    "tsv-space": Rule(
        ERROR,
        f"YMIR 2.5.0 and 1.1.0 {_MINE} split a line at the TAB only: the asset id becomes "
        "'<sha1>.jpg 0' and nothing is selected",
    ),
    "tsv-no-score": Rule(WARNING, f"YMIR 2.5.0 and 1.1.0 {_MINE} read only the path (column 1)"),
    "tsv-score": Rule(
        WARNING, f"YMIR 2.5.0 and 1.1.0 {_MINE} never read the score: they keep the first topk lines as written"
    ),
    "tsv-not-candidate": Rule(
        ERROR,
        f"YMIR 2.5.0 and 1.1.0 {_MINE} keep the first topk lines by asset id: a "
        "line that is no candidate takes a place and selects nothing",
    ),
    "tsv-path-differs": Rule(
        WARNING,
        f"YMIR 2.5.0 and 1.1.0 {_MINE} match a line by its asset id (basename "
        "without extension), not by the whole path",
    ),
    "tsv-duplicate": Rule(
        ERROR,
        f"YMIR 2.5.0 and 1.1.0 {_MINE} count every line toward topk but select an asset "
        "once: a repeated line shrinks the selection",
    ),
    "tsv-unsorted": Rule(
        ERROR,
        f"YMIR 2.5.0 and 1.1.0 {_MINE} keep the first topk lines as written (no sort): the wrong images are selected",
    ),
    "tsv-empty": Rule(ERROR, f"YMIR 2.5.0 and 1.1.0 {_MINE} select nothing"),
    "tsv-candidates-missing": Rule(
        ERROR,
        f"YMIR 2.5.0 and 1.1.0 {_MINE} select only from the lines there are: fewer lines than topk select fewer images",
    ),
    # -- infer: infer-result.json
    "json-invalid": Rule(ERROR, f"YMIR 2.5.0 and 1.1.0 {_INFER} json.loads raises: the task fails"),
    "json-unreadable": Rule(
        ERROR, f"YMIR 2.5.0 and 1.1.0 {_INFER} json.loads fails as well (bad UTF-8, nesting past the recursion limit)"
    ),
    "json-duplicate-keys": Rule(
        ERROR,
        f"YMIR 2.5.0 and 1.1.0 {_INFER} json.loads keeps the last value of a "
        "repeated key: the others are lost silently",
    ),
    "json-nonfinite": Rule(
        WARNING,
        f"YMIR 2.5.0 and 1.1.0 {_INFER} json.loads reads NaN and Infinity (not JSON, "
        "RFC 8259) as floats; in a box field they fail (coord-invalid, angle-invalid)",
    ),
    "detection-missing": Rule(
        ERROR, f"YMIR 2.5.0 {_INFER}: no 'detection' object fails the task (RC_CMD_INVALID_FILE)"
    ),
    "image-same-basename": Rule(
        ERROR, f"YMIR 2.5.0 {_INFER} keys results by basename: the later image's boxes replace the earlier's"
    ),
    "image-not-candidate": Rule(
        ERROR, f"YMIR 2.5.0 {_MINE} keeps predictions of candidate assets only: the others are lost"
    ),
    "image-not-object": Rule(ERROR, f"YMIR 2.5.0 {_INFER} calls .get() on it: the task fails"),
    "image-no-list": Rule(
        ERROR,
        f"YMIR 2.5.0 {_INFER} reads 'boxes' or 'annotations', YMIR 1.1.0 {_MINE} only "
        "'annotations': boxes under any other key are lost",
    ),
    "image-empty": Rule(
        WARNING, f"YMIR 2.5.0 {_INFER} logs 'invalid annotations' and skips the image, which has no boxes to lose"
    ),
    "list-both-keys": Rule(
        WARNING,
        f"YMIR 2.5.0 {_INFER} reads 'boxes' ('annotations' when 'boxes' is empty), "
        f"YMIR 1.1.0 {_MINE} only 'annotations': neither rejects the file",
    ),
    "list-not-list": Rule(ERROR, f"YMIR 2.5.0 {_INFER} skips an image whose list is not a list: its boxes are lost"),
    "box-not-object": Rule(
        ERROR, f"YMIR 2.5.0 {_INFER} indexes a box as an object (box['class_name']): the task fails"
    ),
    "box-rect-invalid": Rule(ERROR, f"{_PARSE_DICT}: a missing or non-object 'box' fails the task"),
    "box-extra-keys": Rule(
        ERROR, f"{_PARSE_DICT}, which refuses keys a Rect lacks; YMIR 1.1.0's Rect has no rotate_angle"
    ),
    "coord-missing": Rule(WARNING, f"{_PARSE_DICT}, which leaves a missing or null field 0"),
    "coord-invalid": Rule(
        ERROR,
        f"{_PARSE_DICT}, which refuses a fraction, NaN, Infinity, true/false or text in "
        "an integer field (30.5 fails with 169999); YMIR 1.1.0 likewise",
    ),
    "coord-negative": Rule(WARNING, f"{_PARSE_DICT} (int32) and stores negative x and y as they are"),
    "coord-empty": Rule(WARNING, f"{_PARSE_DICT} and stores a width or height <= 0 as it is"),
    "angle-invalid": Rule(ERROR, f"{_PARSE_DICT}, which refuses NaN, Infinity and text in the float rotate_angle"),
    "box-number-string": Rule(WARNING, f"{_PARSE_DICT}, which reads a number written as a JSON string ('30' passes)"),
    "class-name-invalid": Rule(
        ERROR,
        f"YMIR 2.5.0 {_INFER} reads box['class_name'] and mir/tools/class_ids.py "
        "lower-cases and strips it: a missing, non-text or blank name fails the task",
    ),
    "class-unknown": Rule(
        ERROR, f"YMIR 2.5.0 {_INFER} drops a box of an unknown class silently; YMIR 1.1.0 {_INFER} removes them"
    ),
    "score-missing": Rule(
        ERROR,
        f"YMIR 2.5.0 {_INFER} drops a box without score silently; YMIR 1.1.0 {_INFER} "
        "sorts by it and crashes (KeyError)",
    ),
    "score-invalid": Rule(
        ERROR,
        f"YMIR 2.5.0 {_INFER} float(score) fails on text, null, lists; YMIR 1.1.0 "
        f"{_INFER} sorts boxes by score and fails on a string among numbers",
    ),
    "score-coerced": Rule(WARNING, f"YMIR 2.5.0 {_INFER} stores float() of it ('0.5', true)"),
    "score-nonfinite": Rule(
        WARNING, f"YMIR 2.5.0 and 1.1.0 {_INFER} read a NaN or Infinity score (json.loads) and keep the box"
    ),
    # -- monitor.txt
    "monitor-missing": Rule(ERROR, "YMIR 1.1.0's monitor daemon crashes on a missing file"),
    "monitor-empty": Rule(ERROR, "YMIR 1.1.0's monitor daemon crashes on an empty file"),
    "monitor-malformed": Rule(
        ERROR,
        "YMIR 2.5.0's monitor daemon (ymir_monitor/monitor/utils/crontab_job.py) "
        "gets a ValueError from percent_log_util.py parse_percent_log and errors the "
        "task (PERCENT_LOG_PARSE_ERROR, 150404)",
    ),
    "monitor-done": Rule(
        ERROR, "YMIR 2.5.0's monitor daemon (crontab_job.py) ends the task on state 3, before its outputs are read"
    ),
    "monitor-task-id": Rule(
        WARNING,
        "YMIR 2.5.0's monitor daemon (crontab_job.py) follows a task by its own id "
        "and the file's path; the id in the file is not compared",
    ),
}


class Problem(NamedTuple):
    """One defect of an output file: which file, where in it, what is wrong, and how bad."""

    file: str
    #: ``'model_stages.epoch_1.mAP'``, ``'line 3'``, ``"detection['a.jpg'].boxes[0].box.x"``; ``''`` = whole file
    place: str
    message: str
    #: ERROR (a YMIR version rejects the file or loses data for it) or WARNING (none does)
    severity: str = ERROR
    #: the key of RULES this problem breaks; ``''`` for the count of problems not listed
    rule: str = ""

    def __str__(self) -> str:
        return f"{self.file}: {self.place}: {self.message}" if self.place else f"{self.file}: {self.message}"


class _Report:
    """Problems of one file, at most MAX_PROBLEMS_PER_FILE errors and as many warnings."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.listed = {ERROR: 0, WARNING: 0}
        self.dropped = {ERROR: 0, WARNING: 0}

    def add(self, rule: str, place: str, message: str) -> None:
        severity = RULES[rule].severity
        if self.listed[severity] < MAX_PROBLEMS_PER_FILE:
            self.listed[severity] += 1
            self.problems.append(Problem(self.file, place, message, severity, rule))
        else:
            self.dropped[severity] += 1

    def done(self) -> list[Problem]:
        if self.dropped[ERROR]:
            self.problems.append(Problem(self.file, "", f"... and {self.dropped[ERROR]} more problems"))
        if self.dropped[WARNING]:
            self.problems.append(Problem(self.file, "", f"... and {self.dropped[WARNING]} more warnings", WARNING))
        return self.problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _not_a_file(file: str, report: _Report) -> bool:
    """Report ``file`` if it is a symlink or a special file (opening a FIFO the job left would block
    the harness forever); True if so. A missing file or a directory is left to ``open``."""
    try:
        mode = os.lstat(file).st_mode
    except OSError:
        return False
    if stat.S_ISLNK(mode):
        report.add(
            "output-symlink", "", "is a symlink: write the file itself (the platform reads /out outside the container)"
        )
    elif not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        report.add("output-special", "", "is not a regular file (a FIFO, socket or device): write a plain file")
    else:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_int(value: Any) -> int | None:
    """``int(value)`` as pydantic 1 (YMIR's) converts a field, or None where that fails."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _as_float(value: Any) -> float | None:
    """``float(value)`` as pydantic 1 and YMIR's ``float(score)`` convert it, or None where that fails."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of 400 digits
        return None


# -- training: models/result.yaml -----------------------------------------------------------------


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
    if _not_a_file(file, report):
        return None
    try:
        with open(file, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        report.add("output-missing", "", "missing: a training task must write it")
        return None
    except OSError as e:
        report.add("output-unreadable", "", f"cannot read: {e.strerror}")
        return None
    except UnicodeDecodeError as e:
        report.add("output-not-utf8", "", f"not UTF-8 text: {e}")
        return None
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
        place = f"model_stages.{key}"
        name = str(key)  # pydantic makes a key text; YMIR packs the stage under that directory
        if not isinstance(key, str) or not key or "/" in key or key in (".", ".."):
            report.add(
                "stage-key-not-plain",
                place,
                "a stage name should be a plain name (it becomes a "
                "directory of the model package): letters, digits and _",
            )
        if not isinstance(stage, dict):
            report.add("stage-not-mapping", place, f"must be a mapping, got {type(stage).__name__}")
            continue
        given = stage.get("stage_name")
        if not isinstance(given, (str, int, float)):
            report.add("stage-name-missing", f"{place}.stage_name", f"must be the stage's key {key!r}, got {given!r}")
        elif str(given) != name:
            report.add(
                "stage-name-differs", f"{place}.stage_name", f"should equal the stage's key {key!r}, got {given!r}"
            )
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


# -- mining: result.tsv ---------------------------------------------------------------------------


def validate_mining_result(path: str | os.PathLike[str], candidates: Collection[str] | None) -> list[Problem]:
    """Check ``result.tsv``: ``path<TAB>score`` lines, finite scores sorted high to low, each
    candidate once and nothing else (``candidates`` None skips the candidate checks). Lines are
    matched to candidates by asset id (basename without extension), as YMIR does."""
    file = os.fspath(path)
    report = _Report(file)
    if _not_a_file(file, report):
        return report.done()
    try:
        with open(file, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        report.add("output-missing", "", "missing: a mining task must write it")
        return report.done()
    except OSError as e:
        report.add("output-unreadable", "", f"cannot read: {e.strerror}")
        return report.done()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        report.add("output-not-utf8", "", f"not UTF-8 text: {e}")
        return report.done()
    wanted = set(candidates) if candidates is not None else None
    by_id: dict[str, str] | None = None  # candidates by asset id, made at the first path not in wanted
    first_line: dict[str, int] = {}  # asset id -> line
    previous: tuple[int, float] | None = None
    unsorted_seen = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        place = f"line {number}"
        image, tab, rest = line.partition("\t")
        score, score_text = math.nan, ""
        if not tab:
            parts = line.rsplit(None, 1)
            if len(parts) == 2 and _parses_as_float(parts[1]):
                report.add(
                    "tsv-space", place, "path and score are separated by a space, not a TAB: YMIR then selects nothing"
                )
                continue
            image = line.strip()  # YMIR strips the line and reads it as a path
        else:
            score_text = rest.split("\t", 1)[0].strip()
            try:
                score = float(score_text)
            except ValueError:
                report.add("tsv-score", place, f"score {score_text!r} is not a number")
            else:
                if not math.isfinite(score):
                    report.add("tsv-score", place, f"score must be finite, got {score_text!r}")
        asset = _asset_id(image)
        candidate = True
        if wanted is not None and image not in wanted:
            if by_id is None:
                by_id = {_asset_id(c): c for c in wanted}
            candidate = asset in by_id
            if not candidate:
                cut = "" if tab else " (no TAB and score after it: truncated line?)"
                report.add(
                    "tsv-not-candidate",
                    place,
                    f"{image!r} is not a candidate image{cut}: YMIR drops it, shrinking the selection",
                )
            else:
                report.add(
                    "tsv-path-differs",
                    place,
                    f"{image!r} is not the candidate's path {by_id[asset]!r}: "
                    "YMIR matches it by asset id; write the path as given",
                )
        if not tab and candidate:
            report.add("tsv-no-score", place, f"no TAB and score after the path (truncated line?): {line!r}")
        if asset in first_line:
            report.add("tsv-duplicate", place, f"{image!r} is listed again (first at line {first_line[asset]})")
        else:
            first_line[asset] = number
        if math.isfinite(score):
            if previous is not None and score > previous[1] and not unsorted_seen:
                unsorted_seen = True
                report.add(
                    "tsv-unsorted",
                    place,
                    f"scores are not sorted high to low: {score_text} after "
                    f"{previous[1]!r} at line {previous[0]} (YMIR keeps the first "
                    "topk lines as written)",
                )
            previous = (number, score)
    if not first_line and not report.problems:
        report.add("tsv-empty", "", "no lines: every candidate needs a score")
    if wanted is not None:
        missing = [c for c in candidates or () if _asset_id(c) not in first_line]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:3]) + (", ..." if len(missing) > 3 else "")
            report.add(
                "tsv-candidates-missing", "", f"{len(missing)} of {len(wanted)} candidates have no line: {shown}"
            )
    return report.done()


def _asset_id(path: str) -> str:
    """What YMIR's mining keys a line by: the basename without its extension."""
    return os.path.splitext(_basename(path))[0]


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- infer: infer-result.json ---------------------------------------------------------------------


class _NonFinite:
    """What ``NaN``/``Infinity`` parse to, so the walk can say where they are."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return self.token

    def __eq__(self, other: object) -> bool:  # the same text: 'boxes' and 'annotations' may both hold it
        return isinstance(other, _NonFinite) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


class _DupDict(dict[str, Any]):
    """A JSON object that had repeated keys (json keeps only the last value)."""

    duplicates: list[str]


def _pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        dup = _DupDict(result)
        dup.duplicates = sorted({k for k, _ in pairs if k in seen or seen.add(k)})  # type: ignore[func-returns-value]  # set.add's None marks k seen
        return dup
    return result


class _InferCheck:
    """The per-box rules of one infer-result.json as the YMIR of ``protocol`` reads it (0.0.1: YMIR
    1.1, else 2.x); ``walk`` reports into ``report``."""

    def __init__(self, report: _Report, protocol: str, class_names: Iterable[str] | None) -> None:
        self.report = report
        self.protocol = protocol
        self.ymir_1_1 = not contract.allows_rotate_angle(protocol)
        self.names = frozenset(class_names) if class_names is not None else None
        self.box_keys = frozenset(contract.BOX_KEYS)
        self.allowed_keys = self.box_keys | (
            frozenset(contract.OPTIONAL_BOX_KEYS) if not self.ymir_1_1 else frozenset()
        )
        self.nonfinite_seen = 0

    def boxes(self, place: str, boxes: list[Any]) -> None:
        box_keys, names, big = self.box_keys, self.names, sys.float_info.max
        for i, item in enumerate(boxes):
            # Fast path for a well-formed box; anything unusual gets the detailed check below.
            if type(item) is dict:
                box: Any = item.get("box")
                score: Any = item.get("score")
                name: Any = item.get("class_name")
                if (
                    type(box) is dict
                    and box.keys() == box_keys
                    and type(box["x"]) is int
                    and type(box["y"]) is int
                    and type(box["w"]) is int
                    and type(box["h"]) is int
                    and box["x"] >= 0
                    and box["y"] >= 0
                    and box["w"] > 0
                    and box["h"] > 0
                    and type(score) in (float, int)
                    and -big <= score <= big  # finite, and float() works
                    and type(name) is str
                    and (names is None or name in names)
                ):
                    continue
            self.item(f"{place}[{i}]", item)

    def item(self, place: str, item: Any) -> None:
        report = self.report
        if not isinstance(item, dict):
            report.add("box-not-object", place, f"must be an object with box, class_name and score, got {item!r}")
            return
        self.duplicates(place, item)
        box = item.get("box")
        if not isinstance(box, dict):
            report.add("box-rect-invalid", f"{place}.box", f"must be an object with x, y, w, h, got {box!r}")
        else:
            self.duplicates(f"{place}.box", box)
            extra = sorted(set(box) - self.allowed_keys)
            if extra:
                report.add(
                    "box-extra-keys",
                    f"{place}.box",
                    f"unexpected keys {extra}: YMIR's parser refuses all but {', '.join(sorted(self.allowed_keys))}",
                )
            for key in contract.BOX_KEYS:
                self.coordinate(f"{place}.box.{key}", key, box)
            if "rotate_angle" in box and "rotate_angle" in self.allowed_keys:
                self.angle(f"{place}.box.rotate_angle", box["rotate_angle"])
        name = item.get("class_name")
        if not isinstance(name, str) or not name.strip():
            report.add("class-name-invalid", f"{place}.class_name", f"must be a class name string, got {name!r}")
        elif self.names is not None and name not in self.names:
            report.add(
                "class-unknown",
                f"{place}.class_name",
                f"unknown class {name!r}: not in config.yaml class_names (YMIR drops the box)",
            )
        if "score" not in item:
            report.add("score-missing", f"{place}.score", "missing: YMIR 2 drops the box and YMIR 1.1 crashes")
        else:
            self.score(f"{place}.score", item["score"])

    def coordinate(self, place: str, key: str, box: dict[str, Any]) -> None:
        report = self.report
        value = box.get(key)
        if value is None:
            report.add("coord-missing", place, f"{'null' if key in box else 'missing'}: YMIR reads it as 0")
            return
        if isinstance(value, _NonFinite):
            self.nonfinite_seen += 1
            report.add("coord-invalid", place, f"{value.token} is not valid JSON, and YMIR's parser refuses it")
            return
        if type(value) is str:
            number = _as_int(value) if " " not in value else None  # protobuf refuses spaces, int() does not
            if number is None:
                report.add("coord-invalid", place, f"must be a JSON integer, got {value!r}")
                return
            report.add(
                "box-number-string",
                place,
                f"{value!r} is text: YMIR's parser reads it as {number}; write a JSON integer",
            )
            value = number
        elif not _is_number(value):
            report.add("coord-invalid", place, f"must be a JSON integer, got {value!r}")
            return
        elif type(value) is float and not (math.isfinite(value) and value.is_integer()):
            report.add("coord-invalid", place, f"must be an integer, got {value!r} (YMIR fails on fractions)")
            return
        if key in ("x", "y") and value < 0:
            report.add("coord-negative", place, f"must be >= 0, got {value!r} (YMIR keeps it)")
        elif key in ("w", "h") and value <= 0:
            report.add("coord-empty", place, f"must be > 0, got {value!r}: the box covers no pixel (YMIR keeps it)")

    def angle(self, place: str, value: Any) -> None:
        report = self.report
        if isinstance(value, _NonFinite):
            self.nonfinite_seen += 1
            report.add("angle-invalid", place, f"{value.token} is not valid JSON, and YMIR's parser refuses it")
        elif _is_number(value):
            if type(value) is float and not math.isfinite(value):
                report.add("angle-invalid", place, f"must be finite, got {value!r}")
        elif type(value) in (str, bool) and _as_float(value) is not None:
            report.add(
                "box-number-string",
                place,
                f"{value!r} is not a JSON number: YMIR's parser reads it as {_as_float(value)!r}",
            )
        else:
            report.add("angle-invalid", place, f"must be a number, got {value!r}")

    def score(self, place: str, value: Any) -> None:
        report = self.report
        if isinstance(value, _NonFinite):
            self.nonfinite_seen += 1
            report.add(
                "score-nonfinite",
                place,
                f"{value.token} is not valid JSON: YMIR reads it and keeps the box with a score of {value.token}",
            )
        elif _is_number(value):
            if type(value) is float and not math.isfinite(value):
                report.add("score-nonfinite", place, f"must be finite, got {value!r} (YMIR keeps it)")
            elif _as_float(value) is None:
                report.add(
                    "score-invalid", place, f"an integer of {len(str(value))} digits: YMIR's float() of it fails"
                )
        else:
            number = _as_float(value)
            if number is None or self.ymir_1_1:
                why = " (YMIR 1.1 sorts boxes by score)" if number is not None else ""
                report.add("score-invalid", place, f"must be a number, got {value!r}{why}")
            else:
                report.add(
                    "score-coerced", place, f"must be a JSON number, got {value!r}: YMIR 2 reads it as {number!r}"
                )

    def duplicates(self, place: str, obj: dict[str, Any]) -> None:
        if type(obj) is _DupDict:
            self.report.add(
                "json-duplicate-keys", place, f"duplicate keys {obj.duplicates}: JSON readers keep only the last"
            )


def validate_infer_result(
    path: str | os.PathLike[str],
    protocol: str,
    class_names: Iterable[str] | None,
    candidates: Iterable[str] | None,
) -> list[Problem]:
    """Check ``infer-result.json`` as strict JSON against the detection schema of ``protocol``.

    Refused (errors): duplicate keys, truncation, no ``detection`` object, image keys that are not
    candidate basenames (full paths are reduced to their basename, as YMIR does), boxes under a key
    YMIR does not read (0.0.1: ``annotations``; later: ``boxes`` or the legacy ``annotations``), box
    keys other than x, y, w, h (+ ``rotate_angle`` from 1.0.0), coordinates that are not integers,
    unknown classes, missing scores. Warned: what YMIR reads anyway (NaN/Infinity outside box
    fields, negative or empty boxes, numbers written as text, both ``boxes`` and ``annotations``).
    ``None`` skips the class or candidate check. Images without boxes may be left out.
    """
    file = os.fspath(path)
    report = _Report(file)
    if _not_a_file(file, report):
        return report.done()
    with _gc_paused():
        return _check_infer_file(file, report, protocol, class_names, candidates)


def _check_infer_file(
    file: str, report: _Report, protocol: str, class_names: Iterable[str] | None, candidates: Iterable[str] | None
) -> list[Problem]:
    constants: list[_NonFinite] = []

    def _constant(token: str) -> _NonFinite:
        constants.append(_NonFinite(token))
        return constants[-1]

    try:
        with open(file, "rb") as f:
            data = json.load(f, object_pairs_hook=_pairs_to_dict, parse_constant=_constant)
    except FileNotFoundError:
        report.add("output-missing", "", "missing: an infer task must write it")
        return report.done()
    except OSError as e:
        report.add("output-unreadable", "", f"cannot read: {e.strerror}")
        return report.done()
    except json.JSONDecodeError as e:
        report.add("json-invalid", f"line {e.lineno} column {e.colno}", f"not valid JSON (truncated?): {e.msg}")
        return report.done()
    except (UnicodeDecodeError, RecursionError) as e:
        report.add("json-unreadable", "", f"not readable JSON: {e}")
        return report.done()
    check = _InferCheck(report, protocol, class_names)
    detection = data.get("detection") if isinstance(data, dict) else None
    if isinstance(data, dict):
        check.duplicates("", data)
    if not isinstance(detection, dict):
        report.add(
            "detection-missing",
            "detection",
            f"missing or not an object: YMIR fails the task (got {type(detection).__name__})",
        )
        return report.done()
    check.duplicates("detection", detection)
    seen = _check_images(check, detection, candidates)
    if len(constants) > seen:
        report.add(
            "json-nonfinite", "", f"{len(constants) - seen} NaN/Infinity values: not valid JSON (YMIR reads them)"
        )
    return report.done()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off: parsing a large infer-result.json makes millions of dicts
    and lists, none of them cyclic, and each burst of allocations made the collector walk them all
    again (about half the time of a 100k-image file; bench/README.md)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_images(check: _InferCheck, detection: dict[str, Any], candidates: Iterable[str] | None) -> int:
    """Check every image's boxes; returns how many NaN/Infinity values the checks reported."""
    report = check.report
    wanted = {_basename(c) for c in candidates} if candidates is not None else None
    key = "annotations" if check.ymir_1_1 else "boxes"
    newer: _InferCheck | None = None  # 'boxes' beside 'annotations' in a 0.0.1 file: YMIR 2 reads them
    seen: dict[str, str] = {}
    for name, value in detection.items():
        place = f"detection[{name!r}]"
        base = _basename(name)
        if base in seen:
            report.add("image-same-basename", place, f"same image as {seen[base]!r}: YMIR keys results by basename")
        seen[base] = name
        if wanted is not None and base not in wanted:
            report.add("image-not-candidate", place, "not a candidate image's basename: YMIR drops its predictions")
        if not isinstance(value, dict):
            report.add("image-not-object", place, f"must be an object with a {key!r} list, got {value!r}")
            continue
        check.duplicates(place, value)
        boxes, annotations = "boxes" in value, "annotations" in value
        if boxes and annotations:
            same = value["boxes"] == value["annotations"]
            report.add(
                "list-both-keys",
                place,
                "has both 'boxes' and 'annotations', "
                + (
                    "the same boxes: YMIR 2 reads 'boxes' and YMIR 1.1 'annotations'"
                    if same
                    else "and they differ: YMIR 2 reads 'boxes' ('annotations' when 'boxes' is empty), YMIR 1.1 reads "
                    "'annotations'; keep one, or write the same boxes under both"
                ),
            )
            if check.ymir_1_1:
                newer = newer or _InferCheck(report, contract.PROTOCOL_1_1_0, check.names)
            _check_list(newer or check, f"{place}.boxes", value["boxes"])
            _check_list(check, f"{place}.annotations", value["annotations"])
        elif annotations or (boxes and not check.ymir_1_1):
            listed = "annotations" if annotations else "boxes"
            _check_list(check, f"{place}.{listed}", value[listed])
        elif not value:
            report.add("image-empty", place, f"an empty object: write {{{key!r}: []}}, or leave the image out")
        else:
            hint = " (YMIR 1.1 reads only 'annotations')" if boxes else ""
            report.add("image-no-list", place, f"no {key!r} list{hint}: YMIR loses what is under {sorted(value)}")
    return check.nonfinite_seen + (newer.nonfinite_seen if newer is not None else 0)


def _check_list(check: _InferCheck, place: str, boxes: Any) -> None:
    if isinstance(boxes, list):
        check.boxes(place, boxes)
    else:
        check.report.add("list-not-list", place, f"must be a list, got {type(boxes).__name__}: YMIR skips the image")


def _basename(path: str) -> str:
    return path.rpartition("/")[2]  # os.path.basename, without its per-call overhead (100k keys)


# -- monitor.txt and all outputs of a task ------------------------------------------------------


def validate_monitor(path: str | os.PathLike[str], task_id: str | None = None) -> list[Problem]:
    """Check monitor.txt as the platform parses it; state 3 (done) written by a job is a problem."""
    file = os.fspath(path)
    report = _Report(file)
    if _not_a_file(file, report):
        return report.done()
    try:
        with open(file, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        report.add("monitor-missing", "", "missing: YMIR 1.1's monitor crashes without it")
        return report.done()
    except (OSError, UnicodeDecodeError) as e:
        report.add("output-unreadable", "", f"cannot read: {e}")
        return report.done()
    if not text.strip():
        report.add("monitor-empty", "", "empty: YMIR 1.1's monitor crashes on an empty file")
        return report.done()
    try:
        record = contract.parse_monitor(text)
    except ValueError as e:
        report.add("monitor-malformed", "line 1", str(e))
        return report.done()
    if record.state == contract.MonitorState.DONE:
        report.add(
            "monitor-done", "line 1", "state 3 (done) ends the task before its outputs are read: write 2 (running)"
        )
    if task_id is not None and record.task_id != task_id:
        report.add("monitor-task-id", "line 1", f"task id {record.task_id!r} is not the task's {task_id!r}")
    return report.done()


def _out_path(out_dir: str | os.PathLike[str], default: str) -> str:
    return os.path.join(os.fspath(out_dir), os.path.relpath(default, contract.OUT_DIR))


def read_candidates(index_file: str | os.PathLike[str]) -> list[str] | None:
    """The image paths of a candidate-index.tsv (first column, as written), or None if unreadable."""
    try:
        with open(index_file, encoding="utf-8") as f:
            return [line.rstrip("\r\n").split("\t")[0] for line in f if line.strip()]
    except (OSError, UnicodeDecodeError):
        return None


def validate_outputs(
    task_kinds: Iterable[TaskKind],
    out_dir: str | os.PathLike[str],
    protocol: str,
    class_names: Sequence[str] | None,
    candidates: Sequence[str] | None,
) -> list[Problem]:
    """Check the outputs each kind must leave in ``out_dir`` (at YMIR's fixed places)."""
    kinds = set(task_kinds)
    problems: list[Problem] = []
    if TaskKind.TRAINING in kinds:
        problems += validate_training_result(_out_path(out_dir, contract.TRAINING_RESULT_FILE), protocol)
    if TaskKind.MINING in kinds:
        problems += validate_mining_result(_out_path(out_dir, contract.MINING_RESULT_FILE), candidates)
    if TaskKind.INFER in kinds:
        problems += validate_infer_result(
            _out_path(out_dir, contract.INFER_RESULT_FILE),
            protocol,
            class_names,
            candidates,
        )
    return problems


def log_warnings(problems: Iterable[Problem]) -> list[Problem]:
    """Log each warning among ``problems`` (one line: file, place, message); returns them."""
    warned = [p for p in problems if p.severity == WARNING]
    for p in warned:
        log.warning("warning: %s", p)
    return warned


def raise_for_problems(problems: Sequence[Problem], *, shown: int = 20) -> None:
    """Raise OutputError listing the first ``shown`` errors; do nothing when there are none
    (warnings never refuse outputs: see ``log_warnings``)."""
    errors = [p for p in problems if p.severity == ERROR]
    if not errors:
        return
    lines = [str(p) for p in errors[:shown]]
    if len(errors) > shown:
        lines.append(f"... and {len(errors) - shown} more")
    msg = f"{len(errors)} problem(s) in the task's outputs:\n  " + "\n  ".join(lines)
    hint = "fix how the job writes its results; the live_code.sdk writers produce valid files"
    raise OutputError(msg, hint=hint)
