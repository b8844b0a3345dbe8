"""live_code.sdk.formats, the one home of the dataset formats: image sizes from real files made by
Pillow, ark/VOC/COCO written and read back, TFRecord frames read back by the report's reader and
by tensorboard's own."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from PIL import Image

from live_code.commands import report
from live_code.sdk import formats
from live_code.sdk.formats import Box

NAMES = ("cat", "dog", "person")
BOXES = (Box(0, "cat", 3, 4, 20, 30), Box(2, "person", 0, 0, 9, 49), Box(1, "dog", 40, 10, 63, 17))


def _encoded(fmt: str, size: tuple[int, int] = (37, 21), mode: str = "RGB", **options: object) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (200, 40, 90, 128)[: len(mode)]).save(buf, fmt, **options)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("PNG", "RGB", {}),
        ("PNG", "L", {}),
        ("JPEG", "RGB", {}),
        ("JPEG", "RGB", {"progressive": True}),
        ("JPEG", "L", {"exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + bytes(6)}),  # an APP1 before the frame
        ("BMP", "RGB", {}),
        ("GIF", "P", {}),
        ("WEBP", "RGB", {}),  # lossy: VP8
        ("WEBP", "RGB", {"lossless": True}),  # VP8L
        ("WEBP", "RGBA", {}),  # lossy with alpha: VP8X
    ],
)
def test_header_size_of_real_images(fmt: str, mode: str, options: dict, tmp_path: Path) -> None:
    for size in ((37, 21), (1, 1), (640, 3)):
        data = _encoded(fmt, size, mode, **options)
        assert formats.header_size(io.BytesIO(data)) == size, (fmt, size)
        path = tmp_path / f"x.{fmt.lower()}"
        path.write_bytes(data)
        assert formats.image_size(str(path)) == size == Image.open(path).size


def test_the_three_webp_headers_are_covered() -> None:
    kinds = {_encoded("WEBP")[12:16], _encoded("WEBP", lossless=True)[12:16], _encoded("WEBP", mode="RGBA")[12:16]}
    assert kinds == {b"VP8 ", b"VP8L", b"VP8X"}


def test_core_and_top_down_bmp_headers() -> None:
    core = b"BM" + b"\x00" * 12 + struct.pack("<IHH", 12, 300, 200) + b"\x00" * 10
    assert formats.header_size(io.BytesIO(core)) == (300, 200)
    top_down = b"BM" + b"\x00" * 12 + struct.pack("<Iii", 40, 64, -48) + b"\x00" * 6
    assert formats.header_size(io.BytesIO(top_down)) == (64, 48)


def test_unknown_and_cut_images(tmp_path: Path) -> None:
    tiff = _encoded("TIFF")
    assert formats.header_size(io.BytesIO(tiff)) is None
    assert formats.header_size(io.BytesIO(_encoded("PNG")[:20])) is None
    assert formats.header_size(io.BytesIO(_encoded("WEBP")[:22])) is None
    (tmp_path / "x.tiff").write_bytes(tiff)
    with pytest.raises(formats.ImageFormatError, match=r"x\.tiff.*WebP.*size_of="):
        formats.image_size(str(tmp_path / "x.tiff"))
    with pytest.raises(formats.ImageFormatError, match="missing.png"):
        formats.image_size(str(tmp_path / "missing.png"))


def test_box_sizes_are_inclusive() -> None:
    box = Box(1, "dog", 10, 20, 10, 29)
    assert (box.w, box.h, box.name, box.rotate_angle) == (1, 10, "dog", 0.0)


@pytest.mark.parametrize("rotate", [False, True])
def test_ark_round_trip(rotate: bool) -> None:
    text = formats.ark_text(BOXES, rotate=rotate)
    assert text.splitlines()[0] == ("0, 3, 4, 20, 30, -1.0, 0.0" if rotate else "0, 3, 4, 20, 30")
    assert formats.read_ark("a.txt", text, NAMES) == BOXES
    assert formats.read_ark("a.txt", text, NAMES[:2]) == (BOXES[0], BOXES[2]), "unknown class indexes are skipped"
    with pytest.raises(formats.DatasetFormatError, match="a.txt: line 2: expected 5"):
        formats.read_ark("a.txt", "0, 1, 2, 3, 4\n1, 2, 3\n", NAMES)


@pytest.mark.parametrize("rotate", [False, True])
def test_voc_round_trip(rotate: bool) -> None:
    text = formats.voc_text("/in/assets/ab/x.png", 64, 50, BOXES, rotate=rotate)
    assert ("<rotate_angle>" in text) is rotate and "<pose>Unspecified</pose>" in text
    voc = formats.read_voc("a.xml", text, NAMES)
    assert voc == formats.VocFile("/in/assets/ab/x.png", BOXES)
    assert formats.read_voc("a.xml", text.encode(), ("dog",)).boxes == (BOXES[2]._replace(class_index=0),)
    loose = formats.read_voc("a.xml", text)
    assert [(b.class_index, b.class_name) for b in loose.boxes] == [(formats.NO_INDEX, b.class_name) for b in BOXES]
    with pytest.raises(formats.DatasetFormatError, match="a.xml: object 1: .*has no <bndbox>"):
        formats.read_voc("a.xml", "<annotation><object><name>cat</name></object></annotation>")
    with pytest.raises(formats.DatasetFormatError, match="a.xml: line 1: not valid XML"):
        formats.read_voc("a.xml", "<annotation>")


def test_exported_coco_round_trip() -> None:
    images = [formats.ImageBoxes("a.png", 64, 50, BOXES[:2]), formats.ImageBoxes("b.jpg", 80, 60, BOXES[2:])]
    text = formats.exported_coco_text(images, NAMES)
    doc = json.loads(text)
    assert [c["id"] for c in doc["categories"]] == [0, 1, 2] and doc["licenses"] == []
    assert doc["annotations"][1]["bbox"] == [0, 0, 10, 50] and doc["annotations"][1]["area"] == 500
    coco = formats.read_coco("c.json", text)
    assert coco.class_names == NAMES and coco.images == {1: "a.png", 2: "b.jpg"}
    assert coco.annotations == ((1, BOXES[0]), (1, BOXES[1]), (2, BOXES[2]))
    assert formats.read_coco("c.json", text, ("person", "cat")).annotations == (
        (1, BOXES[0]._replace(class_index=1)),
        (1, BOXES[1]._replace(class_index=0)),
    )
    del doc["categories"]
    with pytest.raises(formats.DatasetFormatError, match=r"c.json: annotations\[0\]: category_id 0 is not in"):
        formats.read_coco("c.json", json.dumps(doc))
    assert len(formats.read_coco("c.json", json.dumps(doc), NAMES).annotations) == 3, "ids index the class names"


def test_training_coco_clips_and_counts_from_one() -> None:
    images = [
        formats.ImageBoxes("/abs/a.png", 16, 40, (BOXES[0], Box(0, "cat", 30, 0, 40, 5), Box(7, "x", 0, 0, 1, 1)))
    ]
    doc = formats.training_coco(images, NAMES)
    assert doc["categories"][0] == {"id": 1, "name": "cat", "supercategory": "object"}
    assert doc["annotations"] == [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [3.0, 4.0, 13.0, 27.0], "area": 351.0, "iscrowd": 0}
    ], "clipped to the image; outside and unknown-class boxes left out"
    assert doc["images"] == [{"id": 1, "file_name": "/abs/a.png", "width": 16, "height": 40}]


# -- TFRecord --------------------------------------------------------------------------------------


def test_crc32c_check_value() -> None:
    assert formats.crc32c(b"123456789") == 0xE3069283  # RFC 3720 B.4


def test_records_read_back_and_damage_is_found() -> None:
    records = [b"", b"one", bytes(range(256)) * 3]
    data = b"".join(formats.frame_record(r) for r in records)
    assert list(formats.read_records(io.BytesIO(data))) == records
    broken = bytearray(data)
    broken[-5] ^= 0x01  # inside the last record's data
    got: list[bytes] = []
    with pytest.raises(formats.RecordError, match="record 3 fails its data CRC") as info:
        got.extend(formats.read_records(io.BytesIO(bytes(broken))))
    assert got == records[:2] and (info.value.good, info.value.truncated) == (2, False)
    with pytest.raises(formats.RecordError, match="record 3 is cut short") as info:
        list(formats.read_records(io.BytesIO(data[:-3])))
    assert info.value.truncated
    broken = bytearray(data)
    broken[2] ^= 0x80  # the first record's length
    with pytest.raises(formats.RecordError, match="record 1 fails its length CRC"):
        list(formats.read_records(io.BytesIO(bytes(broken))))


def _event(step: int, tag: str, value: float) -> bytes:
    from tensorboard.compat.proto import event_pb2, summary_pb2

    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
    return event_pb2.Event(wall_time=1.5, step=step, summary=summary).SerializeToString()


def test_frames_read_back_by_the_report_and_by_tensorboard(tmp_path: Path) -> None:
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

    events = [_event(1, "loss", 0.75), _event(2, "loss", 0.25), _event(2, "mAP", 0.5)]
    path = tmp_path / "events.out.tfevents.1.host"
    path.write_bytes(b"".join(formats.frame_record(e) for e in events))
    assert report.read_scalars(tmp_path) == {"loss": [(1, 0.75), (2, 0.25)], "mAP": [(2, 0.5)]}
    reader, seen = PyRecordReader_New(str(path).encode()), []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            break
        seen.append(reader.record())
    assert seen == events, "tensorboard's own reader checks the same CRCs"
    path.write_bytes(path.read_bytes()[:-2])
    notes: list[str] = []
    assert report.read_scalars(path, notes) == {"loss": [(1, 0.75), (2, 0.25)]}
    assert len(notes) == 1 and "damaged TensorBoard event file after 2 good records" in notes[0]
