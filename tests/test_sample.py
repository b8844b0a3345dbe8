"""sample: a YMIR task directory laid out as the contract says, with boxes that read back exactly."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from PIL import Image

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from live_code.errors import ConfigError
from live_code.task import config

TASKS = {
    "training": frozenset({TaskKind.TRAINING}),
    "mining": frozenset({TaskKind.MINING}),
    "infer": frozenset({TaskKind.INFER}),
    "mining+infer": frozenset({TaskKind.MINING, TaskKind.INFER}),
}
COLOURS = {name: looks[0] for name, looks in sample._LOOKS.items()}


def combos() -> list[tuple[str, str, str]]:
    return [
        (task, fmt, protocol)
        for task in TASKS
        for fmt in sample.FORMATS
        for protocol in contract.PROTOCOL_VERSIONS
        # YMIR 1.1 exports training data only as ark (refusal tested below)
        if not (task == "training" and fmt != "ark" and protocol == contract.PROTOCOL_0_0_1)
    ]


def host(ds: sample.SampleDataset, container_path: str) -> Path:
    assert container_path.startswith("/in/"), container_path
    return ds.in_dir / container_path[len("/in/") :]


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def boxes_of(image: sample.SampleImage) -> list[tuple[int, int, int, int, int]]:
    return sorted((b.class_index, b.xmin, b.ymin, b.xmax, b.ymax) for b in image.boxes)


# -- layout --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "fmt", "protocol"), combos())
def test_layout_follows_the_contract(tmp_path: Path, task: str, fmt: str, protocol: str) -> None:
    ds = sample.write_sample_dataset(tmp_path / "t", kinds=TASKS[task], fmt=fmt, protocol=protocol, images=6, seed=3)
    in_dir = ds.in_dir
    assert ds.out_dir.is_dir() and list(ds.out_dir.iterdir()) == []
    assert (in_dir / "models").is_dir() and list((in_dir / "models").iterdir()) == []
    assert not list(ds.root.glob(".in.tmp-*"))
    for image in ds.images:  # assets/<last 2 hex of sha1>/<sha1>.png, sha1 of the bytes
        path = in_dir / "assets" / image.sha1[-2:] / f"{image.sha1}.png"
        assert hashlib.sha1(path.read_bytes()).hexdigest() == image.sha1
    assert len(list((in_dir / "assets").rglob("*.png"))) == 6

    training = task == "training"
    if training:
        train, val = read_lines(in_dir / "train-index.tsv"), read_lines(in_dir / "val-index.tsv")
        assert len(train) == len(ds.train) and len(val) == len(ds.val) and len(train) + len(val) == 6
        assert (in_dir / "test-index.tsv").read_text() == ""
        for line in train + val:
            image_path, annotation_path = line.split("\t")
            assert image_path.startswith("/in/assets/") and host(ds, image_path).is_file()
            assert annotation_path.startswith("/in/annotations/") and host(ds, annotation_path).is_file()
            sha1 = Path(image_path).stem
            if fmt == "coco":
                assert annotation_path == "/in/annotations/coco-annotations.json"
            else:
                ext = ".txt" if fmt == "ark" else ".xml"
                assert annotation_path == f"/in/annotations/{sha1[-2:]}/{sha1}{ext}"
        assert sorted(read_lines(in_dir / "idx-gt.tsv")) == sorted(train + val)
        assert not (in_dir / "candidate-index.tsv").exists()
    else:
        candidates = read_lines(in_dir / "candidate-index.tsv")
        assert candidates == [f"/in/{im.rel_path}" for im in ds.images]
        assert all(host(ds, c).is_file() for c in candidates)
        assert list((in_dir / "annotations").iterdir()) == []
        assert not (in_dir / "train-index.tsv").exists()
        assert (in_dir / "candidate-src-index.tsv").exists() == (TaskKind.MINING in TASKS[task])

    env = yaml.safe_load((in_dir / "env.yaml").read_text())
    assert env == contract.env_yaml(protocol=protocol, task_id=env["task_id"], kinds=TASKS[task])
    assert len(env["task_id"]) == 30 and env["task_id"].isalnum()

    task_obj = config.load_task(in_dir, out_dir=ds.out_dir)
    assert task_obj.kinds == TASKS[task] and task_obj.protocol == protocol
    assert task_obj.config.class_names == sample.CLASS_NAMES
    assert task_obj.config.export_format == f"{fmt}:raw" and task_obj.config.annotation_format == fmt
    assert (task_obj.config.gpu_id, task_obj.config.gpu_count) == ("", 0)
    assert task_obj.config.object_type is contract.ObjectType.DETECTION
    assert ("object_type" in task_obj.config.raw) == (protocol == contract.PROTOCOL_1_1_0)
    assert task_obj.config.task_id == task_obj.task_id
    assert task_obj.config.model_params_path == () and dict(task_obj.hyperparameters) == {}
    for kind in task_obj.kinds:
        for key in contract.REQUIRED_INDEX[kind]:
            assert Path(task_obj.host_path(getattr(task_obj.env.input, key))).is_file()


def test_old_protocol_training_refuses_formats_ymir_1_1_did_not_export(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only as ark txt") as info:
        sample.write_sample_dataset(tmp_path / "t", fmt="voc", protocol=contract.PROTOCOL_0_0_1)
    assert "--format ark" in (info.value.hint or "")
    assert not (tmp_path / "t").exists()


# -- images --------------------------------------------------------------------------------------


def test_png_encoder_round_trips_exact_pixels() -> None:
    rgb = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 1, 2, 3, 4, 5, 6])
    image = Image.open(io.BytesIO(sample.encode_png(3, 2, rgb)))
    image.load()
    assert image.mode == "RGB" and image.size == (3, 2)
    assert image.tobytes() == rgb
    with pytest.raises(ValueError, match="expected 18 bytes"):
        sample.encode_png(3, 2, rgb[:-1])


def test_images_show_their_boxes_in_class_colours_and_the_boxes_are_tight() -> None:
    images = sample.draw_images(24, seed=1)
    assert sum(len(im.boxes) for im in images) >= 24
    assert {b.class_name for im in images for b in im.boxes} == set(sample.CLASS_NAMES)
    for image in images:
        pil = Image.open(io.BytesIO(image.png)).convert("RGB")
        assert pil.size == (sample.WIDTH, sample.HEIGHT)
        px = pil.load()
        for box in image.boxes:
            colour = COLOURS[box.class_name]
            inside = {
                (x, y)
                for x in range(box.xmin, box.xmax + 1)
                for y in range(box.ymin, box.ymax + 1)
                if px[x, y] == colour
            }
            assert px[(box.xmin + box.xmax) // 2, (box.ymin + box.ymax) // 2] == colour
            # the shape touches all four sides of its box (so the box is the tight box)...
            assert {x for x, _ in inside} >= {box.xmin, box.xmax}
            assert {y for _, y in inside} >= {box.ymin, box.ymax}
            # ...and does not leak out of it
            ring = [(x, y) for x in range(box.xmin - 1, box.xmax + 2) for y in (box.ymin - 1, box.ymax + 1)]
            ring += [(x, y) for y in range(box.ymin, box.ymax + 1) for x in (box.xmin - 1, box.xmax + 1)]
            assert all(px[x, y] != colour for x, y in ring)
            if sample._LOOKS[box.class_name][1] == "rectangle":
                assert len(inside) == box.w * box.h
        # the background never takes a class colour
        in_boxes = {(x, y) for b in image.boxes for x in range(b.xmin, b.xmax + 1) for y in range(b.ymin, b.ymax + 1)}
        colours = set(COLOURS.values())
        assert all(
            px[x, y] not in colours
            for x in range(0, sample.WIDTH, 3)
            for y in range(0, sample.HEIGHT, 3)
            if (x, y) not in in_boxes
        )


def test_same_seed_same_bytes_other_seed_other_images() -> None:
    a, b, c = sample.draw_images(4, seed=7), sample.draw_images(4, seed=7), sample.draw_images(4, seed=8)
    assert [im.sha1 for im in a] == [im.sha1 for im in b]
    assert not {im.sha1 for im in a} & {im.sha1 for im in c}
    assert len({im.sha1 for im in a}) == 4


def test_written_dataset_is_deterministic(tmp_path: Path) -> None:
    def tree(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "candidate-src-index.tsv"
        }

    a = sample.write_sample_dataset(tmp_path / "a", images=5, seed=2)
    b = sample.write_sample_dataset(tmp_path / "b", images=5, seed=2)
    assert tree(a.in_dir) == tree(b.in_dir)


def test_split_puts_every_fourth_image_in_validation() -> None:
    images = sample.draw_images(8, seed=0)
    train, val = sample.split_images(images)
    assert val == (images[3], images[7]) and len(train) == 6
    train, val = sample.split_images(images[:2])
    assert (train, val) == ((images[0],), (images[1],))


# -- annotations read back -----------------------------------------------------------------------


def training_set(tmp_path: Path, fmt: str, protocol: str) -> sample.SampleDataset:
    return sample.write_sample_dataset(tmp_path / "t", fmt=fmt, protocol=protocol, images=12, seed=5)


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_ark_files_read_back_to_the_known_boxes(tmp_path: Path, protocol: str) -> None:
    ds = training_set(tmp_path, "ark", protocol)
    columns = 7 if contract.allows_rotate_angle(protocol) else 5
    for image in ds.images:
        text = (ds.in_dir / "annotations" / image.sha1[-2:] / f"{image.sha1}.txt").read_text()
        rows = [[c.strip() for c in line.split(",")] for line in text.splitlines()]
        assert all(len(r) == columns for r in rows)
        assert sorted(tuple(int(c) for c in r[:5]) for r in rows) == boxes_of(image)


@pytest.mark.parametrize("protocol", [contract.PROTOCOL_1_0_0, contract.PROTOCOL_1_1_0])
def test_voc_files_read_back_to_the_known_boxes(tmp_path: Path, protocol: str) -> None:
    ds = training_set(tmp_path, "voc", protocol)
    for image in ds.images:
        root = ET.parse(ds.in_dir / "annotations" / image.sha1[-2:] / f"{image.sha1}.xml").getroot()
        assert root.tag == "annotation" and root.findtext("filename") == f"/in/{image.rel_path}"
        assert (root.findtext("size/width"), root.findtext("size/height")) == ("128", "128")
        found = []
        for obj in root.iter("object"):
            bnd = obj.find("bndbox")
            assert bnd is not None and bnd.findtext("rotate_angle") == "0.0"
            index = sample.CLASS_NAMES.index(obj.findtext("name") or "")
            found.append((index, *(int(bnd.findtext(t) or "") for t in ("xmin", "ymin", "xmax", "ymax"))))
        assert sorted(found) == boxes_of(image)


@pytest.mark.parametrize("protocol", [contract.PROTOCOL_1_0_0, contract.PROTOCOL_1_1_0])
def test_coco_file_reads_back_to_the_known_boxes(tmp_path: Path, protocol: str) -> None:
    ds = training_set(tmp_path, "coco", protocol)
    doc = json.loads((ds.in_dir / "annotations" / "coco-annotations.json").read_text())
    assert [c["id"] for c in doc["categories"]] == [0, 1, 2]
    assert [c["name"] for c in doc["categories"]] == list(sample.CLASS_NAMES)
    images = doc["images"]
    assert [im["id"] for im in images] == list(range(1, len(ds.images) + 1))
    assert [im["file_name"] for im in images] == sorted(f"{im.sha1}.png" for im in ds.images)
    by_file = {im["file_name"]: im["id"] for im in images}
    for image in ds.images:
        anns = [a for a in doc["annotations"] if a["image_id"] == by_file[f"{image.sha1}.png"]]
        got = sorted(
            (
                a["category_id"],
                a["bbox"][0],
                a["bbox"][1],
                a["bbox"][0] + a["bbox"][2] - 1,
                a["bbox"][1] + a["bbox"][3] - 1,
            )
            for a in anns
        )
        assert got == boxes_of(image)
        assert all(a["area"] == a["bbox"][2] * a["bbox"][3] for a in anns)
    assert sorted(a["id"] for a in doc["annotations"]) == list(range(1, len(doc["annotations"]) + 1))


@pytest.mark.parametrize("fmt", sample.FORMATS)
def test_sdk_reads_the_known_boxes(tmp_path: Path, fmt: str) -> None:
    """The SDK user code imports reads the same boxes (index rewritten onto the tmp dir)."""
    sdk = pytest.importorskip("live_code.sdk")
    ds = training_set(tmp_path, fmt, contract.PROTOCOL_1_1_0)
    env = contract.env_yaml(
        protocol=ds.protocol, task_id="t1", kinds=ds.kinds, in_dir=str(ds.in_dir), out_dir=str(ds.out_dir)
    )
    for key, name in (("training_index_file", "train-index.tsv"), ("val_index_file", "val-index.tsv")):
        text = (ds.in_dir / name).read_text().replace("/in/", f"{ds.in_dir}/")
        (tmp_path / name).write_text(text)
        env["input"][key] = str(tmp_path / name)  # type: ignore[index]  # env.yaml read as dict[str, object]
    sdk_env = sdk.parse_env(env)
    known = {f"{im.sha1}.png": boxes_of(im) for im in ds.images}
    seen = 0
    for split in (sdk.Split.TRAINING, sdk.Split.VALIDATION):
        for item in sdk.iter_items(split, env=sdk_env, class_names=sample.CLASS_NAMES):
            got = sorted((b.class_index, b.xmin, b.ymin, b.xmax, b.ymax) for b in item.boxes)
            assert got == known[os.path.basename(item.image_path)]
            seen += 1
    assert seen == len(ds.images)


# -- refusals and the summary --------------------------------------------------------------------


def test_non_empty_in_is_refused_and_force_replaces_it(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists and is not empty") as info:
        sample.write_sample_dataset(tmp_path, images=3)
    assert "--force" in (info.value.hint or "")
    assert (tmp_path / "in" / "keep.txt").read_text() == "mine"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "monitor.txt").write_text("old")
    ds = sample.write_sample_dataset(tmp_path, images=3, force=True)
    assert not (tmp_path / "in" / "keep.txt").exists() and (ds.in_dir / "env.yaml").is_file()
    assert list(ds.out_dir.iterdir()) == []


def test_non_empty_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.tsv").write_text("x")
    with pytest.raises(ConfigError, match="out already exists"):
        sample.write_sample_dataset(tmp_path, images=3)
    assert not (tmp_path / "in").exists()


def test_empty_in_and_out_dirs_are_used(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    ds = sample.write_sample_dataset(tmp_path, images=3)
    assert (ds.in_dir / "config.yaml").is_file()


def test_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        sample.write_sample_dataset(tmp_path / "f")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": 1}, "at least 2 image"),
        ({"images": 0, "kinds": frozenset({TaskKind.INFER})}, "at least 1 image"),
        ({"fmt": "yolo"}, "unknown annotation format"),
        ({"protocol": "2.0.0"}, "unknown protocol"),
        ({"kinds": frozenset({TaskKind.TRAINING, TaskKind.MINING})}, "training, mining, infer or mining+infer"),
        ({"kinds": frozenset()}, "training, mining, infer or mining+infer"),
    ],
)
def test_bad_arguments_are_refused_before_writing(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        sample.write_sample_dataset(tmp_path / "t", **kwargs)  # type: ignore[arg-type]  # bad arguments on purpose
    assert not (tmp_path / "t").exists()


def test_summary_lists_what_was_written(tmp_path: Path) -> None:
    ds = sample.write_sample_dataset(tmp_path / "t", kinds=TASKS["mining+infer"], images=5)
    text = ds.summary()
    assert text.splitlines()[0].startswith(f"wrote a sample mining+infer task to {tmp_path / 't'}")
    for item in ("in/assets/", "in/candidate-index.tsv", "in/models/", "in/env.yaml", "in/config.yaml", "out/"):
        assert item in text
    assert "5 candidate images" in text
