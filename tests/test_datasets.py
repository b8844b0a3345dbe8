"""commands/datasets.py: a user's dataset (VOC folder, COCO json, images alone) becomes a YMIR in dir
whose annotations read back, through the SDK's formats, to the boxes the user gave."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from live_code import contract
from live_code.commands import datasets, sample
from live_code.contract import TaskKind
from live_code.errors import DatasetError
from live_code.sdk import formats

TRAINING = frozenset({TaskKind.TRAINING})


def _voc_folder(root: Path, count: int = 6) -> dict[str, tuple[formats.Box, ...]]:
    """Images as JPEG next to their VOC xml; returns image sha1 of the written file -> boxes."""
    root.mkdir(parents=True)
    truth = {}
    for n, im in enumerate(sample.draw_images(count, seed=7)):
        Image.open(io.BytesIO(im.png)).save(root / f"p{n}.jpg", "JPEG")
        text = formats.voc_text(f"p{n}.jpg", im.width, im.height, im.boxes, rotate=False)
        (root / f"p{n}.xml").write_text(text)
        truth[hashlib.sha1((root / f"p{n}.jpg").read_bytes()).hexdigest()] = im.boxes
    return truth


def _write(src: Path, dest: Path, fmt: str, **kw: object) -> datasets.DatasetInfo:
    return datasets.write_in_dir(
        str(src), dest, kinds=TRAINING, task_id="t" * 30, protocol=contract.PROTOCOL_1_1_0, fmt=fmt, **kw
    )


def _read_back(in_dir: Path, names: tuple[str, ...]) -> dict[str, set[tuple[str, int, int, int, int]]]:
    """sha1 -> boxes (class name and corners), read from the written annotations with the SDK's formats."""
    found: dict[str, set[tuple[str, int, int, int, int]]] = {}
    for index in ("train-index.tsv", "val-index.tsv"):
        for line in (in_dir / index).read_text().splitlines():
            image, annotation = (in_dir / p[len("/in/") :] for p in line.split("\t"))
            text = annotation.read_text()
            if annotation.suffix == ".txt":
                boxes = formats.read_ark(str(annotation), text, names)
            elif annotation.suffix == ".xml":
                boxes = formats.read_voc(str(annotation), text, names).boxes
            else:
                coco = formats.read_coco(str(annotation), text, names)
                boxes = tuple(b for i, b in coco.annotations if coco.images[i] == image.name)
            found[image.stem] = {(b.class_name, b.xmin, b.ymin, b.xmax, b.ymax) for b in boxes}
    return found


@pytest.mark.parametrize("fmt", datasets.FORMATS)
def test_a_voc_folder_reads_back_to_its_boxes_in_every_format(tmp_path: Path, fmt: str) -> None:
    truth = _voc_folder(tmp_path / "data")
    info = _write(tmp_path / "data", tmp_path / "in", fmt)
    names = tuple(sorted({b.class_name for boxes in truth.values() for b in boxes}))
    assert info.class_names == names and info.images == len(truth)
    expected = {sha1: {(b.class_name, b.xmin, b.ymin, b.xmax, b.ymax) for b in boxes} for sha1, boxes in truth.items()}
    assert _read_back(tmp_path / "in", names) == expected
    if fmt == "coco":
        doc = json.loads((tmp_path / "in" / "annotations" / contract.COCO_ANNOTATION_FILE).read_text())
        assert {(im["width"], im["height"]) for im in doc["images"]} == {(sample.WIDTH, sample.HEIGHT)}


def test_a_coco_file_reads_back_to_its_boxes(tmp_path: Path) -> None:
    drawn = sample.draw_images(5, seed=2)
    (tmp_path / "coco" / "images").mkdir(parents=True)
    for im in drawn:
        (tmp_path / "coco" / "images" / f"{im.sha1}.png").write_bytes(im.png)
    (tmp_path / "coco" / "train.json").write_text(sample.coco_text(drawn))
    _write(tmp_path / "coco" / "train.json", tmp_path / "in", "ark")
    expected = {im.sha1: {(b.class_name, b.xmin, b.ymin, b.xmax, b.ymax) for b in im.boxes} for im in drawn}
    assert _read_back(tmp_path / "in", sample.CLASS_NAMES) == expected


def test_broken_annotations_are_named(tmp_path: Path) -> None:
    _voc_folder(tmp_path / "voc", count=2)
    (tmp_path / "voc" / "p1.xml").write_text("<annotation><object><name>cat</name></object></annotation>")
    with pytest.raises(DatasetError, match=r"p1\.xml: object 1: <object> 'cat' has no <bndbox>"):
        _write(tmp_path / "voc", tmp_path / "in", "voc")
    (tmp_path / "c.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "x.png"}], "annotations": [{}]}))
    with pytest.raises(DatasetError, match=r"c\.json is not a COCO detection file .*image_id None"):
        _write(tmp_path / "c.json", tmp_path / "in2", "voc")


def test_image_size_of_the_assets(tmp_path: Path) -> None:
    Image.new("RGB", (33, 17)).save(tmp_path / "a.bmp")
    (tmp_path / "b.png").write_bytes(b"not an image")
    assert datasets.image_size(tmp_path / "a.bmp") == (33, 17)
    assert datasets.image_size(tmp_path / "b.png") == (0, 0)
