"""What the template tests share: a template committed as a user's repo, a task run through
``live-code run`` from its tag, every output validated, and the sample's ground truth to score
predictions against; a template's module imported as its job imports it. Used by the
tests/test_template_*.py modules."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from live_code.run import outputs
from live_code.task import config
from tests.helpers.jobs import run_argv
from tests.helpers.repos import git

REPO = Path(__file__).resolve().parents[2]
MINING_INFER = frozenset({TaskKind.MINING, TaskKind.INFER})
Box = tuple[int, int, int, int]


def probe(python: str, code: str, timeout: float = 120) -> str | None:
    """None when ``code`` runs in ``python``, else why not."""
    try:
        res = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout, check=False)
    except OSError as e:
        return f"{python} cannot run: {e}"
    return None if res.returncode == 0 else (res.stderr.strip().splitlines() or ["failed"])[-1]


def load_module(template: Path, name: str) -> ModuleType:
    """``template``'s module ``name`` imported by path, as the job imports it (its folder on sys.path)."""
    if str(template) not in sys.path:
        sys.path.insert(0, str(template))
    spec = importlib.util.spec_from_file_location(f"{template.name}_template_{name}", template / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commit_template(template: Path, dest: Path, *, drop_requirement: str | None = None) -> tuple[str, str]:
    """``template`` as a user's repo at ``dest``: committed and tagged v1. Returns (url, commit)."""
    shutil.copytree(template, dest, ignore=shutil.ignore_patterns("__pycache__"))
    if drop_requirement:
        req = dest / "requirements.txt"
        req.write_text("".join(x for x in req.read_text().splitlines(True) if not x.startswith(drop_requirement)))
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", f"{template.name} template", cwd=dest)
    git("tag", "v1", cwd=dest)
    return str(dest), git("rev-parse", "HEAD", cwd=dest)


def harness_env(cache: Path, base_python: str) -> dict[str, str]:
    """The harness's environment for a test module: one cache, so the job env is built once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        LIVE_CODE_CACHE=str(cache),
        LIVE_CODE_ALLOW_LOCAL_REPOS="1",
        LIVE_CODE_BASE_PYTHON=base_python,
        PYTHONPATH=str(REPO),
    )
    return env


def check_static(repo: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``live-code check REPO --static`` (``URL@REV``) in the harness's environment ``env``."""
    cmd = [sys.executable, "-m", "live_code", "check", repo, "--static"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def configure(task_dir: Path, **values: object) -> None:
    path = task_dir / "in" / "config.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(values)
    path.write_text(yaml.safe_dump(data))


def run(
    task_dir: Path,
    env: dict[str, str],
    repo: tuple[str, str],
    *,
    wrap: tuple[str, ...] = (),
    args: tuple[str, ...] = (),
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """``live-code run`` of the task from tag v1 of ``repo``; the provenance must name its commit."""
    configure(task_dir, git_url=repo[0], git_tag="v1")
    cmd = [*wrap, *run_argv(task_dir / "in", task_dir / "out"), *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    prov = yaml.safe_load((task_dir / "out" / "live-code-provenance.yaml").read_text())
    assert prov["source"]["commit"] == repo[1]
    return res


def run_ok(task_dir: Path, env: dict[str, str], repo: tuple[str, str], **kwargs: object) -> str:
    res = run(task_dir, env, repo, **kwargs)  # type: ignore[arg-type]  # kwargs are run()'s own keywords
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-4000:]
    return res.stdout


def run_fails(
    task_dir: Path,
    env: dict[str, str],
    repo: tuple[str, str],
    code: contract.ReturnCode,
    says: str,
    **kwargs: object,
) -> subprocess.CompletedProcess[str]:
    """``live-code run`` that ends as a failed job: exit 5, monitor.txt's error state with ``code``,
    and ``says`` in the log."""
    res = run(task_dir, env, repo, **kwargs)  # type: ignore[arg-type]  # kwargs are run()'s own keywords
    assert res.returncode == 5, res.stdout[-3000:]
    record = contract.parse_monitor((task_dir / "out" / "monitor.txt").read_text())
    assert (record.state, record.return_code) == (contract.MonitorState.ERROR, code)
    assert says in res.stdout, res.stdout[-3000:]
    return res


def validate(task_dir: Path) -> list[outputs.Problem]:
    """Every output of the task and its monitor.txt, as the platform would read them."""
    task = config.load_task(task_dir / "in", out_dir=task_dir / "out")
    index = task.host_path(task.env.input.candidate_index_file) if task.env.input.candidate_index_file else None
    candidates = Path(index).read_text().split() if index else None
    problems = outputs.validate_outputs(
        task.kinds, task_dir / "out", task.protocol, task.config.class_names, candidates
    )
    return problems + outputs.validate_monitor(task_dir / "out" / "monitor.txt", task.task_id)


def training_result(task_dir: Path) -> dict[str, object]:
    result: dict[str, object] = yaml.safe_load((task_dir / "out" / "models" / "result.yaml").read_text())
    return result


def provenance(task_dir: Path) -> dict[str, object]:
    prov: dict[str, object] = yaml.safe_load((task_dir / "out" / "live-code-provenance.yaml").read_text())
    return prov


def best_stage(trained: Path) -> tuple[str, list[str]]:
    result = training_result(trained)
    best = str(result["best_stage_name"])
    return best, list(result["model_stages"][best]["files"])


def model_files(trained: Path) -> tuple[str | None, list[str]]:
    """(stage, files) of the best model: a v2 result.yaml's best stage, or the legacy ``model`` list."""
    result = training_result(trained)
    if "best_stage_name" in result:
        best = str(result["best_stage_name"])
        return best, list(result["model_stages"][best]["files"])
    return None, list(result["model"])


def mining_task(root: Path, trained: Path, kinds: frozenset[TaskKind] = MINING_INFER, **values: object) -> Path:
    """A mining and/or infer task (protocol 1.1.0, VOC) handed the best stage of ``trained`` as YMIR does."""
    sample.write_sample_dataset(root, kinds=kinds, fmt="voc", protocol=contract.PROTOCOL_1_1_0)
    best, files = best_stage(trained)
    shutil.copytree(trained / "out" / "models" / best, root / "in" / "models" / best)
    configure(root, model_params_path=[f"/in/models/{best}/{f}" for f in files], **values)
    return root


def gt_boxes(count: int = 24) -> dict[str, list[tuple[str, int, int, int, int]]]:
    """The sample dataset's true boxes by image file name: (class, x, y, w, h)."""
    return {
        f"{im.sha1}.png": [(b.class_name, b.xmin, b.ymin, b.w, b.h) for b in im.boxes]
        for im in sample.draw_images(count)
    }


def found_boxes(detection: dict[str, Any], truth: dict[str, list[tuple[str, int, int, int, int]]]) -> int:
    """How many of the ``truth`` boxes (:func:`gt_boxes`) infer-result.json's ``detection`` found: a
    box of the same class on the image with an IoU of 0.5 or more."""
    return sum(
        any(
            d["class_name"] == name
            and iou((d["box"]["x"], d["box"]["y"], d["box"]["w"], d["box"]["h"]), (x, y, w, h)) >= 0.5
            for d in detection[image]["boxes"]
        )
        for image, boxes in truth.items()
        for name, x, y, w, h in boxes
    )


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0, iw) * max(0, ih)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)
