"""The gate's rules (``RULES``), the problems they raise, and the small checks every file shares."""

from __future__ import annotations

import os
import stat
from typing import Any, NamedTuple

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


def _basename(path: str) -> str:
    return path.rpartition("/")[2]  # os.path.basename, without its per-call overhead (100k keys)


def _read_bytes(file: str, report: _Report, task: str) -> bytes | None:
    """The whole output file, or None with why it cannot be read reported (a symlink, a FIFO, no
    file: ``task`` names the kind of task that must write it)."""
    if _not_a_file(file, report):
        return None
    try:
        with open(file, "rb") as f:
            return f.read()
    except FileNotFoundError:
        report.add("output-missing", "", f"missing: {task} task must write it")
    except OSError as e:
        report.add("output-unreadable", "", f"cannot read: {e.strerror}")
    return None


def _read_text(file: str, report: _Report, task: str) -> str | None:
    """:func:`_read_bytes` as UTF-8 text (not UTF-8 is reported)."""
    raw = _read_bytes(file, report, task)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        report.add("output-not-utf8", "", f"not UTF-8 text: {e}")
        return None
