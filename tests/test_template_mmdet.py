"""remote_templates/mmdet end to end through ``live-code run`` on the CPU (issue 9, acceptance 2):
training (YOLOX-tiny from scratch at 128 px, 30 epochs on the sample dataset), finetuning from its best
stage, mining with each algorithm (random, entropy, aldd, cald; cald together with infer).

mmcv 2.1.0 has no wheels on the registry. tests/run.sh builds one from the registry's source
release against the framework base's torch (``.venv-fw``, torch 2.13.0), once per machine, into
``LIVE_CODE_TEST_MMCV_WHEELHOUSE``; the tasks name that folder in ``pip_find_links``, so the job's
environment installs mmcv from it and everything else from the registry.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from tests.helpers.repos import git
from tests.helpers.template_runs import probe as _probe
from tests.helpers.template_runs import validate as _validate
from tests.helpers.tensorboard import read_events

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "remote_templates" / "mmdet"
PYTHON = os.environ.get("LIVE_CODE_TEST_FRAMEWORK_PYTHON", sys.executable)
WHEELHOUSE = os.environ.get("LIVE_CODE_TEST_MMCV_WHEELHOUSE", "")
#: small and fast on a CPU: 128 px inputs (the sample's images are 128x128), no loader processes
TRAINING = {"img_size": 128, "batch_size": 6, "num_workers": 0, "val_interval": 5, "learning_rate": 0.005}


def _no_wheel() -> str | None:
    if not WHEELHOUSE:
        return "LIVE_CODE_TEST_MMCV_WHEELHOUSE is not set (tests/run.sh builds the mmcv 2.1.0 wheel and sets it)"
    if not glob.glob(os.path.join(WHEELHOUSE, "mmcv-2.1.0-*.whl")):
        return f"no mmcv-2.1.0 wheel in {WHEELHOUSE} (tests/run.sh builds it)"
    return None


_NO_TORCH = _probe(PYTHON, "import torch")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.framework,
    pytest.mark.registry,
    pytest.mark.skipif(_NO_TORCH is not None, reason=f"needs torch in {PYTHON}: {_NO_TORCH}"),
    pytest.mark.skipif(_no_wheel() is not None, reason=str(_no_wheel())),
    pytest.mark.needs_bwrap,
]


@pytest.fixture(scope="module")
def run_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        LIVE_CODE_CACHE=str(tmp_path_factory.mktemp("cache")),
        LIVE_CODE_ALLOW_LOCAL_REPOS="1",
        LIVE_CODE_BASE_PYTHON=PYTHON,
        PYTHONPATH=str(REPO),
    )
    return env


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> str:
    dest = tmp_path_factory.mktemp("template") / "mmdet"
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "mmdet template", cwd=dest)
    git("tag", "v1", cwd=dest)
    return str(dest)


def _run(task_dir: Path, env: dict[str, str], repo: str, **values: object) -> str:
    path = task_dir / "in" / "config.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(git_url=repo, git_tag="v1", pip_find_links=[WHEELHOUSE], **values)
    path.write_text(yaml.safe_dump(data))
    cmd = [sys.executable, "-m", "live_code", "run", "--in", str(task_dir / "in"), "--out", str(task_dir / "out")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-6000:]
    return res.stdout + res.stderr


def _result(task_dir: Path) -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((task_dir / "out" / "models" / "result.yaml").read_text())
    return data


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, run_env: dict[str, str], template: str) -> Path:
    task_dir = tmp_path_factory.mktemp("train")
    sample.write_sample_dataset(task_dir, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    _run(task_dir, run_env, template, max_epochs=30, **TRAINING)  # 1 to 3 min on 2 cores
    return task_dir


def _with_model(root: Path, trained: Path, kinds: frozenset[TaskKind], key: str) -> tuple[Path, list[str]]:
    sample.write_sample_dataset(root, kinds=kinds, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    result = _result(trained)
    best = str(result["best_stage_name"])
    files = result["model_stages"][best]["files"]
    shutil.copytree(trained / "out" / "models" / best, root / "in" / "models" / best)
    return root, [f"/in/models/{best}/{f}" for f in files]


def test_training_writes_a_stage_per_evaluation_with_config_and_scalars(trained: Path) -> None:
    assert _validate(trained) == []
    result = _result(trained)
    stages = result["model_stages"]
    assert sorted(stages, key=lambda s: int(s.split("_")[1])) == [f"epoch_{n}" for n in range(5, 31, 5)]
    for name, stage in stages.items():
        assert stage["files"] == [f"{name}.pth", f"{name}.py", "pylock.toml"]  # the env's lock (issue 22)
        assert 0.0 <= stage["mAP"] <= 1.0
        assert (trained / "out" / "models" / name / f"{name}.py").read_text().count("num_classes=3") >= 1
    assert result["mAP"] > 0.1, "YOLOX-tiny should find some of the sample's shapes after 30 epochs"
    assert not (trained / "in" / "mmdet-work").exists() and (trained / "out" / "mmdet-work" / "train.json").is_file()
    tags = {
        scalar.tag
        for path in (trained / "out" / "tensorboard").glob("events.out.tfevents.*")
        for scalar in read_events(path)[1]
    }
    assert {"mAP", "loss", "lr"} <= tags


def test_finetuning_loads_the_best_stage(tmp_path: Path, run_env: dict[str, str], template: str, trained: Path) -> None:
    task, files = _with_model(tmp_path / "ft", trained, frozenset({TaskKind.TRAINING}), "pretrained_model_params")
    out = _run(task, run_env, template, pretrained_model_params=files, max_epochs=1, **TRAINING)
    assert "finetuning from /in/models/" in out and "Load checkpoint from /in/models/" in out
    assert _validate(task) == []


@pytest.mark.parametrize("algorithm", ["random", "entropy", "aldd"])
def test_mining_scores_every_candidate(
    tmp_path: Path, run_env: dict[str, str], template: str, trained: Path, algorithm: str
) -> None:
    task, files = _with_model(tmp_path / algorithm, trained, frozenset({TaskKind.MINING}), "model_params_path")
    _run(task, run_env, template, model_params_path=files, mining_algorithm=algorithm, num_workers=0)
    assert _validate(task) == []
    rows = (task / "out" / "result.tsv").read_text().splitlines()
    assert len(rows) == len((task / "in" / "candidate-index.tsv").read_text().split())
    if algorithm == "aldd":
        assert len({r.split("\t")[1] for r in rows}) > 1, "aldd should tell the images apart"


def test_cald_mining_and_infer_in_one_run(
    tmp_path: Path, run_env: dict[str, str], template: str, trained: Path
) -> None:
    task, files = _with_model(
        tmp_path / "cald", trained, frozenset({TaskKind.MINING, TaskKind.INFER}), "model_params_path"
    )
    _run(task, run_env, template, model_params_path=files, mining_algorithm="cald", conf_thres=0.05, num_workers=0)
    assert _validate(task) == []
    assert (task / "out" / "infer-result.json").is_file() and (task / "out" / "result.tsv").is_file()


def test_live_code_check_passes_with_a_small_setting(tmp_path: Path, run_env: dict[str, str]) -> None:
    """Acceptance 4: ``live-code check`` (static checks and a smoke run of each task kind) passes."""
    sets = [f"{k}={v}" for k, v in {**TRAINING, "max_epochs": 1}.items()] + [f"pip_find_links=[{WHEELHOUSE}]"]
    cmd = [sys.executable, "-m", "live_code", "check", str(TEMPLATE), *[a for s in sets for a in ("--set", s)]]
    res = subprocess.run(cmd, env=run_env, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "ok    smoke training" in res.stdout and "ok    smoke mining+infer" in res.stdout
