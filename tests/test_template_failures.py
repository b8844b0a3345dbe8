"""A repository written the way the templates are (live-code.yaml, start.py handing train/mine/infer
to ``sdk.main``) whose task function raises: the real job, run by ``live-code run`` from a tag,
ends with the YMIR return code of the exception and its one-line reason in monitor.txt; the
traceback stays in the job's log. Issue 19, acceptance 6.

No framework is needed (``framework: none``), so this runs wherever the harness does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code.commands import sample
from live_code.contract import MonitorState, ReturnCode, TaskKind
from tests.helpers.repos import git, write_tree

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.needs_bwrap

#: what each kind raises, chosen by the hyper-parameter ``fail`` (one repo serves every case)
TRAIN_PY = '''
"""Training that fails as config.yaml's ``fail`` says."""
from live_code import sdk


class NoGpu(Exception):
    return_code = sdk.ReturnCode.NO_GPU


def run(env, config):
    sdk.write_progress(0.3, task=sdk.TaskKind.TRAINING)
    how = config["fail"]
    if how == "dataset":
        raise sdk.DatasetFormatError(env.input.training_index_file, "line 2", "no such image")
    if how == "model":
        raise sdk.ModelNotFoundError("no .pt file among pretrained_model_params []")
    if how == "gpu":
        raise NoGpu("gpu_id '0' asks for 1 GPU but torch sees 0")
    if how == "nan":
        raise FloatingPointError("the loss became nan at epoch 2; lower learning_rate")
    {}["boxes"]  # a bug: KeyError
'''

MINE_PY = """
from live_code import sdk


def run(env, config):
    sdk.score_candidates(lambda path, i: float(i), env=env)
"""

START_PY = '''
"""A template's start.py: the few lines a user writes."""
from live_code import sdk

if __name__ == "__main__":
    sdk.main(train="train:run", mine="mine:run")
'''

MANIFEST = """
framework: none
entry: python start.py
hyperparameters:
  training:
    fail: {type: str, default: bug, help: "what train.run raises"}
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    dest = tmp_path_factory.mktemp("repo") / "failing"
    dest.mkdir()
    write_tree(dest, {"live-code.yaml": MANIFEST, "start.py": START_PY, "train.py": TRAIN_PY, "mine.py": MINE_PY})
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "a repo whose training fails", cwd=dest)
    git("tag", "v1", cwd=dest)
    return str(dest), git("rev-parse", "HEAD", cwd=dest)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _run(task_dir: Path, repo: tuple[str, str], cache: Path, **config: object) -> subprocess.CompletedProcess[str]:
    path = task_dir / "in" / "config.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "git_url": repo[0], "git_tag": "v1", **config}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(LIVE_CODE_CACHE=str(cache), LIVE_CODE_ALLOW_LOCAL_REPOS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "live_code", "run", "--in", str(task_dir / "in"), "--out", str(task_dir / "out")]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(
    ("fail", "code", "reason"),
    [
        ("dataset", ReturnCode.DATASET_ERROR, "train-index.tsv: line 2: no such image"),
        ("model", ReturnCode.MODEL_NOT_FOUND, "no .pt file among pretrained_model_params []"),
        ("gpu", ReturnCode.NO_GPU, "gpu_id '0' asks for 1 GPU but torch sees 0"),
        ("nan", ReturnCode.NAN_IN_TRAINING, "the loss became nan at epoch 2; lower learning_rate"),
        ("bug", ReturnCode.CONTAINER_ERROR, "KeyError: 'boxes'"),
    ],
)
def test_an_exception_in_train_ends_the_task_with_its_ymir_code(
    tmp_path: Path, repo: tuple[str, str], cache: Path, fail: str, code: int, reason: str
) -> None:
    sample.write_sample_dataset(
        tmp_path, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0, images=4
    )
    res = _run(tmp_path, repo, cache, fail=fail)
    assert res.returncode == 5, res.stdout[-3000:] + res.stderr[-3000:]  # live-code's "the job failed"
    text = (tmp_path / "out" / "monitor.txt").read_text()
    record = contract.parse_monitor(text)
    assert (record.state, record.return_code) == (MonitorState.ERROR, code)
    # live-code's own record replaces the job's, one line as the job's was: the job failed, and why
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    assert record.message.startswith("job-failed: the job exited with code 1 (") and record.message.endswith(reason)
    # the job's own record, in the log: one line with the code's name and the reason, after the traceback
    lines = res.stdout.splitlines()
    (failed,) = [i for i, line in enumerate(lines) if "training failed with YMIR code" in line]
    assert f"training failed with YMIR code {int(code)} ({ReturnCode(code).name}): " in lines[failed]
    assert lines[failed].endswith(reason)
    assert any(line.startswith("Traceback (most recent call last)") for line in lines[:failed])
    assert "in run\n" in res.stdout  # the frame of train.run: the traceback went to the log
    prov = yaml.safe_load((tmp_path / "out" / "live-code-provenance.yaml").read_text())
    assert prov["outcome"]["return_code"] == code and prov["outcome"]["error"] == record.message


def test_the_job_alone_leaves_exactly_the_one_line_reason(
    tmp_path: Path, repo: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same start.py run directly (as YMIR's own image would, without live-code's record over
    it): monitor.txt is one line, state 4, the code and the reason, without the traceback."""
    sample.write_sample_dataset(tmp_path, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    task_env = contract.env_yaml(
        protocol=contract.PROTOCOL_1_1_0,
        task_id="t1",
        kinds=frozenset({TaskKind.TRAINING}),
        in_dir=str(tmp_path / "in"),
        out_dir=str(tmp_path / "out"),
    )
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(task_env))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"class_names": ["cat"], "fail": "model"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        PYTHONPATH=str(ROOT),
        **{contract.ENV_FILE_VAR: str(tmp_path / "env.yaml"), contract.CONFIG_FILE_VAR: str(tmp_path / "config.yaml")},
    )
    res = subprocess.run(
        [sys.executable, "start.py"], cwd=repo[0], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 1
    assert "Traceback (most recent call last)" in res.stderr
    text = (tmp_path / "out" / "monitor.txt").read_text()
    assert len(text.splitlines()) == 1 and "Traceback" not in text
    record = contract.parse_monitor(text)
    assert (record.percent, record.state, record.return_code) == (1.0, MonitorState.ERROR, ReturnCode.MODEL_NOT_FOUND)
    assert record.message == "no .pt file among pretrained_model_params []"


def test_the_same_repo_mines_through_the_sdk_helpers(tmp_path: Path, repo: tuple[str, str], cache: Path) -> None:
    sample.write_sample_dataset(
        tmp_path, kinds={TaskKind.MINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0, images=4
    )
    res = _run(tmp_path, repo, cache)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert len((tmp_path / "out" / "result.tsv").read_text().splitlines()) == 4
    record = contract.parse_monitor((tmp_path / "out" / "monitor.txt").read_text())
    assert (record.percent, record.state) == (1.0, MonitorState.RUNNING)
