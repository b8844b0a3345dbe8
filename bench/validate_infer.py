"""How long validating a large infer-result.json takes, against plain ``json.load`` of the same file.

    .venv/bin/python bench/validate_infer.py [--images 100000] [--boxes 3] [--repeat 5] [--profile]
    OTHER_PYTHON bench/validate_infer.py --parse-only FILE [--repeat 5]   # orjson.loads, if importable

Prints the median of ``--repeat`` runs of each and their ratio. The validator parses with hooks
(duplicate keys, NaN) and walks every box, so a ratio near 1 means the walk costs little next to
parsing itself. ``--profile`` adds a cProfile of one validation (the functions taking the most
time). ``bench/run`` calls :func:`measure` and :func:`profile`.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

CLASSES = ["person", "car", "dog", "cat", "bicycle"]


def make_file(path: str, images: int, boxes: int) -> list[str]:
    """Write a valid protocol 1.1.0 infer-result.json; returns the candidate paths."""
    rng = random.Random(0)
    candidates = [f"/in/assets/{i % 256:02x}/{i:040x}.jpg" for i in range(images)]
    detection = {
        os.path.basename(c): {
            "boxes": [
                {
                    "box": {
                        "x": rng.randrange(600),
                        "y": rng.randrange(400),
                        "w": rng.randrange(1, 200),
                        "h": rng.randrange(1, 200),
                    },
                    "class_name": rng.choice(CLASSES),
                    "score": rng.random(),
                }
                for _ in range(boxes)
            ]
        }
        for c in candidates
    }
    with open(path, "w") as f:
        json.dump({"detection": detection}, f)
    return candidates


def median_seconds(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _validator(path: str, candidates: list[str]) -> Callable[[], object]:
    from live_code.run import outputs

    def validate() -> object:
        problems = outputs.validate_infer_result(path, "1.1.0", CLASSES, candidates)
        assert not problems, problems[:3]
        return problems

    return validate


def without_gc(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with the cyclic garbage collector paused, as ``validate_infer_result`` does itself:
    parsing creates millions of containers and each allocation burst triggers collections that
    walk them all again."""

    def wrapped() -> object:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn()
        finally:
            if enabled:
                gc.enable()

    return wrapped


def measure(path: str, candidates: list[str], repeat: int) -> dict[str, list[float] | int]:
    """Seconds of ``json.load`` (as is, and with the garbage collector paused) and of
    ``validate_infer_result`` (which pauses it) on ``path``, round-robin."""

    def baseline() -> object:
        with open(path, "rb") as f:
            return json.load(f)

    validate = _validator(path, candidates)
    cases = {"json_load": baseline, "json_load_nogc": without_gc(baseline), "validate": validate}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):  # round-robin: drift hits every case
        for name, fn in cases.items():
            times[name] += median_seconds(fn, 1)[1]
    return {"bytes": os.path.getsize(path), "images": len(candidates), **times}


def profile(path: str, candidates: list[str], top: int = 12) -> str:
    """cProfile of one validation: the ``top`` functions by own time."""
    validate = _validator(path, candidates)
    prof = cProfile.Profile()
    prof.runcall(validate)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().startswith("ncalls")), 0)
    total = next((ln.strip() for ln in lines if "function calls" in ln), "")
    return "\n".join([total, *lines[start:]]).rstrip()


def _parse_only(path: str, repeat: int) -> int:
    """Time ``orjson.loads`` (else json.loads) of the bytes; prints one JSON line."""
    try:
        import orjson  # type: ignore[import-not-found]  # optional: json.loads without it

        name, loads = "orjson.loads", orjson.loads
    except ImportError:
        name, loads = "json.loads", json.loads

    def parse() -> object:
        with open(path, "rb") as f:
            return loads(f.read())

    times: dict[str, list[float]] = {"seconds": [], "seconds_nogc": []}
    for _ in range(repeat):
        times["seconds"] += median_seconds(parse, 1)[1]
        times["seconds_nogc"] += median_seconds(without_gc(parse), 1)[1]
    print(json.dumps({"parser": name, **times}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=3, help="boxes per image")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one validation")
    parser.add_argument("--parse-only", metavar="FILE", help="only time parsing FILE (orjson if importable)")
    args = parser.parse_args()
    if args.parse_only:
        return _parse_only(args.parse_only, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "infer-result.json")
        candidates = make_file(path, args.images, args.boxes)
        result = measure(path, candidates, args.repeat)
        prof = profile(path, candidates) if args.profile else ""
    base, checked = statistics.median(result["json_load"]), statistics.median(result["validate"])  # type: ignore[arg-type]  # lists of seconds in a dict of object
    nogc = statistics.median(result["json_load_nogc"])  # type: ignore[arg-type]  # a list of seconds
    print(f"file: {args.images} images x {args.boxes} boxes, {result['bytes'] / 1e6:.1f} MB")  # type: ignore[operator]  # bytes is an int
    print(f"json.load (baseline):   {base:.3f} s (median of {args.repeat})")
    print(f"  with gc paused:       {nogc:.3f} s (median of {args.repeat})")
    print(f"validate_infer_result:  {checked:.3f} s (median of {args.repeat})")
    print(f"ratio validate / json.load: {checked / base:.2f}")
    if prof:
        print(f"\ncProfile of one validation (by own time):\n{prof}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
