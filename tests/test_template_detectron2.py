"""remote_templates/detectron2 through ``live-code run`` on the CPU (issue 21), two ways of getting
detectron2, which is not on the registry:

- the wheelhouse: tests/run.sh builds detectron2's wheel once per machine from
  ../shared/sources/detectron2.bundle at the pinned commit, against the yolov5 base's torch +
  torchvision (``LIVE_CODE_TEST_YOLO_PYTHON``), into ``LIVE_CODE_TEST_DETECTRON2_WHEELHOUSE``. The
  template is committed with its VCS line replaced by ``detectron2==0.6`` (a VCS requirement is
  always fetched, never taken from a wheelhouse) and the tasks name the folder in
  ``pip_find_links``; the other requirements come from the registry. Training from scratch
  (RetinaNet R50-FPN at 128 px, a stage with the COCOEvaluator's AP50 every few iterations,
  TensorBoard scalars), finetuning from its best stage, mining with random, entropy and cald (cald
  with infer), and a full ``live-code check``.
- the air-gapped site: the template exactly as committed, run in a network namespace where only
  127.0.0.1 exists. A git server there (https, a certificate made here and handed over as the
  operator's SSL_CERT_FILE / GIT_SSL_CAINFO) serves the template's repository and the bundle as
  github.com's mirror (``LIVE_CODE_GIT_MIRRORS``); the installer builds detectron2 from it against
  the base's torch (no_build_isolation) and takes everything else from an offline wheelhouse
  (``LIVE_CODE_TEST_DETECTRON2_DEPS``, also made by tests/run.sh). Nothing else can be reached, so
  a run that passes asked no other host; the server's log shows what it served.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from tests.adversarial.servers import make_cert
from tests.helpers.repos import git
from tests.helpers.template_runs import (
    MINING_INFER,
    configure,
    harness_env,
    mining_task,
    probe,
    run_ok,
    training_result,
    validate,
)
from tests.helpers.tensorboard import read_events

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "remote_templates" / "detectron2"
PYTHON = os.environ.get("LIVE_CODE_TEST_YOLO_PYTHON", "")
WHEELHOUSE = os.environ.get("LIVE_CODE_TEST_DETECTRON2_WHEELHOUSE", "")
DEPS = os.environ.get("LIVE_CODE_TEST_DETECTRON2_DEPS", "")
BUNDLE = os.environ.get("LIVE_CODE_TEST_DETECTRON2_BUNDLE", "")
VCS_LINE = re.compile(r"^detectron2 @ git\+https://github\.com/facebookresearch/detectron2@([0-9a-f]{40})$", re.M)
#: small enough for a CPU: RetinaNet R50-FPN from scratch at 128 px (the sample's images are 128x128),
#: a stage (and an evaluation) every 20 iterations, no loader processes; about 2 s an iteration on 2
#: cores. 40 iterations teach little (AP50 0.31 then 0.11 where this was written): the run, the stages
#: and their metric being the evaluator's are what is tested, not the model
TRAINING = {
    "config_file": "COCO-Detection/retinanet_R_50_FPN_1x.yaml",
    "img_size": 128,
    "batch_size": 4,
    "learning_rate": 0.01,
    "num_workers": 0,
}


def _no_wheel() -> str | None:
    if not WHEELHOUSE:
        return (
            "LIVE_CODE_TEST_DETECTRON2_WHEELHOUSE is not set (tests/run.sh builds detectron2's wheel from "
            "../shared/sources/detectron2.bundle and sets it)"
        )
    if not glob.glob(os.path.join(WHEELHOUSE, "detectron2-*.whl")):
        return f"no detectron2 wheel in {WHEELHOUSE} (tests/run.sh builds it)"
    return None


_NO_FRAMEWORK = (
    probe(PYTHON, "import torch, torchvision", timeout=300)
    if PYTHON
    else ("LIVE_CODE_TEST_YOLO_PYTHON is not set (tests/run.sh makes .venv-yolo with torch and torchvision)")
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.framework,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(_NO_FRAMEWORK is not None, reason=f"needs torch and torchvision: {_NO_FRAMEWORK}"),
    pytest.mark.needs_bwrap,
]
needs_wheel = pytest.mark.skipif(_no_wheel() is not None, reason=str(_no_wheel()))


def _wheel_version() -> str:
    (wheel,) = glob.glob(os.path.join(WHEELHOUSE, "detectron2-*.whl"))
    return os.path.basename(wheel).split("-")[1]


@pytest.fixture(scope="module")
def run_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return harness_env(tmp_path_factory.mktemp("cache"), PYTHON)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The template as a user's repo, its VCS line replaced by the wheel's version (from pip_find_links)."""
    dest = tmp_path_factory.mktemp("template") / "detectron2"
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    req = dest / "requirements.txt"
    text, count = VCS_LINE.subn(f"detectron2=={_wheel_version()}", req.read_text())
    assert count == 1
    req.write_text(text)
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "detectron2 template, detectron2 from a wheelhouse", cwd=dest)
    git("tag", "v1", cwd=dest)
    return str(dest), git("rev-parse", "HEAD", cwd=dest)


def _run(task_dir: Path, env: dict[str, str], repo: tuple[str, str], **values: object) -> str:
    configure(task_dir, pip_find_links=[WHEELHOUSE], **values)
    return run_ok(task_dir, env, repo, timeout=1800)


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, run_env: dict[str, str], template: tuple[str, str]
) -> tuple[Path, str]:
    task_dir = tmp_path_factory.mktemp("train")
    sample.write_sample_dataset(task_dir, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    start = time.monotonic()
    out = _run(task_dir, run_env, template, max_iter=40, checkpoint_period=20, **TRAINING)
    print(f"detectron2 training task (env build included): {time.monotonic() - start:.0f} s")
    return task_dir, out


@pytest.mark.registry
@needs_wheel
def test_training_writes_a_stage_per_evaluation_with_ap50_and_scalars(trained: tuple[Path, str]) -> None:
    task_dir, out = trained
    assert validate(task_dir) == []
    result = training_result(task_dir)
    stages = result["model_stages"]
    assert sorted(stages, key=lambda s: int(s.split("_")[1])) == ["iter_20", "iter_40"]
    evaluated = [float(v) for v in re.findall(r"copypaste: [\d.na]+,([\d.na]+),", out)]  # AP,AP50,AP75,...
    assert len(evaluated) == 2 and all(v == v for v in evaluated), "the COCOEvaluator's AP50 at each stage"
    for (name, stage), ap50 in zip(sorted(stages.items(), key=lambda s: int(s[0].split("_")[1])), evaluated):
        assert stage["files"] == [f"{name}.pth", f"{name}.yaml", "pylock.toml"]  # the env's lock (issue 22)
        assert stage["mAP"] == pytest.approx(ap50 / 100, abs=1e-4), "the stage's metric is the evaluator's AP50"
        assert "NUM_CLASSES: 3" in (task_dir / "out" / "models" / name / f"{name}.yaml").read_text()
    assert "from scratch" in out
    prov = yaml.safe_load((task_dir / "out" / "live-code-provenance.yaml").read_text())
    assert f"detectron2=={_wheel_version()}" in prov["environment"]["added"]
    assert prov["environment"]["no_build_isolation"] == ["detectron2"]
    tags = {
        scalar.tag
        for path in (task_dir / "out" / "tensorboard").glob("events.out.tfevents.*")
        for scalar in read_events(path)[1]
    }
    assert {"total_loss", "lr", "bbox/AP50"} <= tags


@pytest.mark.registry
@needs_wheel
def test_finetuning_loads_the_best_stage(
    tmp_path: Path, run_env: dict[str, str], template: tuple[str, str], trained: tuple[Path, str]
) -> None:
    task = mining_task(tmp_path / "ft", trained[0], frozenset({TaskKind.TRAINING}))
    files = yaml.safe_load((task / "in" / "config.yaml").read_text()).pop("model_params_path")
    out = _run(task, run_env, template, pretrained_model_params=files, max_iter=2, checkpoint_period=2, **TRAINING)
    best = str(training_result(trained[0])["best_stage_name"])
    assert f"training /in/models/{best}/{best}.yaml for 2 iterations on cpu, from /in/models/{best}/{best}.pth" in out
    assert validate(task) == []


@pytest.mark.registry
@needs_wheel
@pytest.mark.parametrize("algorithm", ["random", "entropy"])
def test_mining_scores_every_candidate(
    tmp_path: Path, run_env: dict[str, str], template: tuple[str, str], trained: tuple[Path, str], algorithm: str
) -> None:
    task = mining_task(tmp_path / algorithm, trained[0], frozenset({TaskKind.MINING}))
    _run(task, run_env, template, mining_algorithm=algorithm, conf_thres=0.05, num_workers=0)
    assert validate(task) == []
    rows = (task / "out" / "result.tsv").read_text().splitlines()
    assert len(rows) == len((task / "in" / "candidate-index.tsv").read_text().split())


@pytest.mark.registry
@needs_wheel
def test_cald_mining_and_infer_in_one_run(
    tmp_path: Path, run_env: dict[str, str], template: tuple[str, str], trained: tuple[Path, str]
) -> None:
    task = mining_task(tmp_path / "cald", trained[0], MINING_INFER)
    out = _run(task, run_env, template, mining_algorithm="cald", conf_thres=0.05, num_workers=0)
    assert f"mining {len((task / 'in' / 'candidate-index.tsv').read_text().split())} images with cald" in out
    assert validate(task) == []
    assert (task / "out" / "infer-result.json").is_file() and (task / "out" / "result.tsv").is_file()


@pytest.mark.registry
@needs_wheel
def test_live_code_check_passes(tmp_path: Path, run_env: dict[str, str], template: tuple[str, str]) -> None:
    """Static checks and a smoke run of each task kind (training, then mining + infer with its model)."""
    sets = [f"{k}={v}" for k, v in {**TRAINING, "max_iter": 2, "checkpoint_period": 2}.items()]
    sets.append(f"pip_find_links=[{WHEELHOUSE}]")
    cmd = [sys.executable, "-m", "live_code", "check", template[0], *[a for s in sets for a in ("--set", s)]]
    res = subprocess.run(cmd, env=run_env, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "ok    smoke training" in res.stdout and "ok    smoke mining+infer" in res.stdout
    assert "all checks passed" in res.stdout


# -- the air-gapped site: a git mirror on 127.0.0.1 and an offline wheelhouse ----------------------------

# Runs inside the network namespace: the git server (https) and the harness, then the server's log.
_DRIVER = """\
import json, socket, subprocess, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.adversarial.servers import TlsGitServer

args = json.loads(Path(sys.argv[1]).read_text())
try:
    socket.create_connection(("1.1.1.1", 443), timeout=5).close()
    isolated = False
except OSError:
    isolated = True
with TlsGitServer(Path(args["root"]), (Path(args["cert"]), Path(args["key"]))) as srv:
    env = dict(args["env"], LIVE_CODE_GIT_MIRRORS=f"https://github.com/=https://127.0.0.1:{{srv.port}}/")
    code = subprocess.run(args["cmd"], env=env, stdin=subprocess.DEVNULL).returncode
    log = {{"port": srv.port, "requests": srv.requests, "isolated": isolated}}
Path(args["log"]).write_text(json.dumps(log))
sys.exit(code)
"""


def _no_air_gap() -> str | None:
    if not BUNDLE or not os.path.isfile(BUNDLE):
        return (
            "LIVE_CODE_TEST_DETECTRON2_BUNDLE names no bundle "
            "(tests/run.sh sets it to ../shared/sources/detectron2.bundle)"
        )
    if not DEPS or not os.path.isdir(DEPS):
        return (
            "LIVE_CODE_TEST_DETECTRON2_DEPS is not set or missing (tests/run.sh collects the template's other wheels)"
        )
    if shutil.which("openssl") is None:
        return "needs the openssl CLI to make the mirror's certificate"
    if shutil.which("bwrap") is None:
        return "needs bubblewrap for a network namespace"
    probe_ns = subprocess.run(
        ["bwrap", "--dev-bind", "/", "/", "--unshare-net", "--", "true"], capture_output=True, timeout=60
    )
    if probe_ns.returncode != 0:
        return "bubblewrap cannot make a network namespace here (--unshare-net)"
    return None


@pytest.mark.skipif(_no_air_gap() is not None, reason=str(_no_air_gap()))
def test_air_gapped_site_builds_detectron2_from_the_mirror_of_github(tmp_path: Path) -> None:
    """The template exactly as committed, its source and its detectron2 line fetched through
    LIVE_CODE_GIT_MIRRORS from a server on 127.0.0.1, in a network namespace with nothing else."""
    served = tmp_path / "served"
    template = tmp_path / "work" / "detectron2"
    shutil.copytree(TEMPLATE, template, ignore=shutil.ignore_patterns("__pycache__"))
    git("init", "-q", "-b", "main", cwd=template)
    git("add", "-A", cwd=template)
    git("commit", "-q", "-m", "detectron2 template", cwd=template)
    commit = git("rev-parse", "HEAD", cwd=template)
    (served / "live-code-tests").mkdir(parents=True)
    git("clone", "-q", "--bare", str(template), str(served / "live-code-tests" / "detectron2"), cwd=tmp_path)
    (served / "facebookresearch").mkdir()
    git("clone", "-q", "--bare", BUNDLE, str(served / "facebookresearch" / "detectron2"), cwd=tmp_path)
    pinned = VCS_LINE.search((TEMPLATE / "requirements.txt").read_text())
    assert pinned is not None
    assert git("cat-file", "-t", pinned[1], cwd=served / "facebookresearch" / "detectron2") == "commit"

    cert = make_cert(tmp_path)
    assert cert is not None
    bundle = tmp_path / "site-ca.pem"  # the site's CA appended to the system's, as operators do
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    bundle.write_text((system.read_text() if system.is_file() else "") + cert[0].read_text())
    task = tmp_path / "task"
    sample.write_sample_dataset(task, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    configure(
        task,
        git_url="https://github.com/live-code-tests/detectron2",
        git_commit=commit,
        pip_find_links=[DEPS],
        pip_offline=True,
        max_iter=2,
        checkpoint_period=2,
        **{**TRAINING, "batch_size": 2},
    )
    env = harness_env(tmp_path / "cache", PYTHON)
    env.pop("LIVE_CODE_ALLOW_LOCAL_REPOS")
    env.update(SSL_CERT_FILE=str(bundle), GIT_SSL_CAINFO=str(bundle))
    args = {
        "root": str(served),
        "cert": str(cert[0]),
        "key": str(cert[1]),
        "env": env,
        "log": str(tmp_path / "served.json"),
        "cmd": [sys.executable, "-m", "live_code", "run", "--in", str(task / "in"), "--out", str(task / "out")],
    }
    (tmp_path / "args.json").write_text(json.dumps(args))
    (tmp_path / "driver.py").write_text(_DRIVER.format(repo=str(REPO)))
    start = time.monotonic()
    res = subprocess.run(
        [
            "bwrap",
            "--dev-bind",
            "/",
            "/",
            "--unshare-net",
            "--die-with-parent",
            "--",
            sys.executable,
            str(tmp_path / "driver.py"),
            str(tmp_path / "args.json"),
        ],
        capture_output=True,
        text=True,
        timeout=2400,
    )
    print(f"air-gapped detectron2 training task (detectron2 built from the mirror): {time.monotonic() - start:.0f} s")
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-4000:]
    log = json.loads((tmp_path / "served.json").read_text())
    assert log["isolated"], "the namespace reached a host other than 127.0.0.1"
    mirror = f"https://127.0.0.1:{log['port']}"
    assert {"/".join(r.split()[1].split("/")[1:3]) for r in log["requests"]} == {
        "live-code-tests/detectron2",
        "facebookresearch/detectron2",
    }
    assert validate(task) == []
    prov = yaml.safe_load((task / "out" / "live-code-provenance.yaml").read_text())
    assert prov["source"]["url"] == "https://github.com/live-code-tests/detectron2"
    assert prov["source"]["mirror"] == f"{mirror}/live-code-tests/detectron2" and prov["source"]["commit"] == commit
    environment = prov["environment"]
    line = next(
        n
        for n, t in enumerate((TEMPLATE / "requirements.txt").read_text().splitlines(), 1)
        if t.startswith("detectron2 @")
    )
    assert environment["git_mirrors"] == [
        {
            "requirement": f"requirements.txt:{line}",
            "url": "https://github.com/facebookresearch/detectron2",
            "mirror": f"{mirror}/facebookresearch/detectron2",
        }
    ]
    assert environment["no_build_isolation"] == ["detectron2"] and environment["index"]["offline"] is True
    assert any(a.startswith("detectron2==") for a in environment["added"])
    assert "building without build isolation, against the job env and its base: detectron2" in res.stdout + res.stderr
    print(f"env build (detectron2 from source included): {environment['seconds']:.0f} s")
