"""Disk full and a shared cache (threats 14, 20, 21, 36, 45; section 3 "Environment and
infrastructure faults": disk full during fetch, install and the final writes; two jobs with the
same repo and SHA at the same moment). The disk is a small tmpfs mounted over the cache or the out
dir for the test (root with CAP_SYS_ADMIN only; skipped with the reason elsewhere, where the
RLIMIT_FSIZE case still runs); after the failure the tmpfs is grown (``mount -o remount``) and a
rerun on the same cache must succeed."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from live_code import errors, util
from tests.helpers.adversarial import JOB_OUTPUTS, Harness, check_cache, file_size_limit, job, wheel_bytes
from tests.helpers.repos import git

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs (a full disk) needs root")


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """``path`` (emptied) as a tmpfs of ``size`` for the block."""
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            util.rmtree(entry)
        else:
            entry.unlink()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(path)], capture_output=True, text=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def grow(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def _leftovers(cache: Path) -> list[Path]:
    """Scratch dirs, entries without their marker and git's temp and lock files in the mirrors
    (the store's own lock files under ``locks/`` and ``.used`` stamps are meant to stay)."""
    found = []
    for base in (cache / "mirrors", cache / "envs"):
        if base.is_dir():
            found += [p for p in base.iterdir() if p.name.startswith(".")]
            found += [p for p in base.iterdir() if p.is_dir() and not (base / f"{p.name}.done").exists()]
    if (cache / "mirrors").is_dir():
        found += [p for p in (cache / "mirrors").rglob("*") if p.name.startswith("tmp_") or p.name.endswith(".lock")]
    return found


@needs_root
@pytest.mark.slow
def test_disk_full_during_fetch_is_a_clear_failure_and_leaves_no_partial_mirror(harness: Harness) -> None:
    repo = harness.repo({"weights.bin": os.urandom(4 << 20)})  # incompressible: it cannot fit
    harness.use(repo)
    with tmpfs(harness.cache, "2m"):
        out = harness.run()
        rec = harness.expect_failure(out, errors.SourceError, "No space left on device")
        assert "source" not in harness.provenance()
        assert _leftovers(harness.cache) == []
        grow(harness.cache, "64m")
        prov = harness.expect_success(harness.run())
        assert prov["source"]["commit"] == repo.sha and rec.message


@needs_root
@pytest.mark.slow
def test_disk_full_during_install_is_a_clear_failure_and_leaves_no_partial_env(harness: Harness) -> None:
    wheels = harness.root / "wheelhouse"
    wheel_bytes(wheels, "bigpkg", "1.0", files={"bigpkg/__init__.py": "", "bigpkg/blob.txt": os.urandom(3 << 20).hex()})
    harness.use(harness.repo({"requirements.txt": "bigpkg==1.0\n"}), pip_offline=True, pip_find_links=str(wheels))
    with tmpfs(harness.cache, "4m"):
        out = harness.run()
        harness.expect_failure(out, errors.EnvironmentBuildError, "No space left on device")
        assert "environment" not in harness.provenance()
        assert [p for p in (harness.cache / "envs").iterdir() if p.is_dir()] == []
        assert _leftovers(harness.cache) == []
        grow(harness.cache, "64m")
        prov = harness.expect_success(harness.run())
        assert prov["environment"]["added"] == ["bigpkg==1.0"]


_FILL_OUT = """
try:
    with open(os.path.join(OUT, 'filler.bin'), 'wb') as f:
        while True:
            f.write(b'x' * 65536)
            f.flush()
except OSError as e:
    print('out is full:', e.strerror, flush=True)
"""


@needs_root
@pytest.mark.slow
def test_job_that_fills_the_out_dir_still_gets_the_final_error_state(harness: Harness) -> None:
    """Threat 36: the job fills /out and fails; the harness's final monitor write (over its own
    earlier record, no new block needed) still says so."""
    harness.use(harness.job_repo(job(JOB_OUTPUTS, _FILL_OUT, "raise SystemExit(1)")))
    with tmpfs(harness.out_dir, "1m"):
        out = harness.run()
        assert "out is full: No space left on device" in out.stdout
        harness.expect_failure(out, errors.JobError, "exited with code 1")


@needs_root
@pytest.mark.slow
def test_outputs_that_fill_the_disk_are_an_output_failure_with_the_final_state(harness: Harness) -> None:
    """Disk full while the job writes its outputs: the truncated result is refused by name."""
    big = """
    cands = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)]
    sdk.write_mining_result([(c, float(n)) for n, c in enumerate(cands)])
    box = '{"box": {"x": 1, "y": 1, "w": 5, "h": 5}, "class_name": "dog", "score": 0.5}, '
    try:
        with open(os.path.join(OUT, 'infer-result.json'), 'w') as f:
            f.write('{"detection": {"a.jpg": {"boxes": [')
            while True:
                f.write(box * 1000)
    except OSError as e:
        print('result write failed:', e.strerror, flush=True)
    """
    harness.use(harness.job_repo(job(big)))
    with tmpfs(harness.out_dir, "1m"):
        out = harness.run()
        assert "result write failed: No space left on device" in out.stdout
        harness.expect_failure(out, errors.OutputError, "infer-result.json", "not valid JSON")


@needs_root
def test_atomic_write_on_a_full_disk_keeps_the_old_file_whole(tmp_path: Path) -> None:
    """Threat 45: a harness record written over an old one on a full disk fails as a whole: the
    old content stays and no temp file is left."""
    with tmpfs(tmp_path / "small", "1m") as small:
        target = small / "monitor.txt"
        util.atomic_write(target, "old record\n")
        with contextlib.suppress(OSError), open(small / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        with pytest.raises(OSError):
            util.atomic_write(target, "new record " * 2000)
        assert target.read_text() == "old record\n"
        assert sorted(p.name for p in small.iterdir()) == ["filler", "monitor.txt"]


@pytest.mark.slow
def test_eight_concurrent_runs_with_mixed_pins_share_one_cache(tmp_path: Path) -> None:
    """Threat 21: eight runs at the same moment on one cache, pinned by commit, abbreviated and
    uppercase commit, and tag, to two commits of one repo: all succeed with the right commit, one
    mirror and one env are built, and the cache is intact afterwards."""
    harnesses = [Harness(tmp_path / f"h{i}") for i in range(8)]
    repo = harnesses[0].repo({"requirements.txt": ""}, tag="v1")
    first = repo.sha
    second = repo.commit({"note.txt": "second"})
    git("tag", "v2", cwd=repo.path)
    pins = [
        {"git_commit": first},
        {"git_commit": second},
        {"git_tag": "v1"},
        {"git_commit": first[:7]},
        {"git_tag": "v2"},
        {"git_commit": second.upper()},
        {"git_tag": "v1", "git_commit": first},
        {"git_commit": first},
    ]
    want = [first, second, first, first, second, second, first, first]
    for h, pin in zip(harnesses, pins):
        h.set_config(**{"git_url": str(repo.path), "git_commit": None, **pin})
    lives = [h.start() for h in harnesses]
    outs = [live.finish(timeout=300) for live in lives]
    for h, out, sha in zip(harnesses, outs, want):
        assert h.expect_success(out)["source"]["commit"] == sha
    cache = harnesses[0].cache
    assert len(list((cache / "mirrors").glob("*.done"))) == 1
    assert len(list((cache / "envs").glob("*.done"))) == 1
    assert sum("creating the env" in out.output for out in outs) == 1
    check_cache(cache)


def test_file_size_limit_during_fetch_is_a_clear_failure_without_root(harness: Harness) -> None:
    """Where no tmpfs can be mounted: RLIMIT_FSIZE on the harness and its children (git) makes the
    fetch of a 4 MiB blob fail (git's index-pack dies of SIGXFSZ), classified, with no partial
    mirror."""
    harness.use(harness.repo({"weights.bin": os.urandom(4 << 20)}))
    out = harness.run(preexec=file_size_limit(1 << 20))
    harness.expect_failure(out, errors.SourceError, "fetching a commit failed", "index-pack failed")
    assert _leftovers(harness.cache) == []
