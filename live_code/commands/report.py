"""``live-code report OUT...``: what a run produced, as pictures and one HTML page.

For each out dir: the predictions of ``infer-result.json`` drawn over the original images (found
through the task's ``in`` dir, by default the ``in`` next to OUT) in every format Pillow reads, EXIF
orientation applied, one colour per class that stays the same across pictures; the training curves
of its TensorBoard event files, read through tensorboard's own record reader, which checks every
record's CRC (a corrupt file is named in the notes; the records before the damage are drawn); the
phase timings of its provenance record, the best stage of ``result.yaml`` and the top of
``result.tsv``. The page links its pictures, which lie beside it, by relative paths.

The pictures need the report extra (``pip install "live-code[report]"``: Pillow, matplotlib,
tensorboard), which the harness's run path never imports. Without it the page holds the text parts
and says which command installs the extra.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from live_code import contract, util
from live_code.errors import ConfigError
from live_code.run import pipeline

#: the command that installs what the pictures need
INSTALL_EXTRA = 'pip install "live-code[report]"'
_LIBRARIES = (("PIL", "Pillow"), ("matplotlib", "matplotlib"), ("tensorboard", "tensorboard"))
MIN_SIDE = 256  # small images are enlarged to at least this side for drawing
#: colours of the classes, by their place in the task's class_names (tab10, then tab20's light ones)
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
)


@dataclasses.dataclass(frozen=True)
class ReportResult:
    html: Path
    pngs: tuple[Path, ...]
    notes: tuple[str, ...]


def missing_libraries() -> list[str]:
    """The distributions of the report extra that this interpreter cannot import."""
    missing = []
    for module, dist in _LIBRARIES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    return missing


def colour_of(class_name: str, class_names: Sequence[str]) -> tuple[int, int, int]:
    """A class's colour: by its place in the task's class names (the same in every picture and
    every report of the task); a name outside them gets one after them, by its spelling."""
    if class_name in class_names:
        return PALETTE[list(class_names).index(class_name) % len(PALETTE)]
    return PALETTE[(len(class_names) + sum(class_name.encode())) % len(PALETTE)]


# -- TensorBoard -----------------------------------------------------------------------------------


def read_scalars(path: Path, notes: list[str] | None = None) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of one event file or every ``*tfevents*`` file under a dir, read with
    tensorboard's record reader (CRC-checked). A damaged file gives its records before the damage,
    and a line in ``notes`` naming it."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
    from tensorboard.util import tensor_util

    files = sorted(p for p in path.rglob("*tfevents*") if p.is_file()) if path.is_dir() else [path]
    out: dict[str, list[tuple[int, float]]] = {}
    for file in files:
        reader = PyRecordReader_New(os.fsencode(file))
        count = 0
        while True:
            try:
                reader.GetNext()
            except errors.OutOfRangeError:
                break
            except errors.DataLossError as e:
                if notes is not None:
                    notes.append(
                        f"{file}: damaged TensorBoard event file after {count} good records "
                        f"({e.message if hasattr(e, 'message') else e}); its curves stop there"
                    )
                break
            count += 1
            try:
                event = event_pb2.Event.FromString(reader.record())
            except Exception as e:
                if notes is not None:
                    notes.append(
                        f"{file}: record {count} is not a TensorBoard event ({e}); the file is skipped from there"
                    )
                break
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor"):
                    array = tensor_util.make_ndarray(value.tensor)
                    if array.size != 1:
                        continue
                    number = float(array.reshape(-1)[0])
                else:
                    continue
                out.setdefault(value.tag, []).append((int(event.step), number))
    return out


# -- the report ------------------------------------------------------------------------------------


def write_report(
    outs: Sequence[Path], *, dest: Path | None = None, in_dirs: Sequence[Path] = (), images: int = 4
) -> ReportResult:
    """Write ``dest/report.html`` and its pictures for the runs in ``outs`` (default dest: ``report``
    in the task dir of OUT, or in the dir the task dirs of several OUTs share)."""
    outs = [Path(o).absolute() for o in outs]
    for out in outs:
        if not out.is_dir():
            raise ConfigError(f"{out} is not a directory", value=str(out), hint="give a task's out dir")
    dest = (dest or Path(os.path.commonpath([o.parent for o in outs])) / "report").absolute()
    dest.mkdir(parents=True, exist_ok=True)
    pngs: list[Path] = []
    notes: list[str] = []
    missing = missing_libraries()
    if missing:
        notes.append(f"no pictures: {', '.join(missing)} not installed; install the report extra with: {INSTALL_EXTRA}")
    sections = []
    for i, out in enumerate(outs):
        in_dir = Path(in_dirs[i]).absolute() if i < len(in_dirs) else out.parent / "in"
        prefix = f"{i + 1}-" if len(outs) > 1 else ""
        sections.append(_section(out, in_dir, dest, prefix, images, pngs, notes, draw=not missing))
    if len(outs) > 1:
        sections.insert(0, _comparison(outs, dest, pngs, draw=not missing))
    body = "\n".join(sections)
    if notes:
        body = "<h2>notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>\n" + body
    page = dest / "report.html"
    util.atomic_write(page, _PAGE.format(title="live-code report", body=body))
    return ReportResult(page, tuple(pngs), tuple(notes))


def _best_map(out: Path) -> tuple[str | None, float | None]:
    path = out / "models" / "result.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {} if path.is_file() else {}
    except (OSError, yaml.YAMLError):
        return None, None
    if "model_stages" in data:
        best = data.get("best_stage_name")
        value = ((data.get("model_stages") or {}).get(best) or {}).get("mAP")
    else:
        best, value = None, data.get("map")
    return (str(best) if best is not None else None), (float(value) if isinstance(value, (int, float)) else None)


def _comparison(outs: Sequence[Path], dest: Path, pngs: list[Path], *, draw: bool) -> str:
    """Several runs side by side: the best mAP of each and its difference to the first; each
    TensorBoard tag's curves of every run in one chart."""
    parts = ["<h2>the runs compared</h2>"]
    first = _best_map(outs[0])[1]
    rows = []
    for i, out in enumerate(outs, 1):
        stage, value = _best_map(out)
        diff = f"{value - first:+.4g}" if value is not None and first is not None and i > 1 else ""
        rows.append((i, str(out), stage or "", "" if value is None else f"{value:.4g}", diff))
    parts.append(_table(rows, ("run", "out", "best stage", "mAP", "vs run 1")))
    if not draw:
        return "<section>" + "\n".join(parts) + "</section>"
    curves = [read_scalars(o / "tensorboard", []) if (o / "tensorboard").is_dir() else {} for o in outs]
    for tag in sorted(set().union(*curves)):
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
        for i, runs in enumerate(curves, 1):
            if tag in runs:
                points = sorted(runs[tag])
                ax.plot([p for p, _ in points], [v for _, v in points], label=f"run {i}")
        ax.set_title(tag)
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = dest / f"compare-curve-{_safe(tag)}.png"
        fig.savefig(path)
        plt.close(fig)
        parts.append(
            f"<figure>{_img(path, dest, pngs)}<figcaption>{html.escape(tag)} of every run</figcaption></figure>"
        )
    return "<section>" + "\n".join(parts) + "</section>"


def _img(path: Path, dest: Path, pngs: list[Path]) -> str:
    pngs.append(path)
    rel = os.path.relpath(path, dest)
    return f'<img src="{html.escape(rel)}" alt="{html.escape(path.stem)}">'


def _section(
    out: Path, in_dir: Path, dest: Path, prefix: str, images: int, pngs: list[Path], notes: list[str], *, draw: bool
) -> str:
    parts = [f"<h2>{html.escape(str(out))}</h2>"]
    prov_path = out / pipeline.PROVENANCE_NAME
    prov = yaml.safe_load(prov_path.read_text()) if prov_path.is_file() else {}
    if prov:
        src, env = prov.get("source") or {}, prov.get("environment") or {}
        rows = [
            ("task", "+".join((prov.get("task") or {}).get("kinds") or [])),
            ("source", src.get("url")),
            ("commit", src.get("commit")),
            ("pin", src.get("pin")),
            ("environment", env.get("key")),
            ("sandbox", (prov.get("sandbox") or {}).get("mode")),
            ("outcome", (prov.get("outcome") or {}).get("ok")),
        ]
        parts.append(_table(rows))
    result = out / "models" / "result.yaml"
    if result.is_file():
        data = yaml.safe_load(result.read_text()) or {}
        best = data.get("best_stage_name")
        stage = (data.get("model_stages") or {}).get(best) or {}
        parts.append(
            _table(
                [
                    ("best stage", best),
                    ("mAP", stage.get("mAP", data.get("map"))),
                    ("files", ", ".join(stage.get("files") or data.get("model") or [])),
                ]
            )
        )
        if draw:
            parts += _result_charts(data, dest, prefix, pngs)
    if draw and (out / "tensorboard").is_dir():
        for tag, points in sorted(read_scalars(out / "tensorboard", notes).items()):
            points = sorted(points)
            path = dest / f"{prefix}curve-{_safe(tag)}.png"
            _line_chart(points, tag, path)
            parts.append(
                f"<figure>{_img(path, dest, pngs)}<figcaption>{html.escape(tag)}: {points[0][1]:.4g} at step "
                f"{points[0][0]}, {points[-1][1]:.4g} at step {points[-1][0]}</figcaption></figure>"
            )
    timings = prov.get("timings") or {}
    if timings:
        if draw:
            path = dest / f"{prefix}timings.png"
            _bar_chart([(str(k), float(v)) for k, v in timings.items()], "seconds per phase", path)
            parts.append(
                f"<figure>{_img(path, dest, pngs)}<figcaption>seconds per phase (provenance timings)"
                "</figcaption></figure>"
            )
        else:
            parts.append("<h3>seconds per phase</h3>" + _table([(k, v) for k, v in timings.items()]))
    mining = out / "result.tsv"
    if mining.is_file():
        ranked = _ranking(mining)
        top = ranked[:5]
        parts.append("<h3>mining: the top of result.tsv</h3>" + _table([(os.path.basename(p), s) for p, s in top]))
        if draw and ranked:
            parts += _mining_charts(ranked, in_dir, dest, prefix, pngs, notes)
    infer = out / "infer-result.json"
    if infer.is_file():
        parts.append(
            _predictions(
                infer,
                in_dir,
                dest,
                prefix,
                images,
                pngs,
                notes,
                draw=draw,
                originals=_originals(out.parent),
                truth=_ground_truth(out.parent),
            )
        )
    return "<section>" + "\n".join(parts) + "</section>"


def _ranking(path: Path) -> list[tuple[str, float]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, tab, score = line.partition("\t")
        if not tab:
            continue
        try:
            rows.append((name.strip(), float(score)))
        except ValueError:
            continue
    return rows


def _result_charts(data: dict[str, Any], dest: Path, prefix: str, pngs: list[Path]) -> list[str]:
    """The stages' mAP (the best one marked) and, where result.yaml has them, the per-class APs."""
    parts = []
    stages = data.get("model_stages") or {}
    best = data.get("best_stage_name")
    points = [(str(n), float(st.get("mAP") or 0.0)) for n, st in stages.items() if isinstance(st, dict)]
    if points:
        path = dest / f"{prefix}stages-mAP.png"
        _bar_chart(points, f"mAP per stage (best: {best})", path, marked=str(best))
        parts.append(
            f"<figure>{_img(path, dest, pngs)}<figcaption>mAP per stage, the best ({html.escape(str(best))}) "
            "marked</figcaption></figure>"
        )
    aps = ((stages.get(best) or {}).get("class_aps") if isinstance(stages.get(best), dict) else None) or data.get(
        "class_aps"
    )
    if isinstance(aps, dict) and aps:
        path = dest / f"{prefix}class-AP.png"
        _bar_chart([(str(k), float(v or 0.0)) for k, v in aps.items()], f"AP per class (stage {best})", path)
        parts.append(
            f"<figure>{_img(path, dest, pngs)}<figcaption>AP per class of the best stage</figcaption></figure>"
        )
    return parts


def _mining_charts(
    ranked: list[tuple[str, float]],
    in_dir: Path,
    dest: Path,
    prefix: str,
    pngs: list[Path],
    notes: list[str],
    count: int = 8,
) -> list[str]:
    """The score histogram, and the top and bottom of the ranking as thumbnails with their scores."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.hist([s for _, s in ranked], bins=min(30, max(5, len(ranked) // 2)))
    ax.set_title(f"mining scores of {len(ranked)} images")
    ax.set_xlabel("score")
    fig.tight_layout()
    hist = dest / f"{prefix}mining-scores.png"
    fig.savefig(hist)
    plt.close(fig)
    parts = [f"<figure>{_img(hist, dest, pngs)}<figcaption>histogram of the mining scores</figcaption></figure>"]
    files = _image_files(in_dir)
    for which, rows in (("top", ranked[:count]), ("bottom", ranked[-count:][::-1])):
        grid = _thumbnails([(files.get(os.path.basename(n)), f"{s:.3g}") for n, s in rows], notes)
        if grid is None:
            continue
        path = dest / f"{prefix}mining-{which}.png"
        grid.save(path, "PNG")
        parts.append(
            f"<figure>{_img(path, dest, pngs)}<figcaption>the {which} {len(rows)} of the ranking, "
            "with their scores</figcaption></figure>"
        )
    return parts


def _thumbnails(items: Sequence[tuple[Path | None, str]], notes: list[str], side: int = 128) -> Any:
    from PIL import Image, ImageDraw

    thumbs = []
    for path, label in items:
        if path is None:
            continue
        try:
            image = load_image(path)
        except (OSError, ValueError) as e:
            notes.append(f"cannot draw {path}: {e}")
            continue
        image.thumbnail((side, side))
        thumbs.append((image, label))
    if not thumbs:
        return None
    grid = Image.new("RGB", (len(thumbs) * (side + 4), side + 20), (255, 255, 255))
    canvas = ImageDraw.Draw(grid)
    for i, (image, label) in enumerate(thumbs):
        grid.paste(image, (i * (side + 4), 0))
        canvas.text((i * (side + 4) + 2, side + 4), label, fill=(0, 0, 0))
    return grid


def _class_names(in_dir: Path) -> list[str]:
    cfg = in_dir / "config.yaml"
    try:
        names = (yaml.safe_load(cfg.read_text()) or {}).get("class_names") if cfg.is_file() else None
    except (OSError, yaml.YAMLError):
        names = None
    return [str(n) for n in names] if isinstance(names, list) else []


def _originals(task_dir: Path) -> dict[str, str]:
    """asset name -> the user's file, from ``names.tsv`` of a ``live-code local`` task dir."""
    path = task_dir / "names.tsv"
    if not path.is_file():
        return {}
    pairs = (line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def _ground_truth(task_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """asset name -> boxes, from ``ground-truth.json`` of a ``live-code local`` task dir."""
    path = task_dir / "ground-truth.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _predictions(
    infer: Path,
    in_dir: Path,
    dest: Path,
    prefix: str,
    count: int,
    pngs: list[Path],
    notes: list[str],
    *,
    draw: bool,
    originals: dict[str, str] | None = None,
    truth: dict[str, list[dict[str, Any]]] | None = None,
) -> str:
    detection = (json.loads(infer.read_text()) or {}).get("detection") or {}
    files = _image_files(in_dir)
    names = sorted(detection, key=lambda n: (not _boxes(detection[n]), n))[:count]
    classes = _class_names(in_dir) or sorted({b.get("class_name", "") for n in detection for b in _boxes(detection[n])})
    parts = ["<h3>predictions (infer-result.json)</h3>"]
    for name in names:
        shown = (originals or {}).get(os.path.basename(name))
        title = html.escape(name) + (f" ({html.escape(shown)})" if shown else "")
        rows = [
            (
                box.get("class_name", ""),
                f"{float(box.get('score', 0)):.3f}",
                ", ".join(str((box.get("box") or {}).get(k)) for k in ("x", "y", "w", "h")),
            )
            for box in _boxes(detection[name])
        ]
        table = _table(rows, ("class", "score", "x, y, w, h"))
        path = files.get(os.path.basename(name))
        if path is None:
            notes.append(f"{name}: image not found under {in_dir}")
            parts.append(f"<p>{html.escape(name)}: image not found under {html.escape(str(in_dir))}</p>{table}")
            continue
        if not draw:
            parts.append(f"<p>{title}: {len(rows)} boxes</p>{table}")
            continue
        target = dest / f"{prefix}pred-{_safe(Path(name).stem)[:16]}.png"
        try:
            draw_boxes(path, _boxes(detection[name]), classes, target)
        except (OSError, ValueError) as e:  # Pillow: not an image it reads, or a damaged one
            notes.append(f"{name}: cannot draw {path}: {e}")
            parts.append(
                f"<p>{html.escape(name)}: cannot draw {html.escape(str(path))}: {html.escape(str(e))}</p>{table}"
            )
            continue
        figure = (
            f"<figure>{_img(target, dest, pngs)}<figcaption>{title}: {len(rows)} boxes predicted</figcaption></figure>"
        )
        gt = (truth or {}).get(os.path.basename(name))
        if gt:  # beside it: what should have been found
            gt_target = dest / f"{prefix}truth-{_safe(Path(name).stem)[:16]}.png"
            draw_boxes(path, gt, classes, gt_target, scores=False)
            figure += (
                f"<figure>{_img(gt_target, dest, pngs)}<figcaption>ground truth: {len(gt)} boxes</figcaption></figure>"
            )
        parts.append(f'<div class="pair">{figure}</div>{table}')
    return "\n".join(parts)


def load_image(path: Path) -> Any:
    """The image as a viewer shows it: EXIF orientation applied, 8-bit RGB (16-bit and palette
    images converted)."""
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
        return image.convert("RGB")


def draw_boxes(
    path: Path, boxes: Sequence[dict[str, Any]], class_names: Sequence[str], target: Path, *, scores: bool = True
) -> Path:
    """Draw ``boxes`` (infer-result.json's) over the image at ``path``, each in its class's colour
    with its class name and score (``scores=False``: the name only, for ground truth), into the
    PNG ``target`` (small images enlarged)."""
    from PIL import Image, ImageDraw, ImageFont

    image = load_image(path)
    factor = max(1, -(-MIN_SIDE // max(image.width, image.height)))
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    canvas = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    width = max(1, factor)
    for box in boxes:
        b, cls = box.get("box") or {}, str(box.get("class_name", ""))
        colour = colour_of(cls, class_names)
        x, y, w, h = (int(b.get(k, 0)) * factor for k in ("x", "y", "w", "h"))
        canvas.rectangle((x, y, x + w - 1, y + h - 1), outline=colour, width=width)
        label = f"{cls} {float(box.get('score', 0)):.2f}" if scores else cls
        left, top, right, bottom = canvas.textbbox((0, 0), label, font=font)
        lw, lh = right - left + 4, bottom - top + 4
        lx = max(0, min(x, image.width - lw))
        ly = y - lh if y >= lh else y + width  # above the box, or inside it below the top edge
        canvas.rectangle((lx, ly, lx + lw, ly + lh), fill=colour)
        canvas.text((lx + 2 - left, ly + 2 - top), label, fill=(255, 255, 255), font=font)
    image.save(target, "PNG")
    return target


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    return pyplot


def _line_chart(points: Sequence[tuple[int, float]], title: str, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.plot([s for s, _ in points], [v for _, v in points], marker="." if len(points) < 50 else None)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _bar_chart(items: Sequence[tuple[str, float]], title: str, path: Path, marked: str | None = None) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 0.4 * len(items) + 1), dpi=100)
    colours = ["tab:orange" if k == marked else "tab:blue" for k, _ in items]
    ax.barh([k for k, _ in items], [v for _, v in items], color=colours)
    ax.invert_yaxis()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


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
                path = str(in_dir / path[len(contract.IN_DIR) + 1 :])
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
img{{border:1px solid #ddd;max-width:100%}} .broken{{color:#b00;font-weight:bold}}
.pair{{display:flex;flex-wrap:wrap;gap:.5em}}</style>
<script>
// a picture that did not load says so on the page (and is marked for tests: data-loaded)
window.addEventListener("load", function () {{
  var images = document.images, broken = 0;
  for (var i = 0; i < images.length; i++) {{
    var ok = images[i].complete && images[i].naturalWidth > 0;
    images[i].setAttribute("data-loaded", ok ? "yes" : "no");
    if (!ok) {{
      broken++;
      var note = document.createElement("p");
      note.className = "broken";
      note.textContent = "picture missing: " + images[i].getAttribute("src");
      images[i].parentNode.insertBefore(note, images[i].nextSibling);
    }}
  }}
  document.body.setAttribute("data-images", images.length + " loaded " + (images.length - broken));
}});
</script></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""

__all__: Sequence[str] = (
    "INSTALL_EXTRA",
    "ReportResult",
    "colour_of",
    "draw_boxes",
    "load_image",
    "missing_libraries",
    "read_scalars",
    "write_report",
)
