"""The task's dataset as ultralytics reads it: ``images/`` and ``labels/`` side by side.

ultralytics finds an image's label file by replacing ``/images/`` with ``/labels/`` in its path.
``/in`` is read-only, so each image is symlinked into ``<work>/dataset/<split>/images/`` and its
boxes are written to ``<work>/dataset/<split>/labels/<same stem>.txt`` as YOLO rows
``class x_center y_center width height`` (normalised to the image size). YMIR's boxes come from
``live_code.sdk.iter_items`` (ark, VOC and COCO alike); their inclusive ``xmax``/``ymax`` become
the box's far edge ``xmax + 1``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from typing import NamedTuple

import yaml
from PIL import Image, UnidentifiedImageError

from live_code import sdk

logger = logging.getLogger(__name__)

#: Pillow format -> a suffix ultralytics accepts (ultralytics.data.utils.IMG_FORMATS)
_SUFFIX = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "BMP": ".bmp",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "MPO": ".mpo",
    "DNG": ".dng",
    "PFM": ".pfm",
}


class Converted(NamedTuple):
    data_yaml: str
    train_images: int
    val_images: int
    boxes: int


def image_info(path: str) -> tuple[int, int, str]:
    """Width, height and an ultralytics-friendly suffix of the image at ``path`` (header only)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            fmt = img.format or ""
    except (OSError, UnidentifiedImageError) as e:
        raise sdk.ImageFormatError(f"cannot read the image {path}: {e}") from None
    suffix = _SUFFIX.get(fmt)
    if suffix is None:
        raise sdk.ImageFormatError(
            f"{path} is a {fmt or 'unknown'} image; ultralytics reads {', '.join(sorted(_SUFFIX))}"
        )
    return width, height, suffix


def yolo_rows(boxes: Sequence[sdk.Box], width: int, height: int) -> list[str]:
    """``class cx cy w h`` per box, normalised and clipped to the image; empty boxes dropped."""
    rows = []
    for box in boxes:
        x1, y1 = max(0, box.xmin), max(0, box.ymin)
        x2, y2 = min(width, box.xmax + 1), min(height, box.ymax + 1)
        if x2 <= x1 or y2 <= y1:
            continue
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        rows.append(f"{box.class_index} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
    return rows


def _write_split(split: sdk.Split, folder: str, class_names: Sequence[str]) -> tuple[str, int, int]:
    images_dir, labels_dir = os.path.join(folder, "images"), os.path.join(folder, "labels")
    os.makedirs(images_dir)
    os.makedirs(labels_dir)
    listed, boxes = [], 0
    for number, item in enumerate(sdk.iter_items(split, class_names=class_names)):
        width, height, suffix = image_info(item.image_path)
        stem = f"{number:07d}"  # YMIR names images by hash; a counter also keeps stems unique
        link = os.path.join(images_dir, stem + suffix)
        os.symlink(os.path.abspath(item.image_path), link)
        rows = yolo_rows(item.boxes, width, height)
        with open(os.path.join(labels_dir, stem + ".txt"), "w", encoding="utf-8") as f:
            f.write("".join(f"{row}\n" for row in rows))
        listed.append(link)
        boxes += len(rows)
    if not listed:
        raise sdk.DatasetFormatError(sdk.index_file(split), "", f"the {split.value} split has no images")
    list_file = os.path.join(folder, "images.txt")
    with open(list_file, "w", encoding="utf-8") as f:
        f.write("".join(f"{path}\n" for path in listed))
    return list_file, len(listed), boxes


def convert(class_names: Sequence[str], dest: str) -> Converted:
    """Write the training and validation splits under ``dest`` (replaced) and their data.yaml."""
    if os.path.lexists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    train_list, train_count, train_boxes = _write_split(sdk.Split.TRAINING, os.path.join(dest, "train"), class_names)
    val_list, val_count, val_boxes = _write_split(sdk.Split.VALIDATION, os.path.join(dest, "val"), class_names)
    data_yaml = os.path.join(dest, "data.yaml")
    data = {
        "path": dest,
        "train": train_list,
        "val": val_list,
        "nc": len(class_names),
        "names": dict(enumerate(class_names)),
    }
    with open(data_yaml, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True)
    logger.info(
        "dataset: %d training images (%d boxes), %d validation images (%d boxes), %d classes, in %s",
        train_count,
        train_boxes,
        val_count,
        val_boxes,
        len(class_names),
        dest,
    )
    return Converted(data_yaml, train_count, val_count, train_boxes + val_boxes)
