"""Infer: infer-result.json."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from live_code import contract
from live_code.run.outputs._rules import Problem, _as_float, _as_int, _basename, _is_number, _read_bytes, _Report


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
    data = _read_bytes(file, report, "an infer")
    if data is None:
        return report.done()
    wanted = list(candidates) if candidates is not None else None
    from live_code.run.outputs import _infer_fast  # here: msgspec is imported only for an infer result

    with _gc_paused():
        if _infer_fast.check(data, protocol, class_names, wanted):
            return report.done()
        return _check_infer_file(data, report, protocol, class_names, wanted)


def _check_infer_file(
    data: bytes, report: _Report, protocol: str, class_names: Iterable[str] | None, candidates: Iterable[str] | None
) -> list[Problem]:
    """The full check, which names every problem: the standard parser with hooks that find
    duplicate keys and NaN/Infinity, then a walk over every box."""
    constants: list[_NonFinite] = []

    def _constant(token: str) -> _NonFinite:
        constants.append(_NonFinite(token))
        return constants[-1]

    try:
        parsed = json.loads(data, object_pairs_hook=_pairs_to_dict, parse_constant=_constant)
    except json.JSONDecodeError as e:
        report.add("json-invalid", f"line {e.lineno} column {e.colno}", f"not valid JSON (truncated?): {e.msg}")
        return report.done()
    except (UnicodeDecodeError, RecursionError) as e:
        report.add("json-unreadable", "", f"not readable JSON: {e}")
        return report.done()
    return _check_parsed(parsed, report, protocol, class_names, candidates, len(constants))


def _check_parsed(
    data: Any,
    report: _Report,
    protocol: str,
    class_names: Iterable[str] | None,
    candidates: Iterable[str] | None,
    constants: int,
) -> list[Problem]:
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
    if constants > seen:
        report.add("json-nonfinite", "", f"{constants - seen} NaN/Infinity values: not valid JSON (YMIR reads them)")
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
