"""The pictures of ``live-code report``: everything that needs the report extra (Pillow, matplotlib,
tensorboard), which the harness's run path never imports; :mod:`live_code.commands.report` writes
the page around them.

Boxes are drawn over the original images in every format Pillow reads, EXIF orientation applied,
one colour per class that stays the same across pictures; training curves come from TensorBoard
event files, their TFRecord framing read (and every record's CRC checked) by
:mod:`live_code.sdk.formats`, each record decoded by tensorboard's ``Event`` protobuf; charts are
matplotlib's, written as PNG files.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from live_code.sdk import formats

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
Points = Sequence[tuple[int, float]]
#: the path of a picture of the report by its name (``curve-loss``: ``DEST/PREFIXcurve-loss.png``)
Namer = Callable[[str], Path]


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
    """tag -> [(step, value)] of one event file or every ``*tfevents*`` file under a dir, every
    record's CRC checked. A damaged file gives its records before the damage, and a line in
    ``notes`` naming it."""
    files = sorted(p for p in path.rglob("*tfevents*") if p.is_file()) if path.is_dir() else [path]
    out: dict[str, list[tuple[int, float]]] = {}
    for file in files:
        with open(file, "rb") as f:
            _read_event_file(file, f, out, notes)
    return out


def _read_event_file(file: Path, f: Any, out: dict[str, list[tuple[int, float]]], notes: list[str] | None) -> None:
    from tensorboard.compat.proto import event_pb2

    count = 0
    try:
        for record in formats.read_records(f):
            count += 1
            try:
                event = event_pb2.Event.FromString(record)
            except Exception as e:  # protobuf's DecodeError, or anything a broken message raises
                if notes is not None:
                    notes.append(
                        f"{file}: record {count} is not a TensorBoard event ({e}); the file is skipped from there"
                    )
                return
            for tag, number in _scalars(event):
                out.setdefault(tag, []).append((int(event.step), number))
    except formats.RecordError as e:
        if notes is not None:
            notes.append(
                f"{file}: damaged TensorBoard event file after {e.good} good records ({e}); its curves stop there"
            )


def _scalars(event: Any) -> list[tuple[str, float]]:
    from tensorboard.util import tensor_util

    found = []
    for value in event.summary.value:
        if value.HasField("simple_value"):
            found.append((value.tag, float(value.simple_value)))
        elif value.HasField("tensor"):
            array = tensor_util.make_ndarray(value.tensor)
            if array.size == 1:
                found.append((value.tag, float(array.reshape(-1)[0])))
    return found


# -- images ----------------------------------------------------------------------------------------


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


def thumbnails(items: Sequence[tuple[Path | None, str]], notes: list[str], side: int = 128) -> Any:
    """One picture of the images of ``items`` side by side, each with its label below; None when
    none could be drawn (those that cannot are named in ``notes``)."""
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


# -- charts ----------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    return pyplot


def curves_chart(curves: Sequence[tuple[str, Points]], title: str, path: Path) -> None:
    """One line per ``(label, points)`` (label '' for a single unlabelled curve) over the step."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    for label, points in curves:
        marker = "." if not label and len(points) < 50 else None
        ax.plot([s for s, _ in points], [v for _, v in points], marker=marker, **({"label": label} if label else {}))
    ax.set_title(title)
    ax.set_xlabel("step")
    if any(label for label, _ in curves):
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def bar_chart(items: Sequence[tuple[str, float]], title: str, path: Path, marked: str | None = None) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 0.4 * len(items) + 1), dpi=100)
    colours = ["tab:orange" if k == marked else "tab:blue" for k, _ in items]
    ax.barh([k for k, _ in items], [v for _, v in items], color=colours)
    ax.invert_yaxis()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def histogram(values: Sequence[float], title: str, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.hist(values, bins=min(30, max(5, len(values) // 2)))
    ax.set_title(title)
    ax.set_xlabel("score")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def result_charts(data: dict[str, Any], picture: Namer) -> list[tuple[Path, str]]:
    """(picture, caption) of result.yaml's ``data``: the stages' mAP (the best one marked) and,
    where it has them, the per-class APs of the best stage."""
    charts = []
    stages = data.get("model_stages") or {}
    best = data.get("best_stage_name")
    points = [(str(n), float(st.get("mAP") or 0.0)) for n, st in stages.items() if isinstance(st, dict)]
    if points:
        path = picture("stages-mAP")
        bar_chart(points, f"mAP per stage (best: {best})", path, marked=str(best))
        charts.append((path, f"mAP per stage, the best ({best}) marked"))
    aps = ((stages.get(best) or {}).get("class_aps") if isinstance(stages.get(best), dict) else None) or data.get(
        "class_aps"
    )
    if isinstance(aps, dict) and aps:
        path = picture("class-AP")
        bar_chart([(str(k), float(v or 0.0)) for k, v in aps.items()], f"AP per class (stage {best})", path)
        charts.append((path, "AP per class of the best stage"))
    return charts


def mining_charts(
    ranked: list[tuple[str, float]], files: dict[str, Path], picture: Namer, notes: list[str], count: int = 8
) -> list[tuple[Path, str]]:
    """(picture, caption) of a mining ranking: the score histogram, and the top and bottom of the
    ranking as thumbnails (images found in ``files`` by basename) with their scores."""
    hist = picture("mining-scores")
    histogram([s for _, s in ranked], f"mining scores of {len(ranked)} images", hist)
    charts = [(hist, "histogram of the mining scores")]
    for which, rows in (("top", ranked[:count]), ("bottom", ranked[-count:][::-1])):
        grid = thumbnails([(files.get(os.path.basename(n)), f"{s:.3g}") for n, s in rows], notes)
        if grid is None:
            continue
        path = picture(f"mining-{which}")
        grid.save(path, "PNG")
        charts.append((path, f"the {which} {len(rows)} of the ranking, with their scores"))
    return charts
