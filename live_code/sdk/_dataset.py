"""Reading the task's dataset: its index files, and the annotations they list in ark txt, VOC xml
or COCO json (parsed by :mod:`live_code.sdk.formats`).

The annotation format is told by the annotation file's extension (contract section 4), so
``export_format`` is not needed. Boxes of classes not in ``class_names`` are skipped, as ymir's
exporter does.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from live_code.sdk._config import get_list, read_config
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ConfigValueError, DatasetFormatError, EnvFileError
from live_code.sdk.formats import Box, read_ark, read_coco, read_voc


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
            coco_cache[annotation] = _coco_by_name(annotation, _read_text(annotation, where), names)
        return coco_cache[annotation].get(os.path.basename(image), ())
    if ext == ".txt":
        return read_ark(annotation, _read_text(annotation, where), names)
    if ext == ".xml":
        return read_voc(annotation, _read_text(annotation, where), names).boxes
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


def _coco_by_name(path: str, text: str, names: tuple[str, ...]) -> dict[str, tuple[Box, ...]]:
    """image basename -> boxes, from a whole ``coco-annotations.json``."""
    coco = read_coco(path, text, names)
    found: dict[str, list[Box]] = {}
    for image_id, box in coco.annotations:
        found.setdefault(os.path.basename(coco.images[image_id]), []).append(box)
    return {name: tuple(boxes) for name, boxes in found.items()}
