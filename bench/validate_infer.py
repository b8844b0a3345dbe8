"""How long validating a large infer-result.json takes, against plain ``json.load`` of the same file.

    .venv/bin/python bench/validate_infer.py [--images 100000] [--boxes 3] [--repeat 5]

Prints the median of ``--repeat`` runs of each and their ratio. The validator parses with hooks
(duplicate keys, NaN) and walks every box, so a ratio near 1 means the walk costs little next to
parsing itself.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from live_code import outputs  # noqa: E402

CLASSES = ["person", "car", "dog", "cat", "bicycle"]


def make_file(path: str, images: int, boxes: int) -> list[str]:
    """Write a valid protocol 1.1.0 infer-result.json; returns the candidate paths."""
    rng = random.Random(0)
    candidates = [f"/in/assets/{i % 256:02x}/{i:040x}.jpg" for i in range(images)]
    detection = {
        os.path.basename(c): {"boxes": [
            {"box": {"x": rng.randrange(600), "y": rng.randrange(400), "w": rng.randrange(1, 200),
                     "h": rng.randrange(1, 200)},
             "class_name": rng.choice(CLASSES), "score": rng.random()}
            for _ in range(boxes)
        ]}
        for c in candidates
    }
    with open(path, "w") as f:
        json.dump({"detection": detection}, f)
    return candidates


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=3, help="boxes per image")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "infer-result.json")
        candidates = make_file(path, args.images, args.boxes)
        size = os.path.getsize(path)

        def baseline() -> object:
            with open(path, "rb") as f:
                return json.load(f)

        def validate() -> object:
            problems = outputs.validate_infer_result(path, "1.1.0", CLASSES, candidates)
            assert not problems, problems[:3]
            return problems

        base = median_seconds(baseline, args.repeat)
        checked = median_seconds(validate, args.repeat)
    print(f"file: {args.images} images x {args.boxes} boxes, {size / 1e6:.1f} MB")
    print(f"json.load (baseline):   {base:.3f} s (median of {args.repeat})")
    print(f"validate_infer_result:  {checked:.3f} s (median of {args.repeat})")
    print(f"ratio validate / json.load: {checked / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
