"""Issue 24: what a warm run no longer starts a process for, each answer kept in the cache with
real binaries: uv's version (kept for its binary), bubblewrap's probe (a success kept, a failure
never), and the platform's name (no ``uname -p``)."""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from live_code import util
from live_code.envs import installer
from live_code.errors import EnvironmentBuildError
from live_code.run import job, sandbox, supervisor

# -- the platform's name --------------------------------------------------------------------------


def test_platform_name_is_platform_platform() -> None:
    assert util.platform_name() == platform.platform()


# -- the keyed answer files -----------------------------------------------------------------------


def test_kept_answer_is_read_back_for_its_key_only(tmp_path: Path) -> None:
    f = tmp_path / "sub" / "a.json"
    assert util.cached_answer(f, ["k", 1]) is None
    util.keep_answer(f, ["k", 1], "v")
    assert util.cached_answer(f, ["k", 1]) == "v"
    assert util.cached_answer(f, ["k", 2]) is None
    f.write_text('{"key": ["k", 1], "val')  # cut short
    assert util.cached_answer(f, ["k", 1]) is None
    f.write_text("[1, 2]")
    assert util.cached_answer(f, ["k", 1]) is None


def test_an_unwritable_cache_is_only_a_miss(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        util.keep_answer(ro / "x" / "a.json", "k", "v")  # root may write anyway: no error either way
    finally:
        ro.chmod(0o755)


def test_file_stamp_changes_with_the_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("one")
    link = tmp_path / "link"
    link.symlink_to(f)
    first = util.file_stamp(link)
    assert first is not None and first[0] == str(f)
    os.utime(f, ns=(1, 1))
    assert util.file_stamp(link) != first
    assert util.file_stamp(tmp_path / "missing") is None


# -- uv's version ---------------------------------------------------------------------------------


@pytest.fixture
def uv_copy(tmp_path: Path) -> Path:
    """The real uv, copied so that the test may make it unrunnable."""
    real = installer._uv_from_package() or [shutil.which("uv")]
    if not real or real[0] is None:
        pytest.skip("uv is not installed")
    copy = tmp_path / "bin" / "uv"
    copy.parent.mkdir()
    shutil.copy2(str(real[0]), copy)
    return copy


def test_uv_version_is_kept_for_its_binary(uv_copy: Path, tmp_path: Path) -> None:
    cache = tmp_path / "base-info"
    first = installer.find_installer("uv", uv=str(uv_copy), cache_dir=cache)
    assert first.name == "uv" and first.argv == (str(uv_copy),) and first.version[0].isdigit()
    (kept,) = cache.glob("uv-*.json")
    # unrunnable now, but the same size and mtime: the kept version is the answer, uv does not run
    uv_copy.chmod(0o644)
    assert installer.find_installer("uv", uv=str(uv_copy), cache_dir=cache) == first
    with pytest.raises(EnvironmentBuildError, match="uv is not installed or does not run"):
        installer.find_installer("uv", uv=str(uv_copy))  # without the cache it runs, and fails
    # a changed binary (mtime) is a miss: uv runs again (and fails here), the old entry unused
    st = uv_copy.stat()
    os.utime(uv_copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(EnvironmentBuildError):
        installer.find_installer("uv", uv=str(uv_copy), cache_dir=cache)
    uv_copy.chmod(0o755)
    assert installer.find_installer("uv", uv=str(uv_copy), cache_dir=cache) == first
    assert json.loads(kept.read_text())["key"][2] == uv_copy.stat().st_mtime_ns  # rewritten for the new stamp


def test_a_corrupt_uv_entry_is_ignored_and_rewritten(uv_copy: Path, tmp_path: Path) -> None:
    cache = tmp_path / "base-info"
    first = installer.find_installer("uv", uv=str(uv_copy), cache_dir=cache)
    (kept,) = cache.glob("uv-*.json")
    kept.write_text("{not json")
    assert installer.find_installer("uv", uv=str(uv_copy), cache_dir=cache) == first
    assert json.loads(kept.read_text())["value"] == first.version


# -- bubblewrap's probe ---------------------------------------------------------------------------


@pytest.fixture
def bwrap_copy(tmp_path: Path) -> Iterator[Path]:
    """The real bwrap, copied so that the test may break it; the per-process answers forgotten."""
    real = shutil.which("bwrap")
    if real is None or sandbox.unavailable_reason() is not None:
        pytest.skip(f"needs a working bubblewrap: {sandbox.unavailable_reason()}")
    copy = tmp_path / "bin" / "bwrap"
    copy.parent.mkdir()
    shutil.copy2(real, copy)
    sandbox.unavailable_reason.cache_clear()
    yield copy
    sandbox.unavailable_reason.cache_clear()
    sandbox._kept_success.clear()


def _probe(bwrap: Path, cache: Path | None) -> str | None:
    sandbox.unavailable_reason.cache_clear()  # as a new process would
    return sandbox.unavailable_reason(str(bwrap), cache)


def test_a_successful_probe_is_kept_and_believed(bwrap_copy: Path, tmp_path: Path) -> None:
    cache = tmp_path / "probes"
    assert _probe(bwrap_copy, cache) is None
    kept = cache / "bwrap.json"
    assert json.loads(kept.read_text())["value"] == "works"
    bwrap_copy.chmod(0o644)  # unrunnable, same size and mtime: the kept success answers, no probe
    assert _probe(bwrap_copy, cache) is None
    assert "could not run" in (_probe(bwrap_copy, None) or "")


def test_a_changed_key_probes_again_and_a_failure_is_not_kept(bwrap_copy: Path, tmp_path: Path) -> None:
    cache = tmp_path / "probes"
    assert _probe(bwrap_copy, cache) is None
    kept = cache / "bwrap.json"
    bwrap_copy.chmod(0o644)
    st = bwrap_copy.stat()
    os.utime(bwrap_copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # another binary now
    assert "could not run" in (_probe(bwrap_copy, cache) or "")
    assert not kept.exists()  # the failure is not kept, and the old success is gone
    assert "could not run" in (_probe(bwrap_copy, cache) or "")  # probed again: still failing
    bwrap_copy.chmod(0o755)  # fixed: the next run works at once
    assert _probe(bwrap_copy, cache) is None
    assert kept.exists()


def test_a_failing_bwrap_is_never_kept(tmp_path: Path) -> None:
    fails = tmp_path / "bwrap"
    fails.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fails.chmod(0o755)
    cache = tmp_path / "probes"
    for _ in range(2):
        assert "No permissions to create new namespace" in (_probe(fails, cache) or "")
        assert not (cache / "bwrap.json").exists()
    sandbox.unavailable_reason.cache_clear()


def test_a_corrupt_probe_entry_is_ignored_and_rewritten(bwrap_copy: Path, tmp_path: Path) -> None:
    cache = tmp_path / "probes"
    cache.mkdir()
    (cache / "bwrap.json").write_text('{"key": null, "value": "works"}')  # not this machine's key
    bwrap_copy.chmod(0o644)
    assert "could not run" in (_probe(bwrap_copy, cache) or "")  # so it probed
    bwrap_copy.chmod(0o755)
    (cache / "bwrap.json").write_bytes(b"\x00\xff")
    assert _probe(bwrap_copy, cache) is None
    assert json.loads((cache / "bwrap.json").read_text())["value"] == "works"


def test_a_job_whose_sandbox_fails_to_start_fails_clearly_and_drops_the_kept_success(
    bwrap_copy: Path, tmp_path: Path
) -> None:
    """A kept success that is wrong by now: the job's bubblewrap fails at its start (here: /in's
    folder is gone), the job fails with bubblewrap's error and nothing runs outside the sandbox;
    the next run probes again."""
    cache = tmp_path / "probes"
    assert sandbox.unavailable_reason(None, cache) is None
    sandbox.unavailable_reason.cache_clear()
    assert sandbox.unavailable_reason(None, cache) is None  # from the kept file
    marker = tmp_path / "ran"
    mounts = sandbox.Mounts(tmp_path / "gone-in", tmp_path)
    argv = sandbox.wrap(["sh", "-c", f"touch {marker}"], mounts, cwd=tmp_path)
    sink = io.BytesIO()
    outcome = supervisor.run(supervisor.RunRequest(argv, tmp_path, {"PATH": os.defpath}, sink=sink))
    assert outcome.returncode == 1 and not marker.exists()
    err = job.failure(outcome, None)
    assert "bwrap: " in str(err) and "LIVE_CODE_SANDBOX=off" in str(err.hint)
    assert not (cache / "bwrap.json").exists()


# -- the SDK shim ---------------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_cached_sdk_shim_is_the_work_dir_one_made_once_and_read_only(tmp_path: Path) -> None:
    (tmp_path / "w1").mkdir()
    (tmp_path / "w2").mkdir()
    plain = job.sdk_shim(tmp_path / "w1")
    assert plain == tmp_path / "w1" / "sdk"
    cache = tmp_path / "cache" / "sdk"
    assert job.sdk_shim(tmp_path / "w2", cache) == tmp_path / "w2" / "sdk", "the first run copies its own"
    job.wait_for_shims()  # while the cached one is made beside it
    (tmp_path / "w3").mkdir()
    kept = job.sdk_shim(tmp_path / "w3", cache)
    assert kept.parent == cache and not (tmp_path / "w3" / "sdk").exists()
    assert _tree(kept) == _tree(plain) and len(_tree(kept)) > 20
    assert [p.name for p in cache.iterdir()] == [kept.name]  # no temp folder left
    assert all(not os.stat(p).st_mode & 0o222 for p in [kept, *kept.rglob("*")])
    before = kept.stat().st_mtime_ns
    assert job.sdk_shim(tmp_path / "w3", cache) == kept and kept.stat().st_mtime_ns == before
    # the job imports it as before: live_code.sdk and live_code.contract, nothing of the harness
    out = util.cmd_output(
        sys.executable,
        "-I",
        "-S",  # no site-packages (the editable install of the harness): the job's view alone
        "-c",
        "import sys; sys.path.insert(0, sys.argv[1]); import live_code.sdk, live_code.contract, live_code;"
        "print(live_code.__file__); import importlib.util as u; print(u.find_spec('live_code.run'))",
        str(kept),
    )[1].split()
    assert out == [str(kept / "live_code" / "__init__.py"), "None"]


def test_an_unwritable_sdk_cache_falls_back_to_the_work_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    (tmp_path / "w").mkdir()
    assert job.sdk_shim(tmp_path / "w", blocker / "sdk") == tmp_path / "w" / "sdk"
    job.wait_for_shims()
    assert job.sdk_shim(tmp_path / "w", blocker / "sdk") == tmp_path / "w" / "sdk"


def test_a_new_harness_version_gets_its_own_sdk_shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "w").mkdir()
    job.sdk_shim(tmp_path / "w", tmp_path / "sdk")
    job.wait_for_shims()
    first = job.sdk_shim(tmp_path / "w", tmp_path / "sdk")
    monkeypatch.setattr(job, "__version__", "0.0.0+other")
    job.sdk_shim(tmp_path / "w", tmp_path / "sdk")
    job.wait_for_shims()
    second = job.sdk_shim(tmp_path / "w", tmp_path / "sdk")
    assert second != first and "0.0.0+other" in (second / "live_code" / "__init__.py").read_text()


def test_cache_gc_removes_old_shims_of_other_harnesses_and_keeps_this_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each harness version (or edit of a dev checkout) makes its own read-only shim: ``cache gc``
    removes the other harnesses' once a week old (or older than --max-age), never this one's."""
    from live_code import cli

    cache = tmp_path / "cache"
    monkeypatch.setenv("LIVE_CODE_CACHE", str(cache))
    (tmp_path / "w").mkdir()
    monkeypatch.setattr(job, "__version__", "0.0.0+old")
    job.sdk_shim(tmp_path / "w", cache / "sdk")
    job.wait_for_shims()
    old = job.sdk_shim(tmp_path / "w", cache / "sdk")
    monkeypatch.undo()
    monkeypatch.setenv("LIVE_CODE_CACHE", str(cache))
    job.sdk_shim(tmp_path / "w", cache / "sdk")
    job.wait_for_shims()
    mine = job.sdk_shim(tmp_path / "w", cache / "sdk")
    scratch = cache / "sdk" / ".tmp-died"
    scratch.mkdir()
    assert old.parent == mine.parent == cache / "sdk" and old != mine

    assert cli.main(["cache", "gc", "--max-age", "30d"]) == 0
    assert old.is_dir() and scratch.is_dir(), "a shim made just now may be in use by a running job"

    week_ago = os.stat(old).st_mtime - job.SHIM_GRACE - 60
    for p in (old, mine, scratch):
        os.utime(p, (week_ago, week_ago))
    assert cli.main(["cache", "gc", "--max-age", "30d"]) == 0
    assert not old.exists() and not scratch.exists()
    assert mine.is_dir() and (mine / "live_code" / "sdk").is_dir(), "this harness's shim stays, whatever its age"
    assert "removed 2 SDK shims this live-code no longer uses" in capsys.readouterr().out
