"""sdk.write_coco (a split as a COCO detection file, used by the mmdet and detectron2 templates) and
sdk.image_size (PNG/JPEG/BMP/GIF sizes from the file header; other formats are an error naming the fix).

Images are written by Pillow (a test dependency; the SDK itself never needs it for these formats).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from live_code import contract, sdk
from live_code.contract import TaskKind
from live_code.sdk.formats import header_size

CLASSES = ("cat", "dog", "person")


# -- image sizes from headers ---------------------------------------------------------------------


def _pillow_image(path: Path, size: tuple[int, int], fmt: str, mode: str = "RGB", **save: object) -> Path:
    Image.new(mode, size, (10, 200, 30) if mode == "RGB" else 1).save(path, fmt, **save)
    return path


@pytest.mark.parametrize(
    ("name", "mode", "save"),
    [
        ("png", "RGB", {}),
        ("png", "L", {}),
        ("jpeg", "RGB", {}),
        ("jpeg", "RGB", {"progressive": True, "quality": 50}),
        ("jpeg", "L", {"exif": b"Exif\x00\x00" + b"\x00" * 64, "icc_profile": b"\x01" * 300}),
        ("bmp", "RGB", {}),
        ("bmp", "1", {}),
        ("gif", "P", {}),
    ],
    ids=["png", "png-grey", "jpeg", "jpeg-progressive", "jpeg-exif-icc", "bmp", "bmp-1bit", "gif"],
)
def test_image_size_reads_the_header_like_pillow(tmp_path: Path, name: str, mode: str, save: dict[str, object]) -> None:
    path = _pillow_image(tmp_path / f"x.{name}", (37, 21), name.upper(), mode, **save)
    with open(path, "rb") as f:
        assert header_size(f) == (37, 21)  # the standard-library reader, not the Pillow fallback
    assert sdk.image_size(str(path)) == (37, 21)
    with Image.open(path) as img:
        assert img.size == (37, 21)


def test_a_top_down_bmp_has_a_positive_height(tmp_path: Path) -> None:
    path = _pillow_image(tmp_path / "x.bmp", (5, 9), "BMP")
    data = bytearray(path.read_bytes())
    data[22:26] = (-9).to_bytes(4, "little", signed=True)  # biHeight < 0: rows stored top-down
    path.write_bytes(bytes(data))
    assert sdk.image_size(str(path)) == (5, 9)


def test_other_formats_name_the_file_and_the_fix(tmp_path: Path) -> None:
    path = _pillow_image(tmp_path / "x.tiff", (12, 34), "TIFF")
    with open(path, "rb") as f:
        assert header_size(f) is None
    with pytest.raises(sdk.ImageFormatError, match=r"x\.tiff.*size_of="):
        sdk.image_size(str(path))


@pytest.mark.parametrize(
    "content",
    [b"not an image", b"", b"\x89PNG\r\n\x1a\n\x00\x00", b"\xff\xd8\xff\xe0\x00"],
    ids=["text", "empty", "cut-png", "cut-jpeg"],
)
def test_unreadable_image_is_an_image_format_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "x.png"
    bad.write_bytes(content)
    with pytest.raises(sdk.ImageFormatError, match=r"x\.png"):
        sdk.image_size(str(bad))


def test_missing_image_is_an_image_format_error(tmp_path: Path) -> None:
    with pytest.raises(sdk.ImageFormatError, match="missing.jpg"):
        sdk.image_size(str(tmp_path / "missing.jpg"))


def test_jpeg_header_reader_stops_at_the_scan_without_a_frame() -> None:
    assert header_size(io.BytesIO(b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 8)) is None


# -- COCO files -----------------------------------------------------------------------------------


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sdk.Env:
    """A training task with host paths: a 20x10 PNG with boxes and a 20x10 JPEG without, in ark format."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    (in_dir / "assets").mkdir(parents=True)
    (in_dir / "annotations").mkdir()
    (out_dir / "models").mkdir(parents=True)
    env = contract.env_yaml(
        protocol="1.1.0", task_id="t1", kinds=frozenset({TaskKind.TRAINING}), in_dir=str(in_dir), out_dir=str(out_dir)
    )
    (in_dir / "env.yaml").write_text(yaml.safe_dump(env))
    (in_dir / "config.yaml").write_text(yaml.safe_dump({"class_names": list(CLASSES)}))
    rows = []
    for i, (fmt, ann) in enumerate([("png", "1,2,3,11,8\n0,-4,0,30,9\n2,5,5,5,5\n"), ("jpeg", "")]):
        img, txt = in_dir / "assets" / f"a{i}.{fmt}", in_dir / "annotations" / f"a{i}.txt"
        _pillow_image(img, (20, 10), fmt.upper())
        txt.write_text(ann)
        rows.append(f"{img}\t{txt}\n")
    for key in ("training_index_file", "val_index_file"):
        Path(env["input"][key]).write_text("".join(rows))  # type: ignore[index]  # env.yaml read as dict[str, object]
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(in_dir / "env.yaml"))
    monkeypatch.delenv(contract.CONFIG_FILE_VAR, raising=False)
    return sdk.read_env()


def test_coco_file_has_every_image_boxes_clipped_and_ids_from_one(task: sdk.Env, tmp_path: Path) -> None:
    path = tmp_path / "out" / "work" / "train.json"
    counts = sdk.write_coco(sdk.Split.TRAINING, str(path), class_names=CLASSES, env=task)
    data = json.loads(path.read_text())
    assert counts == (2, 3) and counts.images == 2 and counts.annotations == 3
    assert [i["id"] for i in data["images"]] == [1, 2]
    assert [(i["width"], i["height"]) for i in data["images"]] == [(20, 10), (20, 10)]
    assert data["images"][0]["file_name"] == str(Path(task.input.root_dir) / "assets" / "a0.png")
    assert data["categories"] == [
        {"id": 1, "name": "cat", "supercategory": "object"},
        {"id": 2, "name": "dog", "supercategory": "object"},
        {"id": 3, "name": "person", "supercategory": "object"},
    ]
    anns = data["annotations"]
    # inclusive xmax/ymax -> far edge + 1; clipped to the 20x10 image; the 1-pixel box is kept
    assert [a["category_id"] for a in anns] == [2, 1, 3]
    assert anns[0]["bbox"] == [2.0, 3.0, 10.0, 6.0] and anns[0]["area"] == 60.0
    assert anns[1]["bbox"] == [0.0, 0.0, 20.0, 10.0]
    assert anns[2]["bbox"] == [5.0, 5.0, 1.0, 1.0]
    assert [a["id"] for a in anns] == [1, 2, 3] and {a["image_id"] for a in anns} == {1}
    assert all(a["iscrowd"] == 0 for a in anns)


def test_coco_class_names_default_to_the_config(task: sdk.Env, tmp_path: Path) -> None:
    path = tmp_path / "out" / "val.json"
    assert sdk.write_coco("validation", str(path)) == (2, 3)
    assert [c["name"] for c in json.loads(path.read_text())["categories"]] == list(CLASSES)


def test_coco_keeps_only_the_given_classes(task: sdk.Env, tmp_path: Path) -> None:
    path = tmp_path / "out" / "train.json"
    assert sdk.write_coco(sdk.Split.TRAINING, str(path), class_names=["cat"], env=task) == (2, 1)
    ann = json.loads(path.read_text())["annotations"][0]
    assert ann["category_id"] == 1 and ann["bbox"] == [0.0, 0.0, 20.0, 10.0]


def test_coco_conversion_refuses_to_write_under_in(task: sdk.Env) -> None:
    with pytest.raises(sdk.ResultError, match="read-only input"):
        sdk.write_coco(sdk.Split.TRAINING, str(Path(task.input.root_dir) / "x.json"), env=task)
    with pytest.raises(ValueError, match="read-only input"):
        sdk.write_coco(sdk.Split.TRAINING, "/in/ymir.json", env=task)
    assert not (Path(task.input.root_dir) / "x.json").exists()


def test_coco_conversion_reports_an_unreadable_image(task: sdk.Env, tmp_path: Path) -> None:
    (Path(task.input.root_dir) / "assets" / "a1.jpeg").write_bytes(b"broken")
    path = tmp_path / "out" / "train.json"
    with pytest.raises(sdk.ImageFormatError, match=r"a1\.jpeg"):
        sdk.write_coco(sdk.Split.TRAINING, str(path), env=task)
    assert not path.exists()


def test_coco_box_drops_a_box_outside_the_image() -> None:
    assert sdk.coco_box(sdk.Box(0, "cat", 30, 0, 40, 5), 20, 10) is None
    assert sdk.coco_box(sdk.Box(0, "cat", 0, 10, 5, 12), 20, 10) is None
    assert sdk.coco_box(sdk.Box(0, "cat", 19, 9, 19, 9), 20, 10) == [19.0, 9.0, 1.0, 1.0]


def test_coco_dataset_skips_boxes_of_unknown_classes() -> None:
    item = sdk.DatasetItem("/x/a.png", "/x/a.txt", (sdk.Box(5, "?", 0, 0, 1, 1), sdk.Box(0, "cat", 0, 0, 1, 1)))
    data = sdk.coco_dataset([item], ["cat"], size_of=lambda path: (4, 4))
    assert [a["category_id"] for a in data["annotations"]] == [1]
    assert data["images"] == [{"id": 1, "file_name": "/x/a.png", "width": 4, "height": 4}]
