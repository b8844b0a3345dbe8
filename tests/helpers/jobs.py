"""Small jobs and the CLI that runs them: ``RUN_JOB`` and ``Task`` for ``live-code run`` on a task
folder (tests/test_pipeline.py and others), ``LOCAL_JOB`` for ``live-code local``, ``check`` and
``replay`` (tests/test_local.py and others)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from live_code import contract

ROOT = Path(__file__).resolve().parents[2]

# The end of a job that writes valid outputs for whatever the task asks, through the SDK: the job's
# code before it has imported ``sdk`` and read ``env = sdk.read_env()``.
JOB_OUTPUTS = """\
cands = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)] if env.run_mining or env.run_infer else []
if env.run_mining:
    sdk.write_mining_result([(c, float(n)) for n, c in enumerate(cands)])
if env.run_infer:
    det = sdk.Detection(class_name=sdk.read_config()["class_names"][0], score=0.5, x=1, y=1, w=5, h=5)
    sdk.write_infer_result({c: [det] for c in cands})
sdk.write_progress(1.0)
print("job finished", flush=True)
"""
# A job in the legacy layout that writes valid outputs for whatever the task asks, through the SDK.
RUN_JOB = "\nfrom live_code import sdk\nenv = sdk.read_env()\n" + JOB_OUTPUTS


# A legacy-layout job writing valid outputs for any task through the SDK (deterministic).
LOCAL_JOB = textwrap.dedent("""
    from live_code import sdk
    env = sdk.read_env()
    names = sdk.read_config()["class_names"]
    if env.run_training:
        import os
        os.makedirs(env.output.models_dir + "/best", exist_ok=True)
        open(env.output.models_dir + "/best/model.txt", "w").write("weights")
        sdk.write_model_stage("best", ["model.txt"], 0.5)
    cands = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)] if env.run_mining or env.run_infer else []
    if env.run_mining:
        sdk.write_mining_result([(c, float(n)) for n, c in enumerate(cands)])
    if env.run_infer:
        det = sdk.Detection(class_name=names[0], score=0.5, x=1, y=1, w=5, h=5)
        sdk.write_infer_result({c: [det] for c in cands})
    print("config seen:", sorted(k for k in sdk.read_config() if k.startswith("my_")))
""")


class Task:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.in_dir, self.out_dir = root / "in", root / "out"

    def set_config(self, **values: Any) -> None:
        path = self.in_dir / "config.yaml"
        data = yaml.safe_load(path.read_text())
        data.update(values)
        path.write_text(yaml.safe_dump(data))

    def monitor(self) -> contract.MonitorRecord:
        return contract.parse_monitor((self.out_dir / "monitor.txt").read_text())

    def provenance(self) -> dict[str, Any]:
        return yaml.safe_load((self.out_dir / "live-code-provenance.yaml").read_text())


def cli_env(*, allow_local_repos: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a ``live-code`` command run in a test: this one without pytest's variables,
    the harness importable, and ``extra``. ``allow_local_repos`` sets LIVE_CODE_ALLOW_LOCAL_REPOS, which
    the tasks of ``live-code run`` need for their file:// repos; a researcher's command (local, check,
    replay, lock) runs without it, as a researcher types it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(ROOT)
    if allow_local_repos:
        env["LIVE_CODE_ALLOW_LOCAL_REPOS"] = "1"
    env.update(extra)
    return env


#: run what follows as uid/gid 54321 with no groups (a user who owns none of the harness's files)
AS_OTHER_USER = ("setpriv", "--reuid=54321", "--regid=54321", "--clear-groups")


def sample_task(root: Path, kinds: frozenset[contract.TaskKind], images: int) -> Task:
    """A task folder ``root`` holding a drawn VOC dataset of ``images`` pictures for ``kinds`` (protocol 1.1.0)."""
    from live_code.commands import sample

    sample.write_sample_dataset(root, kinds=kinds, fmt="voc", protocol=contract.PROTOCOL_1_1_0, images=images)
    return Task(root)


def cli_argv(*args: str, python: str = sys.executable) -> list[str]:
    """``live-code ARGS`` as ``python`` (the tests' own interpreter unless named) runs it."""
    return [python, "-m", "live_code", *args]


def run_argv(in_dir: Path, out_dir: Path, python: str = sys.executable) -> list[str]:
    """``live-code run --in IN --out OUT`` as ``python`` runs it."""
    return cli_argv("run", "--in", str(in_dir), "--out", str(out_dir), python=python)


def local_argv(
    repo: str | Path, *, task: str, dataset: str | Path = "sample", work: Path | None = None, images: int | None = None
) -> list[str]:
    """The arguments of ``live-code local`` (without the interpreter): ``repo`` as given (``URL@REV`` or a
    folder), the task kinds, the dataset (``sample`` draws one, of ``images`` pictures when given) and the
    work folder when given."""
    argv = ["local", "--repo", str(repo), "--task", task, "--dataset", str(dataset)]
    if images is not None:
        argv += ["--images", str(images)]
    return argv if work is None else [*argv, "--work", str(work)]


def _captured(
    argv: list[str], *, env: Mapping[str, str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end, its output captured as text."""
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_cli(
    task: Task, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``live-code run`` of ``task`` with ``args`` (local repos allowed, unless ``env`` says otherwise)."""
    return _captured([*run_argv(task.in_dir, task.out_dir), *args], env=env or cli_env(), timeout=timeout)


def start_cli(task: Task, *args: str) -> subprocess.Popen[str]:
    cmd = [*run_argv(task.in_dir, task.out_dir), *args]
    return subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def python_for_others(base: Path) -> str:
    """An interpreter another uid can run, with the harness importable: this machine's Python may
    live under /root (mode 700), so a venv over the system python reads the harness's packages."""
    real = Path(os.path.realpath(sys.executable))
    if all(p.stat().st_mode & 0o001 for p in real.parents):  # every parent is searchable by others
        return sys.executable
    system = "/usr/bin/python3"
    version = subprocess.run(
        [system, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if version != str(tuple(sys.version_info[:2])):
        pytest.skip(f"the harness's python is not readable by other users and {system} is {version}")
    venv_dir = base / "venv"
    subprocess.run([system, "-m", "venv", "--without-pip", str(venv_dir)], check=True)
    site = venv_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    harness_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "yaml").exists())
    for needed in (Path(harness_site), ROOT):
        closed = [p for p in (needed, *needed.parents) if not p.stat().st_mode & 0o001]
        if closed:  # e.g. a checkout under `mktemp -d` (mode 700)
            mode = closed[-1].stat().st_mode & 0o777
            pytest.skip(
                f"{needed} is not readable by other users ({closed[-1]} is mode {mode:o}): "
                "clone the repository into a directory that others can read to run this test"
            )
    (site / "harness.pth").write_text(f"{harness_site}\n{ROOT}\n")
    return str(venv_dir / "bin" / "python")


def run_researcher_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``live-code ARGS`` in ``cwd``, as a researcher types it (without LIVE_CODE_ALLOW_LOCAL_REPOS
    unless ``env`` has it)."""
    return _captured(cli_argv(*args), cwd=cwd, env=env or cli_env(allow_local_repos=False), timeout=300)
