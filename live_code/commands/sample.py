"""A small YMIR task directory with known boxes: ``DIR/in`` laid out as the platform does, empty ``DIR/out``.

Images are 128x128 PNGs (written by a small stdlib encoder, so no imaging library is needed at run
time): a noisy grey background with a few solid shapes, one colour and shape per class, so that a
tiny detector can learn them in seconds. Everything is drawn from one seed, so the same arguments
always give the same bytes. Layout and formats follow ymir-contract.md sections 1.2, 2, 3 and 4
(which cite ymir ``mir/tools/exporter.py`` and ``mir/tools/env_config.py``):

- ``in/assets/<last 2 hex of sha1>/<sha1>.png``, sha1 of the image bytes;
- annotations mirroring the image path (ark ``.txt``, VOC ``.xml``) or one ``coco-annotations.json``;
- ``train-index.tsv``/``val-index.tsv`` (``image\\tannotation``), an empty ``test-index.tsv`` and the
  exporter's by-products for training; ``candidate-index.tsv`` for mining/infer;
- ``models/`` stays empty: the sample has no trained model, so mining/infer get an empty
  ``model_params_path`` (a demo mines with the model its training step wrote);
- ``env.yaml`` with the container paths ``/in`` and ``/out``, and a ``config.yaml`` with the keys the
  platform injects.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import yaml

from live_code import contract
from live_code.contract import TaskKind
from live_code.errors import ConfigError
from live_code.record import record
from live_code.sdk import formats
from live_code.sdk.formats import Box
from live_code.util import clean_path_on_failure, rmtree

CLASS_NAMES = ("cat", "dog", "person")
WIDTH = HEIGHT = 128
FORMATS = ("ark", "voc", "coco")
#: class -> (fill colour, shape). Each colour has one channel far above the grey background.
_LOOKS = {
    "cat": ((235, 130, 30), "ellipse"),
    "dog": ((40, 180, 70), "rectangle"),
    "person": ((50, 90, 230), "rectangle"),
}
#: class -> (min w, max w, min h, max h): cats roundish, dogs wide, people tall
_SIZES = {"cat": (20, 36, 20, 36), "dog": (30, 48, 18, 28), "person": (14, 22, 34, 56)}
_BACKGROUND = bytes(96 + 2 * (b % 16) for b in range(256))  # byte -> grey-ish level 96..126 (16 levels: small PNGs)


class SampleImage(NamedTuple):
    """One drawn image: its PNG bytes, asset id and the boxes drawn into it."""

    sha1: str
    png: bytes
    boxes: tuple[Box, ...]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def rel_path(self) -> str:
        """``assets/<xx>/<sha1>.png`` relative to ``/in``."""
        return f"assets/{self.sha1[-2:]}/{self.sha1}.png"


# -- drawing -------------------------------------------------------------------------------------


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """An 8-bit RGB PNG (no filter, zlib level 9) of ``rgb`` rows, top to bottom."""
    if len(rgb) != width * height * 3:
        raise ValueError(f"expected {width * height * 3} bytes of RGB, got {len(rgb)}")
    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # depth 8, colour type 2 (RGB)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _place_boxes(rng: random.Random) -> tuple[Box, ...]:
    count = rng.choices((0, 1, 2, 3), weights=(1, 4, 4, 2))[0]
    boxes: list[Box] = []
    for _ in range(count):
        for _attempt in range(50):  # non-overlapping, 2 px apart, fully inside the image
            index = rng.randrange(len(CLASS_NAMES))
            w_lo, w_hi, h_lo, h_hi = _SIZES[CLASS_NAMES[index]]
            w, h = rng.randint(w_lo, w_hi), rng.randint(h_lo, h_hi)
            x, y = rng.randint(1, WIDTH - w - 1), rng.randint(1, HEIGHT - h - 1)
            box = Box(index, CLASS_NAMES[index], x, y, x + w - 1, y + h - 1)
            if all(
                box.xmin > b.xmax + 2 or b.xmin > box.xmax + 2 or box.ymin > b.ymax + 2 or b.ymin > box.ymax + 2
                for b in boxes
            ):
                boxes.append(box)
                break
    return tuple(boxes)


def _inside(box: Box, x: int, y: int) -> bool:
    """Whether pixel (x, y) belongs to the shape; an ellipse touches all four sides of its box."""
    if _LOOKS[box.class_name][1] == "rectangle":
        return True
    cx, cy = box.xmin + box.w / 2, box.ymin + box.h / 2
    return ((x + 0.5 - cx) / (box.w / 2)) ** 2 + ((y + 0.5 - cy) / (box.h / 2)) ** 2 <= 1.0


def draw_image(rng: random.Random) -> SampleImage:
    """One image drawn from ``rng``: noise, then the shapes of its boxes."""
    pixels = bytearray(rng.randbytes(WIDTH * HEIGHT * 3).translate(_BACKGROUND))
    boxes = _place_boxes(rng)
    for box in boxes:
        colour = bytes(_LOOKS[box.class_name][0])
        for y in range(box.ymin, box.ymax + 1):
            for x in range(box.xmin, box.xmax + 1):
                if _inside(box, x, y):
                    at = (y * WIDTH + x) * 3
                    pixels[at : at + 3] = colour
    png = encode_png(WIDTH, HEIGHT, bytes(pixels))
    return SampleImage(hashlib.sha1(png).hexdigest(), png, boxes)


def draw_images(count: int, seed: int = 0) -> tuple[SampleImage, ...]:
    """The ``count`` images (and their known boxes) that :func:`write_sample_dataset` writes for ``seed``."""
    rng = random.Random(seed)
    return tuple(draw_image(rng) for _ in range(count))


def split_images(images: Sequence[SampleImage]) -> tuple[tuple[SampleImage, ...], tuple[SampleImage, ...]]:
    """(train, val): every fourth image validates, at least one."""
    val_at = {i for i in range(len(images)) if i % 4 == 3} or {len(images) - 1}
    return (
        tuple(im for i, im in enumerate(images) if i not in val_at),
        tuple(im for i, im in enumerate(images) if i in val_at),
    )


# -- annotation formats (contract 4.3 - 4.5) ---------------------------------------------------


def ark_text(image: SampleImage, protocol: str) -> str:
    """``class_index, xmin, ymin, xmax, ymax[, anno_quality, rotate_angle]`` per box (7 columns when
    the protocol knows rotate_angle)."""
    return formats.ark_text(image.boxes, rotate=contract.allows_rotate_angle(protocol))


def voc_text(image: SampleImage, protocol: str) -> str:
    """A VOC ``<annotation>``; ``<filename>`` is the in-container image path, as YMIR writes it."""
    filename = f"{contract.IN_DIR}/{image.rel_path}"
    rotate = contract.allows_rotate_angle(protocol)
    return formats.voc_text(filename, image.width, image.height, image.boxes, rotate=rotate)


def coco_text(images: Iterable[SampleImage]) -> str:
    """One COCO file for all images: image ids 1-based by asset id, category ids 0-based."""
    ordered = sorted(images, key=lambda im: im.sha1)
    entries = (formats.ImageBoxes(f"{im.sha1}.png", im.width, im.height, im.boxes) for im in ordered)
    return formats.exported_coco_text(entries, CLASS_NAMES)


# -- writing -------------------------------------------------------------------------------------


@record
class SampleDataset:
    """What :func:`write_sample_dataset` wrote."""

    root: Path
    kinds: frozenset[TaskKind]
    fmt: str
    protocol: str
    images: tuple[SampleImage, ...]
    train: tuple[SampleImage, ...]
    val: tuple[SampleImage, ...]
    #: (path relative to root, what it is), in writing order
    written: tuple[tuple[str, str], ...]

    @property
    def in_dir(self) -> Path:
        return self.root / "in"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    def summary(self) -> str:
        kinds = "+".join(k.value for k in contract.TASK_ORDER if k in self.kinds)
        boxes = sum(len(im.boxes) for im in self.images)
        head = (
            f"wrote a sample {kinds} task to {self.root} (protocol {self.protocol}, {len(self.images)} images, "
            f"{boxes} boxes of {', '.join(CLASS_NAMES)})"
        )
        width = max(len(p) for p, _ in self.written)
        return "\n".join([head, *(f"  {p:<{width}}  {what}" for p, what in self.written)])


def write_sample_dataset(
    root: str | os.PathLike[str],
    *,
    kinds: frozenset[TaskKind] | set[TaskKind] = frozenset({TaskKind.TRAINING}),
    fmt: str = "ark",
    protocol: str = contract.PROTOCOL_1_1_0,
    images: int = 24,
    seed: int = 0,
    force: bool = False,
) -> SampleDataset:
    """Write ``root/in`` and an empty ``root/out``. Refuses a non-empty ``in`` or ``out`` unless ``force``."""
    kinds = frozenset(kinds)
    _check_arguments(kinds, fmt, protocol, images)
    root = Path(root).absolute()
    _prepare(root, force)
    drawn = draw_images(images, seed)
    train, val = split_images(drawn) if TaskKind.TRAINING in kinds else ((), ())
    names = "+".join(k.value for k in contract.TASK_ORDER if k in kinds)
    task_id = "t" + hashlib.sha1(f"live-code sample {names} {images} {seed}".encode()).hexdigest()[:29]  # 30 chars
    tmp = Path(tempfile.mkdtemp(prefix=".in.tmp-", dir=root))
    with clean_path_on_failure(tmp):
        written = _write_in(tmp, root / "in", task_id, kinds, fmt, protocol, drawn, train, val)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        os.replace(tmp, root / "in")  # onto a missing or empty dir: readers never see half an /in
    (root / "out").mkdir(exist_ok=True)
    written.append(("out/", "empty: the job's outputs go here"))
    return SampleDataset(root, kinds, fmt, protocol, drawn, train, val, tuple(written))


def _check_arguments(kinds: frozenset[TaskKind], fmt: str, protocol: str, images: int) -> None:
    if not kinds or (TaskKind.TRAINING in kinds and len(kinds) > 1):
        raise ConfigError(
            "a sample task is training, mining, infer or mining+infer", value=sorted(k.value for k in kinds)
        )
    if fmt not in FORMATS:
        raise ConfigError(f"unknown annotation format {fmt!r}", hint=f"one of {', '.join(FORMATS)}")
    if protocol not in contract.PROTOCOL_VERSIONS:
        raise ConfigError(f"unknown protocol {protocol!r}", hint=f"one of {', '.join(contract.PROTOCOL_VERSIONS)}")
    minimum = 2 if TaskKind.TRAINING in kinds else 1
    if images < minimum:
        raise ConfigError(
            f"a sample {'training' if minimum == 2 else 'mining/infer'} task needs at least {minimum} image(s)",
            value=images,
            hint="pass --images 8 or more",
        )
    if TaskKind.TRAINING in kinds and fmt != "ark" and protocol == contract.PROTOCOL_0_0_1:
        # contract 3.1: YMIR 1.1 exports training data as ark txt whatever export_format says
        raise ConfigError(
            f"YMIR 1.1 (protocol 0.0.1) exports training annotations only as ark txt, not {fmt}",
            hint="use --format ark, or --protocol 1.1.0 for voc/coco",
        )


def _prepare(root: Path, force: bool) -> None:
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a directory", hint="choose another DIR")
    for sub in ("in", "out"):
        path = root / sub
        if path.is_symlink() or (path.exists() and (not path.is_dir() or any(path.iterdir()))):
            if not force:
                raise ConfigError(
                    f"{path} already exists and is not empty",
                    hint="choose another DIR, or pass --force to replace DIR/in and DIR/out",
                )
            if path.is_dir() and not path.is_symlink():
                rmtree(path)
            else:
                path.unlink()
    root.mkdir(parents=True, exist_ok=True)


_Put = Callable[[str, "str | bytes"], None]
_Split = tuple[tuple[SampleImage, ...], tuple[SampleImage, ...]]


def _write_in(
    tmp: Path,
    final_in: Path,
    task_id: str,
    kinds: frozenset[TaskKind],
    fmt: str,
    protocol: str,
    drawn: tuple[SampleImage, ...],
    train: tuple[SampleImage, ...],
    val: tuple[SampleImage, ...],
) -> list[tuple[str, str]]:
    """Write the whole ``in`` tree into ``tmp``; return (path under root, description) records."""
    written: list[tuple[str, str]] = []

    def put(rel: str, data: str | bytes) -> None:
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    for image in drawn:
        put(image.rel_path, image.png)
    written.append(("in/assets/", f"{len(drawn)} PNG images, {WIDTH}x{HEIGHT}, at <xx>/<sha1>.png"))
    for name in ("annotations", "predictions", "models"):
        (tmp / name).mkdir(exist_ok=True)
    training = TaskKind.TRAINING in kinds
    if training:
        written += _write_training(put, fmt, protocol, drawn, (train, val))
    else:
        put("candidate-index.tsv", _lines(f"{contract.IN_DIR}/{im.rel_path}" for im in drawn))
        written.append(("in/candidate-index.tsv", f"{len(drawn)} candidate images"))
        if TaskKind.MINING in kinds:  # host-side paths, a by-product jobs must not use
            put("candidate-src-index.tsv", _lines(str(final_in / im.rel_path) for im in drawn))
    written.append(
        (
            "in/models/",
            "empty (no pretrained model)"
            if training
            else "empty: no model in a sample; give the job one (model_params_path) or mine after training",
        )
    )
    env = contract.env_yaml(protocol=protocol, task_id=task_id, kinds=kinds)
    put("env.yaml", yaml.safe_dump(env, sort_keys=True))
    put("config.yaml", yaml.safe_dump(_config(task_id, kinds, fmt, protocol), sort_keys=False))
    written += [
        ("in/env.yaml", f"protocol {protocol}, container paths /in and /out"),
        ("in/config.yaml", "class_names, gpu_id '' (CPU), export_format and the other platform keys"),
    ]
    return written


def _lines(rows: Iterable[str]) -> str:
    return "".join(f"{row}\n" for row in rows)


def _write_training(
    put: _Put, fmt: str, protocol: str, drawn: tuple[SampleImage, ...], split: _Split
) -> list[tuple[str, str]]:
    """The annotations of ``drawn`` in ``fmt`` and the index files of the training export (``split``: train, val)."""
    train, val = split
    in_root = contract.IN_DIR
    annotation = {}
    if fmt == "coco":
        put(f"annotations/{contract.COCO_ANNOTATION_FILE}", coco_text(drawn))
        annotation = {im.sha1: f"{in_root}/annotations/{contract.COCO_ANNOTATION_FILE}" for im in drawn}
        written = [(f"in/annotations/{contract.COCO_ANNOTATION_FILE}", "COCO boxes of all images")]
    else:
        ext, text = (".txt", ark_text) if fmt == "ark" else (".xml", voc_text)
        for im in drawn:
            rel = f"annotations/{im.sha1[-2:]}/{im.sha1}{ext}"
            put(rel, text(im, protocol))
            annotation[im.sha1] = f"{in_root}/{rel}"
        written = [("in/annotations/", f"{len(drawn)} {fmt} {ext} files, one per image")]
    pairs = {
        split: [f"{in_root}/{im.rel_path}\t{annotation[im.sha1]}" for im in part]
        for split, part in (("train", train), ("val", val))
    }
    put("train-index.tsv", _lines(pairs["train"]))
    put("val-index.tsv", _lines(pairs["val"]))
    put("test-index.tsv", "")
    put("idx-assets.tsv", _lines(f"{in_root}/{im.rel_path}" for im in drawn))
    put("idx-gt.tsv", _lines(pairs["train"] + pairs["val"]))
    return written + [
        ("in/train-index.tsv", f"{len(train)} training images"),
        ("in/val-index.tsv", f"{len(val)} validation images"),
        ("in/test-index.tsv", "empty, as YMIR writes it"),
        ("in/idx-assets.tsv, in/idx-gt.tsv", "exporter by-products"),
    ]


def _config(task_id: str, kinds: frozenset[TaskKind], fmt: str, protocol: str) -> dict[str, object]:
    """config.yaml as the platform writes it for this task (contract 3.1), no hyper-parameters."""
    config: dict[str, object] = {
        "task_id": task_id,
        "class_names": list(CLASS_NAMES),
        "gpu_id": "",
        "gpu_count": 0,
        "export_format": f"{fmt}:raw",
    }
    if protocol == contract.PROTOCOL_1_1_0:
        config["object_type"] = int(contract.ObjectType.DETECTION)
    if TaskKind.TRAINING not in kinds:
        config["model_params_path"] = []
        config["run_mining"] = TaskKind.MINING in kinds
        config["run_infer"] = TaskKind.INFER in kinds
    return config
