"""The Box, and YMIR's per-image annotation files: ark txt and VOC xml (contract section 4).

Formats (ymir-contract.md 4.3 and 4.4, from ymir ``mir/tools/exporter.py``): coordinates are
integer pixels with an **inclusive** max (``xmax = x + w - 1``); fractional values, which YMIR does
not write, are rounded. An ark line is ``class_index, xmin, ymin, xmax, ymax`` (YMIR 1.1) or adds
``anno_quality, rotate_angle`` (YMIR 2). A VOC ``<annotation>`` has ``<filename>`` (the in-container
image path), ``<size>``, ``<segmented>`` and per ``<object>`` its class ``<name>``, ``<pose>``,
``<truncated>``, ``<occluded>``, a ``<bndbox>`` (plus ``<rotate_angle>`` in YMIR 2) and
``<difficult>``. Boxes of classes not in the given class names are skipped, as the exporter does.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from live_code.sdk._errors import DatasetFormatError

#: the class index of a box read without a list of class names (its class is known by name only)
NO_INDEX = -1


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

    @property
    def name(self) -> str:
        """The class name (``class_name``)."""
        return self.class_name


def number(value: Any) -> float:
    """``value`` (a number or its text) as a finite float; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a number")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{value!r} is not a finite number")
    return result


def pixel(value: Any) -> int:
    """``value`` rounded to a whole pixel."""
    return int(round(number(value)))


# -- ark txt ---------------------------------------------------------------------------------------


def read_ark(path: str, text: str, names: Sequence[str]) -> tuple[Box, ...]:
    """The boxes of an ark file's ``text`` (``path`` names it in errors) whose class index is in ``names``."""
    boxes = []
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split(",")]
        if len(cols) not in (5, 7):
            msg = f"expected 5 (YMIR 1.1) or 7 (YMIR 2) comma-separated columns, found {len(cols)}: {line!r}"
            raise DatasetFormatError(path, f"line {line_number}", msg)
        try:
            index = int(cols[0])
            xmin, ymin, xmax, ymax = (pixel(c) for c in cols[1:5])
            angle = number(cols[6]) if len(cols) == 7 else 0.0
            if len(cols) == 7:
                number(cols[5])  # anno_quality: must be a number, not used
        except ValueError:
            raise DatasetFormatError(path, f"line {line_number}", f"not a number in {line!r}") from None
        if 0 <= index < len(names):
            boxes.append(Box(index, names[index], xmin, ymin, xmax, ymax, angle))
    return tuple(boxes)


def ark_text(boxes: Iterable[Box], *, rotate: bool) -> str:
    """An ark file of ``boxes`` (by their class index); 7 columns when ``rotate`` (YMIR 2)."""
    extra = ", -1.0, 0.0" if rotate else ""
    return "".join(f"{b.class_index}, {b.xmin}, {b.ymin}, {b.xmax}, {b.ymax}{extra}\n" for b in boxes)


# -- VOC xml ---------------------------------------------------------------------------------------


class VocFile(NamedTuple):
    """A parsed VOC annotation: its ``<filename>`` (stripped, '' when absent) and boxes."""

    filename: str
    boxes: tuple[Box, ...]


def read_voc(path: str, data: str | bytes, names: Sequence[str] | None = None) -> VocFile:
    """The ``<object>``s of a VOC file's ``data``: the class by ``<name>``, ``<bndbox>`` with inclusive max.

    With ``names``, objects of other classes are skipped; without, every object is kept with class
    index :data:`NO_INDEX`. DatasetFormatError (naming ``path`` and the object) for broken XML or objects.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        line, column = e.position
        raise DatasetFormatError(path, f"line {line}", f"not valid XML (column {column}): {e}") from None
    index_of = {name: i for i, name in enumerate(names)} if names is not None else None
    boxes = []
    for place_number, obj in enumerate(root.iter("object"), 1):
        place = f"object {place_number}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DatasetFormatError(path, place, "<object> has no <name>")
        if index_of is not None and name not in index_of:
            continue
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise DatasetFormatError(path, place, f"<object> {name!r} has no <bndbox>")
        try:
            xmin, ymin, xmax, ymax = (pixel(_required_text(bndbox, tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))
            angle_text = bndbox.findtext("rotate_angle")
            angle = number(angle_text) if angle_text and angle_text.strip() else 0.0
        except ValueError as e:
            raise DatasetFormatError(path, place, f"bad <bndbox> of {name!r}: {e}") from None
        index = NO_INDEX if index_of is None else index_of[name]
        boxes.append(Box(index, name, xmin, ymin, xmax, ymax, angle))
    return VocFile((root.findtext("filename") or "").strip(), tuple(boxes))


def _required_text(element: ET.Element, tag: str) -> str:
    text = element.findtext(tag)
    if text is None or not text.strip():
        raise ValueError(f"<{tag}> is missing")
    return text


def voc_text(filename: str, width: int, height: int, boxes: Iterable[Box], *, rotate: bool) -> str:
    """A VOC ``<annotation>`` as YMIR writes it; ``filename`` is the in-container image path, and
    ``rotate`` adds each box's ``<rotate_angle>`` (YMIR 2)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for box in boxes:
        obj = ET.SubElement(root, "object")
        for tag, text in (("name", box.class_name), ("pose", "Unspecified"), ("truncated", "0"), ("occluded", "0")):
            ET.SubElement(obj, tag).text = text
        bndbox = ET.SubElement(obj, "bndbox")
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            ET.SubElement(bndbox, tag).text = str(getattr(box, tag))
        if rotate:
            ET.SubElement(bndbox, "rotate_angle").text = "0.0"
        ET.SubElement(obj, "difficult").text = "0"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"
