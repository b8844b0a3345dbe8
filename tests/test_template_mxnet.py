"""remote_templates/mxnet through ``live-code run`` (issue 10, acceptance 3): the template is
committed into a temp git repo and tagged, and each task runs from that tag over an MXNet base:
training, mining with each algorithm plus infer on the trained model, mining alone, infer alone,
finetuning; every output validated and the provenance naming the tag's commit.

The job env is layered over ``LIVE_CODE_TEST_MXNET_PYTHON`` (tests/run.sh makes ``.venv-mx`` with
``base_images/mxnet/install-mxnet.sh``: mxnet 1.9.1, numpy 1.23.5); the template's requirements
(Pillow, PyYAML) come from the registry, installed once for the module into its shared cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from live_code.run import sandbox
from tests.helpers.template_runs import MINING_INFER, commit_template, harness_env, probe, run, run_ok
from tests.helpers.template_runs import best_stage as _best
from tests.helpers.template_runs import configure as _configure
from tests.helpers.template_runs import gt_boxes as _gt_boxes
from tests.helpers.template_runs import iou as _iou
from tests.helpers.template_runs import mining_task as _mining_task
from tests.helpers.template_runs import provenance as _provenance
from tests.helpers.template_runs import training_result as _training_result
from tests.helpers.template_runs import validate as _validate
from tests.helpers.tensorboard import read_events

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "remote_templates" / "mxnet"
PYTHON = os.environ.get("LIVE_CODE_TEST_MXNET_PYTHON", "")


def _probe(python: str, code: str) -> str | None:
    """None when ``code`` runs in ``python``, else why not."""
    if not python:
        return "LIVE_CODE_TEST_MXNET_PYTHON is not set (tests/run.sh makes .venv-mx and sets it)"
    return probe(python, code)


_NO_MXNET = _probe(PYTHON, "import mxnet, numpy; assert mxnet.__version__ == '1.9.1', mxnet.__version__")

pytestmark = [
    pytest.mark.slow,  # about a minute on 2 cores: the job env once, then 14 runs of a few seconds
    pytest.mark.framework,
    pytest.mark.registry,
    pytest.mark.skipif(_NO_MXNET is not None, reason=f"needs mxnet 1.9.1 in {PYTHON or 'a base python'}: {_NO_MXNET}"),
    pytest.mark.skipif(
        sandbox.unavailable_reason() is not None, reason=f"needs bubblewrap: {sandbox.unavailable_reason()}"
    ),
]


def _commit_template(dest: Path) -> tuple[str, str]:
    return commit_template(TEMPLATE, dest)


@pytest.fixture(scope="module")
def run_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The harness's environment for the module: one cache, so the job env is built once."""
    return harness_env(tmp_path_factory.mktemp("cache"), PYTHON)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return _commit_template(tmp_path_factory.mktemp("template") / "mxnet")


_run = run

_run_ok = run_ok


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, run_env: dict[str, str], template: tuple[str, str]) -> Path:
    """A training task (protocol 1.1.0, VOC) run at the template's default hyper-parameters."""
    task_dir = tmp_path_factory.mktemp("train")
    sample.write_sample_dataset(task_dir, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    _run_ok(task_dir, run_env, template)
    assert (task_dir / "out" / "models" / "live-code-provenance.yaml").is_file()  # travels with the model
    return task_dir


def test_training_writes_valid_stages_and_learns_the_sample(trained: Path) -> None:
    assert _validate(trained) == []
    result = _training_result(trained)
    best, files = _best(trained)
    assert result["model_stages"][best]["mAP"] > 0.3, "the detector should find the sample's coloured shapes"  # type: ignore[index]
    assert files == [f"{best}.params", f"{best}.json", f"{best}-symbol.json", f"{best}-0000.params"]
    assert all((trained / "out" / "models" / best / f).stat().st_size > 100 for f in files)
    record = contract.parse_monitor((trained / "out" / "monitor.txt").read_text())
    assert (record.percent, record.state) == (1.0, contract.MonitorState.RUNNING)


def test_training_runs_over_the_mxnet_base_and_records_it(trained: Path) -> None:
    prov = _provenance(trained)
    assert prov["manifest"]["framework"] == "mxnet"  # type: ignore[index]
    assert prov["environment"]["protected"] == {"mxnet": "1.9.1"}  # type: ignore[index]
    assert prov["environment"]["base_python"] == PYTHON  # type: ignore[index]
    (job,) = prov["job"]  # type: ignore[misc]
    assert job["seconds"] < 60, "train on the sample in well under a minute on a small CPU"


def test_exported_symbol_graph_loads_without_the_template(trained: Path) -> None:
    best, _ = _best(trained)
    folder = trained / "out" / "models" / best
    code = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        "from mxnet import gluon, nd\n"
        "net = gluon.SymbolBlock.imports(sys.argv[1] + '-symbol.json', ['data'], sys.argv[1] + '-0000.params')\n"
        "print(net(nd.zeros((2, 3, 64, 64))).shape)\n"
    )
    res = subprocess.run([PYTHON, "-c", code, str(folder / best)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "(2, 8, 8, 8)"  # objectness, 4 box values, 3 classes on an 8x8 grid


def test_training_writes_loss_and_map_to_tensorboard(trained: Path) -> None:
    (events,) = (trained / "out" / "tensorboard").glob("events.out.tfevents.*")
    _, scalars = read_events(events)
    assert sorted({s.step for s in scalars}) == list(range(1, 31))  # the default epochs
    assert {s.tag for s in scalars} == {"loss", "mAP"}
    losses = [s.value for s in scalars if s.tag == "loss"]
    assert losses[-1] < losses[0] / 4


@pytest.mark.parametrize("algorithm", ["random", "entropy", "aldd", "cald"])
def test_mining_and_infer_with_each_algorithm(
    tmp_path: Path, trained: Path, run_env: dict[str, str], template: tuple[str, str], algorithm: str
) -> None:
    task_dir = _mining_task(tmp_path, trained, mining_algorithm=algorithm)
    _run_ok(task_dir, run_env, template)
    assert _validate(task_dir) == []

    rows = [line.split("\t") for line in (task_dir / "out" / "result.tsv").read_text().splitlines()]
    scores = [float(score) for _, score in rows]
    assert len(rows) == 24 and scores == sorted(scores, reverse=True)
    low, high = {"random": (0.0, 1.0), "entropy": (-10.0, 100.0), "aldd": (0.0, 10.0), "cald": (-1.3, 1.0)}[algorithm]
    assert all(low <= s <= high for s in scores)
    assert len(set(scores)) > 1, "the scores must tell images apart"

    # infer ran in the same container; the trained model finds most of the sample's boxes
    detection = json.loads((task_dir / "out" / "infer-result.json").read_text())["detection"]
    truth = _gt_boxes()
    found = sum(
        any(
            d["class_name"] == name
            and _iou((d["box"]["x"], d["box"]["y"], d["box"]["w"], d["box"]["h"]), (x, y, w, h)) >= 0.5
            for d in detection[image]["boxes"]
        )
        for image, boxes in truth.items()
        for name, x, y, w, h in boxes
    )
    assert found >= 0.5 * sum(len(b) for b in truth.values())
    record = contract.parse_monitor((task_dir / "out" / "monitor.txt").read_text())
    assert (record.percent, record.state) == (1.0, contract.MonitorState.RUNNING)


@pytest.mark.parametrize("kind", [TaskKind.MINING, TaskKind.INFER])
def test_mining_alone_and_infer_alone(
    tmp_path: Path, trained: Path, run_env: dict[str, str], template: tuple[str, str], kind: TaskKind
) -> None:
    task_dir = _mining_task(tmp_path, trained, frozenset({kind}))
    _run_ok(task_dir, run_env, template)
    assert _validate(task_dir) == []
    out = task_dir / "out"
    assert (out / "result.tsv").exists() == (kind is TaskKind.MINING)
    assert (out / "infer-result.json").exists() == (kind is TaskKind.INFER)


def test_mining_scores_follow_the_class_weights(
    tmp_path: Path, trained: Path, run_env: dict[str, str], template: tuple[str, str]
) -> None:
    """aldd with every class weighted 0 scores 0 everywhere: the weights reach the SDK's score."""
    task_dir = _mining_task(
        tmp_path, trained, frozenset({TaskKind.MINING}), mining_algorithm="aldd", class_distribution_scores="0,0,0"
    )
    _run_ok(task_dir, run_env, template)
    scores = {float(line.split("\t")[1]) for line in (task_dir / "out" / "result.tsv").read_text().splitlines()}
    assert scores == {0.0}


def test_finetuning_starts_from_the_pretrained_model(
    tmp_path: Path, trained: Path, run_env: dict[str, str], template: tuple[str, str]
) -> None:
    sample.write_sample_dataset(tmp_path, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    best, _ = _best(trained)
    shutil.copytree(trained / "out" / "models" / best, tmp_path / "in" / "models" / best)
    _configure(tmp_path, epochs=1, export_symbol=False, pretrained_model_params=[f"/in/models/{best}/{best}.params"])
    out = _run_ok(tmp_path, run_env, template)
    assert f"finetuning from /in/models/{best}/{best}.params" in out
    # one epoch from scratch scores about 0 on the sample; from the trained model it keeps most of its skill
    assert _training_result(tmp_path)["mAP"] > 0.2
    assert _validate(tmp_path) == []


def test_protocol_0_0_1_gets_flat_model_files(
    tmp_path: Path, run_env: dict[str, str], template: tuple[str, str]
) -> None:
    sample.write_sample_dataset(tmp_path, kinds={TaskKind.TRAINING}, fmt="ark", protocol=contract.PROTOCOL_0_0_1)
    _configure(tmp_path, epochs=2)
    _run_ok(tmp_path, run_env, template)
    assert _validate(tmp_path) == []
    result = _training_result(tmp_path)
    assert set(result) == {"model", "map"}
    assert all((tmp_path / "out" / "models" / name).is_file() for name in result["model"])  # type: ignore[union-attr]


def test_mining_without_a_model_reports_model_not_found(
    tmp_path: Path, run_env: dict[str, str], template: tuple[str, str]
) -> None:
    sample.write_sample_dataset(tmp_path, kinds=MINING_INFER, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    res = _run(tmp_path, run_env, template)
    assert res.returncode == 5
    record = contract.parse_monitor((tmp_path / "out" / "monitor.txt").read_text())
    assert (record.state, record.return_code) == (contract.MonitorState.ERROR, contract.ReturnCode.MODEL_NOT_FOUND)
    assert "model_params_path" in res.stdout
