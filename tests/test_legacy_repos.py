"""Issue 18: repositories written for the original live-code image run unchanged.

Two fixture repos in tests/resources/user_repos/ are written the way each generation of user code
was, and list nothing they import from the image: ``ymir_exc1`` (start.py at the root, PyPI
ymir-exc 1.1 style: ``env.get_executor_config``, ``dataset_reader.item_paths``,
``result_writer.write_training_result(model_names=...)``, loguru, cv2) and ``ymir_exc2``
(``ymir/start.py`` importing ``ymir.ymir_util`` from the repo root, executor SDK 2.x style:
``get_merged_config``, ``get_weight_files``, ``write_ymir_training_result``,
``write_ymir_monitor_process``, easydict, tensorboardX). Each is committed into a real git repo and
run through ``live-code run`` for training, then mining+infer with the trained model, on the
protocols its SDK writes, with the network shut off during the run (a network namespace with only
loopback): everything it is given comes from the SDK wheelhouse that tests/run.sh builds. Every
output is validated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from live_code.task import legacy
from tests.helpers import template_runs as runs
from tests.helpers.jobs import run_argv
from tests.helpers.repos import git

REPOS = Path(__file__).parent / "resources" / "user_repos"
TRAINING = frozenset({TaskKind.TRAINING})
MINING_INFER = frozenset({TaskKind.MINING, TaskKind.INFER})
#: (repo, protocol, export format): the protocols each SDK writes. ymir-exc 1.1 writes YMIR 1.1's
#: formats (legacy result.yaml, ``annotations``), which YMIR 2.x still reads (ymir-contract.md §6.2,
#: §8.1); the 2.x SDK writes either, choosing by the task's protocol. 1.x code reads ark annotations.
CASES = [
    ("ymir_exc1", contract.PROTOCOL_0_0_1, "ark"),
    ("ymir_exc1", contract.PROTOCOL_1_1_0, "ark"),
    ("ymir_exc2", contract.PROTOCOL_0_0_1, "ark"),
    ("ymir_exc2", contract.PROTOCOL_1_1_0, "voc"),
]
SDK = {"ymir_exc1": f"ymir-exc=={legacy.SDK1_VERSION}", "ymir_exc2": f"ymir-exc=={legacy.SDK2_VERSION}"}


def _no_network_reason() -> str | None:
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux) to run without a network"
    argv = ["unshare", "--net", "true"] if os.geteuid() == 0 else ["unshare", "-rn", "true"]
    if subprocess.run(argv, capture_output=True).returncode != 0:
        return "cannot create a network namespace here"
    return None


NO_NET = ("unshare", "--net") if os.geteuid() == 0 else ("unshare", "-rn")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("LIVE_CODE_TEST_SDK_WHEELHOUSE"),
        reason="needs the SDK wheelhouse: tests/run.sh builds it from "
        "../shared/sources/ymir-executor-sdk.bundle (LIVE_CODE_TEST_SDK_WHEELHOUSE)",
    ),
    pytest.mark.skipif(_no_network_reason() is not None, reason=str(_no_network_reason())),
]


@pytest.fixture(scope="module")
def base_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A framework interpreter with nothing installed: every package a job gets is visible."""
    path = tmp_path_factory.mktemp("base") / "venv"
    venv.create(path, with_pip=False)
    return str(path / "bin" / "python")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, base_python: str) -> dict[str, str]:
    env = runs.harness_env(tmp_path_factory.mktemp("cache"), base_python)
    env[legacy.WHEELHOUSE_VAR] = os.environ["LIVE_CODE_TEST_SDK_WHEELHOUSE"]
    return env


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    root = tmp_path_factory.mktemp("repos")
    return {name: runs.commit_template(REPOS / name, root / name) for name in SDK}


def _task(root: Path, kinds: frozenset[TaskKind], protocol: str, fmt: str) -> Path:
    sample.write_sample_dataset(root, kinds=kinds, fmt=fmt, protocol=protocol, images=8)
    # the original image's keys: git_branch (a tag here) and the code_config the web form asks for
    runs.configure(root, code_config="configs/default.yaml", export_format=f"{fmt}:raw")
    return root


def _run_offline(task_dir: Path, env: dict[str, str], repo: tuple[str, str]) -> str:
    runs.configure(task_dir, git_url=repo[0], git_branch="v1")
    cmd = [*NO_NET, *run_argv(task_dir / "in", task_dir / "out")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-4000:]
    assert runs.validate(task_dir) == []
    return res.stdout + res.stderr


def _mining_task(root: Path, trained: Path, protocol: str, fmt: str) -> Path:
    _task(root, MINING_INFER, protocol, fmt)
    stage, files = runs.model_files(trained)
    models = trained / "out" / "models"
    dest = root / "in" / "models" / (stage or "")  # YMIR 1.1 hands flat files, 2.x the stage's folder
    dest.mkdir(parents=True, exist_ok=True)
    for name in files:  # YMIR's packer looks in the stage's folder first, then in models/ itself
        in_stage = models / (stage or "") / name
        shutil.copy2(in_stage if in_stage.is_file() else models / name, dest / name)
    runs.configure(root, model_params_path=[f"/in/models/{stage + '/' if stage else ''}{f}" for f in files])
    return root


def test_the_run_has_no_network(tmp_path: Path) -> None:
    """What _run_offline wraps the harness in has no interface but loopback."""
    res = subprocess.run([*NO_NET, "cat", "/proc/self/net/dev"], capture_output=True, text=True, check=True)
    interfaces = [line.split(":")[0].strip() for line in res.stdout.splitlines()[2:]]
    assert interfaces == ["lo"]


@pytest.mark.parametrize(("name", "protocol", "fmt"), CASES)
def test_a_repo_written_for_the_original_image_trains_then_mines_and_infers_offline(
    tmp_path: Path, repos: dict[str, tuple[str, str]], harness: dict[str, str], name: str, protocol: str, fmt: str
) -> None:
    trained = _task(tmp_path / "train", TRAINING, protocol, fmt)
    log = _run_offline(trained, harness, repos[name])
    prov = runs.provenance(trained)
    env = prov["environment"]
    assert env["index"]["offline"] is True and env["index"]["find_links"] == [harness[legacy.WHEELHOUSE_VAR]]
    assert SDK[name] in env["added"], env["added"]
    implied = prov["legacy"]
    assert implied["ymir_exc"]["sdk"] == SDK[name]
    expected_reason = "only the 2.x SDK has" if name == "ymir_exc2" else "imports ymir_exc and no file uses"
    assert expected_reason in implied["ymir_exc"]["reason"]
    assert {p["requirement"] for p in implied["packages"]} == {SDK[name], *legacy.EXTRAS.values()}
    assert all(p["why"].startswith(legacy.IMPLIED) for p in implied["packages"])
    assert f"executor SDK: {SDK[name]}" in log  # said in the log too
    assert "loguru==0.7.3" in env["added"] and "opencv-python-headless==4.10.0.84" in env["added"]

    mined = _mining_task(tmp_path / "mine", trained, protocol, fmt)
    _run_offline(mined, harness, repos[name])
    lines = (mined / "out" / "result.tsv").read_text().splitlines()
    assert len(lines) == len((mined / "in" / "candidate-index.tsv").read_text().split())
    detection = yaml.safe_load((mined / "out" / "infer-result.json").read_text())["detection"]
    assert len(detection) == len(lines) and all(detection.values())


def _legacy_repo(make_repo, files: dict[str, str]) -> tuple[str, str]:
    path = make_repo(files, tag="v1")
    return str(path), git("rev-parse", "HEAD", cwd=path)


def _plain_task(root: Path) -> Path:
    sample.write_sample_dataset(root, kinds=TRAINING, fmt="voc", protocol=contract.PROTOCOL_1_1_0, images=6)
    return root


def _run(task_dir: Path, env: dict[str, str], repo: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    runs.configure(task_dir, git_url=repo[0], git_branch="v1")
    cmd = [sys.executable, "-m", "live_code", "run", "--in", str(task_dir / "in"), "--out", str(task_dir / "out")]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


JOB = """\
import os
import easydict, loguru, cv2
from live_code import sdk
env = sdk.read_env()
os.makedirs(env.output.models_dir, exist_ok=True)
with open(os.path.join(env.output.models_dir, "model.txt"), "w") as f:
    f.write("x")
sdk.write_model_stage("epoch_1", ["model.txt"], 0.5)
print("job ran with easydict", easydict.__name__)
"""


@pytest.mark.registry
def test_a_legacy_repo_with_both_requirement_files_gets_extra_requirements_txt(
    tmp_path: Path, make_repo, harness: dict[str, str]
) -> None:
    """The original image installed extra-requirements.txt only: requirements.txt beside it (here a
    line no index serves, so installing it would fail) is upstream's list, not the job's."""
    repo = _legacy_repo(
        make_repo,
        {
            "start.py": JOB,
            "extra-requirements.txt": "easydict==1.13\n",
            "requirements.txt": "live-code-no-such-package==9.9.9\n",
        },
    )
    res = _run(_plain_task(tmp_path), harness, repo)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "job ran with easydict" in res.stdout
    env = runs.provenance(tmp_path)["environment"]
    assert env["requirements_file"] == "extra-requirements.txt"
    assert "requirements.txt beside it is not installed" in env["requirements_reason"]
    assert "requirements: extra-requirements.txt" in res.stderr + res.stdout  # said in the log
    assert "easydict==1.13" in env["added"]
    # check reports the same file, with the same reason
    check = runs.check_static(f"{repo[0]}@v1", harness)
    assert "requirements file" in check.stdout and env["requirements_reason"] in check.stdout, check.stdout


def test_a_manifest_repo_that_forgets_a_package_still_fails_naming_it(
    tmp_path: Path, make_repo, harness: dict[str, str]
) -> None:
    """Only the legacy layout is given loguru and the rest: a live-code.yaml repo lists what it needs."""
    repo = _legacy_repo(make_repo, {"live-code.yaml": "entry: python start.py\n", "start.py": JOB})
    res = _run(_plain_task(tmp_path), harness, repo)
    assert res.returncode == 5, res.stdout[-3000:] + res.stderr[-3000:]
    assert "No module named 'easydict'" in res.stdout + res.stderr
    prov = runs.provenance(tmp_path)
    assert "No module named 'easydict'" in prov["outcome"]["error"]  # type: ignore[index]  # provenance read from YAML is dict[str, object]
    assert "legacy" not in prov and prov["environment"]["added"] == []  # type: ignore[index]  # provenance read from YAML is dict[str, object]


@pytest.mark.parametrize(("option", "expected"), [(2, SDK["ymir_exc2"]), ("none", None)])
def test_the_task_key_overrides_the_sdk_detected(
    tmp_path: Path, repos: dict[str, tuple[str, str]], harness: dict[str, str], option: object, expected: str | None
) -> None:
    """live_code_ymir_exc forces an SDK: here on the 1.x repo, the 2.x SDK or none."""
    task = _task(tmp_path, TRAINING, contract.PROTOCOL_0_0_1, "ark")
    runs.configure(task, live_code_ymir_exc=option)
    res = _run(task, harness, repos["ymir_exc1"])
    implied = runs.provenance(task)["legacy"]
    assert implied["ymir_exc"] == {"sdk": expected or "none", "reason": f"live_code_ymir_exc: {option}"}
    added = runs.provenance(task)["environment"]["added"]  # type: ignore[index]  # provenance read from YAML is dict[str, object]
    assert [a for a in added if a.startswith("ymir-exc==")] == ([expected] if expected else [])
    assert res.returncode == 5  # 1.x code over another SDK, or none (nor its PyYAML), fails in the job


def test_a_ymir_exc_line_of_the_repo_wins(tmp_path: Path, make_repo, harness: dict[str, str]) -> None:
    """A repo that lists ymir-exc itself gets its own line, not the one detected (2.x here)."""
    repo = _legacy_repo(
        make_repo,
        {
            "start.py": "from ymir_exc.util import get_merged_config\nimport ymir_exc.result_writer as rw\n"
            "print('has write_model_stage:', hasattr(rw, 'write_model_stage'))\n",
            "extra-requirements.txt": "ymir-exc==1.1.0.523\n",
        },
    )
    res = _run(_plain_task(tmp_path), harness, repo)
    assert "No module named 'ymir_exc.util'" in res.stdout + res.stderr  # the 1.x it asked for
    implied = runs.provenance(tmp_path)["legacy"]
    assert implied["ymir_exc"]["sdk"] == "none"
    assert "lists its own ymir-exc (extra-requirements.txt:1)" in implied["ymir_exc"]["reason"]


def test_prefetch_builds_the_env_a_legacy_task_then_reuses(
    tmp_path: Path, repos: dict[str, tuple[str, str]], harness: dict[str, str]
) -> None:
    """``live-code prefetch`` (a derived image's recipe) computes the key the run computes, the
    implied packages included: the offline run installs nothing."""
    env = {**harness, "LIVE_CODE_CACHE": str(tmp_path / "cache")}
    url, commit = repos["ymir_exc2"]
    res = subprocess.run(
        [sys.executable, "-m", "live_code", "prefetch", url, commit],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    log = _run_offline(_task(tmp_path / "task", TRAINING, contract.PROTOCOL_1_1_0, "voc"), env, (url, commit))
    assert "reusing env" in log and "installing" not in log
