"""Mining: result.tsv."""

from __future__ import annotations

import math
import os
from collections.abc import Collection

from live_code.run.outputs._rules import Problem, _basename, _not_a_file, _Report


def validate_mining_result(path: str | os.PathLike[str], candidates: Collection[str] | None) -> list[Problem]:
    """Check ``result.tsv``: ``path<TAB>score`` lines, finite scores sorted high to low, each
    candidate once and nothing else (``candidates`` None skips the candidate checks). Lines are
    matched to candidates by asset id (basename without extension), as YMIR does."""
    file = os.fspath(path)
    report = _Report(file)
    if _not_a_file(file, report):
        return report.done()
    try:
        with open(file, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        report.add("output-missing", "", "missing: a mining task must write it")
        return report.done()
    except OSError as e:
        report.add("output-unreadable", "", f"cannot read: {e.strerror}")
        return report.done()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        report.add("output-not-utf8", "", f"not UTF-8 text: {e}")
        return report.done()
    wanted = set(candidates) if candidates is not None else None
    by_id: dict[str, str] | None = None  # candidates by asset id, made at the first path not in wanted
    first_line: dict[str, int] = {}  # asset id -> line
    previous: tuple[int, float] | None = None
    unsorted_seen = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        place = f"line {number}"
        image, tab, rest = line.partition("\t")
        score, score_text = math.nan, ""
        if not tab:
            parts = line.rsplit(None, 1)
            if len(parts) == 2 and _parses_as_float(parts[1]):
                report.add(
                    "tsv-space", place, "path and score are separated by a space, not a TAB: YMIR then selects nothing"
                )
                continue
            image = line.strip()  # YMIR strips the line and reads it as a path
        else:
            score_text = rest.split("\t", 1)[0].strip()
            try:
                score = float(score_text)
            except ValueError:
                report.add("tsv-score", place, f"score {score_text!r} is not a number")
            else:
                if not math.isfinite(score):
                    report.add("tsv-score", place, f"score must be finite, got {score_text!r}")
        asset = _asset_id(image)
        candidate = True
        if wanted is not None and image not in wanted:
            if by_id is None:
                by_id = {_asset_id(c): c for c in wanted}
            candidate = asset in by_id
            if not candidate:
                cut = "" if tab else " (no TAB and score after it: truncated line?)"
                report.add(
                    "tsv-not-candidate",
                    place,
                    f"{image!r} is not a candidate image{cut}: YMIR drops it, shrinking the selection",
                )
            else:
                report.add(
                    "tsv-path-differs",
                    place,
                    f"{image!r} is not the candidate's path {by_id[asset]!r}: "
                    "YMIR matches it by asset id; write the path as given",
                )
        if not tab and candidate:
            report.add("tsv-no-score", place, f"no TAB and score after the path (truncated line?): {line!r}")
        if asset in first_line:
            report.add("tsv-duplicate", place, f"{image!r} is listed again (first at line {first_line[asset]})")
        else:
            first_line[asset] = number
        if math.isfinite(score):
            if previous is not None and score > previous[1] and not unsorted_seen:
                unsorted_seen = True
                report.add(
                    "tsv-unsorted",
                    place,
                    f"scores are not sorted high to low: {score_text} after "
                    f"{previous[1]!r} at line {previous[0]} (YMIR keeps the first "
                    "topk lines as written)",
                )
            previous = (number, score)
    if not first_line and not report.problems:
        report.add("tsv-empty", "", "no lines: every candidate needs a score")
    if wanted is not None:
        missing = [c for c in candidates or () if _asset_id(c) not in first_line]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:3]) + (", ..." if len(missing) > 3 else "")
            report.add(
                "tsv-candidates-missing", "", f"{len(missing)} of {len(wanted)} candidates have no line: {shown}"
            )
    return report.done()


def _asset_id(path: str) -> str:
    """What YMIR's mining keys a line by: the basename without its extension."""
    return os.path.splitext(_basename(path))[0]


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
