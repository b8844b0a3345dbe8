"""Reading the task's dataset: index files and annotations in ark txt, VOC xml or COCO json.

Formats (contract section 4, from ymir ``mir/tools/exporter.py``): the annotation format is told by
the annotation file's extension, so ``export_format`` is not needed. Coordinates are integer pixels
with an **inclusive** max (``xmax = x + w - 1``); fractional values, which YMIR does not write, are
rounded. Boxes of classes not in ``class_names`` are skipped, as the exporter does.
"""

from __future__ import annotations

import enum
import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from live_code.sdk._config import get_list, read_config
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ConfigValueError, DatasetFormatError, EnvFileError


class Split(str, enum.Enum):
    """A part of the task's dataset, each read from its own index file."""

    TRAINING = "training"
    VALIDATION = "validation"
    CANDIDATE = "candidate"


_INDEX_KEY = {
    Split.TRAINING: "training_index_file",
    Split.VALIDATION: "val_index_file",
    Split.CANDIDATE: "candidate_index_file",
}


class Box(NamedTuple):
    """An annotated box; ``xmax``/``ymax`` are inclusive pixel coordinates, as in YMIR."""

    class_index: int
    class_name: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int
    rotate_angle: float = 0.0

    @property
    def w(self) -> int:
        """Width in pixels (``xmax - xmin + 1``)."""
        return self.xmax - self.xmin + 1

    @property
    def h(self) -> int:
        """Height in pixels (``ymax - ymin + 1``)."""
        return self.ymax - self.ymin + 1


class DatasetItem(NamedTuple):
    """One image of a split. Candidates, and images exported without annotations (``export_format``
    ``none``), have ``annotation_path`` None and no boxes."""

    image_path: str
    annotation_path: str | None
    boxes: tuple[Box, ...] = ()


def index_file(split: Split | str, env: Env | None = None) -> str:
    """The index file of ``split`` named in env.yaml; EnvFileError when this task has none."""
    split = Split(split)
    env = env or read_env()
    key = _INDEX_KEY[split]
    path: str = getattr(env.input, key)
    if not path:
        kinds = ", ".join(sorted(k.value for k in env.kinds)) or "no kind"
        msg = f"env.yaml has no input.{key}: this task ({kinds}) has no {split.value} split"
        raise EnvFileError(msg)
    return path


def count_items(split: Split | str, *, env: Env | None = None) -> int:
    """How many images ``split`` has (non-blank lines of its index file)."""
    path = index_file(split, env)
    try:
        with open(path, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetFormatError(path, "", f"cannot read the index file: {e}") from None


def iter_items(
    split: Split | str,
    *,
    env: Env | None = None,
    class_names: Sequence[str] | None = None,
) -> Iterator[DatasetItem]:
    """Yield the images of ``split`` with their parsed boxes, in index-file order.

    ``class_names`` defaults to config.yaml's ``class_names`` (not read for the candidate split).
    The env, index path and class names are checked at the call; files are read while iterating,
    which raises DatasetFormatError, naming the file and line, for a broken index or annotation.
    """
    split = Split(split)
    env = env or read_env()
    path = index_file(split, env)
    names: tuple[str, ...] = ()
    if split is not Split.CANDIDATE:
        names = tuple(class_names) if class_names is not None else _config_class_names(env)
    return _iter_index(split, path, names)


def _iter_index(split: Split, path: str, names: tuple[str, ...]) -> Iterator[DatasetItem]:
    coco_cache: dict[str, dict[str, tuple[Box, ...]]] = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DatasetFormatError(path, "", f"cannot read the index file: {e.strerror}") from None
    with f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            columns = line.split("\t")
            image = columns[0]
            if split is Split.CANDIDATE:
                yield DatasetItem(image, None)
                continue
            annotation = columns[1] if len(columns) > 1 and columns[1] else None
            if annotation is None:  # export format 'none': images without annotation files
                yield DatasetItem(image, None)
                continue
            where = f"{path}: line {number}"
            yield DatasetItem(image, annotation, _read_boxes(annotation, image, names, coco_cache, where))


def _config_class_names(env: Env) -> tuple[str, ...]:
    names = get_list(read_config(env), "class_names", item_type=str)
    if not names:
        raise ConfigValueError("config.yaml has no class_names; pass class_names= to iter_items")
    return tuple(names)


def _read_boxes(
    annotation: str,
    image: str,
    names: tuple[str, ...],
    coco_cache: dict[str, dict[str, tuple[Box, ...]]],
    where: str,
) -> tuple[Box, ...]:
    ext = os.path.splitext(annotation)[1].lower()
    if ext == ".json":
        if annotation not in coco_cache:
            coco_cache[annotation] = _parse_coco(annotation, _read_text(annotation, where), names)
        return coco_cache[annotation].get(os.path.basename(image), ())
    if ext == ".txt":
        return _parse_ark(annotation, _read_text(annotation, where), names)
    if ext == ".xml":
        return _parse_voc(annotation, _read_text(annotation, where), names)
    msg = f"unknown annotation format {ext!r} (expected .txt ark, .xml VOC or .json COCO), listed at {where}"
    raise DatasetFormatError(annotation, "", msg)


def _read_text(path: str, where: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise DatasetFormatError(path, "", f"cannot read ({e.strerror}), listed at {where}") from None
    except UnicodeDecodeError as e:
        raise DatasetFormatError(path, "", f"not UTF-8 text: {e}") from None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _pixel(value: Any) -> int:
    return int(round(_number(value)))


def _parse_ark(path: str, text: str, names: tuple[str, ...]) -> tuple[Box, ...]:
    """``class_index, xmin, ymin, xmax, ymax[, anno_quality, rotate_angle]`` per line."""
    boxes = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split(",")]
        if len(cols) not in (5, 7):
            msg = f"expected 5 (YMIR 1.1) or 7 (YMIR 2) comma-separated columns, found {len(cols)}: {line!r}"
            raise DatasetFormatError(path, f"line {number}", msg)
        try:
            index = int(cols[0])
            xmin, ymin, xmax, ymax = (_pixel(c) for c in cols[1:5])
            angle = _number(cols[6]) if len(cols) == 7 else 0.0
            if len(cols) == 7:
                _number(cols[5])  # anno_quality: must be a number, not used
        except ValueError:
            raise DatasetFormatError(path, f"line {number}", f"not a number in {line!r}") from None
        if 0 <= index < len(names):
            boxes.append(Box(index, names[index], xmin, ymin, xmax, ymax, angle))
    return tuple(boxes)


def _parse_voc(path: str, text: str, names: tuple[str, ...]) -> tuple[Box, ...]:
    """Standard VOC ``<object>``s: class by ``<name>``, ``<bndbox>`` with inclusive max."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        line, column = e.position
        raise DatasetFormatError(path, f"line {line}", f"not valid XML (column {column}): {e}") from None
    index_of = {name: i for i, name in enumerate(names)}
    boxes = []
    for number, obj in enumerate(root.iter("object"), 1):
        place = f"object {number}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DatasetFormatError(path, place, "<object> has no <name>")
        if name not in index_of:
            continue
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise DatasetFormatError(path, place, f"<object> {name!r} has no <bndbox>")
        try:
            xmin, ymin, xmax, ymax = (_pixel(_required_text(bndbox, tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))
            angle_text = bndbox.findtext("rotate_angle")
            angle = _number(angle_text) if angle_text and angle_text.strip() else 0.0
        except ValueError as e:
            raise DatasetFormatError(path, place, f"bad <bndbox> of {name!r}: {e}") from None
        boxes.append(Box(index_of[name], name, xmin, ymin, xmax, ymax, angle))
    return tuple(boxes)


def _required_text(element: ET.Element, tag: str) -> str:
    text = element.findtext(tag)
    if text is None or not text.strip():
        raise ValueError(f"<{tag}> is missing")
    return text


def _parse_coco(path: str, text: str, names: tuple[str, ...]) -> dict[str, tuple[Box, ...]]:
    """image basename -> boxes, from a whole ``coco-annotations.json``.

    Categories are matched to ``class_names`` by name; without a ``categories`` list the category
    id is the 0-based index into ``class_names`` (what ymir's exporter writes).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(path, f"line {e.lineno}", f"not valid JSON (column {e.colno}): {e.msg}") from None
    if not isinstance(data, Mapping):
        raise DatasetFormatError(path, "", "a COCO file must be a JSON object")
    images = _list_of_objects(path, data, "images")
    annotations = _list_of_objects(path, data, "annotations")
    categories = _list_of_objects(path, data, "categories")
    index_of = {name: i for i, name in enumerate(names)}
    if categories:
        class_of = {
            c.get("id"): index_of[c["name"]]
            for c in categories
            if isinstance(c.get("name"), str) and c["name"] in index_of
        }
    else:
        class_of = {i: i for i in range(len(names))}
    file_of = {}
    for i, image in enumerate(images):
        if not isinstance(image.get("file_name"), str) or "id" not in image:
            raise DatasetFormatError(path, f"images[{i}]", "an image needs an id and a file_name")
        file_of[image["id"]] = os.path.basename(image["file_name"])
    found: dict[str, list[Box]] = {}
    for i, ann in enumerate(annotations):
        place = f"annotations[{i}]"
        if ann.get("image_id") not in file_of:
            raise DatasetFormatError(path, place, f"image_id {ann.get('image_id')!r} is not in images")
        index = class_of.get(ann.get("category_id"))
        if index is None:
            continue
        bbox = ann.get("bbox")
        try:
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise ValueError(f"bbox must be [x, y, w, h], got {bbox!r}")
            x, y, w, h = (_number(v) for v in bbox)
            box = Box(index, names[index], _pixel(x), _pixel(y), _pixel(x + w) - 1, _pixel(y + h) - 1)
        except (TypeError, ValueError) as e:
            raise DatasetFormatError(path, place, str(e)) from None
        found.setdefault(file_of[ann["image_id"]], []).append(box)
    return {name: tuple(boxes) for name, boxes in found.items()}


def _list_of_objects(path: str, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise DatasetFormatError(path, key, f"{key} must be a list of objects")
    return value
