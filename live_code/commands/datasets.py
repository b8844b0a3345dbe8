"""A dataset on disk as a YMIR task's ``in`` dir, laid out as the platform's exporter does.

``live-code local --dataset`` takes:

- ``sample``: the drawn sample dataset (:mod:`live_code.commands.sample`);
- a task dir (``DIR/in/env.yaml``) or an in dir (``env.yaml`` or index files next to ``assets/``),
  made by YMIR or ``live-code sample-dataset``: its files are reused; a training export serves a
  mining/infer task through a candidate index of all its images;
- a folder of images with VOC xml (Pascal layout ``JPEGImages/`` + ``Annotations/``, or each
  ``.xml`` next to its image), or images alone (mining/infer);
- a COCO json (``file.json`` with the images next to it or in ``images/``, or a DIR holding it).

Converted data gets the exporter's layout (ymir-contract.md 1.2 and 4): assets at
``assets/<last 2 hex of sha1>/<sha1>.<ext>``, annotations in the chosen format, the index files;
train/val split deterministically (every fifth image by asset id validates).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from live_code.errors import DatasetError
from live_code.task import config as config_mod

FORMATS = ("ark", "voc", "coco")
_IMAGE_EXTS = frozenset(contract.IMAGE_EXTENSIONS)
_SKIP_DIRS = frozenset({".git", "__pycache__"})


class Box(NamedTuple):
    """A ground-truth box; ``xmax``/``ymax`` inclusive, as in ark and VOC."""

    name: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int


class Item(NamedTuple):
    image: Path
    boxes: tuple[Box, ...]


class DatasetInfo(NamedTuple):
    """What was written: the source's kind, counts and the class names the task got."""

    source: str
    images: int
    boxes: int
    class_names: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        return f"{self.source}: {self.images} images, {self.boxes} boxes, classes {', '.join(self.class_names) or '-'}"


def write_in_dir(
    dataset: str,
    dest: Path,
    *,
    kinds: frozenset[TaskKind],
    task_id: str,
    protocol: str,
    fmt: str,
    classes: Sequence[str] = (),
    sample_images: int = 24,
) -> DatasetInfo:
    """Write ``dest`` (must not exist) as the task's in dir with env.yaml and config.yaml for ``kinds``."""
    if fmt not in FORMATS:
        raise DatasetError(f"unknown annotation format {fmt!r}", hint=f"one of {', '.join(FORMATS)}")
    if dataset == "sample":
        return _from_sample(dest, kinds, task_id, protocol, fmt, sample_images)
    path = Path(dataset).expanduser()
    if not path.exists():
        raise DatasetError(
            f"the dataset {dataset} does not exist",
            value=dataset,
            hint="give a task dir, a folder of images (+ VOC xml), a COCO json, or `sample`",
        )
    in_dir = _find_in_dir(path)
    if in_dir is not None:
        return _from_task(in_dir, dest, kinds, task_id, protocol)
    items, names, source = _read_coco(path) if _coco_file(path) else _read_voc(path)
    return _write_converted(items, names, source, dest, kinds, task_id, protocol, fmt, tuple(classes))


# -- sources -----------------------------------------------------------------------------------


def _from_sample(
    dest: Path, kinds: frozenset[TaskKind], task_id: str, protocol: str, fmt: str, images: int
) -> DatasetInfo:
    if TaskKind.TRAINING in kinds and fmt != "ark" and protocol == contract.PROTOCOL_0_0_1:
        fmt = "ark"  # YMIR 1.1 exports training data as ark only
    tmp = Path(tempfile.mkdtemp(prefix=".sample-", dir=dest.parent))
    try:
        made = sample.write_sample_dataset(tmp, kinds=kinds, fmt=fmt, protocol=protocol, images=images)
        os.replace(made.in_dir, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _set_task_id(dest, task_id)
    boxes = sum(len(im.boxes) for im in made.images)
    return DatasetInfo("the sample dataset", len(made.images), boxes, sample.CLASS_NAMES)


def _find_in_dir(path: Path) -> Path | None:
    if path.is_dir():
        for cand in (path / "in", path):
            if (cand / "env.yaml").is_file() or any(
                (cand / n).is_file() for n in ("train-index.tsv", "candidate-index.tsv", "idx-assets.tsv")
            ):
                return cand
    return None


def _from_task(src: Path, dest: Path, kinds: frozenset[TaskKind], task_id: str, protocol: str) -> DatasetInfo:
    """Reuse a YMIR in dir: its files as they are, env.yaml and config.yaml made for ``kinds``."""
    old_kinds: frozenset[TaskKind] = frozenset()
    if (src / "env.yaml").is_file():
        old = config_mod.parse_env(config_mod.read_yaml_mapping(src / "env.yaml")[0], source=str(src / "env.yaml"))
        old_kinds, protocol = old.kinds, old.protocol
    cfg = config_mod.read_yaml_mapping(src / "config.yaml")[0] if (src / "config.yaml").is_file() else {}
    training = _index_rows(src / "train-index.tsv") + _index_rows(src / "val-index.tsv")
    if TaskKind.TRAINING in kinds and not (_index_rows(src / "train-index.tsv") and _index_rows(src / "val-index.tsv")):
        raise DatasetError(
            f"{src} has no training and validation images (train-index.tsv, val-index.tsv)",
            value=str(src),
            hint="use a training export, or a folder of images with annotations",
        )
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("env.yaml", "config.yaml"))
    notes = []
    candidates: list[Any] = _index_rows(src / "candidate-index.tsv")  # rows, or the names made from them
    if kinds & {TaskKind.MINING, TaskKind.INFER} and not candidates:
        rows = _index_rows(src / "idx-assets.tsv") or training
        candidates = list(dict.fromkeys(r[0] for r in rows))
        if not candidates:
            raise DatasetError(
                f"{src} lists no images (candidate-index.tsv, idx-assets.tsv or train/val index)", value=str(src)
            )
        (dest / "candidate-index.tsv").write_text("".join(f"{c}\n" for c in candidates))
        notes.append(f"candidate-index.tsv made from the {len(candidates)} images of the training export")
    for key in ("task_id", "git_url", "git_commit", "git_tag", "git_branch", "run_mining", "run_infer"):
        cfg.pop(key, None)
    if old_kinds and old_kinds != kinds:
        notes.append(f"the dataset was a {'+'.join(sorted(k.value for k in old_kinds))} task")
    names = tuple(str(n) for n in cfg.get("class_names") or ())
    _write_task_files(dest, cfg, kinds, task_id, protocol, names, cfg.get("export_format") or "voc:raw")
    count = len(candidates) if TaskKind.TRAINING not in kinds else len(training)
    return DatasetInfo(f"the task dir {src}", count, 0, names, tuple(notes))


def _index_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    return [line.rstrip("\r\n").split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _images_under(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        found += [Path(dirpath, f) for f in sorted(filenames) if Path(f).suffix.lower() in _IMAGE_EXTS]
    return found


def _read_voc(root: Path) -> tuple[list[Item], list[str], str]:
    """Images under ``root`` with the boxes of their VOC xml (matched by ``<filename>``, else the stem)."""
    if not root.is_dir():
        raise DatasetError(f"{root} is neither a folder of images nor a COCO .json file", value=str(root))
    images = _images_under(root)
    if not images:
        raise DatasetError(f"no images ({', '.join(sorted(_IMAGE_EXTS))}) under {root}", value=str(root))
    by_name = {p.name: p for p in images}
    by_stem = {p.stem: p for p in images}
    boxes: dict[Path, tuple[Box, ...]] = {}
    names: list[str] = []
    xmls = sorted(p for p in root.rglob("*.xml") if not any(part in _SKIP_DIRS for part in p.parts))
    for xml in xmls:
        try:
            tree = ET.parse(xml).getroot()
        except ET.ParseError as e:
            raise DatasetError(f"{xml} is not valid XML: {e}", value=str(xml)) from None
        filename = Path((tree.findtext("filename") or "").strip()).name
        image = by_name.get(filename) or by_stem.get(xml.stem)
        if image is None:
            continue
        found = []
        for obj in tree.iter("object"):
            name = (obj.findtext("name") or "").strip()
            bb = obj.find("bndbox")
            if not name or bb is None:
                raise DatasetError(f"{xml}: an <object> without <name> or <bndbox>", value=str(xml))
            try:
                xmin, ymin, xmax, ymax = (
                    int(round(float(bb.findtext(t) or ""))) for t in ("xmin", "ymin", "xmax", "ymax")
                )
            except ValueError:
                raise DatasetError(
                    f"{xml}: <bndbox> of {name!r} holds a value that is not a number", value=str(xml)
                ) from None
            found.append(Box(name, xmin, ymin, xmax, ymax))
            names.append(name)
        boxes[image] = tuple(found)
    source = f"{'VOC' if xmls else 'image'} folder {root}"
    return [Item(p, boxes.get(p, ())) for p in images], sorted(set(names)), source


def _coco_file(path: Path) -> Path | None:
    if path.is_file() and path.suffix.lower() == ".json":
        return path
    if path.is_dir():
        for where in (path, path / "annotations"):
            jsons = sorted(where.glob("*.json")) if where.is_dir() else []
            if jsons:
                return jsons[0]
    return None


def _read_coco(path: Path) -> tuple[list[Item], list[str], str]:
    file = _coco_file(path)
    assert file is not None
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
        categories = {c["id"]: str(c["name"]) for c in doc.get("categories") or []}
        images = {im["id"]: str(im["file_name"]) for im in doc["images"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(
            f"{file} is not a COCO detection file ({e})",
            value=str(file),
            hint="it needs images [{id, file_name}], categories [{id, name}] and annotations",
        ) from None
    base = path if path.is_dir() else file.parent
    roots = [
        base,
        base / "images",
        file.parent,
        file.parent / "images",
        file.parent.parent / "images",
        file.parent.parent / file.stem.replace("instances_", ""),
    ]
    found: dict[Any, list[Box]] = {i: [] for i in images}
    for ann in doc.get("annotations") or []:
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
            name = categories[ann["category_id"]]
            found[ann["image_id"]].append(Box(name, round(x), round(y), round(x + w) - 1, round(y + h) - 1))
        except (KeyError, TypeError, ValueError):
            raise DatasetError(
                f"{file}: annotation {ann.get('id')!r} has no valid bbox, category_id or image_id", value=str(file)
            ) from None
    items = []
    for image_id, name in sorted(images.items(), key=lambda kv: kv[1]):
        image = next((r / name for r in roots if (r / name).is_file()), None)
        if image is None:
            image = next((r / Path(name).name for r in roots if (r / Path(name).name).is_file()), None)
        if image is None:
            raise DatasetError(
                f"{file}: image {name} not found next to it",
                value=name,
                hint=f"put the images in {base} or {base / 'images'}",
            )
        items.append(Item(image, tuple(found[image_id])))
    used = [categories[k] for k in sorted(categories)]
    return items, list(dict.fromkeys(used)), f"COCO file {file}"


# -- writing converted data ----------------------------------------------------------------------


def _write_converted(
    items: list[Item],
    data_names: list[str],
    source: str,
    dest: Path,
    kinds: frozenset[TaskKind],
    task_id: str,
    protocol: str,
    fmt: str,
    classes: tuple[str, ...],
) -> DatasetInfo:
    names = classes or tuple(data_names)
    training = TaskKind.TRAINING in kinds
    if training and not names:
        raise DatasetError(
            f"the {source} has no annotations: training needs boxes",
            hint="add VOC xml or a COCO json, or run mining/infer on it",
        )
    if training and fmt != "ark" and protocol == contract.PROTOCOL_0_0_1:
        raise DatasetError(
            "YMIR 1.1 (protocol 0.0.1) exports training annotations only as ark", hint="pass --format ark"
        )
    dropped = sum(1 for it in items for b in it.boxes if b.name not in names)
    dest.mkdir()
    for sub in ("assets", "annotations", "predictions", "models"):
        (dest / sub).mkdir()
    assets: list[tuple[str, Item, tuple[int, int]]] = []
    seen = set()
    for it in items:
        data = it.image.read_bytes()
        sha1 = hashlib.sha1(data).hexdigest()
        if sha1 in seen:
            continue
        seen.add(sha1)
        ext = it.image.suffix.lower().replace(".jpeg", ".jpg")
        rel = f"assets/{sha1[-2:]}/{sha1}{ext}"
        (dest / rel).parent.mkdir(exist_ok=True)
        (dest / rel).write_bytes(data)
        kept = Item(it.image, tuple(b for b in it.boxes if b.name in names))
        assets.append((rel, kept, image_size(dest / rel)))
    assets.sort(key=lambda a: a[0].rsplit("/", 1)[1])
    in_root = contract.IN_DIR
    if training:
        annotation = _write_annotations(dest, assets, names, fmt, protocol)
        pairs = [f"{in_root}/{rel}\t{annotation[rel]}" for rel, _, _ in assets]
        val = {i for i in range(len(assets)) if i % 5 == 4} or {len(assets) - 1}
        if len(assets) < 2:
            raise DatasetError(f"the {source} has {len(assets)} image(s); training needs at least 2", hint="add images")
        _lines(dest / "train-index.tsv", [p for i, p in enumerate(pairs) if i not in val])
        _lines(dest / "val-index.tsv", [p for i, p in enumerate(pairs) if i in val])
        _lines(dest / "test-index.tsv", [])
        _lines(dest / "idx-gt.tsv", pairs)
        _lines(dest / "idx-assets.tsv", [f"{in_root}/{rel}" for rel, _, _ in assets])
    else:
        _lines(dest / "candidate-index.tsv", [f"{in_root}/{rel}" for rel, _, _ in assets])
    _write_task_files(dest, {}, kinds, task_id, protocol, names, f"{fmt}:raw")
    notes = (f"{dropped} boxes of classes not in --classes dropped",) if dropped else ()
    return DatasetInfo(f"the {source}", len(assets), sum(len(it.boxes) for _, it, _ in assets), names, notes)


def _write_annotations(
    dest: Path, assets: list[tuple[str, Item, tuple[int, int]]], names: Sequence[str], fmt: str, protocol: str
) -> dict[str, str]:
    """Annotation files in ``fmt`` (contract 4.3 - 4.5); returns asset rel path -> annotation container path."""
    index = {n: i for i, n in enumerate(names)}
    if fmt == "coco":
        doc: dict[str, list[Any]] = {
            "images": [],
            "annotations": [],
            "licenses": [],
            "categories": [{"id": i, "name": n, "supercategory": "object"} for i, n in enumerate(names)],
        }
        for image_id, (rel, it, (w, h)) in enumerate(assets, 1):
            doc["images"].append(
                {
                    "id": image_id,
                    "file_name": rel.rsplit("/", 1)[1],
                    "width": w,
                    "height": h,
                    "date_captured": "",
                    "license": 0,
                    "coco_url": "",
                    "flickr_url": "",
                }
            )
            for b in it.boxes:
                bw, bh = b.xmax - b.xmin + 1, b.ymax - b.ymin + 1
                doc["annotations"].append(
                    {
                        "id": len(doc["annotations"]) + 1,
                        "image_id": image_id,
                        "category_id": index[b.name],
                        "iscrowd": 0,
                        "bbox": [b.xmin, b.ymin, bw, bh],
                        "confidence": 1.0,
                        "area": bw * bh,
                        "segmentation": [],
                    }
                )
        (dest / "annotations" / contract.COCO_ANNOTATION_FILE).write_text(json.dumps(doc, indent=1) + "\n")
        return {rel: f"{contract.IN_DIR}/annotations/{contract.COCO_ANNOTATION_FILE}" for rel, _, _ in assets}
    out = {}
    rotate = contract.allows_rotate_angle(protocol)
    for rel, it, (w, h) in assets:
        sha1 = rel.rsplit("/", 1)[1].split(".")[0]
        ann = f"annotations/{sha1[-2:]}/{sha1}{'.txt' if fmt == 'ark' else '.xml'}"
        (dest / ann).parent.mkdir(exist_ok=True)
        if fmt == "ark":
            extra = ", -1.0, 0.0" if rotate else ""
            text = "".join(f"{index[b.name]}, {b.xmin}, {b.ymin}, {b.xmax}, {b.ymax}{extra}\n" for b in it.boxes)
        else:
            text = _voc_xml(f"{contract.IN_DIR}/{rel}", w, h, it.boxes, rotate)
        (dest / ann).write_text(text)
        out[rel] = f"{contract.IN_DIR}/{ann}"
    return out


def _voc_xml(filename: str, width: int, height: int, boxes: Iterable[Box], rotate: bool) -> str:
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for b in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = b.name
        bb = ET.SubElement(obj, "bndbox")
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            ET.SubElement(bb, tag).text = str(getattr(b, tag))
        if rotate:
            ET.SubElement(bb, "rotate_angle").text = "0.0"
        ET.SubElement(obj, "difficult").text = "0"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _lines(path: Path, rows: Iterable[str]) -> None:
    path.write_text("".join(f"{r}\n" for r in rows))


def _write_task_files(
    dest: Path,
    cfg: Mapping[str, Any],
    kinds: frozenset[TaskKind],
    task_id: str,
    protocol: str,
    names: Sequence[str],
    export_format: str,
) -> None:
    """env.yaml and config.yaml as the platform writes them for ``kinds`` (contract 2 and 3.1)."""
    (dest / "models").mkdir(exist_ok=True)
    env = contract.env_yaml(protocol=protocol, task_id=task_id, kinds=kinds)
    (dest / "env.yaml").write_text(yaml.safe_dump(env, sort_keys=True))
    config: dict[str, Any] = {
        "gpu_id": "",
        "gpu_count": 0,
        **dict(cfg),
        "task_id": task_id,
        "class_names": list(names),
        "export_format": export_format,
    }
    if protocol == contract.PROTOCOL_1_1_0:
        config.setdefault("object_type", int(contract.ObjectType.DETECTION))
    if TaskKind.TRAINING in kinds:
        config.pop("model_params_path", None)
    else:
        config.pop("pretrained_model_params", None)
        config.setdefault("model_params_path", [])
        config.update(run_mining=TaskKind.MINING in kinds, run_infer=TaskKind.INFER in kinds)
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _set_task_id(in_dir: Path, task_id: str) -> None:
    for name in ("env.yaml", "config.yaml"):
        data = yaml.safe_load((in_dir / name).read_text())
        data["task_id"] = task_id
        (in_dir / name).write_text(yaml.safe_dump(data, sort_keys=name == "env.yaml"))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG, JPEG or BMP header; (0, 0) when unknown."""
    with open(path, "rb") as f:
        head = f.read(26)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
            return struct.unpack(">II", head[16:24])
        if head.startswith(b"BM") and len(head) >= 26:
            w, h = struct.unpack("<ii", head[18:26])
            return w, abs(h)
        if head.startswith(b"\xff\xd8"):
            f.seek(2)
            while True:
                marker = f.read(4)
                if len(marker) < 4 or marker[0] != 0xFF:
                    return 0, 0
                length = struct.unpack(">H", marker[2:])[0]
                if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", f.read(5)[1:])
                    return w, h
                f.seek(length - 2, os.SEEK_CUR)
    return 0, 0
