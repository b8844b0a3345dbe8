"""Job env build times: live-code cold and warm against a plain ``pip install -r`` into a fresh venv.

    .venv/bin/python bench/envs.py [--runs 3] [--requirements FILE] [--registry] [--base PYTHON]

Cases, run round-robin (perf-baselines.md: the machine's speed drifts), median of ``--runs`` each:

- ``pip``:     ``python -m venv fresh && fresh/bin/pip install -r requirements.txt`` (the baseline);
- ``cold``:    ``prepare_env`` + ``ensure_env`` with an empty live-code cache and installer cache;
- ``rebuild``: a one-byte change to the requirements (new env key) with the installer cache warm;
- ``warm``:    ``prepare_env`` + ``ensure_env`` of an env already cached (no installer runs).

By default the requirements are downloaded once into a wheelhouse and every case installs from it
offline, so the network is out of the comparison; ``--registry`` uses the package index instead
(pip's cache is off, uv's is per case as above). The base is a fresh empty venv unless ``--base``
names an interpreter (say, one with torch) to layer the envs over.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from workdir import download_wheels_argv  # bench/, the script's own folder

from live_code.envs import builder as envs
from live_code.source import store as store_mod
from tests.helpers.venvs import pip_venv

T = TypeVar("T")
DEFAULT_REQUIREMENTS = """\
numpy==2.2.4
pyyaml==6.0.2
tqdm==4.67.1
pillow==11.1.0
requests==2.32.3
"""


def _clean_env(home: Path) -> dict[str, str]:
    """No pip config, no PIP_* from this machine, the same for every case."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update({"HOME": str(home), "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return env


def _timed(fn: Callable[..., T], *args: object) -> tuple[float, T]:
    started = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - started, value


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--requirements", type=Path, help="requirements file (default: a small scientific stack)")
    p.add_argument("--registry", action="store_true", help="install from the index instead of a local wheelhouse")
    p.add_argument("--base", help="base interpreter (default: a fresh empty venv)")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="live-code-bench-envs-"))
    try:
        return _bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, work: Path) -> int:
    home = work / "home"
    home.mkdir()
    env = _clean_env(home)
    python = getattr(sys, "_base_executable", sys.executable)
    repo = work / "repo"
    repo.mkdir()
    reqs = repo / "requirements.txt"
    reqs.write_text(args.requirements.read_text() if args.requirements else DEFAULT_REQUIREMENTS)
    base = args.base
    if base is None:
        subprocess.run([python, "-m", "venv", "--without-pip", str(work / "base")], check=True, env=env)
        base = str(work / "base" / "bin" / "python")

    pip_source: list[str] = []
    index = envs.DEFAULT_INDEX
    if not args.registry:
        wheelhouse = work / "wheelhouse"
        print(f"downloading the requirements into {wheelhouse} ...", flush=True)
        subprocess.run(download_wheels_argv(sys.executable, wheelhouse, reqs), check=True, env=env)
        pip_source = ["--no-index", "--find-links", str(wheelhouse)]
        index = envs.IndexSettings(find_links=(str(wheelhouse),), offline=True)

    def pip_case(n: int) -> None:
        pip_venv(work / f"pip-{n}", ["--no-cache-dir", *pip_source, "-r", str(reqs)], python=python, env=env)

    def ensure(root: Path, cache: Path) -> envs.EnvResult:
        spec = envs.prepare_env(repo, base_python=base, index=index)
        return envs.ensure_env(store_mod.Store(root), spec, installer_cache=cache, reporter=lambda line: None)

    times: dict[str, list[float]] = {"pip": [], "cold": [], "rebuild": [], "warm": []}
    original = reqs.read_bytes()
    for n in range(args.runs):
        print(f"run {n + 1}/{args.runs} ...", flush=True)
        times["pip"].append(_timed(pip_case, n)[0])
        root, cache = work / f"cache-{n}", work / f"installer-cache-{n}"
        seconds, result = _timed(ensure, root, cache)
        assert result.built, "the cold case found an env"
        times["cold"].append(seconds)
        reqs.write_bytes(original + b"\n")
        times["rebuild"].append(_timed(ensure, root, cache)[0])
        reqs.write_bytes(original)
        seconds, result = _timed(ensure, root, cache)
        assert not result.built, "the warm case built an env"
        times["warm"].append(seconds)
        shutil.rmtree(work / f"pip-{n}", ignore_errors=True)

    source = "the package index" if args.registry else "a local wheelhouse (offline)"
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nrequirements: {', '.join(original.decode().split())}")
    print(f"base: {base}; installs from {source}; median of {args.runs} runs\n")
    print(f"{'case':<10}{'median s':>10}{'min s':>9}{'max s':>9}{'pip / case':>13}")
    for case, values in times.items():
        ratio = med["pip"] / med[case] if med[case] else float("inf")
        print(f"{case:<10}{med[case]:>10.3f}{min(values):>9.3f}{max(values):>9.3f}{ratio:>12.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
