"""The bench work dir (``.bench/`` in the repo root): what every case needs, made once and reused.

.bench/wheelhouse-<set>/  the requirements' wheels (+ pip), downloaded once from the registry
.bench/base/            the base environment: a plain venv of the bench python, with pip
.bench/mlflow-venv/     MLflow (pinned) in its own venv, bytecode compiled as pip would
.bench/orjson-venv/     orjson alone, to time a faster JSON parser for the validation row
.bench/bin/uv           uv on PATH for MLflow's ``--env-manager uv``
.bench/tls/             the self-signed certificate of the https git server
.bench/mlflow/          MLflow's tracking store (sqlite, created once: not a per-run cost)
.bench/run-<stamp>/     this run: the served repo, tasks, caches, logs, results.json
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MLFLOW_VERSION = "3.17.2"  # 3.18.0's mlflow-skinny was not on the registry mirror here (2026-11)
ORJSON_VERSION = "3.13.0"
#: ``detector``: perf-baselines.md 2's set (what a yolov5-style detector pins) plus requests and
#: Pillow; 22 wheels, 136 MiB. ``small``: a quick set (9 wheels, 24 MiB) for trying the bench out.
REQUIREMENT_SETS = {
    "detector": """\
numpy==2.2.4
pyyaml==6.0.2
tqdm==4.67.1
pandas==2.2.3
opencv-python-headless==4.11.0.86
scipy==1.15.2
matplotlib==3.10.1
pillow==11.1.0
requests==2.32.3
""",
    "small": """\
numpy==2.2.4
pyyaml==6.0.2
tqdm==4.67.1
pillow==11.1.0
requests==2.32.3
""",
}


def download_wheels_argv(python: str, wheelhouse: Path, requirements: Path, *names: str) -> list[str]:
    """``pip download`` (by ``python``) of the wheels, and only wheels, that ``requirements`` and ``names``
    need, into ``wheelhouse``: the offline source the bench's installers read."""
    only_wheels = ["--only-binary", ":all:", "-d", str(wheelhouse)]
    return [python, "-m", "pip", "download", "-q", *only_wheels, "-r", str(requirements), *names]


def requirements_text(name_or_path: str) -> tuple[str, str]:
    """(name, text) of a named set or of a requirements file."""
    if name_or_path in REQUIREMENT_SETS:
        return name_or_path, REQUIREMENT_SETS[name_or_path]
    path = Path(name_or_path)
    return f"file-{hashlib.sha256(path.read_bytes()).hexdigest()[:10]}", path.read_text()


@dataclass(frozen=True)
class Tools:
    python: Path  # the bench interpreter (a real one, never a pyenv shim)
    python_version: str
    requirements: str  # the text of extra-requirements.txt
    harness: Path  # <work>/harness/bin/live-code, installed as the images install it
    base_python: Path
    base_dir: Path
    wheelhouse: Path
    mlflow: Path
    mlflow_python: Path
    orjson_python: Path | None
    bin_dir: Path
    uv: Path
    pyenv_root: str | None
    tracking_uri: str


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This machine's environment without PIP_*/UV_*/MLFLOW_*/LIVE_CODE_* settings (this machine
    sets PIP_FIND_LINKS, for one), plus a HOME inside the work dir and ``extra``."""
    drop = ("PIP_", "UV_", "MLFLOW_", "LIVE_CODE_", "VIRTUAL_ENV", "PYTHONPATH", "GIT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"HOME": str(home), "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    print(f"  setup: {what}", flush=True)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench setup failed to {what}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _stamp(path: Path, text: str) -> bool:
    """True if ``path`` holds ``text`` (the recipe it was made with)."""
    return path.is_file() and path.read_text() == text


def _harness_recipe(repo_root: Path) -> str:
    """What the installed harness was made from: every file of the package and its metadata."""
    h = hashlib.sha256()
    files = [repo_root / "pyproject.toml", *sorted((repo_root / "live_code").rglob("*"))]
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f"{f.relative_to(repo_root)}\0".encode() + f.read_bytes() + b"\0")
    return h.hexdigest()


def _install_harness(work: Path, repo_root: Path, base_python: Path, env: dict[str, str]) -> Path:
    """live-code installed the way the images install it (base_images/common/install-harness.sh): a
    venv of its own with a regular, byte-compiled install, not the repo's editable .venv (whose
    import hook and source-tree bytecode an image has not). Installed again when the code changes."""
    home = work / "harness"
    recipe = _harness_recipe(repo_root)
    if _stamp(home / ".recipe", recipe):
        return home / "bin" / "live-code"
    script = repo_root / "base_images" / "common" / "install-harness.sh"
    settings = {"LIVE_CODE_HOME": str(home), "LIVE_CODE_BASE_PYTHON": str(base_python)}
    settings["LIVE_CODE_CACHE"] = str(work / "harness-cache")
    if (home / "bin" / "python").exists():  # only live-code changed: its dependencies stay
        constraints = repo_root / "base_images" / "common" / "harness-constraints.txt"
        argv = [str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        argv += ["--no-deps", "--force-reinstall", "--no-build-isolation", "-c", str(constraints), str(repo_root)]
        _run(argv, env, "reinstall live-code into the bench's harness venv")
    else:
        _run(["bash", str(script), str(repo_root)], {**env, **settings}, "install the harness as the images do")
    (home / ".recipe").write_text(recipe)
    return home / "bin" / "live-code"


def prepare(work: Path, python: Path, repo_root: Path, requirements: str, *, with_mlflow: bool = True) -> Tools:
    """Make (or reuse) everything in ``work``; ``requirements`` is a set name or a file."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = clean_env(home)
    uv = repo_root / ".venv" / "bin" / "uv"
    version = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    req_name, req_text = requirements_text(requirements)
    wheelhouse = work / f"wheelhouse-{req_name}"
    recipe = req_text + f"pip\n{version}\n"
    if not _stamp(wheelhouse / ".recipe", recipe):
        req = wheelhouse.with_suffix(".txt")
        req.write_text(req_text)
        _run(
            download_wheels_argv(str(repo_root / ".venv" / "bin" / "python"), wheelhouse, req, "pip"),
            env,
            "download the requirements into a wheelhouse",
        )
        (wheelhouse / ".recipe").write_text(recipe)

    base = work / "base"
    if not _stamp(base / ".recipe", str(python)):
        subprocess.run(["rm", "-rf", str(base)], check=True)
        _run([str(python), "-m", "venv", str(base)], env, "create the base environment (a venv with pip)")
        # the original image upgraded pip (torch.dockerfile): the wheelhouse's pip
        _run(
            [
                str(base / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--find-links",
                str(wheelhouse),
                "--upgrade",
                "pip",
            ],
            env,
            "upgrade pip in the base environment",
        )
        (base / ".recipe").write_text(str(python))

    mlflow_venv = work / "mlflow-venv"
    if with_mlflow and not _stamp(mlflow_venv / ".recipe", f"mlflow=={MLFLOW_VERSION} {python}"):
        subprocess.run(["rm", "-rf", str(mlflow_venv)], check=True)
        _run([str(python), "-m", "venv", str(mlflow_venv)], env, "create the MLflow venv")
        # uv for speed; --compile-bytecode so that MLflow imports as fast as after a pip install
        _run(
            [
                str(uv),
                "pip",
                "install",
                "-q",
                "--python",
                str(mlflow_venv / "bin" / "python"),
                "--compile-bytecode",
                f"mlflow=={MLFLOW_VERSION}",
            ],
            env,
            f"install mlflow=={MLFLOW_VERSION} from the registry",
        )
        (mlflow_venv / ".recipe").write_text(f"mlflow=={MLFLOW_VERSION} {python}")

    orjson_venv = work / "orjson-venv"
    if not _stamp(orjson_venv / ".recipe", f"orjson=={ORJSON_VERSION} {python}"):
        subprocess.run(["rm", "-rf", str(orjson_venv)], check=True)
        _run([str(python), "-m", "venv", "--without-pip", str(orjson_venv)], env, "create the orjson venv")
        proc = subprocess.run(
            [
                str(uv),
                "pip",
                "install",
                "-q",
                "--python",
                str(orjson_venv / "bin" / "python"),
                f"orjson=={ORJSON_VERSION}",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            (orjson_venv / ".recipe").write_text(f"orjson=={ORJSON_VERSION} {python}")
        else:
            print(f"  setup: orjson not installed (the validation row skips it): {proc.stderr[-300:]}")

    bin_dir = work / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "uv").exists():
        (bin_dir / "uv").symlink_to(uv.resolve())

    harness = _install_harness(work, repo_root, base / "bin" / "python", env)

    pyenv_root = None
    proc = subprocess.run(["pyenv", "root"], capture_output=True, text=True) if shutil.which("pyenv") else None
    if proc is not None and proc.returncode == 0:
        pyenv_root = proc.stdout.strip()

    tracking = work / "mlflow"
    tracking.mkdir(exist_ok=True)
    tracking_uri = f"sqlite:///{tracking / 'mlflow.db'}"
    if with_mlflow and not (tracking / ".ready").exists():
        _run(
            [str(mlflow_venv / "bin" / "python"), "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"],
            {**env, "MLFLOW_TRACKING_URI": tracking_uri},
            "create MLflow's tracking store (sqlite)",
        )
        (tracking / ".ready").write_text("")

    return Tools(
        python=python,
        python_version=version,
        requirements=req_text,
        harness=harness,
        base_python=base / "bin" / "python",
        base_dir=base,
        wheelhouse=wheelhouse,
        mlflow=mlflow_venv / "bin" / "mlflow",
        mlflow_python=mlflow_venv / "bin" / "python",
        orjson_python=orjson_venv / "bin" / "python" if (orjson_venv / ".recipe").exists() else None,
        bin_dir=bin_dir,
        uv=uv,
        pyenv_root=pyenv_root,
        tracking_uri=tracking_uri,
    )


if __name__ == "__main__":
    print(prepare(Path(sys.argv[1]), Path(sys.argv[2]), Path(__file__).resolve().parent.parent, sys.argv[3]))
