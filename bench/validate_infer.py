"""How long validating a large infer-result.json takes, against plain ``json.load`` of the same file.

    .venv/bin/python bench/validate_infer.py [--images 100000] [--boxes 3] [--repeat 5] [--profile]
    OTHER_PYTHON bench/validate_infer.py --parse-only FILE [--repeat 5]   # orjson.loads, if importable
    .venv/bin/python bench/validate_infer.py --large 1000000   # one validation and one json.load, peak RSS

Prints the median of ``--repeat`` runs of each and their ratio. The validator decodes a clean
file with msgspec into typed structs (``outputs/_infer_fast.py``); a file with a problem gets the
full check (json with hooks, then a walk over every box). ``--parse-only`` in a venv with orjson
times orjson's parse and the Python walk over the boxes that an orjson-based validator needs.
``--profile`` adds a cProfile of one validation. ``bench/run`` calls :func:`measure`, :func:`measure_large`
and :func:`profile`.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

CLASSES = ["person", "car", "dog", "cat", "bicycle"]


def candidate_paths(images: int) -> list[str]:
    return [f"/in/assets/{i % 256:02x}/{i:040x}.jpg" for i in range(images)]


def make_file(path: str, images: int, boxes: int) -> list[str]:
    """Write a valid protocol 1.1.0 infer-result.json, one image at a time (a million images fit in
    little memory); returns the candidate paths."""
    rng = random.Random(0)
    candidates = candidate_paths(images)
    with open(path, "w") as f:
        f.write('{"detection": {')
        for n, c in enumerate(candidates):
            listed = ", ".join(
                f'{{"box": {{"x": {rng.randrange(600)}, "y": {rng.randrange(400)}, "w": {rng.randrange(1, 200)}, '
                f'"h": {rng.randrange(1, 200)}}}, "class_name": "{rng.choice(CLASSES)}", "score": {rng.random()!r}}}'
                for _ in range(boxes)
            )
            f.write(f'{", " if n else ""}"{os.path.basename(c)}": {{"boxes": [{listed}]}}')
        f.write("}}")
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
    """Seconds of ``json.load`` (as is, and with the garbage collector paused), of
    ``validate_infer_result`` (which pauses it) and of msgspec's untyped parse on ``path``,
    round-robin."""

    def baseline() -> object:
        with open(path, "rb") as f:
            return json.load(f)

    def msgspec_decode() -> object:
        import msgspec

        with open(path, "rb") as f:
            return msgspec.json.decode(f.read())

    validate = _validator(path, candidates)
    cases = {
        "json_load": baseline,
        "json_load_nogc": without_gc(baseline),
        "validate": validate,
        "msgspec_decode_nogc": without_gc(msgspec_decode),
    }
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


def walk_boxes(data: dict[str, Any], names: frozenset[str]) -> int:
    """The least a validator must do after a parser that checks no type: look at every box (the
    tests of ``outputs.infer._InferCheck.boxes``'s fast path). Returns the boxes that pass."""
    keys, big, good = frozenset("xywh"), sys.float_info.max, 0
    for image in data["detection"].values():
        for item in image["boxes"]:
            box, score = item.get("box"), item.get("score")
            if type(box) is not dict or box.keys() != keys:
                continue
            x, y, w, h = box["x"], box["y"], box["w"], box["h"]
            ints = type(x) is int and type(y) is int and type(w) is int and type(h) is int
            if ints and x >= 0 and y >= 0 and w > 0 and h > 0 and type(score) in (float, int):
                good += -big <= score <= big and item.get("class_name") in names
    return good


def _parse_only(path: str, repeat: int) -> int:
    """Time ``orjson.loads`` (else json.loads) of the bytes, alone and with the walk over every box
    that a validator on it would need; prints one JSON line."""
    try:
        import orjson  # type: ignore[import-not-found]  # optional: json.loads without it

        name, loads = "orjson.loads", orjson.loads
    except ImportError:
        name, loads = "json.loads", json.loads

    def parse() -> object:
        with open(path, "rb") as f:
            return loads(f.read())

    names = frozenset(CLASSES)
    times: dict[str, list[float]] = {"seconds": [], "seconds_nogc": [], "seconds_walk_nogc": []}
    for _ in range(repeat):
        times["seconds"] += median_seconds(parse, 1)[1]
        times["seconds_nogc"] += median_seconds(without_gc(parse), 1)[1]
        times["seconds_walk_nogc"] += median_seconds(without_gc(lambda: walk_boxes(parse(), names)), 1)[1]  # type: ignore[arg-type]  # parse() gives the top-level dict
    print(json.dumps({"parser": name, **times}))
    return 0


def _peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _one_large(path: str, images: int, how: str) -> int:
    """In a process of its own: validate (or json.load) ``path`` once; prints seconds and peak RSS."""
    candidates = candidate_paths(images) if how == "validate" else []
    before = _peak_rss_bytes()
    if how == "validate":
        fn = _validator(path, candidates)
    else:

        def fn() -> object:
            with open(path, "rb") as f:
                return json.load(f)

    seconds = median_seconds(fn, 1)[0]
    print(json.dumps({"seconds": seconds, "peak_rss": _peak_rss_bytes(), "rss_before": before}))
    return 0


def measure_large(path: str, images: int, python: str = sys.executable) -> dict[str, float]:
    """A file of ``images`` images (default a million), validated and json.load-ed once each, each in
    a new process so that its peak RSS is its own."""
    make_file(path, images, 3)
    got: dict[str, float] = {"bytes": os.path.getsize(path)}
    for how in ("validate", "json_load"):
        out = subprocess.run(
            [python, os.path.abspath(__file__), "--one-large", how, path, "--images", str(images)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        got[f"{how}_seconds"], got[f"{how}_peak_rss"] = result["seconds"], result["peak_rss"]
    return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=3, help="boxes per image")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one validation")
    parser.add_argument("--parse-only", metavar="FILE", help="only time parsing FILE (orjson if importable)")
    parser.add_argument("--large", type=int, metavar="IMAGES", help="only the large case: time and peak RSS")
    parser.add_argument("--one-large", nargs=2, metavar=("HOW", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.parse_only:
        return _parse_only(args.parse_only, args.repeat)
    if args.one_large:
        return _one_large(args.one_large[1], args.images, args.one_large[0])
    if args.large:
        with tempfile.TemporaryDirectory() as tmp:
            large = measure_large(os.path.join(tmp, "infer-result.json"), args.large)
        print(f"file: {args.large} images x 3 boxes, {large['bytes'] / 1e6:.0f} MB")
        for how in ("validate", "json_load"):
            print(f"{how}: {large[how + '_seconds']:.2f} s, peak RSS {large[how + '_peak_rss'] / 2**20:.0f} MiB")
        return 0
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
    print(f"msgspec.json.decode:    {statistics.median(result['msgspec_decode_nogc']):.3f} s, untyped, gc paused")  # type: ignore[arg-type]  # a list of seconds
    print(f"ratio validate / json.load: {checked / base:.2f}")
    if prof:
        print(f"\ncProfile of one validation (by own time):\n{prof}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
