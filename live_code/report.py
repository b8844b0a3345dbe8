"""``live-code report OUT...``: what a run produced, as PNG pictures and one HTML page.

For each out dir: the predictions of ``infer-result.json`` drawn on a few candidate images (found
through the task's ``in`` dir, by default the ``in`` next to OUT), the training curves of its
TensorBoard event files, the phase timings of its provenance record, the best stage of
``result.yaml`` and the top of ``result.tsv``. Images are decoded and drawn in pure Python
(:mod:`live_code._raster`); a JPEG cannot be decoded without an imaging library, so the page says
so instead of drawing it.

TensorBoard files are TFRecords of ``Event`` protobufs (the layout is described in
``live_code/sdk/_tensorboard.py``): scalars are ``summary.value[].simple_value`` (field 2), or a
``tensor`` (field 8) with one ``float_val`` (field 5), as newer writers store them.
"""
from __future__ import annotations

import dataclasses
import html
import json
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from live_code import _raster as raster
from live_code import contract
from live_code import pipeline
from live_code import util
from live_code.errors import ConfigError

MIN_SIDE = 256  # small images are enlarged to at least this side for drawing


@dataclasses.dataclass(frozen=True)
class ReportResult:
    html: Path
    pngs: tuple[Path, ...]
    notes: tuple[str, ...]


# -- TensorBoard -----------------------------------------------------------------------------------


def _records(data: bytes) -> Iterator[bytes]:
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        if pos + 16 + length > len(data):
            return  # a record still being written
        yield data[pos + 12:pos + 12 + length]
        pos += 16 + length


def _fields(data: bytes) -> Iterator[tuple[int, Any]]:
    """(field number, value) of a protobuf message: ints for varints, bytes for the rest."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def read_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from one event file or every ``*tfevents*`` file under a dir."""
    files = sorted(path.rglob("*tfevents*")) if path.is_dir() else [path]
    out: dict[str, list[tuple[int, float]]] = {}
    for file in files:
        for record in _records(file.read_bytes()):
            step, summaries = 0, []
            for field, value in _fields(record):
                if field == 2:
                    step = value
                elif field == 5:
                    summaries.append(value)
            for summary in summaries:
                for field, value in _fields(summary):
                    if field == 1:
                        tag, number = _scalar(value)
                        if tag is not None and number is not None:
                            out.setdefault(tag, []).append((step, number))
    return out


def _scalar(value: bytes) -> tuple[str | None, float | None]:
    tag, number = None, None
    for field, item in _fields(value):
        if field == 1:
            tag = item.decode("utf-8", "replace")
        elif field == 2:
            (number,) = struct.unpack("<f", item)
        elif field == 8:
            for f, v in _fields(item):
                if f == 5 and len(v) >= 4:  # packed float_val
                    (number,) = struct.unpack("<f", v[:4])
                elif f == 5:
                    number = None
    return tag, number


# -- the report ------------------------------------------------------------------------------------


def write_report(outs: Sequence[Path], *, dest: Path | None = None, in_dirs: Sequence[Path] = (),
                 images: int = 4) -> ReportResult:
    """Write ``dest/report.html`` and its PNGs for the runs in ``outs`` (default dest: ``report`` in
    the task dir of OUT, or in the dir the task dirs of several OUTs share)."""
    outs = [Path(o).absolute() for o in outs]
    for out in outs:
        if not out.is_dir():
            raise ConfigError(f"{out} is not a directory", value=str(out), hint="give a task's out dir")
    dest = (dest or Path(os.path.commonpath([o.parent for o in outs])) / "report").absolute()
    dest.mkdir(parents=True, exist_ok=True)
    pngs: list[Path] = []
    notes: list[str] = []
    sections = []
    for i, out in enumerate(outs):
        in_dir = Path(in_dirs[i]).absolute() if i < len(in_dirs) else out.parent / "in"
        prefix = f"{i + 1}-" if len(outs) > 1 else ""
        sections.append(_section(out, in_dir, dest, prefix, images, pngs, notes))
    page = dest / "report.html"
    util.atomic_write(page, _PAGE.format(title="live-code report", body="\n".join(sections)))
    return ReportResult(page, tuple(pngs), tuple(notes))


def _save(image: raster.Image, path: Path, pngs: list[Path]) -> str:
    path.write_bytes(image.png())
    pngs.append(path)
    return f'<img src="{html.escape(path.name)}" alt="{html.escape(path.stem)}">'


def _section(out: Path, in_dir: Path, dest: Path, prefix: str, images: int, pngs: list[Path], notes: list[str]) -> str:
    parts = [f"<h2>{html.escape(str(out))}</h2>"]
    prov_path = out / pipeline.PROVENANCE_NAME
    prov = yaml.safe_load(prov_path.read_text()) if prov_path.is_file() else {}
    if prov:
        src, env = prov.get("source") or {}, prov.get("environment") or {}
        rows = [("task", "+".join((prov.get("task") or {}).get("kinds") or [])), ("source", src.get("url")),
                ("commit", src.get("commit")), ("pin", src.get("pin")), ("environment", env.get("key")),
                ("sandbox", (prov.get("sandbox") or {}).get("mode")), ("outcome", (prov.get("outcome") or {}).get("ok"))]
        parts.append(_table(rows))
    result = out / "models" / "result.yaml"
    if result.is_file():
        data = yaml.safe_load(result.read_text()) or {}
        best = data.get("best_stage_name")
        stage = (data.get("model_stages") or {}).get(best) or {}
        parts.append(_table([("best stage", best), ("mAP", stage.get("mAP", data.get("map"))),
                             ("files", ", ".join(stage.get("files") or data.get("model") or []))]))
    scalars = read_scalars(out / "tensorboard") if (out / "tensorboard").is_dir() else {}
    for tag, points in sorted(scalars.items()):
        points = sorted(points)
        img = _save(raster.line_chart([(float(s), v) for s, v in points], title=tag), dest / f"{prefix}curve-{_safe(tag)}.png", pngs)
        parts.append(f"<figure>{img}<figcaption>{html.escape(tag)}: {points[0][1]:.4g} at step {points[0][0]}, "
                     f"{points[-1][1]:.4g} at step {points[-1][0]}</figcaption></figure>")
    timings = prov.get("timings") or {}
    if timings:
        img = _save(raster.bar_chart([(k, float(v)) for k, v in timings.items()]), dest / f"{prefix}timings.png", pngs)
        parts.append(f"<figure>{img}<figcaption>seconds per phase (provenance timings)</figcaption></figure>")
    mining = out / "result.tsv"
    if mining.is_file():
        top = [line.split("\t") for line in mining.read_text().splitlines()[:5] if "\t" in line]
        parts.append("<h3>mining: the top of result.tsv</h3>" + _table([(os.path.basename(p), s) for p, s in top]))
    infer = out / "infer-result.json"
    if infer.is_file():
        parts.append(_predictions(infer, in_dir, dest, prefix, images, pngs, notes))
    return "<section>" + "\n".join(parts) + "</section>"


def _predictions(infer: Path, in_dir: Path, dest: Path, prefix: str, count: int, pngs: list[Path],
                 notes: list[str]) -> str:
    detection = (json.loads(infer.read_text()) or {}).get("detection") or {}
    files = _image_files(in_dir)
    names = sorted(detection, key=lambda n: (not _boxes(detection[n]), n))[:count]
    classes = sorted({b.get("class_name", "") for n in detection for b in _boxes(detection[n])})
    parts = ["<h3>predictions (infer-result.json)</h3>"]
    for name in names:
        path = files.get(os.path.basename(name))
        if path is None:
            notes.append(f"{name}: image not found under {in_dir}")
            parts.append(f"<p>{html.escape(name)}: image not found under {html.escape(str(in_dir))}</p>")
            continue
        try:
            image = raster.decode_png(path.read_bytes())
        except ValueError as e:
            why = "JPEG cannot be drawn without an imaging library" if path.suffix.lower() != ".png" else str(e)
            notes.append(f"{name}: {why}")
            parts.append(f"<p>{html.escape(name)}: {html.escape(why)}</p>")
            continue
        factor = max(1, -(-MIN_SIDE // max(image.width, image.height)))
        image = raster.scaled(image, factor)
        rows = []
        for box in _boxes(detection[name]):
            b, cls = box.get("box") or {}, box.get("class_name", "")
            colour = raster.PALETTE[classes.index(cls) % len(raster.PALETTE)]
            x, y, w, h = (int(b.get(k, 0)) * factor for k in ("x", "y", "w", "h"))
            raster.rectangle(image, x, y, x + w - 1, y + h - 1, colour)
            label = f"{cls} {float(box.get('score', 0)):.2f}"
            lx = max(2, min(x, image.width - raster.text_width(label) - 2))
            ly = y - 14 if y >= 16 else y + 3  # above the box, or inside it at the top edge
            raster.fill(image, lx - 2, ly - 2, lx + raster.text_width(label), ly + 11, colour)
            raster.text(image, lx, ly, label, raster.WHITE)
            rows.append((cls, f"{float(box.get('score', 0)):.3f}", f"{b.get('x')}, {b.get('y')}, {b.get('w')}, {b.get('h')}"))
        img = _save(image, dest / f"{prefix}pred-{_safe(Path(name).stem)[:16]}.png", pngs)
        parts.append(f"<figure>{img}<figcaption>{html.escape(name)}: {len(rows)} boxes</figcaption></figure>"
                     + _table(rows, ("class", "score", "x, y, w, h")))
    return "\n".join(parts)


def _boxes(entry: Any) -> list[dict[str, Any]]:
    if not isinstance(entry, dict):
        return []
    boxes = entry.get("boxes", entry.get("annotations")) or []
    return [b for b in boxes if isinstance(b, dict)]


def _image_files(in_dir: Path) -> dict[str, Path]:
    """basename -> file, from the candidate index (container paths mapped) or the assets."""
    found: dict[str, Path] = {}
    index = in_dir / "candidate-index.tsv"
    if index.is_file():
        for line in index.read_text().splitlines():
            path = line.split("\t")[0].strip()
            if path.startswith(contract.IN_DIR + "/"):
                path = str(in_dir / path[len(contract.IN_DIR) + 1:])
            if path:
                found[os.path.basename(path)] = Path(path)
    if not found and (in_dir / "assets").is_dir():
        found = {p.name: p for p in (in_dir / "assets").rglob("*") if p.is_file()}
    return found


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "x"


def _table(rows: Sequence[Sequence[Any]], head: Sequence[str] = ()) -> str:
    th = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" if head else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{th}{body}</table>"


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}} table{{border-collapse:collapse;margin:.5em 0}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}} figure{{display:inline-block;margin:.5em}}
img{{image-rendering:pixelated;border:1px solid #ddd}}</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""

__all__: Sequence[str] = ("ReportResult", "read_scalars", "write_report")
