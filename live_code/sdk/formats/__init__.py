"""The dataset and log formats, in one place: what the SDK reads and writes inside a job, and what
the harness's commands (``datasets``, ``sample``, ``report``) use on the host.

- ``images``: an image's width and height from its header (PNG, JPEG, BMP, GIF, WebP);
- ``annotations``: the :class:`Box`, and YMIR's ark txt and VOC xml, read and written;
- ``coco``: COCO detection files, read, and written as YMIR exports them or for training frameworks;
- ``tfrecord``: TFRecord framing (CRC-32C, masked), the container of TensorBoard's event files.

The standard library only (the errors are the SDK's), Python 3.9 and later: the SDK is copied into
every job. The harness imports this package and nothing else of the SDK (``tests/test_boundaries.py``).
"""

from __future__ import annotations

from live_code.sdk._errors import DatasetFormatError, ImageFormatError
from live_code.sdk.formats.annotations import NO_INDEX, Box, VocFile, ark_text, read_ark, read_voc, voc_text
from live_code.sdk.formats.coco import (
    CocoFile,
    ImageBoxes,
    coco_box,
    coco_categories,
    exported_coco_text,
    read_coco,
    training_coco,
)
from live_code.sdk.formats.images import header_size, image_size
from live_code.sdk.formats.tfrecord import RecordError, crc32c, frame_record, masked_crc32c, read_records

__all__ = [
    "NO_INDEX",
    "Box",
    "CocoFile",
    "DatasetFormatError",
    "ImageBoxes",
    "ImageFormatError",
    "RecordError",
    "VocFile",
    "ark_text",
    "coco_box",
    "coco_categories",
    "crc32c",
    "exported_coco_text",
    "frame_record",
    "header_size",
    "image_size",
    "masked_crc32c",
    "read_ark",
    "read_coco",
    "read_records",
    "read_voc",
    "training_coco",
    "voc_text",
]
