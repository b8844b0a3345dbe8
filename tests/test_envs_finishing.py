"""An env whose lock is written while its first job runs (live_code/envs/finishing.py): the build
leaves the resolved lines in the env, ``Finishing`` locks them beside the job. Real uv, real
wheels from a wheelhouse made for the test; no mocks."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from live_code import record
from live_code.envs import builder as envs
from live_code.source import store as store_mod
from tests.helpers.adversarial import assert_no_processes
from tests.helpers.envs import job_python, offline

REQUIREMENTS = "tinyapp==1.0\n"


def _spec(tmp_path: Path, base_python: str, wheelhouse: Path, **kw: object) -> envs.EnvSpec:
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "requirements.txt").write_text(REQUIREMENTS)
    kw.setdefault("index", offline(wheelhouse))
    return envs.prepare_env(repo, base_python=base_python, **kw)  # type: ignore[arg-type]  # keyword arguments passed through as object


def _ensure(root: Path, spec: envs.EnvSpec, cache: Path, lock_later: bool) -> envs.EnvResult:
    return envs.ensure_env(store_mod.Store(root), spec, installer_cache=cache, lock_later=lock_later)


def _provenance(env: envs.EnvResult) -> dict[str, object]:
    return dict(json.loads((env.path / envs.PROVENANCE_FILE).read_text()))


def test_the_lock_written_later_is_the_lock_the_build_writes(
    tmp_path: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    spec = _spec(tmp_path, base_python, wheelhouse)
    now = _ensure(tmp_path / "now", spec, installer_cache, lock_later=False)
    assert (now.path / envs.LOCK_NAME).is_file() and not (now.path / envs.PENDING_LOCK).exists()

    later = _ensure(tmp_path / "later", spec, installer_cache, lock_later=True)
    assert not (later.path / envs.LOCK_NAME).exists(), "the build itself wrote no lock"
    assert (later.path / envs.PENDING_LOCK).read_text() == "tinyapp==1.0\ntinydep==1.0\n"
    assert later.provenance["lock"]["pending"] is True
    assert job_python(later.path, "import tinyapp; print('ok')") == "ok", "the env is usable before its lock"

    lines: list[str] = []
    finishing = envs.Finishing(later.path, spec, installer_cache, tmp_path / "scratch", lines.append)
    finishing.started()
    assert finishing._locking is not None, lines
    # beside a job that starts at the same moment: only CPU time that nothing else wants (the
    # process is not reaped before finish, so its policy can be read even once it has exited)
    assert os.sched_getscheduler(finishing._locking.proc.pid) == os.SCHED_IDLE
    summary = finishing.finish(60)
    assert summary is not None, lines
    assert summary == now.provenance["lock"] == _provenance(later)["lock"]
    assert summary["packages"] == ["tinyapp==1.0", "tinydep==1.0"]
    assert (later.path / envs.LOCK_NAME).read_text() == (now.path / envs.LOCK_NAME).read_text()
    assert not (later.path / envs.PENDING_LOCK).exists()

    again = envs.Finishing(later.path, spec, installer_cache, tmp_path / "scratch2")
    assert again.finish(60) is None, "a locked env is not locked again"
    assert not (tmp_path / "scratch2").exists(), "nothing was started for it"


def test_a_lock_stopped_with_the_run_is_written_by_the_next_run(
    tmp_path: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    spec = _spec(tmp_path, base_python, wheelhouse)
    env = _ensure(tmp_path / "store", spec, installer_cache, lock_later=True)
    stopped = envs.Finishing(env.path, spec, installer_cache, tmp_path / "scratch")
    stopped.abort()
    assert not (env.path / envs.LOCK_NAME).exists() and (env.path / envs.PENDING_LOCK).is_file()
    assert _provenance(env)["lock"] == {**env.provenance["lock"]}

    summary = envs.Finishing(env.path, spec, installer_cache, tmp_path / "scratch2").finish(60)
    assert summary is not None and summary["packages"] == ["tinyapp==1.0", "tinydep==1.0"]
    assert (env.path / envs.LOCK_NAME).is_file() and not (env.path / envs.PENDING_LOCK).exists()


def test_a_start_that_hangs_is_waited_for_a_bounded_time_and_leaves_no_process(
    tmp_path: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    """The job starts, and a stopped harness exits within docker stop's grace period, even when the
    thread that starts the compile and the lock cannot fork. Here it waits for logging's module lock, held by
    this thread: what a SIGTERM raised in logging's at-fork hook once left held (test_signals)."""
    spec = _spec(tmp_path, base_python, wheelhouse)
    env = _ensure(tmp_path / "store", spec, installer_cache, lock_later=True)
    lines: list[str] = []
    with logging._lock:  # type: ignore[attr-defined]  # the lock itself: a fork's at-fork hook takes it
        stuck = envs.Finishing(env.path, spec, installer_cache, tmp_path / "scratch", lines.append)
        started = time.monotonic()
        stuck.started(timeout=1.0)  # before the job: it starts all the same
        stuck.abort()  # given up already: at once
        assert stuck.finish(60) is None
        took = time.monotonic() - started
    assert took < 5, f"waited {took:.1f}s"
    assert lines == ["warning: the env's bytecode compile and lock were not started within 1s"]
    # released, the thread starts both and ends at once: their parent-death signal stops them
    stuck._thread.join(30)
    assert not stuck._thread.is_alive()
    assert_no_processes(env.path, tmp_path / "scratch", within=10)
    assert (env.path / envs.PENDING_LOCK).is_file() and not (env.path / envs.LOCK_NAME).exists()


def test_a_lock_uv_cannot_write_is_warned_about_and_tried_again_later(
    tmp_path: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    own = tmp_path / "wheelhouse"
    shutil.copytree(wheelhouse, own)
    spec = _spec(tmp_path, base_python, own)
    env = _ensure(tmp_path / "store", spec, installer_cache, lock_later=True)
    shutil.rmtree(own)  # the task's find-links folder is gone: uv cannot hash the wheels to lock

    lines: list[str] = []
    assert envs.Finishing(env.path, spec, installer_cache, tmp_path / "scratch", lines.append).finish(60) is None
    assert any(line.startswith("warning: no lock of the env is recorded") for line in lines), lines
    assert (env.path / envs.PENDING_LOCK).is_file() and not (env.path / envs.LOCK_NAME).exists()
    assert _provenance(env)["lock"] == env.provenance["lock"], "the provenance still says pending"
    assert job_python(env.path, "import tinyapp; print('ok')") == "ok"

    shutil.copytree(wheelhouse, own)
    assert envs.Finishing(env.path, spec, installer_cache, tmp_path / "scratch2").finish(60) is not None
    assert (env.path / envs.LOCK_NAME).is_file()


def test_a_lock_that_records_more_than_the_resolution_stays_in_the_build(
    tmp_path: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    spec = _spec(tmp_path, base_python, wheelhouse)
    assert envs.can_lock_later(spec)
    as_of = record.replace(spec, as_of="2024-01-01T00:00:00Z")  # its lock records the date
    no_isolation = record.replace(spec, no_build_isolation=("tinyapp",))
    pip = record.replace(spec, installer=envs.Installer("pip", ("python", "-m", "pip"), "25.0"))
    assert not any(envs.can_lock_later(s) for s in (as_of, no_isolation, pip))

    vcs_repo = tmp_path / "vcs"
    vcs_repo.mkdir()
    (vcs_repo / "requirements.txt").write_text(
        "tinyapp @ git+https://example.invalid/tinyapp@0123456789abcdef0123456789abcdef01234567\n"
    )
    vcs = envs.prepare_env(vcs_repo, base_python=base_python, index=offline(wheelhouse))
    assert not envs.can_lock_later(vcs), "a VCS line is built to be locked"


def test_a_lock_that_cannot_be_written_after_the_job_is_warned_about_not_raised(
    tmp_path: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    spec = _spec(tmp_path, base_python, wheelhouse)
    env = _ensure(tmp_path / "store", spec, installer_cache, lock_later=True)
    (env.path / envs.LOCK_NAME).mkdir()  # where the lock goes, a folder: the write fails

    lines: list[str] = []
    assert envs.Finishing(env.path, spec, installer_cache, tmp_path / "scratch", lines.append).finish(60) is None
    assert any("warning: no lock of the env is recorded" in line and "tries again" in line for line in lines), lines
    assert (env.path / envs.PENDING_LOCK).is_file(), "the next run locks it"
    assert _provenance(env)["lock"] == env.provenance["lock"]


def test_the_lock_is_made_beside_the_env_in_the_cache_and_nothing_of_it_stays(
    tmp_path: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    spec = _spec(tmp_path, base_python, wheelhouse)
    env = _ensure(tmp_path / "store", spec, installer_cache, lock_later=True)
    stale = env.path.parent / f".{env.path.name}.lock-1"
    stale.mkdir()
    os.utime(stale, (1, 1))  # left by a run killed long ago

    finishing = envs.Finishing(env.path, spec, installer_cache)  # the pipeline's call: no scratch given
    finishing.started()
    # not in the run's work dir, which the job can write while uv locks: in the cache (read-only to a job)
    assert [p.name for p in env.path.parent.glob(f".{env.path.name}.lock-*")] == [
        f".{env.path.name}.lock-{os.getpid()}"
    ]
    assert finishing.finish(60) is not None
    assert not list(env.path.parent.glob(f".{env.path.name}.lock-*"))
