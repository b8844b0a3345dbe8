"""COCO detection files (cocodataset.org "Data format"): reading, and writing in two layouts.

- **YMIR's export** (ymir-contract.md 4.5, ymir ``mir/tools/exporter.py``): one
  ``coco-annotations.json`` for all images; image ids from 1, ``file_name`` the asset's basename,
  category id = the class's 0-based index, ``bbox`` ``[xmin, ymin, w, h]`` in whole pixels, with
  the exporter's extra keys (``confidence``, ``segmentation``, ``licenses``...).
- **For training frameworks** (what mmdet's ``CocoDataset`` and detectron2's
  ``register_coco_instances`` read): category id ``i + 1`` for ``class_names[i]`` (COCO tools leave
  id 0 unused), ``file_name`` as given (the SDK gives absolute paths), and a YMIR box (inclusive max)
  becomes ``[x, y, width, height]`` with the far edge ``xmax + 1``, clipped to the image.

Reading matches categories to the class names by name; without a ``categories`` list the category
id is the 0-based index into the class names (what ymir's exporter writes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Optional

from live_code.sdk._errors import DatasetFormatError
from live_code.sdk.formats.annotations import Box, number, pixel


class ImageBoxes(NamedTuple):
    """An image as the writers take it: the name to write, its size and its boxes."""

    file_name: str
    width: int
    height: int
    boxes: tuple[Box, ...]


class CocoFile(NamedTuple):
    """A parsed COCO file: image id -> ``file_name`` (file order), the class names the boxes index,
    and ``(image id, box)`` per kept annotation (file order)."""

    images: dict[Any, str]
    class_names: tuple[str, ...]
    annotations: tuple[tuple[Any, Box], ...]


# -- reading ---------------------------------------------------------------------------------------


def read_coco(path: str, text: str, names: Sequence[str] | None = None) -> CocoFile:
    """The images and boxes of a COCO file's ``text`` (``path`` names it in errors).

    With ``names``, annotations of other categories are skipped; without, the class names are the
    categories' (by id) and an annotation of an unknown category is an error. DatasetFormatError
    names the file and the entry.
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
    class_names, class_of = _classes(categories, names)
    file_of: dict[Any, str] = {}
    for i, image in enumerate(images):
        if not isinstance(image.get("file_name"), str) or "id" not in image:
            raise DatasetFormatError(path, f"images[{i}]", "an image needs an id and a file_name")
        file_of[image["id"]] = image["file_name"]
    found = []
    for i, ann in enumerate(annotations):
        place = f"annotations[{i}]"
        if ann.get("image_id") not in file_of:
            raise DatasetFormatError(path, place, f"image_id {ann.get('image_id')!r} is not in images")
        index = class_of.get(ann.get("category_id"))
        if index is None:
            if names is None:
                raise DatasetFormatError(path, place, f"category_id {ann.get('category_id')!r} is not in categories")
            continue
        try:
            box = _box(ann.get("bbox"), index, class_names[index])
        except (TypeError, ValueError) as e:
            raise DatasetFormatError(path, place, str(e)) from None
        found.append((ann["image_id"], box))
    return CocoFile(file_of, class_names, tuple(found))


def _classes(
    categories: list[Mapping[str, Any]], names: Sequence[str] | None
) -> tuple[tuple[str, ...], dict[Any, int]]:
    """(class names, category id -> class index)."""
    if names is None:
        by_id = {c.get("id"): c["name"] for c in categories if isinstance(c.get("name"), str)}
        ordered = tuple(dict.fromkeys(by_id[k] for k in sorted(by_id, key=_id_order)))
        index_of = {name: i for i, name in enumerate(ordered)}
        return ordered, {k: index_of[v] for k, v in by_id.items()}
    index_of = {name: i for i, name in enumerate(names)}
    if categories:
        known = (c for c in categories if isinstance(c.get("name"), str) and c["name"] in index_of)
        return tuple(names), {c.get("id"): index_of[c["name"]] for c in known}
    return tuple(names), {i: i for i in range(len(names))}


def _id_order(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def _box(bbox: Any, index: int, name: str) -> Box:
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise ValueError(f"bbox must be [x, y, w, h], got {bbox!r}")
    x, y, w, h = (number(v) for v in bbox)
    return Box(index, name, pixel(x), pixel(y), pixel(x + w) - 1, pixel(y + h) - 1)


def _list_of_objects(path: str, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise DatasetFormatError(path, key, f"{key} must be a list of objects")
    return value


# -- writing ---------------------------------------------------------------------------------------

_Entry = Callable[[Box, ImageBoxes], Optional[dict[str, Any]]]


def _document(
    images: Iterable[ImageBoxes], image_keys: dict[str, Any], annotation: _Entry
) -> dict[str, list[dict[str, Any]]]:
    """images and annotations, ids from 1; ``annotation`` gives a box's keys, or None to leave it out."""
    entries: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, image in enumerate(images, start=1):
        size = {"file_name": image.file_name, "width": image.width, "height": image.height}
        entries.append({"id": image_id, **size, **image_keys})
        for box in image.boxes:
            keys = annotation(box, image)
            if keys is not None:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **keys})
    return {"images": entries, "annotations": annotations}


def exported_coco_text(images: Iterable[ImageBoxes], class_names: Sequence[str]) -> str:
    """The ``coco-annotations.json`` of YMIR's export of ``images`` (boxes indexed into ``class_names``)."""

    def annotation(box: Box, _image: ImageBoxes) -> dict[str, Any]:
        return {
            "category_id": box.class_index,
            "iscrowd": 0,
            "bbox": [box.xmin, box.ymin, box.w, box.h],
            "confidence": 1.0,
            "area": box.w * box.h,
            "segmentation": [],
        }

    extra = {"date_captured": "", "license": 0, "coco_url": "", "flickr_url": ""}
    doc = _document(images, extra, annotation)
    categories = [{"id": i, "name": name, "supercategory": "object"} for i, name in enumerate(class_names)]
    return json.dumps({**doc, "licenses": [], "categories": categories}, indent=1) + "\n"


def coco_categories(class_names: Sequence[str]) -> list[dict[str, Any]]:
    """COCO ``categories`` for training: id ``i + 1`` for ``class_names[i]``."""
    return [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(class_names)]


def coco_box(box: Box, width: int, height: int) -> list[float] | None:
    """``[x, y, w, h]`` of a YMIR box clipped to a ``width`` x ``height`` image, or None when
    nothing of it is inside the image."""
    x1, y1 = max(0, box.xmin), max(0, box.ymin)
    x2, y2 = min(width, box.xmax + 1), min(height, box.ymax + 1)
    if x2 <= x1 or y2 <= y1:
        return None
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def training_coco(images: Iterable[ImageBoxes], class_names: Sequence[str]) -> dict[str, Any]:
    """The COCO dict for training frameworks: every image (also those without boxes), one annotation
    per box of a known class that stays non-empty inside its image."""

    def annotation(box: Box, image: ImageBoxes) -> dict[str, Any] | None:
        if not 0 <= box.class_index < len(class_names):
            return None
        xywh = coco_box(box, image.width, image.height)
        if xywh is None:
            return None
        return {"category_id": box.class_index + 1, "bbox": xywh, "area": xywh[2] * xywh[3], "iscrowd": 0}

    return {**_document(images, {}, annotation), "categories": coco_categories(class_names)}
