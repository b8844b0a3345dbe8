"""remote_templates/minimal (issue 6, acceptance 1) and remote_templates/mxnet (issue 10, acceptance 3)
through ``live-code run``: each template is committed into a temp git repo and tagged, and each
task runs from that tag: training, mining with each algorithm plus infer on the trained model,
mining alone, infer alone, finetuning, the legacy protocol; every output validated and the
provenance naming the tag's commit. One table (``TEMPLATES``) says what differs between the two.

minimal's job env is layered over ``LIVE_CODE_TEST_FRAMEWORK_PYTHON`` (tests/run.sh makes one with
torch), mxnet's over ``LIVE_CODE_TEST_MXNET_PYTHON`` (``.venv-mx``, made with
``base_images/mxnet/install-mxnet.sh``: mxnet 1.9.1, numpy 1.23.5); their requirements come from
the registry, installed once per template into its shared cache.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from tests.helpers.template_runs import (
    MINING_INFER,
    best_stage,
    commit_template,
    configure,
    found_boxes,
    gt_boxes,
    harness_env,
    mining_task,
    probe,
    provenance,
    run_fails,
    run_ok,
    training_result,
    validate,
)
from tests.helpers.tensorboard import read_events

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    python: str
    #: None when the template's framework runs in ``python``, else why not
    missing: str | None
    #: the best stage's files, given the stage name
    files: tuple[str, ...]
    #: the smallest size of each of them
    min_size: int
    #: the hyper-parameter that switches the export off
    export_key: str
    #: the checkpoint a stage hands to finetuning
    checkpoint: str


def _python(variable: str, default: str) -> str:
    return os.environ.get(variable, default)


def _missing(python: str, variable: str, code: str) -> str | None:
    if not python:
        return f"{variable} is not set (tests/run.sh sets it)"
    return probe(python, code)


_TORCH = _python("LIVE_CODE_TEST_FRAMEWORK_PYTHON", sys.executable)
_MXNET = _python("LIVE_CODE_TEST_MXNET_PYTHON", "")
TEMPLATES = {
    "minimal": Template(
        "minimal",
        _TORCH,
        _missing(_TORCH, "LIVE_CODE_TEST_FRAMEWORK_PYTHON", "import torch"),
        ("{s}.pt", "{s}.onnx"),
        1000,
        "export_onnx",
        "{s}.pt",
    ),
    "mxnet": Template(
        "mxnet",
        _MXNET,
        _missing(
            _MXNET,
            "LIVE_CODE_TEST_MXNET_PYTHON",
            "import mxnet, numpy; assert mxnet.__version__ == '1.9.1', mxnet.__version__",
        ),
        ("{s}.params", "{s}.json", "{s}-symbol.json", "{s}-0000.params"),
        100,
        "export_symbol",
        "{s}.params",
    ),
}


def _param(name: str) -> object:
    spec = TEMPLATES[name]
    marks = [pytest.mark.skipif(spec.missing is not None, reason=f"needs {name}'s framework: {spec.missing}")]
    if name == "mxnet":
        marks.append(pytest.mark.slow)  # about a minute on 2 cores: the job env once, then 14 runs of a few seconds
    return pytest.param(name, marks=marks, id=name)


pytestmark = [
    pytest.mark.framework,
    pytest.mark.registry,
    pytest.mark.needs_bwrap,
]


@pytest.fixture(scope="module", params=[_param(name) for name in TEMPLATES])
def spec(request: pytest.FixtureRequest) -> Template:
    return TEMPLATES[request.param]


@pytest.fixture(scope="module")
def run_env(tmp_path_factory: pytest.TempPathFactory, spec: Template) -> dict[str, str]:
    """The harness's environment for a template: one cache, so its job env is built once."""
    return harness_env(tmp_path_factory.mktemp(f"cache-{spec.name}"), spec.python)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, spec: Template) -> tuple[str, str]:
    return commit_template(REPO / "remote_templates" / spec.name, tmp_path_factory.mktemp("template") / spec.name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, run_env: dict[str, str], template: tuple[str, str]) -> Path:
    """A training task (protocol 1.1.0, VOC) run at the template's default hyper-parameters."""
    task_dir = tmp_path_factory.mktemp("train")
    sample.write_sample_dataset(task_dir, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    run_ok(task_dir, run_env, template)
    assert (task_dir / "out" / "models" / "live-code-provenance.yaml").is_file()  # travels with the model
    return task_dir


def _final_monitor(task_dir: Path) -> tuple[float, contract.MonitorState]:
    record = contract.parse_monitor((task_dir / "out" / "monitor.txt").read_text())
    return record.percent, record.state


def test_training_writes_valid_stages_and_learns_the_sample(trained: Path, spec: Template) -> None:
    assert validate(trained) == []
    result = training_result(trained)
    best, files = best_stage(trained)
    assert result["model_stages"][best]["mAP"] > 0.3, "the detector should find the sample's coloured shapes"
    # the harness adds the env's lock to every stage (issue 22): YMIR packs it with the model
    assert files == [*(f.format(s=best) for f in spec.files), "pylock.toml"]
    # protocol 1.1.0: files in the stage's directory
    assert all((trained / "out" / "models" / best / f).stat().st_size > spec.min_size for f in files[:-1])
    assert (trained / "out" / "models" / best / "pylock.toml").is_file()
    assert _final_monitor(trained) == (1.0, contract.MonitorState.RUNNING)


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
    task_dir = mining_task(tmp_path, trained, mining_algorithm=algorithm)
    run_ok(task_dir, run_env, template)
    assert validate(task_dir) == []

    rows = [line.split("\t") for line in (task_dir / "out" / "result.tsv").read_text().splitlines()]
    scores = [float(score) for _, score in rows]
    assert len(rows) == 24 and scores == sorted(scores, reverse=True)
    low, high = {"random": (0.0, 1.0), "entropy": (-10.0, 100.0), "aldd": (0.0, 10.0), "cald": (-1.3, 1.0)}[algorithm]
    assert all(low <= s <= high for s in scores)
    assert len(set(scores)) > 1, "the scores must tell images apart"

    # infer ran in the same container; the trained model finds most of the sample's boxes
    detection = json.loads((task_dir / "out" / "infer-result.json").read_text())["detection"]
    truth = gt_boxes()
    found = found_boxes(detection, truth)
    assert found >= 0.5 * sum(len(b) for b in truth.values())
    assert _final_monitor(task_dir) == (1.0, contract.MonitorState.RUNNING)


@pytest.mark.parametrize("kind", [TaskKind.MINING, TaskKind.INFER])
def test_mining_alone_and_infer_alone(
    tmp_path: Path, trained: Path, run_env: dict[str, str], template: tuple[str, str], kind: TaskKind
) -> None:
    task_dir = mining_task(tmp_path, trained, frozenset({kind}))
    run_ok(task_dir, run_env, template)
    assert validate(task_dir) == []
    out = task_dir / "out"
    assert (out / "result.tsv").exists() == (kind is TaskKind.MINING)
    assert (out / "infer-result.json").exists() == (kind is TaskKind.INFER)


@pytest.mark.parametrize("kinds", [MINING_INFER, frozenset({TaskKind.MINING})], ids=["mining+infer", "mining"])
def test_mining_scores_follow_the_class_weights(
    tmp_path: Path, trained: Path, run_env: dict[str, str], template: tuple[str, str], kinds: frozenset[TaskKind]
) -> None:
    """aldd with every class weighted 0 scores 0 everywhere: the weights reach the SDK's score."""
    task_dir = mining_task(tmp_path, trained, kinds, mining_algorithm="aldd", class_distribution_scores="0,0,0")
    run_ok(task_dir, run_env, template)
    scores = {float(line.split("\t")[1]) for line in (task_dir / "out" / "result.tsv").read_text().splitlines()}
    assert scores == {0.0}


def test_finetuning_starts_from_the_pretrained_model(
    tmp_path: Path, trained: Path, run_env: dict[str, str], template: tuple[str, str], spec: Template
) -> None:
    sample.write_sample_dataset(tmp_path, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    best, _ = best_stage(trained)
    shutil.copytree(trained / "out" / "models" / best, tmp_path / "in" / "models" / best)
    checkpoint = f"/in/models/{best}/{spec.checkpoint.format(s=best)}"
    configure(tmp_path, epochs=1, pretrained_model_params=[checkpoint], **{spec.export_key: False})
    out = run_ok(tmp_path, run_env, template)
    assert f"finetuning from {checkpoint}" in out
    # one epoch from scratch scores about 0 on the sample; from the trained model it keeps most of its skill
    assert training_result(tmp_path)["mAP"] > 0.2
    assert validate(tmp_path) == []


def test_protocol_0_0_1_gets_flat_model_files(
    tmp_path: Path, run_env: dict[str, str], template: tuple[str, str]
) -> None:
    sample.write_sample_dataset(tmp_path, kinds={TaskKind.TRAINING}, fmt="ark", protocol=contract.PROTOCOL_0_0_1)
    configure(tmp_path, epochs=2)
    run_ok(tmp_path, run_env, template)
    assert validate(tmp_path) == []
    result = training_result(tmp_path)
    assert set(result) == {"model", "map"}
    assert all((tmp_path / "out" / "models" / name).is_file() for name in result["model"])


def test_mining_without_a_model_reports_model_not_found(
    tmp_path: Path, run_env: dict[str, str], template: tuple[str, str]
) -> None:
    sample.write_sample_dataset(tmp_path, kinds=MINING_INFER, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    run_fails(tmp_path, run_env, template, contract.ReturnCode.MODEL_NOT_FOUND, "model_params_path")


# -- what only one of them does ----------------------------------------------------------------


def _minimal_own(tmp_path: Path, trained: Path, spec: Template, run_env: dict[str, str]) -> None:
    """A repo whose requirements lost onnx: export fails, the run ends in the error state with the
    job's own CONFIG_ERROR code and hint."""
    if probe(spec.python, "import onnx") is None:
        pytest.skip(f"the framework base {spec.python} has onnx itself, so a repo without it still exports")
    repo = commit_template(REPO / "remote_templates" / "minimal", tmp_path / "no-onnx", drop_requirement="onnx")
    task_dir = tmp_path / "task"
    sample.write_sample_dataset(task_dir, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    configure(task_dir, epochs=1, export_onnx=True)
    run_fails(task_dir, run_env, repo, contract.ReturnCode.CONFIG_ERROR, "export_onnx: false")


def _mxnet_own(tmp_path: Path, trained: Path, spec: Template, run_env: dict[str, str]) -> None:
    """Training ran over the mxnet base and recorded it; the exported symbol graph loads without
    the template's code."""
    prov = provenance(trained)
    assert prov["manifest"]["framework"] == "mxnet"
    assert prov["environment"]["protected"] == {"mxnet": "1.9.1"}
    assert prov["environment"]["base_python"] == spec.python
    (job,) = prov["job"]
    assert job["seconds"] < 60, "train on the sample in well under a minute on a small CPU"
    best, _ = best_stage(trained)
    folder = trained / "out" / "models" / best
    code = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        "from mxnet import gluon, nd\n"
        "net = gluon.SymbolBlock.imports(sys.argv[1] + '-symbol.json', ['data'], sys.argv[1] + '-0000.params')\n"
        "print(net(nd.zeros((2, 3, 64, 64))).shape)\n"
    )
    res = subprocess.run([spec.python, "-c", code, str(folder / best)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "(2, 8, 8, 8)"  # objectness, 4 box values, 3 classes on an 8x8 grid


#: each template's own checks, run as one test per template (nothing to skip for the other one)
OWN_CHECKS = {"minimal": _minimal_own, "mxnet": _mxnet_own}


def test_what_only_this_template_does(tmp_path: Path, trained: Path, spec: Template, run_env: dict[str, str]) -> None:
    OWN_CHECKS[spec.name](tmp_path, trained, spec, run_env)
