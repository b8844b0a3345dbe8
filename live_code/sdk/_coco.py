"""A split of the task's dataset as a COCO detection file (what mmdet's ``CocoDataset`` and
detectron2's ``register_coco_instances`` read).

The file goes under ``/out`` (``/in`` is read-only and is refused); images are referred to by their
absolute path, so the framework's image root does not matter. YMIR boxes have inclusive
``xmax``/``ymax`` (pixel indices); a COCO box is ``[x, y, width, height]`` with the far edge
``xmax + 1``, clipped to the image. Image, annotation and category ids start at 1 (category
``i + 1`` is ``class_names[i]``; id 0 is unused by COCO tools). Format: cocodataset.org "Data format".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from live_code.sdk._config import get_list, read_config
from live_code.sdk._dataset import Box, DatasetItem, Split, iter_items
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ConfigValueError, ResultError
from live_code.sdk._imagesize import image_size
from live_code.sdk._io import replace_file

SizeOf = Callable[[str], tuple[int, int]]
_READ_ONLY_ROOT = "/in"


class CocoCounts(NamedTuple):
    """What :func:`write_coco` wrote: images (all of the split's) and annotations (boxes kept)."""

    images: int
    annotations: int


def coco_categories(class_names: Sequence[str]) -> list[dict[str, Any]]:
    """COCO ``categories``: id ``i + 1`` for ``class_names[i]``."""
    return [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(class_names)]


def coco_box(box: Box, width: int, height: int) -> list[float] | None:
    """``[x, y, w, h]`` of a YMIR box clipped to a ``width`` x ``height`` image, or None when
    nothing of it is inside the image."""
    x1, y1 = max(0, box.xmin), max(0, box.ymin)
    x2, y2 = min(width, box.xmax + 1), min(height, box.ymax + 1)
    if x2 <= x1 or y2 <= y1:
        return None
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def coco_dataset(
    items: Iterable[DatasetItem], class_names: Sequence[str], size_of: SizeOf = image_size
) -> dict[str, Any]:
    """The COCO dict of ``items``: one image per item (also those without boxes), one annotation
    per box of a known class that stays non-empty inside its image."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, item in enumerate(items, start=1):
        width, height = size_of(item.image_path)
        images.append({"id": image_id, "file_name": os.path.abspath(item.image_path), "width": width, "height": height})
        for box in item.boxes:
            if not 0 <= box.class_index < len(class_names):
                continue
            xywh = coco_box(box, width, height)
            if xywh is None:
                continue
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": box.class_index + 1,
                    "bbox": xywh,
                    "area": xywh[2] * xywh[3],
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": annotations, "categories": coco_categories(class_names)}


def write_coco(
    split: Split | str,
    path: str,
    *,
    class_names: Sequence[str] | None = None,
    env: Env | None = None,
    size_of: SizeOf = image_size,
) -> CocoCounts:
    """Write ``split`` as a COCO detection file at ``path`` and return the counts written.

    ``class_names`` defaults to config.yaml's. ResultError when ``path`` is under ``/in`` or the
    task's input dir (read-only); ImageFormatError when an image's size cannot be read.
    """
    env = env or read_env()
    if _under(path, _READ_ONLY_ROOT) or _under(path, env.input.root_dir):
        msg = f"{path} is inside the read-only input dir; write the COCO file under /out"
        raise ResultError(msg)
    if class_names is None:
        class_names = get_list(read_config(env), "class_names", item_type=str)
        if not class_names:
            raise ConfigValueError("config.yaml has no class_names; pass class_names= to write_coco")
    names = list(class_names)
    data = coco_dataset(iter_items(split, class_names=names, env=env), names, size_of)
    replace_file(path, json.dumps(data))
    return CocoCounts(len(data["images"]), len(data["annotations"]))


def _under(path: str, root: str) -> bool:
    if not root:
        return False
    path, root = os.path.abspath(path), os.path.abspath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
