"""The task's dataset as a COCO detection file, the format detectron2's ``register_coco_instances`` reads.

Framework-free (standard library, Pillow for image sizes, ``live_code.sdk``): tested without detectron2.
The file goes under the job's work dir in ``/out`` (``/in`` is read-only); images are referred to by
their absolute path, so the image root given at registration does not matter. YMIR boxes have inclusive
``xmax``/``ymax`` (pixel indices); a COCO box is ``[x, y, width, height]`` with the far edge
``xmax + 1``. Category ids are ``class index + 1`` (id 0 is unused by COCO tools).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from live_code import sdk

SizeOf = Callable[[str], "tuple[int, int]"]


class ImageFormatError(Exception):
    """An image that cannot be read (reported as ReturnCode.UNKNOWN_IMAGE_FORMAT)."""


def image_size(path: str) -> tuple[int, int]:
    """Width and height of the image at ``path`` (reads the header only)."""
    from PIL import Image, UnidentifiedImageError  # Pillow: imported here so the module loads without it

    try:
        with Image.open(path) as img:
            return int(img.size[0]), int(img.size[1])
    except (OSError, UnidentifiedImageError) as e:
        raise ImageFormatError(f"cannot read the image {path}: {e}") from None


def categories(class_names: Sequence[str]) -> list[dict[str, Any]]:
    """COCO ``categories``: id ``i + 1`` for ``class_names[i]``."""
    return [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(class_names)]


def coco_box(box: sdk.Box, width: int, height: int) -> list[float] | None:
    """``[x, y, w, h]`` of a YMIR box clipped to the image, or None when nothing is left of it."""
    x1, y1 = max(0, box.xmin), max(0, box.ymin)
    x2, y2 = min(width, box.xmax + 1), min(height, box.ymax + 1)
    if x2 <= x1 or y2 <= y1:
        return None
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def coco_dataset(items: Iterable[sdk.DatasetItem], class_names: Sequence[str],
                 size_of: SizeOf = image_size) -> dict[str, Any]:
    """The COCO dict of ``items``: one image per item (also those without boxes), one annotation
    per box that stays non-empty inside its image."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, item in enumerate(items, start=1):
        width, height = size_of(item.image_path)
        images.append({"id": image_id, "file_name": os.path.abspath(item.image_path), "width": width,
                       "height": height})
        for box in item.boxes:
            if not 0 <= box.class_index < len(class_names):
                continue
            xywh = coco_box(box, width, height)
            if xywh is None:
                continue
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": box.class_index + 1,
                                "bbox": xywh, "area": xywh[2] * xywh[3], "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": categories(class_names)}


def write_split(split: sdk.Split, class_names: Sequence[str], path: str, size_of: SizeOf = image_size,
                env: sdk.Env | None = None) -> tuple[int, int]:
    """Write the COCO file of ``split`` to ``path``; returns (images, boxes). Refuses ``/in``."""
    if _under(path, "/in") or (env is not None and _under(path, env.input.root_dir)):
        raise ValueError(f"{path} is inside the read-only input dir; write the dataset under /out")
    data = coco_dataset(sdk.iter_items(split, class_names=list(class_names), env=env), class_names, size_of)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)
    return len(data["images"]), len(data["annotations"])


def _under(path: str, root: str) -> bool:
    if not root:
        return False
    path, root = os.path.abspath(path), os.path.abspath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
