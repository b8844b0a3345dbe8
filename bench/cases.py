"""The commands the benchmark times: live-code, baseline A (the original flow), baseline B
(``mlflow run``), and the bare entry. Each returns a :class:`timing.Timed`.

Every case gets the same served repository (https on 127.0.0.1, trusted through
``GIT_SSL_CAINFO``), the same commit, the same requirements from the same local wheelhouse
(no index: the network does not dominate), and an environment scrubbed of this machine's
PIP_*/UV_* settings (workdir.clean_env).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from benchrepo import BURN_MARKER, MARKER
from timing import Timed, run_timed
from workdir import Tools, clean_env

HERE = Path(__file__).resolve().parent


@dataclass
class Bench:
    tools: Tools
    run_dir: Path
    url: str
    commit: str
    cert: Path
    checkout: Path
    infer_task: Path
    mining_task: Path
    a_in: Path
    burn_env: dict[str, str]

    def __post_init__(self) -> None:
        self._n = itertools.count()
        self.tmp = self.run_dir / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def _log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{next(self._n):03d}-{name}.log"

    def _env(self, **extra: str) -> dict[str, str]:
        return clean_env(self.run_dir / "home", GIT_SSL_CAINFO=str(self.cert), TMPDIR=str(self.tmp), **extra)

    # -- live-code ---------------------------------------------------------------------------

    def live_code(self, cache: Path, *, burn: bool = False, idle: bool = False) -> tuple[Timed, dict[str, Any]]:
        """``live-code run`` of the infer task (startup) or the mining task (burn; ``idle``: with
        no work and no output) with ``cache`` as LIVE_CODE_CACHE; also returns the step timings
        of its provenance record."""
        task = self.mining_task if burn else self.infer_task
        out = self.run_dir / "out" / f"{next(self._n):03d}"
        shutil.copytree(task / "out", out)
        extra = {"LIVE_CODE_CACHE": str(cache), "LIVE_CODE_BASE_PYTHON": str(self.tools.base_python)}
        if burn:
            extra.update(self.burn_env, LIVE_CODE_JOB_ENV=",".join(sorted(self.burn_env)))
            if idle:
                extra["BENCH_BURN_BLOCKS"] = "0"
        timed = run_timed(
            [str(self.tools.harness), "run", "--in", str(task / "in"), "--out", str(out)],
            env=self._env(**extra),
            cwd=self.run_dir,
            marker=BURN_MARKER if burn else MARKER,
            log=self._log("live-code-burn" if burn else "live-code"),
            keep_stdout=not burn,
        )
        prov: dict[str, Any] = {}
        path = out / "live-code-provenance.yaml"
        if path.exists():
            doc = yaml.safe_load(path.read_text())
            prov = {"timings": doc.get("timings", {}), "sandbox": doc.get("sandbox", {}).get("mode")}
        shutil.rmtree(out, ignore_errors=True)
        return timed, prov

    # -- baseline A: the original image's flow -------------------------------------------------

    def baseline_a(self) -> Timed:
        """A fresh copy of the base (untimed, as ``docker run`` of the image), then the timed flow.
        Its files stay under ``run_dir/a`` until the runner removes them after the last round."""
        where = self.run_dir / "a" / f"{next(self._n):03d}"
        copy = where / "python"
        where.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(self.tools.base_dir), str(copy)], check=True)
        env = self._env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(self.tools.wheelhouse), PIP_NO_CACHE_DIR="1")
        timed = run_timed(
            [
                str(copy / "bin" / "python"),
                str(HERE / "baseline_a.py"),
                "--in",
                str(self.a_in),
                "--app",
                str(where / "app"),
            ],
            env=env,
            cwd=where,
            marker=MARKER,
            log=self._log("baseline-a"),
        )
        return timed

    # -- baseline B: mlflow run ----------------------------------------------------------------

    def mlflow(self, state: Path, manager: str) -> Timed:
        """``mlflow run URL --version SHA --env-manager MANAGER``; ``state`` holds its caches
        (MLFLOW_ENV_ROOT, pip's and uv's caches): empty for cold, kept for warm."""
        t = self.tools
        state.mkdir(parents=True, exist_ok=True)
        (state / "tmp").mkdir(exist_ok=True)
        extra = {
            "MLFLOW_TRACKING_URI": t.tracking_uri,
            "MLFLOW_ENV_ROOT": str(state / "envs"),
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(t.wheelhouse),
            "PIP_CACHE_DIR": str(state / "pip-cache"),
            "UV_CACHE_DIR": str(state / "uv-cache"),
            "UV_FIND_LINKS": str(t.wheelhouse),
            "UV_NO_INDEX": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
            "PATH": f"{t.bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        }
        if t.pyenv_root:
            extra["PYENV_ROOT"] = t.pyenv_root
        env = self._env(**extra)
        env["TMPDIR"] = str(state / "tmp")  # MLflow never removes its checkout dirs
        return run_timed(
            [str(t.mlflow), "run", self.url, "--version", self.commit, "--env-manager", manager],
            env=env,
            cwd=state,
            marker=MARKER,
            log=self._log(f"mlflow-{manager}"),
        )

    # -- the entry without any runner --------------------------------------------------------

    def bare(self, python: Path, *, burn: bool = False) -> Timed:
        """``python`` (the job env live-code built) running the entry in a checkout: the floor
        under every runner."""
        script, marker = ("burn.py", BURN_MARKER) if burn else ("start.py", MARKER)
        env = self._env(PYTHONUNBUFFERED="1", **(self.burn_env if burn else {}))
        return run_timed(
            [str(python), script],
            env=env,
            cwd=self.checkout,
            marker=marker,
            log=self._log(f"bare-{script[:-3]}"),
            keep_stdout=not burn,
        )


def job_python(cache: Path) -> Path:
    """The interpreter of the one job env in a live-code cache."""
    found = sorted(cache.glob("envs/*/bin/python"))
    if len(found) != 1:
        raise SystemExit(f"bench: expected one job env in {cache}, found {len(found)}")
    return found[0]


def make_task(harness: Path, root: Path, kind: str, config: dict[str, Any]) -> Path:
    """A task dir made by ``live-code sample-dataset`` with ``config`` merged into config.yaml."""
    subprocess.run(
        [str(harness), "sample-dataset", str(root), "--task", kind, "--images", "8"], check=True, capture_output=True
    )
    path = root / "in" / "config.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(config)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def calibrate_loops(python: Path, seconds: float, blocks: int) -> int:
    """Loop turns per block so that the burn job's pure-Python loop takes about ``seconds`` of CPU
    (CPU, not wall time: on a loaded machine a wall-clock calibration gives a smaller job)."""
    code = (
        "import time\nn=3_000_000\nt=time.process_time()\ntotal=0\nfor i in range(n):\n    total += i\n"
        "print(n / (time.process_time() - t))"
    )
    rate = float(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout)
    return max(1, int(rate * seconds / blocks))
