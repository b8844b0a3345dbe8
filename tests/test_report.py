"""``live-code report`` (issue 7, acceptance 5): the pure-Python PNG decoder agrees with Pillow on
every colour type and row filter; the report's PNGs decode and show boxes (they differ from the
plain images exactly around the predicted boxes); curves come from TensorBoard files."""
from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
import yaml
from PIL import Image

from live_code import _raster as raster
from live_code import report
from live_code import sample
from live_code import sdk


def _pillow_png(mode: str, size: tuple[int, int] = (37, 23), seed: int = 0) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", size)
    # smooth gradients plus noise: Pillow's encoder then picks every row filter (sub, up, average, paeth)
    img.putdata([((x * 7 + rng.randrange(9)) % 256, (y * 11) % 256, ((x + y) * 5) % 256)
                 for y in range(size[1]) for x in range(size[0])])
    if mode == "P":
        img = img.quantize(16)  # Pillow writes 16 colours with 4 bits per pixel
    elif mode == "P2":
        img = img.quantize(200)
    elif mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=False)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "P2", "1"])
def test_png_decoder_matches_pillow(mode: str) -> None:
    data = _pillow_png(mode)
    ours = raster.decode_png(data)
    theirs = Image.open(io.BytesIO(data)).convert("RGB")
    assert (ours.width, ours.height) == theirs.size
    assert bytes(ours.rgb) == theirs.tobytes()


def test_png_decoder_reads_the_sample_images_and_round_trips() -> None:
    im = sample.draw_images(1)[0]
    decoded = raster.decode_png(im.png)
    assert raster.decode_png(decoded.png()).rgb == decoded.rgb
    assert bytes(decoded.rgb) == Image.open(io.BytesIO(im.png)).convert("RGB").tobytes()


def test_png_decoder_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        raster.decode_png(b"\xff\xd8\xff\xe0 a jpeg")
    buf = io.BytesIO()
    Image.new("I;16", (8, 8)).save(buf, "PNG")
    with pytest.raises(ValueError, match="bit depth 16"):
        raster.decode_png(buf.getvalue())
    interlaced = bytearray(_pillow_png("RGB"))
    interlaced[28] = 1  # IHDR's interlace method: Adam7
    with pytest.raises(ValueError, match="interlace 1"):
        raster.decode_png(bytes(interlaced))


def _task(tmp_path: Path) -> tuple[Path, sample.SampleDataset]:
    made = sample.write_sample_dataset(tmp_path / "task", kinds={sdk.TaskKind.MINING, sdk.TaskKind.INFER}, images=6)
    detection = {f"{im.sha1}.png": {"boxes": [
        {"box": {"x": b.xmin, "y": b.ymin, "w": b.w, "h": b.h}, "class_name": b.class_name, "score": 0.9}
        for b in im.boxes]} for im in made.images}
    (made.out_dir / "infer-result.json").write_text(json.dumps({"detection": detection}))
    (made.out_dir / "result.tsv").write_text("".join(f"/in/{im.rel_path}\t{n}\n" for n, im in enumerate(made.images)))
    with sdk.ScalarWriter(made.out_dir / "tensorboard") as writer:
        for step in range(1, 6):
            writer.add_scalar("loss", 10.0 / step, step)
            writer.add_scalar("mAP", step / 10, step)
    (made.out_dir / "live-code-provenance.yaml").write_text(yaml.safe_dump({
        "source": {"url": "file:///r", "commit": "a" * 40}, "timings": {"fetch": 0.5, "environment": 2.0, "run": 4.0},
        "outcome": {"ok": True}}))
    return made.out_dir, made


def test_report_draws_boxes_on_the_images_and_the_curves(tmp_path: Path) -> None:
    out, made = _task(tmp_path)
    result = report.write_report([out], images=3)
    assert result.html == tmp_path / "task" / "report" / "report.html"
    preds = sorted(p for p in result.pngs if "-pred-" in p.name or p.name.startswith("pred-"))
    assert len(preds) == 3
    by_prefix = {im.sha1[:16]: im for im in made.images}
    for png in preds:
        drawn = Image.open(png)
        drawn.load()  # the file decodes
        im = by_prefix[png.stem.split("pred-")[1]]
        assert im.boxes, "images with boxes are drawn first"
        plain = Image.open(io.BytesIO(im.png)).convert("RGB")
        factor = drawn.size[0] // plain.size[0]
        assert factor == 2 and drawn.size == (plain.size[0] * factor, plain.size[1] * factor)
        plain = plain.resize(drawn.size, Image.NEAREST)
        changed = [(x, y) for y in range(drawn.size[1]) for x in range(drawn.size[0])
                   if drawn.getpixel((x, y)) != plain.getpixel((x, y))]
        assert changed, "the picture must differ from the plain image"
        for box in im.boxes:  # each box's outline is drawn in its class's colour
            colour = raster.PALETTE[sorted(sample.CLASS_NAMES).index(box.class_name)]
            x0, y1 = box.xmin * factor, (box.ymax + 1) * factor - 1
            assert drawn.getpixel((x0, y1)) == drawn.getpixel((x0 + box.w * factor // 2, y1)) == colour
    curves = {p.name for p in result.pngs if "curve" in p.name}
    assert curves == {"curve-loss.png", "curve-mAP.png"}
    for png in result.pngs:
        Image.open(png).load()
    page = result.html.read_text()
    assert all(f'src="{p.name}"' in page for p in result.pngs)
    assert "a" * 40 in page and "loss: 10 at step 1" in page


def test_report_says_when_a_jpeg_cannot_be_drawn(tmp_path: Path) -> None:
    out, made = _task(tmp_path)
    im = made.images[0]
    jpeg = made.in_dir / "assets" / im.sha1[-2:] / f"{im.sha1}.jpg"
    Image.open(io.BytesIO(im.png)).convert("RGB").save(jpeg, "JPEG")
    (made.in_dir / "candidate-index.tsv").write_text(f"/in/assets/{im.sha1[-2:]}/{im.sha1}.jpg\n")
    (out / "infer-result.json").write_text(json.dumps({"detection": {f"{im.sha1}.jpg": {"boxes": []}}}))
    result = report.write_report([out], dest=tmp_path / "rep")
    assert any("JPEG cannot be drawn" in n for n in result.notes)
    assert "JPEG cannot be drawn" in result.html.read_text()


def test_read_scalars_reads_what_the_sdk_writes(tmp_path: Path) -> None:
    with sdk.ScalarWriter(tmp_path) as writer:
        writer.add_scalar("loss", 0.75, 1)
        writer.add_scalar("loss", 0.25, 2)
        writer.add_scalar("mAP", 0.5, 2)
    assert report.read_scalars(tmp_path) == {"loss": [(1, 0.75), (2, 0.25)], "mAP": [(2, 0.5)]}


def test_cli_report_of_two_runs(tmp_path: Path) -> None:
    from live_code import cli

    out, _ = _task(tmp_path)
    second = tmp_path / "second"
    (second / "out").mkdir(parents=True)
    (second / "out" / "live-code-provenance.yaml").write_text(yaml.safe_dump({"timings": {"run": 1.0}}))
    assert cli.main(["report", str(out), str(second / "out")]) == 0
    assert (tmp_path / "report" / "report.html").is_file()
    assert (tmp_path / "report" / "2-timings.png").is_file()
