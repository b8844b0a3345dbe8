"""The user's own file names in a converted task dir: ``WORK/names.tsv`` (asset name -> the file it
was copied from), ``WORK/ground-truth.json`` for the report, and the export of a run's results
under those names (``live-code local --export``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from live_code import contract, util
from live_code.commands import datasets
from live_code.commands.repo import WORK_ROOT_NAME
from live_code.errors import ConfigError, LiveCodeError

log = logging.getLogger(__name__)

#: asset name (``<sha1>.<ext>``, as YMIR names it) -> the user's file, for a converted folder or COCO json
NAMES = "names.tsv"

#: the converted dataset's boxes by asset name, for the report (mining and infer tasks carry none)
GROUND_TRUTH = "ground-truth.json"


def write_names(dataset: str, work: Path) -> dict[str, Path]:
    """``WORK/names.tsv``: each asset of a converted dataset (a folder of images, a COCO json)
    with the file it was copied from, found by content; nothing for ``sample`` or a task dir,
    whose names are YMIR's already. Returns asset name -> original file."""
    path = Path(dataset).expanduser()
    if dataset == "sample" or not path.exists() or not (work / "in" / "assets").is_dir():
        return {}
    root = path.parent if path.is_file() else path
    if (root / "in" / "env.yaml").is_file() or (root / "env.yaml").is_file():
        return {}  # a task dir: its names are YMIR's
    by_sha1: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != WORK_ROOT_NAME)
        for f in sorted(filenames):
            if Path(f).suffix.lower() in contract.IMAGE_EXTENSIONS:
                file = Path(dirpath, f)
                by_sha1.setdefault(hashlib.sha1(file.read_bytes()).hexdigest(), file.resolve())
    names = {
        a.name: by_sha1[a.stem]
        for a in sorted((work / "in" / "assets").rglob("*"))
        if a.is_file() and a.stem in by_sha1
    }
    if names:
        lines = [f"{asset}\t{original}" for asset, original in sorted(names.items())]
        util.atomic_write(work / NAMES, "# asset name\tthe original file\n" + "\n".join(lines) + "\n")
        _write_ground_truth(path, names, work)
    return names


def _write_ground_truth(dataset: Path, names: Mapping[str, Path], work: Path) -> None:
    """``WORK/ground-truth.json``: the dataset's boxes by asset name, in infer-result.json's box
    form, so ``report`` can show them beside the predictions of a mining or infer task (whose in/
    carries no annotations)."""
    try:
        coco = datasets._coco_file(dataset)
        items, _, _ = datasets._read_coco(coco) if coco else datasets._read_voc(dataset)
    except (LiveCodeError, OSError, ValueError) as e:
        log.debug("no ground truth for the report: %s", e)
        return
    by_file = {it.image.resolve(): it.boxes for it in items if it.boxes}
    doc = {
        asset: [
            {
                "class_name": b.name,
                "box": {"x": b.xmin, "y": b.ymin, "w": b.xmax - b.xmin + 1, "h": b.ymax - b.ymin + 1},
            }
            for b in by_file[original]
        ]
        for asset, original in sorted(names.items())
        if original in by_file
    }
    if doc:
        util.atomic_write(work / GROUND_TRUTH, json.dumps(doc, indent=1, ensure_ascii=False))


def read_names(work: Path) -> dict[str, Path]:
    """asset name -> original file, from ``WORK/names.tsv`` (empty when there is none)."""
    path = work / NAMES
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        asset, tab, original = line.partition("\t")
        if tab and not line.startswith("#"):
            out[asset] = Path(original)
    return out


def export_results(work: Path, dest: Path) -> list[Path]:
    """The infer and mining results of the task dir ``work`` with the user's own file names:
    ``dest/infer-result.json`` keyed by each original file's path relative to the dataset folder
    (``cat 1.jpg``, ``sub/dog.JPG``), ``dest/result.tsv`` with the same paths (an asset without an
    original keeps its name). Returns the files written."""
    originals = read_names(work)
    if not originals:
        raise ConfigError(
            f"{work} has no {NAMES}: its images had no other names",
            value=str(work),
            hint="export works on a task converted from a folder of images or a COCO json",
        )
    root = os.path.commonpath([str(p.parent) for p in originals.values()])
    names = {asset: os.path.relpath(p, root) for asset, p in originals.items()}
    out = work / "out"
    written = []
    dest.mkdir(parents=True, exist_ok=True)
    infer = out / "infer-result.json"
    if infer.is_file():
        doc = json.loads(infer.read_text(encoding="utf-8"))
        detection = doc.get("detection") if isinstance(doc, dict) else None
        if isinstance(detection, dict):
            doc["detection"] = {str(names.get(os.path.basename(k), k)): v for k, v in detection.items()}
        util.atomic_write(dest / "infer-result.json", json.dumps(doc, indent=2, ensure_ascii=False))
        written.append(dest / "infer-result.json")
    mining = out / "result.tsv"
    if mining.is_file():
        rows = []
        for line in mining.read_text(encoding="utf-8").splitlines():
            path, tab, rest = line.partition("\t")
            rows.append(f"{names.get(os.path.basename(path), path)}{tab}{rest}")
        util.atomic_write(dest / "result.tsv", "\n".join(rows) + ("\n" if rows else ""))
        written.append(dest / "result.tsv")
    if not written:
        raise ConfigError(
            f"{out} holds no infer-result.json or result.tsv to export",
            value=str(out),
            hint="export the results of a mining or infer task",
        )
    return written
