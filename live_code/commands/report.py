"""``live-code report OUT...``: what a run produced, as pictures and one HTML page.

For each out dir: the predictions of ``infer-result.json`` drawn over the original images (found
through the task's ``in`` dir, by default the ``in`` next to OUT); the training curves of its
TensorBoard event files (a corrupt file is named in the notes; the records before the damage are
drawn); the phase timings of its provenance record, the best stage of ``result.yaml`` and the top
of ``result.tsv``. The page links its pictures, which lie beside it, by relative paths.

The pictures (:mod:`live_code.commands.report_pictures`) need the report extra
(``pip install "live-code[report]"``: Pillow, matplotlib, tensorboard), which the harness's run path
never imports. Without it the page holds the text parts and says which command installs the extra.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from live_code import contract, util
from live_code.commands import report_pictures as pictures
from live_code.commands.report_pictures import (
    INSTALL_EXTRA,
    MIN_SIDE,
    PALETTE,
    colour_of,
    draw_boxes,
    load_image,
    missing_libraries,
    read_scalars,
)
from live_code.errors import ConfigError
from live_code.record import record


@record
class ReportResult:
    html: Path
    pngs: tuple[Path, ...]
    notes: tuple[str, ...]


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
        path = dest / f"compare-curve-{_safe(tag)}.png"
        runs = [(f"run {i}", sorted(runs[tag])) for i, runs in enumerate(curves, 1) if tag in runs]
        pictures.curves_chart(runs, tag, path)
        parts.append(_figure(path, dest, pngs, f"{html.escape(tag)} of every run"))
    return "<section>" + "\n".join(parts) + "</section>"


def _figure(path: Path, dest: Path, pngs: list[Path], caption: str) -> str:
    """A picture (linked by its path relative to ``dest``, and listed in ``pngs``) with its caption (HTML)."""
    pngs.append(path)
    img = f'<img src="{html.escape(os.path.relpath(path, dest))}" alt="{html.escape(path.stem)}">'
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"


@record(frozen=False)
class _Section:
    """What the parts of one run's section share: where the pictures go and what was written."""

    out: Path
    in_dir: Path
    dest: Path
    prefix: str
    pngs: list[Path]
    notes: list[str]
    draw: bool

    def picture(self, name: str) -> Path:
        return self.dest / f"{self.prefix}{name}.png"

    def figure(self, path: Path, caption: str) -> str:
        return _figure(path, self.dest, self.pngs, caption)


def _section(
    out: Path, in_dir: Path, dest: Path, prefix: str, images: int, pngs: list[Path], notes: list[str], *, draw: bool
) -> str:
    sec = _Section(out, in_dir, dest, prefix, pngs, notes, draw)
    parts = [f"<h2>{html.escape(str(out))}</h2>"]
    prov_path = out / contract.PROVENANCE_NAME
    prov = yaml.safe_load(prov_path.read_text()) if prov_path.is_file() else {}
    if prov:
        parts.append(_table(_provenance_rows(prov)))
    parts += _result_part(sec)
    if draw and (out / "tensorboard").is_dir():
        for tag, points in sorted(read_scalars(out / "tensorboard", notes).items()):
            points = sorted(points)
            path = sec.picture(f"curve-{_safe(tag)}")
            pictures.curves_chart([("", points)], tag, path)
            caption = (
                f"{html.escape(tag)}: {points[0][1]:.4g} at step {points[0][0]}, "
                f"{points[-1][1]:.4g} at step {points[-1][0]}"
            )
            parts.append(sec.figure(path, caption))
    parts += _timings_part(sec, prov.get("timings") or {})
    parts += _mining_part(sec)
    parts += _predictions_part(sec, images)
    return "<section>" + "\n".join(parts) + "</section>"


def _provenance_rows(prov: dict[str, Any]) -> list[tuple[str, Any]]:
    src, env = prov.get("source") or {}, prov.get("environment") or {}
    return [
        ("task", "+".join((prov.get("task") or {}).get("kinds") or [])),
        ("source", src.get("url")),
        ("commit", src.get("commit")),
        ("pin", src.get("pin")),
        ("environment", env.get("key")),
        ("sandbox", (prov.get("sandbox") or {}).get("mode")),
        ("outcome", (prov.get("outcome") or {}).get("ok")),
    ]


def _result_part(sec: _Section) -> list[str]:
    """result.yaml: the best stage, and its charts."""
    result = sec.out / "models" / "result.yaml"
    if not result.is_file():
        return []
    data = yaml.safe_load(result.read_text()) or {}
    best = data.get("best_stage_name")
    stage = (data.get("model_stages") or {}).get(best) or {}
    rows = [
        ("best stage", best),
        ("mAP", stage.get("mAP", data.get("map"))),
        ("files", ", ".join(stage.get("files") or data.get("model") or [])),
    ]
    charts = pictures.result_charts(data, sec.picture) if sec.draw else []
    return [_table(rows), *(sec.figure(path, html.escape(caption)) for path, caption in charts)]


def _timings_part(sec: _Section, timings: dict[str, Any]) -> list[str]:
    if not timings:
        return []
    if not sec.draw:
        return ["<h3>seconds per phase</h3>" + _table([(k, v) for k, v in timings.items()])]
    path = sec.picture("timings")
    pictures.bar_chart([(str(k), float(v)) for k, v in timings.items()], "seconds per phase", path)
    return [sec.figure(path, "seconds per phase (provenance timings)")]


def _mining_part(sec: _Section) -> list[str]:
    mining = sec.out / "result.tsv"
    if not mining.is_file():
        return []
    ranked = _ranking(mining)
    top = ranked[:5]
    parts = ["<h3>mining: the top of result.tsv</h3>" + _table([(os.path.basename(p), s) for p, s in top])]
    if sec.draw and ranked:
        charts = pictures.mining_charts(ranked, _image_files(sec.in_dir), sec.picture, sec.notes)
        parts += [sec.figure(path, html.escape(caption)) for path, caption in charts]
    return parts


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


def _predictions_part(sec: _Section, count: int) -> list[str]:
    """The first ``count`` images of infer-result.json with their boxes drawn (those with boxes
    first), each beside its ground truth where the task dir has it."""
    infer = sec.out / "infer-result.json"
    if not infer.is_file():
        return []
    detection = (json.loads(infer.read_text()) or {}).get("detection") or {}
    originals, truth = _originals(sec.out.parent), _ground_truth(sec.out.parent)
    files = _image_files(sec.in_dir)
    names = sorted(detection, key=lambda n: (not _boxes(detection[n]), n))[:count]
    classes = _class_names(sec.in_dir) or sorted(
        {b.get("class_name", "") for n in detection for b in _boxes(detection[n])}
    )
    parts = ["<h3>predictions (infer-result.json)</h3>"]
    for name in names:
        key = os.path.basename(name)
        boxes = _boxes(detection[name])
        parts.append(_prediction(sec, name, boxes, files.get(key), classes, originals.get(key), truth.get(key)))
    return ["\n".join(parts)]


def _prediction(
    sec: _Section,
    name: str,
    boxes: list[dict[str, Any]],
    path: Path | None,
    classes: Sequence[str],
    shown: str | None,
    truth: list[dict[str, Any]] | None,
) -> str:
    title = html.escape(name) + (f" ({html.escape(shown)})" if shown else "")
    rows = [
        (
            box.get("class_name", ""),
            f"{float(box.get('score', 0)):.3f}",
            ", ".join(str((box.get("box") or {}).get(k)) for k in ("x", "y", "w", "h")),
        )
        for box in boxes
    ]
    table = _table(rows, ("class", "score", "x, y, w, h"))
    if path is None:
        sec.notes.append(f"{name}: image not found under {sec.in_dir}")
        return f"<p>{html.escape(name)}: image not found under {html.escape(str(sec.in_dir))}</p>{table}"
    if not sec.draw:
        return f"<p>{title}: {len(rows)} boxes</p>{table}"
    stem = _safe(Path(name).stem)[:16]
    target = sec.picture(f"pred-{stem}")
    try:
        draw_boxes(path, boxes, classes, target)
    except (OSError, ValueError) as e:  # Pillow: not an image it reads, or a damaged one
        sec.notes.append(f"{name}: cannot draw {path}: {e}")
        return f"<p>{html.escape(name)}: cannot draw {html.escape(str(path))}: {html.escape(str(e))}</p>{table}"
    figure = sec.figure(target, f"{title}: {len(rows)} boxes predicted")
    if truth:  # beside it: what should have been found
        truth_target = sec.picture(f"truth-{stem}")
        draw_boxes(path, truth, classes, truth_target, scores=False)
        figure += sec.figure(truth_target, f"ground truth: {len(truth)} boxes")
    return f'<div class="pair">{figure}</div>{table}'


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
    "MIN_SIDE",
    "PALETTE",
    "ReportResult",
    "colour_of",
    "draw_boxes",
    "load_image",
    "missing_libraries",
    "read_scalars",
    "write_report",
)
