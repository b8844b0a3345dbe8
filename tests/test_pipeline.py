"""``live-code run`` end to end with small real jobs: each job is a real git repo, run by the real
CLI in a subprocess, and checked for its outcome, monitor state, message and leftovers.

Issue 6, acceptance 2-5 (the templates' runs, acceptance 1, are in test_templates.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code.run import records
from tests.helpers.gitserver import SilentServer, processes_mentioning
from tests.helpers.jobs import (
    AS_OTHER_USER,
    RUN_JOB,
    Task,
    cli_env,
    python_for_others,
    run_argv,
    run_cli,
    sample_task,
    start_cli,
)
from tests.helpers.repos import git

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def job_repo(make_repo: Callable[..., Path]) -> Callable[..., tuple[Path, str]]:
    def _make(start_py: str, **files: str) -> tuple[Path, str]:
        tree = {"start.py": textwrap.dedent(start_py), **{k.replace("__", "/"): v for k, v in files.items()}}
        repo = make_repo(tree)
        return repo, git("rev-parse", "HEAD", cwd=repo)

    return _make


@pytest.fixture
def task(tmp_path: Path) -> Task:
    return sample_task(tmp_path / "task", frozenset({contract.TaskKind.MINING, contract.TaskKind.INFER}), images=4)


def _no_leftovers(marker: str) -> None:
    deadline = time.monotonic() + 5
    while list(processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(processes_mentioning(marker)) == []


def test_good_job_succeeds_and_records_the_commit(task: Task, job_repo: Callable[..., tuple[Path, str]]) -> None:
    repo, sha = job_repo(RUN_JOB)
    task.set_config(git_url=str(repo), git_commit=sha)
    res = run_cli(task)
    assert res.returncode == 0, res.stderr
    assert "job finished" in res.stdout
    rec = task.monitor()
    assert (rec.state, rec.percent, rec.return_code) == (contract.MonitorState.RUNNING, 1.0, 0)
    prov = task.provenance()
    assert prov["source"]["commit"] == sha and prov["outcome"]["ok"] is True
    assert set(prov["timings"]) >= {"task", "fetch", "configure", "environment", "run", "outputs"}


def test_the_gpus_are_asked_for_while_the_job_runs_and_recorded(
    task: Task, job_repo: Callable[..., tuple[Path, str]], tmp_path: Path
) -> None:
    """nvidia-smi cannot run on this machine: a script of that name stands in for it. It leaves a
    file in the out dir, and the job waits for that file before it writes its outputs, so the run
    succeeds only if the query started before the job ended (it used to start after the job)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ntouch {task.out_dir}/gpu-query-ran\necho 'NVIDIA Fake GPU, 550.54.15, 24576 MiB'\n")
    fake.chmod(0o755)
    wait = "import os, sys, time\nfor _ in range(600):\n    if os.path.exists('/out/gpu-query-ran'): break\n"
    wait += (
        "    time.sleep(0.05)\nelse:\n    sys.exit('no GPU query while the job ran')\nos.remove('/out/gpu-query-ran')\n"
    )
    repo, sha = job_repo(wait + RUN_JOB)
    task.set_config(git_url=str(repo), git_commit=sha)
    res = run_cli(task, env=cli_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert task.provenance()["gpu"] == ["NVIDIA Fake GPU, 550.54.15, 24576 MiB"]
    assert "left running" not in res.stdout + res.stderr  # the query is the harness's, not the job's


@pytest.mark.parametrize("body", ["echo 'no driver' >&2; exit 9", '"$0" child & sleep 60'], ids=["fails", "hangs"])
def test_a_gpu_query_that_fails_or_hangs_gives_no_gpus_and_leaves_no_process(
    body: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in nvidia-smi again (none can run here): one that fails, one that hangs with a
    child of its own; both are killed at the deadline."""
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nif [ "$1" = child ]; then sleep 60; exit; fi\n{body}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert records.GpuQuery().result(timeout=1) is None
    _no_leftovers(str(fake))


@pytest.mark.parametrize(
    ("name", "job", "exit_code", "code", "words"),
    [
        ("no outputs", "print('did nothing')", 6, 160011, "result.tsv"),
        (
            "invalid infer result",
            RUN_JOB + "\nopen('/out/infer-result.json', 'w').write('{\"detection\": 3}')\n",
            6,
            160011,
            "infer-result.json",
        ),
        ("exit 3", "import sys\nprint('failing')\nsys.exit(3)", 5, 160004, "exited with code 3"),
        (
            "writes 100% then fails",
            "from live_code import sdk\nsdk.write_progress(1.0)\nraise SystemExit(2)",
            5,
            160004,
            "exited with code 2",
        ),
        (
            "own error code",
            "from live_code import sdk\nsdk.write_error(300002, 'no data')\nraise SystemExit(1)",
            5,
            300002,
            "exited with code 1",
        ),
    ],
)
def test_failing_jobs_end_in_the_error_state(
    task: Task, job_repo: Callable[..., tuple[Path, str]], name: str, job: str, exit_code: int, code: int, words: str
) -> None:
    repo, sha = job_repo(job)
    task.set_config(git_url=str(repo), git_commit=sha)
    res = run_cli(task)
    assert res.returncode == exit_code, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    rec = task.monitor()
    assert rec.state == contract.MonitorState.ERROR and rec.return_code == code
    assert words in rec.message and words in res.stderr
    assert task.provenance()["outcome"]["ok"] is False


def test_job_ignoring_sigterm_is_killed_at_its_timeout(task: Task, job_repo: Callable[..., tuple[Path, str]]) -> None:
    marker = f"ignore-term-{os.getpid()}-{time.monotonic_ns()}"
    repo, sha = job_repo(f"""
    import signal, time
    signal.signal(signal.SIGTERM, lambda *a: print('ignoring SIGTERM', flush=True))
    print({marker!r}, flush=True)
    time.sleep(120)
    """)
    task.set_config(git_url=str(repo), git_commit=sha, live_code_timeout=2)
    t0 = time.monotonic()
    res = run_cli(task, env=cli_env(LIVE_CODE_GRACE="1"))
    assert res.returncode == 5
    assert time.monotonic() - t0 < 60
    assert "timed out" in task.monitor().message
    _no_leftovers("time.sleep(120)")


def test_setsid_grandchild_holding_stdout_does_not_hang_the_run(
    task: Task, job_repo: Callable[..., tuple[Path, str]], tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    repo, sha = job_repo(
        RUN_JOB
        + textwrap.dedent(f"""
    import subprocess, sys
    p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True)
    open({str(pidfile)!r}, 'w').write(str(p.pid))
    """)
    )
    task.set_config(git_url=str(repo), git_commit=sha)
    res = run_cli(task, "--sandbox", "off", timeout=60)
    assert res.returncode == 0, res.stderr
    pid = int(pidfile.read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]


def test_chatty_job_printing_100mb(task: Task, job_repo: Callable[..., tuple[Path, str]]) -> None:
    repo, sha = job_repo(
        RUN_JOB
        + textwrap.dedent("""
    import sys
    block = (b'y' * 1023 + b'\\n') * 1024
    for _ in range(100):
        sys.stdout.buffer.write(block)
    """)
    )
    task.set_config(git_url=str(repo), git_commit=sha)
    cmd = [sys.executable, "-m", "live_code", "run", "--in", str(task.in_dir), "--out", str(task.out_dir)]
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    total = 0
    while chunk := proc.stdout.read(1 << 20):
        total += len(chunk)
    assert proc.wait(timeout=120) == 0
    assert total >= 100 * 1024 * 1024
    assert task.monitor().state == contract.MonitorState.RUNNING


def test_schema_violation_stops_before_any_install(task: Task, job_repo: Callable[..., tuple[Path, str]]) -> None:
    manifest = yaml.safe_dump(
        {
            "entry": "python start.py",
            "requirements": "requirements.txt",
            "hyperparameters": {"mining": {"batch": {"type": "int", "default": 4}}},
        }
    )
    repo, sha = job_repo(RUN_JOB, **{"live-code.yaml": manifest, "requirements.txt": "tinything==1.0\n"})
    task.set_config(git_url=str(repo), git_commit=sha, batch="lots")
    res = run_cli(task)
    assert res.returncode == 2
    assert "'batch'" in res.stderr and "'lots'" in res.stderr and "int" in res.stderr
    assert "environment" not in task.provenance()  # nothing was built or installed
    assert task.monitor().return_code == contract.ReturnCode.CONFIG_ERROR


def _wait_for(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    assert proc.stdout is not None
    seen = ""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        seen += line
        if text in line:
            return seen
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"never saw {text!r}; output:\n{seen}")


def test_sigterm_during_fetch(task: Task) -> None:
    with SilentServer() as server:
        task.set_config(git_url=f"https://127.0.0.1:{server.port}/stalled/repo.git", git_commit="a" * 40)
        proc = start_cli(task)
        time.sleep(2)  # git is connected and waiting for the silent server
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out
    rec = task.monitor()
    assert rec.state == contract.MonitorState.ERROR and "SIGTERM" in rec.message
    _no_leftovers(f"127.0.0.1:{server.port}")


def test_sigterm_during_install(task: Task, job_repo: Callable[..., tuple[Path, str]]) -> None:
    with SilentServer() as server:
        repo, sha = job_repo(RUN_JOB, **{"requirements.txt": "tinything==1.0\n"})
        task.set_config(git_url=str(repo), git_commit=sha, pip_index_url=f"http://127.0.0.1:{server.port}/simple")
        proc = start_cli(task)
        _wait_for(proc, "resolving")
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "SIGTERM" in task.monitor().message
    _no_leftovers(f"127.0.0.1:{server.port}")


def test_sigterm_during_run(task: Task, job_repo: Callable[..., tuple[Path, str]]) -> None:
    marker = f"sleeping-job-{time.monotonic_ns()}"
    repo, sha = job_repo(f"import time\nprint('started', flush=True)\ntime.sleep(300)  # {marker}\n")
    task.set_config(git_url=str(repo), git_commit=sha)
    proc = start_cli(task)
    _wait_for(proc, "started")
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out
    rec = task.monitor()
    assert rec.state == contract.MonitorState.ERROR and "SIGTERM" in rec.message
    _no_leftovers("time.sleep(300)")


@pytest.mark.needs_bwrap
def test_in_is_read_only_for_the_job(task: Task, job_repo: Callable[..., tuple[Path, str]]) -> None:
    repo, sha = job_repo("open('/in/scratch.txt', 'w').write('x')\n")
    task.set_config(git_url=str(repo), git_commit=sha)
    res = run_cli(task)
    assert res.returncode == 5
    assert "Read-only file system" in res.stdout + res.stderr
    assert not (task.in_dir / "scratch.txt").exists()


@pytest.mark.needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_runs_as_a_non_root_uid_without_passwd_entry_or_writable_home(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    """As YMIR runs containers: --user <uid>:<gid> with no passwd entry, /in read-only, /out 777."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="live-code-uid-"))
    try:
        base.chmod(0o755)
        repo = make_repo({"start.py": RUN_JOB})
        shared_repo = base / "repo"
        subprocess.run(["cp", "-r", str(repo), str(shared_repo)], check=True)
        t = sample_task(base / "task", frozenset({contract.TaskKind.MINING}), images=4)
        t.set_config(git_url=str(shared_repo), git_commit=git("rev-parse", "HEAD", cwd=repo))
        for d in (base / "cache", t.out_dir):
            d.mkdir(exist_ok=True)
            d.chmod(0o777)
        subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
        # git refuses a repository owned by another user ("dubious ownership"): the repo is the user's
        subprocess.run(["chown", "-R", "54321:54321", str(shared_repo)], check=True)
        python = python_for_others(base)
        cmd = [*AS_OTHER_USER, *run_argv(t.in_dir, t.out_dir, python)]
        env = cli_env(LIVE_CODE_CACHE=str(base / "cache"), HOME="/nonexistent", LIVE_CODE_BASE_PYTHON=python)
        env["GIT_CONFIG_GLOBAL"] = os.devnull
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        assert (t.out_dir / "result.tsv").stat().st_uid == 54321
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_submodules_are_fetched_only_when_the_manifest_asks(task: Task, make_repo: Callable[..., Path]) -> None:
    lib = make_repo({"data.txt": "from the submodule\n"}, name="lib")
    job = RUN_JOB + "\nprint(open('vendor/lib/data.txt').read().strip())\n"
    app = make_repo({"start.py": textwrap.dedent(job)}, name="app")
    # a relative submodule URL, resolved against the parent's as git does
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", "../lib", "vendor/lib", cwd=app)
    git("commit", "-q", "-m", "add lib", cwd=app)
    sha = git("rev-parse", "HEAD", cwd=app)
    task.set_config(git_url=str(app), git_commit=sha)
    res = run_cli(task)
    assert res.returncode == 5 and "No such file or directory" in res.stdout  # not asked: not fetched

    (app / "live-code.yaml").write_text("entry: python start.py\nsubmodules: true\n")
    git("add", "live-code.yaml", cwd=app)
    git("commit", "-q", "-m", "ask for submodules", cwd=app)
    task.set_config(git_commit=git("rev-parse", "HEAD", cwd=app))
    res = run_cli(task)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "from the submodule" in res.stdout
    (sub,) = task.provenance()["source"]["submodules"]
    assert sub["path"] == "vendor/lib" and sub["commit"] == git("rev-parse", "HEAD", cwd=lib)


def test_lfs_is_refused_with_a_clear_message(task: Task, job_repo: Callable[..., tuple[Path, str]]) -> None:
    repo, sha = job_repo(RUN_JOB, **{"live-code.yaml": "entry: python start.py\nlfs: true\n"})
    task.set_config(git_url=str(repo), git_commit=sha)
    res = run_cli(task)
    assert res.returncode == 2 and "git LFS" in res.stderr
