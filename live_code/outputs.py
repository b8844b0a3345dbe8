"""Validate a task's outputs in /out against the contract; every check returns Problems, never bools.

What is checked is what makes YMIR fail or silently lose results (ymir-contract.md sections 6-8 and
"What YMIR's own parsers enforce"): result.yaml stages and files, result.tsv separators, scores and
candidates, infer-result.json strict JSON, integer boxes and known classes.
"""
from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import stat
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import yaml

from live_code import contract
from live_code.contract import TaskKind
from live_code.errors import OutputError

#: at most this many problems are listed per file; the rest are counted in one last problem
MAX_PROBLEMS_PER_FILE = 50


class Problem(NamedTuple):
    """One defect of an output file: which file, where in it, what is wrong."""

    file: str
    #: ``'model_stages.epoch_1.mAP'``, ``'line 3'``, ``"detection['a.jpg'].boxes[0].box.x"``; ``''`` = whole file
    place: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.place}: {self.message}" if self.place else f"{self.file}: {self.message}"


class _Report:
    """Problems of one file, capped at MAX_PROBLEMS_PER_FILE."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.dropped = 0

    def add(self, place: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS_PER_FILE:
            self.problems.append(Problem(self.file, place, message))
        else:
            self.dropped += 1

    def done(self) -> list[Problem]:
        if self.dropped:
            self.problems.append(Problem(self.file, "", f"... and {self.dropped} more problems"))
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
        report.add("", "is a symlink: write the file itself (the platform reads /out outside the container)")
    elif not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        report.add("", "is not a regular file (a FIFO, socket or device): write a plain file")
    else:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        report.add("", f"must be a YAML mapping, got {type(data).__name__}")
        return report.done()
    models_dir = os.path.dirname(file)
    if "model_stages" in data or "model" not in data:
        if not contract.uses_model_stages(protocol):
            report.add("model_stages", f"protocol {protocol} (YMIR 1.1) reads only the legacy 'model' and 'map' keys")
        else:
            _check_stages(data, models_dir, contract.allows_stage_dirs(protocol), report)
    else:
        _check_files(report, "model", data.get("model"), models_dir, None)
        if "map" not in data:
            report.add("map", "missing: the legacy schema needs the model's mAP as 'map'")
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
        report.add("", "missing: a training task must write it")
        return None
    except OSError as e:
        report.add("", f"cannot read: {e.strerror}")
        return None
    except UnicodeDecodeError as e:
        report.add("", f"not UTF-8 text: {e}")
        return None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        place = f"line {mark.line + 1}" if mark is not None else ""
        reason = getattr(e, "problem", None) or str(e)
        report.add(place, f"not valid YAML (truncated?): {reason}")
        return None
    if data is None:
        report.add("", "empty")
    return data


def _check_stages(data: dict[Any, Any], models_dir: str, stage_dirs: bool, report: _Report) -> None:
    stages = data.get("model_stages")
    if not isinstance(stages, dict) or not stages:
        report.add("model_stages", f"must be a non-empty mapping of stage name to stage, got {stages!r}")
        return
    for key, stage in stages.items():
        place = f"model_stages.{key}"
        if not isinstance(key, str) or not key or "/" in key or key in (".", ".."):
            report.add(place, "a stage name must be a plain name (it becomes a directory of the package)")
            continue
        if not isinstance(stage, dict):
            report.add(place, f"must be a mapping, got {type(stage).__name__}")
            continue
        if stage.get("stage_name") != key:
            report.add(f"{place}.stage_name", f"must equal the stage's key {key!r}, got {stage.get('stage_name')!r}")
        _check_files(report, f"{place}.files", stage.get("files"), models_dir, key if stage_dirs else None)
        if "timestamp" not in stage:
            report.add(f"{place}.timestamp", "missing: integer seconds")
        elif not _is_int(stage["timestamp"]):
            report.add(f"{place}.timestamp", f"must be integer seconds, got {stage['timestamp']!r}")
        for metric in contract.STAGE_METRICS:
            if metric in stage:
                _check_unit(report, f"{place}.{metric}", stage[metric])
        if not any(m in stage for m in contract.MAIN_METRICS):
            report.add(place, f"no main metric: needs one of {', '.join(contract.MAIN_METRICS)}")
        for count in contract.STAGE_COUNTS:
            if count in stage and not (_is_int(stage[count]) and stage[count] >= 0):
                report.add(f"{place}.{count}", f"must be an integer >= 0, got {stage[count]!r}")
    best = data.get("best_stage_name")
    if best is None:
        report.add("best_stage_name", "missing: must name the best of model_stages")
    elif not isinstance(best, str) or best not in stages:
        report.add("best_stage_name", f"{best!r} is not a stage of model_stages ({', '.join(map(str, stages))})")
    attachments = data.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, dict):
            report.add("attachments", f"must be a mapping of section to file names, got {attachments!r}")
        else:
            for section, files in attachments.items():
                where = os.path.join(models_dir, "attachments", str(section))
                _check_files(report, f"attachments.{section}", files, where, None)
    if "evaluate_config" in data and not isinstance(data["evaluate_config"], dict):
        report.add("evaluate_config", f"must be a mapping, got {data['evaluate_config']!r}")


def _check_unit(report: _Report, place: str, value: Any) -> None:
    if not _is_number(value):
        report.add(place, f"must be a number within 0..1, got {value!r}")
    elif not math.isfinite(value):
        report.add(place, f"must be finite, got {value!r}")
    elif not 0.0 <= value <= 1.0:
        report.add(place, f"must be within 0..1 (YMIR refuses it), got {value!r}")


def _check_files(report: _Report, place: str, files: Any, base: str, stage: str | None) -> None:
    if not isinstance(files, list) or not files:
        report.add(place, f"must be a non-empty list of file basenames, got {files!r}")
        return
    for i, name in enumerate(files):
        where = f"{place}[{i}]"
        if not isinstance(name, str) or not name:
            report.add(where, f"must be a file's basename, got {name!r}")
        elif os.path.isabs(name):
            report.add(where, f"absolute path {name!r}: list basenames of files in the models dir")
        elif "/" in name or "\\" in name or name in (".", ".."):
            report.add(where, f"{name!r} is not a basename")
        else:
            places = ([os.path.join(base, stage, name)] if stage else []) + [os.path.join(base, name)]
            found = next((p for p in places if os.path.lexists(p)), None)
            if found is None:
                report.add(where, f"file not found: looked at {' and '.join(places)}")
            elif os.path.islink(found):
                report.add(where, f"{found} is a symlink: YMIR packs it as a link, which breaks the next task")
            elif not os.path.isfile(found):
                report.add(where, f"{found} is not a regular file")


# -- mining: result.tsv ---------------------------------------------------------------------------


def validate_mining_result(path: str | os.PathLike[str], candidates: Collection[str] | None) -> list[Problem]:
    """Check ``result.tsv``: ``path<TAB>score`` lines, finite scores sorted high to low, each
    candidate once and nothing else (``candidates`` None skips the candidate checks)."""
    file = os.fspath(path)
    report = _Report(file)
    if _not_a_file(file, report):
        return report.done()
    try:
        with open(file, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        report.add("", "missing: a mining task must write it")
        return report.done()
    except OSError as e:
        report.add("", f"cannot read: {e.strerror}")
        return report.done()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        report.add("", f"not UTF-8 text: {e}")
        return report.done()
    wanted = set(candidates) if candidates is not None else None
    first_line: dict[str, int] = {}
    previous: tuple[int, float] | None = None
    unsorted_seen = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        place = f"line {number}"
        if "\t" not in line:
            parts = line.rsplit(None, 1)
            if len(parts) == 2 and _parses_as_float(parts[1]):
                report.add(place, "path and score are separated by a space, not a TAB: YMIR then selects nothing")
            else:
                report.add(place, f"no TAB and score after the path (truncated line?): {line!r}")
            continue
        image, _, rest = line.partition("\t")
        score_text = rest.split("\t", 1)[0].strip()
        try:
            score = float(score_text)
        except ValueError:
            report.add(place, f"score {score_text!r} is not a number")
            score = math.nan
        else:
            if not math.isfinite(score):
                report.add(place, f"score must be finite, got {score_text!r}")
        if wanted is not None and image not in wanted:
            report.add(place, f"{image!r} is not a candidate image (YMIR drops it, shrinking the selection)")
        if image in first_line:
            report.add(place, f"{image!r} is listed again (first at line {first_line[image]})")
        else:
            first_line[image] = number
        if math.isfinite(score):
            if previous is not None and score > previous[1] and not unsorted_seen:
                unsorted_seen = True
                report.add(place, f"scores are not sorted high to low: {score_text} after {previous[1]!r} "
                                  f"at line {previous[0]} (YMIR keeps the first topk lines as written)")
            previous = (number, score)
    if not first_line and not report.problems:
        report.add("", "no lines: every candidate needs a score")
    if wanted is not None:
        missing = [c for c in candidates or () if c not in first_line]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:3]) + (", ..." if len(missing) > 3 else "")
            report.add("", f"{len(missing)} of {len(wanted)} candidates have no line: {shown}")
    return report.done()


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


class _DupDict(dict):  # type: ignore[type-arg]
    """A JSON object that had repeated keys (json keeps only the last value)."""

    duplicates: list[str]


def _pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        dup = _DupDict(result)
        dup.duplicates = sorted({k for k, _ in pairs if k in seen or seen.add(k)})  # type: ignore[func-returns-value]
        return dup
    return result


class _InferCheck:
    """The per-box rules of one infer-result.json; ``walk`` reports into ``report``."""

    def __init__(self, report: _Report, protocol: str, class_names: Iterable[str] | None) -> None:
        self.report = report
        self.protocol = protocol
        self.names = frozenset(class_names) if class_names is not None else None
        self.box_keys = frozenset(contract.BOX_KEYS)
        self.allowed_keys = self.box_keys | (
            frozenset(contract.OPTIONAL_BOX_KEYS) if contract.allows_rotate_angle(protocol) else frozenset()
        )
        self.nonfinite_seen = 0

    def boxes(self, place: str, boxes: list[Any]) -> None:
        box_keys, names, inf = self.box_keys, self.names, math.inf
        for i, item in enumerate(boxes):
            # Fast path for a well-formed box; anything unusual gets the detailed check below.
            if type(item) is dict:
                box: Any = item.get("box")
                score: Any = item.get("score")
                name: Any = item.get("class_name")
                if (
                    type(box) is dict and box.keys() == box_keys
                    and type(box["x"]) is int and type(box["y"]) is int
                    and type(box["w"]) is int and type(box["h"]) is int
                    and box["x"] >= 0 and box["y"] >= 0 and box["w"] > 0 and box["h"] > 0
                    and type(score) in (float, int) and -inf < score < inf
                    and type(name) is str and (names is None or name in names)
                ):
                    continue
            self.item(f"{place}[{i}]", item)

    def item(self, place: str, item: Any) -> None:
        report = self.report
        if not isinstance(item, dict):
            report.add(place, f"must be an object with box, class_name and score, got {item!r}")
            return
        self.duplicates(place, item)
        box = item.get("box")
        if not isinstance(box, dict):
            report.add(f"{place}.box", f"must be an object with x, y, w, h, got {box!r}")
        else:
            self.duplicates(f"{place}.box", box)
            extra = sorted(set(box) - self.allowed_keys)
            if extra:
                report.add(f"{place}.box", f"unexpected keys {extra}: YMIR's parser refuses all but "
                                           f"{', '.join(sorted(self.allowed_keys))}")
            for key in contract.BOX_KEYS:
                self.coordinate(f"{place}.box.{key}", key, box)
            if "rotate_angle" in box and "rotate_angle" in self.allowed_keys:
                self.number(f"{place}.box.rotate_angle", box["rotate_angle"])
        name = item.get("class_name")
        if not isinstance(name, str):
            report.add(f"{place}.class_name", f"must be a class name string, got {name!r}")
        elif self.names is not None and name not in self.names:
            report.add(f"{place}.class_name", f"unknown class {name!r}: not in config.yaml class_names")
        if "score" not in item:
            report.add(f"{place}.score", "missing: YMIR 2 drops the box and YMIR 1.1 crashes")
        else:
            self.number(f"{place}.score", item["score"])

    def coordinate(self, place: str, key: str, box: dict[str, Any]) -> None:
        if key not in box:
            self.report.add(place, "missing")
            return
        value = box[key]
        if isinstance(value, _NonFinite):
            self.nonfinite_seen += 1
            self.report.add(place, f"{value.token} is not valid JSON")
        elif not _is_number(value):
            self.report.add(place, f"must be a JSON integer, got {value!r}")
        elif not (math.isfinite(value) and float(value).is_integer()):
            self.report.add(place, f"must be an integer, got {value!r} (YMIR fails on fractions)")
        elif key in ("x", "y") and value < 0:
            self.report.add(place, f"must be >= 0, got {value!r}")
        elif key in ("w", "h") and value <= 0:
            self.report.add(place, f"must be > 0, got {value!r}")

    def number(self, place: str, value: Any) -> None:
        if isinstance(value, _NonFinite):
            self.nonfinite_seen += 1
            self.report.add(place, f"{value.token} is not valid JSON")
        elif not _is_number(value):
            self.report.add(place, f"must be a number, got {value!r}")
        elif not math.isfinite(value):
            self.report.add(place, f"must be finite, got {value!r}")

    def duplicates(self, place: str, obj: dict[str, Any]) -> None:
        if type(obj) is _DupDict:
            self.report.add(place, f"duplicate keys {obj.duplicates}: JSON readers keep only the last")


def validate_infer_result(
    path: str | os.PathLike[str],
    protocol: str,
    class_names: Iterable[str] | None,
    candidates: Iterable[str] | None,
) -> list[Problem]:
    """Check ``infer-result.json`` as strict JSON against the detection schema of ``protocol``.

    Refused: NaN/Infinity, duplicate keys, truncation, no ``detection`` object, image keys that are
    not candidate basenames (full paths are reduced to their basename, as YMIR does), the wrong
    list key (0.0.1: ``annotations``; later: ``boxes`` or the legacy ``annotations``), box keys
    other than x, y, w, h (+ ``rotate_angle`` from 1.0.0), non-integer or negative coordinates,
    empty boxes, unknown classes, missing or non-finite scores. ``None`` skips the class or
    candidate check. Images without boxes may be left out.
    """
    file = os.fspath(path)
    report = _Report(file)
    if _not_a_file(file, report):
        return report.done()
    with _gc_paused():
        return _check_infer_file(file, report, protocol, class_names, candidates)


def _check_infer_file(file: str, report: _Report, protocol: str, class_names: Iterable[str] | None,
                      candidates: Iterable[str] | None) -> list[Problem]:
    constants: list[_NonFinite] = []

    def _constant(token: str) -> _NonFinite:
        constants.append(_NonFinite(token))
        return constants[-1]

    try:
        with open(file, "rb") as f:
            data = json.load(f, object_pairs_hook=_pairs_to_dict, parse_constant=_constant)
    except FileNotFoundError:
        report.add("", "missing: an infer task must write it")
        return report.done()
    except OSError as e:
        report.add("", f"cannot read: {e.strerror}")
        return report.done()
    except json.JSONDecodeError as e:
        report.add(f"line {e.lineno} column {e.colno}", f"not valid JSON (truncated?): {e.msg}")
        return report.done()
    except (UnicodeDecodeError, RecursionError) as e:
        report.add("", f"not readable JSON: {e}")
        return report.done()
    check = _InferCheck(report, protocol, class_names)
    detection = data.get("detection") if isinstance(data, dict) else None
    if isinstance(data, dict):
        check.duplicates("", data)
    if not isinstance(detection, dict):
        report.add("detection", f"missing or not an object: YMIR fails the task (got {type(detection).__name__})")
        return report.done()
    check.duplicates("detection", detection)
    _check_images(check, detection, candidates)
    if len(constants) > check.nonfinite_seen:
        report.add("", f"{len(constants) - check.nonfinite_seen} NaN/Infinity values: not valid JSON")
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


def _check_images(check: _InferCheck, detection: dict[str, Any], candidates: Iterable[str] | None) -> None:
    report = check.report
    wanted = {_basename(c) for c in candidates} if candidates is not None else None
    if contract.infer_list_key(check.protocol) == "annotations":
        list_keys: tuple[str, ...] = ("annotations",)
    else:
        list_keys = ("boxes", "annotations")
    seen: dict[str, str] = {}
    for key, value in detection.items():
        place = f"detection[{key!r}]"
        base = _basename(key)
        if base in seen:
            report.add(place, f"same image as {seen[base]!r}: YMIR keys results by basename")
        seen[base] = key
        if wanted is not None and base not in wanted:
            report.add(place, "not a candidate image's basename: YMIR drops its predictions")
        if not isinstance(value, dict):
            report.add(place, f"must be an object with a {list_keys[0]!r} list, got {value!r}")
            continue
        check.duplicates(place, value)
        present = [k for k in list_keys if k in value]
        if not present:
            hint = " (YMIR 1.1 reads only 'annotations')" if "boxes" in value else ""
            report.add(place, f"no {list_keys[0]!r} list{hint}")
            continue
        if len(present) > 1:
            report.add(place, "has both 'boxes' and 'annotations': keep one")
        boxes = value[present[0]]
        if not isinstance(boxes, list):
            report.add(f"{place}.{present[0]}", f"must be a list, got {type(boxes).__name__}")
            continue
        check.boxes(f"{place}.{present[0]}", boxes)


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
        report.add("", "missing: YMIR 1.1's monitor crashes without it")
        return report.done()
    except (OSError, UnicodeDecodeError) as e:
        report.add("", f"cannot read: {e}")
        return report.done()
    if not text.strip():
        report.add("", "empty: YMIR 1.1's monitor crashes on an empty file")
        return report.done()
    try:
        record = contract.parse_monitor(text)
    except ValueError as e:
        report.add("line 1", str(e))
        return report.done()
    if record.state == contract.MonitorState.DONE:
        report.add("line 1", "state 3 (done) ends the task before its outputs are read: write 2 (running)")
    if task_id is not None and record.task_id != task_id:
        report.add("line 1", f"task id {record.task_id!r} is not the task's {task_id!r}")
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
            _out_path(out_dir, contract.INFER_RESULT_FILE), protocol, class_names, candidates,
        )
    return problems


def raise_for_problems(problems: Sequence[Problem], *, shown: int = 20) -> None:
    """Raise OutputError listing the first ``shown`` problems; do nothing when there are none."""
    if not problems:
        return
    lines = [str(p) for p in problems[:shown]]
    if len(problems) > shown:
        lines.append(f"... and {len(problems) - shown} more")
    msg = f"{len(problems)} problem(s) in the task's outputs:\n  " + "\n  ".join(lines)
    hint = "fix how the job writes its results; the live_code.sdk writers produce valid files"
    raise OutputError(msg, hint=hint)
