"""A split of the task's dataset as a COCO detection file (what mmdet's ``CocoDataset`` and
detectron2's ``register_coco_instances`` read; the layout is :func:`live_code.sdk.formats.training_coco`'s).

The file goes under ``/out`` (``/in`` is read-only and is refused); images are referred to by their
absolute path, so the framework's image root does not matter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from live_code.sdk._config import get_list, read_config
from live_code.sdk._dataset import DatasetItem, Split, iter_items
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ConfigValueError, ResultError
from live_code.sdk._io import replace_file
from live_code.sdk.formats import ImageBoxes, image_size, training_coco

SizeOf = Callable[[str], tuple[int, int]]
_READ_ONLY_ROOT = "/in"


class CocoCounts(NamedTuple):
    """What :func:`write_coco` wrote: images (all of the split's) and annotations (boxes kept)."""

    images: int
    annotations: int


def coco_dataset(
    items: Iterable[DatasetItem], class_names: Sequence[str], size_of: SizeOf = image_size
) -> dict[str, Any]:
    """The COCO dict of ``items``: one image per item (also those without boxes), one annotation
    per box of a known class that stays non-empty inside its image."""
    images = (ImageBoxes(os.path.abspath(item.image_path), *size_of(item.image_path), item.boxes) for item in items)
    return training_coco(images, class_names)


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
