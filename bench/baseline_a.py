"""Baseline A: the original live-code image's start-up (ymir_start.py, final version), re-enacted.

    <fresh copy of the base>/bin/python bench/baseline_a.py --in IN_DIR --app APP_DIR

The steps of original-live-code-and-detectors.md A.4, in order, each run-with-check:

1. read ``config.yaml`` and ``env.yaml`` of the task and log the whole executor config;
2. ``git_url`` is required; the revision is ``git_branch`` (branch, tag or commit id);
3. ``git clone --filter=blob:none <git_url> /app`` (blobless partial clone, not shallow);
4. an empty revision is an error, found only after the clone;
5. ``git checkout <revision>`` in /app;
6. ``pip install -r /app/extra-requirements.txt`` into the interpreter's own site-packages (the
   image's python; here a fresh copy of the base venv, made by the runner before the clock starts,
   as ``docker run`` of the image gives a fresh container);
7. ``python3 start.py`` (else ``ymir/start.py``) with cwd /app, the inherited environment and
   ``PYTHONPATH=.`` (the image sets it).

No cache of any kind (A.4 step 10): every run clones and installs. The index settings come from
the environment (``PIP_NO_INDEX``/``PIP_FIND_LINKS``, set by the runner: the same local wheelhouse
the other runners use). Differences from the original, none of which changes the measured time
by more than a few ms: the YAML files are read with a line parser (the base has no PyYAML; the
original imported the ymir-exc SDK for this), /app is a per-run directory, and the logs go to
stderr so that the entry's first line is the first line on stdout.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path


def _read_flat_yaml(path: Path) -> dict[str, str]:
    """``key: value`` lines of a YAML mapping (enough for git_url / git_branch)."""
    values = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*$", line)
        if m:
            values[m.group(1)] = m.group(2).strip("'\"")
    return values


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    print(f"[ymir_start] running: {' '.join(argv)}", file=sys.stderr, flush=True)
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=sys.stderr)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--in", dest="in_dir", type=Path, required=True)
    p.add_argument("--app", type=Path, required=True)
    args = p.parse_args()

    config = _read_flat_yaml(args.in_dir / "config.yaml")
    env_yaml = _read_flat_yaml(args.in_dir / "env.yaml")
    print(f"[ymir_start] executor config: {config}", file=sys.stderr)
    print(f"[ymir_start] env: {env_yaml}", file=sys.stderr)
    git_url = config["git_url"]  # KeyError when missing, as in the original
    revision = config.get("git_branch", "")

    _run(["git", "clone", "--filter=blob:none", git_url, str(args.app)])
    if not revision:
        raise RuntimeError("no commit_id/tag/branch offered")
    _run(["git", "checkout", revision], cwd=args.app)
    requirements = args.app / "extra-requirements.txt"
    if requirements.exists():
        _run([sys.executable, "-m", "pip", "install", "-r", str(requirements)])
    for entry in ("start.py", "ymir/start.py"):
        if (args.app / entry).exists():
            env = {**os.environ, "PYTHONPATH": "."}
            # stdout is inherited: the entry's first line is the one the runner waits for
            subprocess.run([sys.executable, entry], cwd=args.app, env=env, check=True)
            return 0
    raise RuntimeError("neither start.py nor ymir/start.py in the repository")


if __name__ == "__main__":
    sys.exit(main())
