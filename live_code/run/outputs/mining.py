"""Mining: result.tsv."""

from __future__ import annotations

import math
import os
from collections.abc import Collection

from live_code.run.outputs._rules import Problem, _basename, _read_text, _Report


def validate_mining_result(path: str | os.PathLike[str], candidates: Collection[str] | None) -> list[Problem]:
    """Check ``result.tsv``: ``path<TAB>score`` lines, finite scores sorted high to low, each
    candidate once and nothing else (``candidates`` None skips the candidate checks). Lines are
    matched to candidates by asset id (basename without extension), as YMIR does."""
    file = os.fspath(path)
    report = _Report(file)
    text = _read_text(file, report, "a mining")
    if text is None:
        return report.done()
    check = _MiningCheck(report, candidates)
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            check.line(number, line)
    check.finish()
    return report.done()


class _MiningCheck:
    """The lines of one result.tsv, checked one by one, then the candidates none of them named."""

    def __init__(self, report: _Report, candidates: Collection[str] | None) -> None:
        self.report = report
        self.candidates = candidates
        self.wanted = set(candidates) if candidates is not None else None
        self.by_id: dict[str, str] | None = None  # candidates by asset id, made at the first path not in wanted
        self.first_line: dict[str, int] = {}  # asset id -> line
        self.previous: tuple[int, float] | None = None
        self.unsorted_seen = False

    def line(self, number: int, line: str) -> None:
        report, place = self.report, f"line {number}"
        image, tab, rest = line.partition("\t")
        score, score_text = math.nan, ""
        if not tab:
            parts = line.rsplit(None, 1)
            if len(parts) == 2 and _parses_as_float(parts[1]):
                report.add(
                    "tsv-space", place, "path and score are separated by a space, not a TAB: YMIR then selects nothing"
                )
                return
            image = line.strip()  # YMIR strips the line and reads it as a path
        else:
            score_text = rest.split("\t", 1)[0].strip()
            score = self.score(place, score_text)
        asset = _asset_id(image)
        candidate = self.candidate(place, image, asset, bool(tab))
        if not tab and candidate:
            report.add("tsv-no-score", place, f"no TAB and score after the path (truncated line?): {line!r}")
        if asset in self.first_line:
            report.add("tsv-duplicate", place, f"{image!r} is listed again (first at line {self.first_line[asset]})")
        else:
            self.first_line[asset] = number
        if math.isfinite(score):
            self.order(number, score, score_text)

    def score(self, place: str, score_text: str) -> float:
        try:
            score = float(score_text)
        except ValueError:
            self.report.add("tsv-score", place, f"score {score_text!r} is not a number")
            return math.nan
        if not math.isfinite(score):
            self.report.add("tsv-score", place, f"score must be finite, got {score_text!r}")
        return score

    def candidate(self, place: str, image: str, asset: str, tab: bool) -> bool:
        """Whether the line names a candidate (by path, or else by asset id, which is reported)."""
        if self.wanted is None or image in self.wanted:
            return True
        if self.by_id is None:
            self.by_id = {_asset_id(c): c for c in self.wanted}
        if asset not in self.by_id:
            cut = "" if tab else " (no TAB and score after it: truncated line?)"
            self.report.add(
                "tsv-not-candidate",
                place,
                f"{image!r} is not a candidate image{cut}: YMIR drops it, shrinking the selection",
            )
            return False
        self.report.add(
            "tsv-path-differs",
            place,
            f"{image!r} is not the candidate's path {self.by_id[asset]!r}: "
            "YMIR matches it by asset id; write the path as given",
        )
        return True

    def order(self, number: int, score: float, score_text: str) -> None:
        previous = self.previous
        if previous is not None and score > previous[1] and not self.unsorted_seen:
            self.unsorted_seen = True
            self.report.add(
                "tsv-unsorted",
                f"line {number}",
                f"scores are not sorted high to low: {score_text} after "
                f"{previous[1]!r} at line {previous[0]} (YMIR keeps the first "
                "topk lines as written)",
            )
        self.previous = (number, score)

    def finish(self) -> None:
        report = self.report
        if not self.first_line and not report.problems:
            report.add("tsv-empty", "", "no lines: every candidate needs a score")
        if self.wanted is not None:
            missing = [c for c in self.candidates or () if _asset_id(c) not in self.first_line]
            if missing:
                shown = ", ".join(repr(m) for m in missing[:3]) + (", ..." if len(missing) > 3 else "")
                report.add(
                    "tsv-candidates-missing",
                    "",
                    f"{len(missing)} of {len(self.wanted)} candidates have no line: {shown}",
                )


def _asset_id(path: str) -> str:
    """What YMIR's mining keys a line by: the basename without its extension."""
    return os.path.splitext(_basename(path))[0]


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
