"""The generic cache core: ensure (check, lock, check, build in place, marker), locks across
processes, entries in use, gc, and the ``live-code cache ls|gc`` commands. Real processes and
signals; the source part of the store (mirrors, pins) is tested in test_store_source.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from live_code import cli
from live_code.errors import CacheError
from live_code.source import store as store_mod

DAY = 86400.0


def _build_with(content: str, meta: dict[str, object] | None = None):
    def build(path: Path) -> dict[str, object]:
        (path / "data").write_text(content)
        return dict(meta or {})

    return build


def _age(st: store_mod.Store, kind: str, key: str, seconds_ago: float) -> None:
    """Make an entry look last used ``seconds_ago``."""
    when = time.time() - seconds_ago
    for p in (st.path(kind, key), st.root / kind / f"{key}.done", st.root / kind / f"{key}.used"):
        if p.exists():
            os.utime(p, (when, when))


def test_ensure_builds_once_then_reuses() -> None:
    st = store_mod.Store()
    built: list[Path] = []

    def build(path: Path) -> dict[str, object]:
        built.append(path)
        assert path.is_dir() and not any(path.iterdir())
        (path / "data").write_text("x")
        return {"summary": "one"}

    path, fresh = st.ensure("envs", "k1", build)
    assert (path, fresh) == (st.root / "envs" / "k1", True)
    assert st.is_complete("envs", "k1") and st.meta("envs", "k1")["summary"] == "one"
    assert "created" in st.meta("envs", "k1")
    assert st.ensure("envs", "k1", build) == (path, False)
    assert built == [path]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_ensure_removes_the_entry_when_the_build_raises(exc: BaseException) -> None:
    st = store_mod.Store()

    def build(path: Path) -> None:
        (path / "half").write_text("x")
        raise exc

    with pytest.raises(type(exc)):
        st.ensure("envs", "k1", build)
    assert not st.path("envs", "k1").exists() and not st.is_complete("envs", "k1")
    assert st.ensure("envs", "k1", _build_with("ok"))[1] is True


def test_ensure_rebuilds_an_entry_left_without_its_marker() -> None:
    st = store_mod.Store()
    debris = st.root / "envs" / "k1"
    debris.mkdir(parents=True)
    (debris / "junk").write_text("from a killed build")
    path, fresh = st.ensure("envs", "k1", _build_with("ok"))
    assert fresh and not (path / "junk").exists() and (path / "data").read_text() == "ok"


_KILLED_BUILDER = """
import pathlib, sys, time
from live_code.source import store
def build(path):
    (path / "partial").write_text("x")
    pathlib.Path(sys.argv[2]).write_text("started")
    time.sleep(60)
store.Store(sys.argv[1]).ensure("envs", "k1", build)
"""


def test_killed_builder_leaves_an_untrusted_entry_that_the_next_run_rebuilds(tmp_path: Path) -> None:
    st = store_mod.Store()
    flag = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_BUILDER, str(st.root), str(flag)])
    deadline = time.monotonic() + 30
    while not flag.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (st.path("envs", "k1") / "partial").exists() and not st.is_complete("envs", "k1")
    path, fresh = st.ensure("envs", "k1", _build_with("ok"), timeout=5)  # the dead builder's lock is free
    assert fresh and not (path / "partial").exists() and st.is_complete("envs", "k1")


_CONCURRENT_BUILDER = """
import json, os, sys, time
from live_code.source import store
def build(path):
    with open(sys.argv[2], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(1.0)
path, built = store.Store(sys.argv[1]).ensure("envs", "k1", build)
print(json.dumps(built))
"""


def test_four_processes_build_an_entry_once(tmp_path: Path) -> None:
    st = store_mod.Store()
    counter = tmp_path / "builds"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT_BUILDER, str(st.root), str(counter)], stdout=subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = sorted(json.loads(p.communicate(timeout=60)[0]) for p in procs)
    assert results == [False, False, False, True]
    assert len(counter.read_text().splitlines()) == 1 and st.is_complete("envs", "k1")


def test_waiting_for_another_builder_times_out_with_a_cache_error() -> None:
    st = store_mod.Store()
    with st.lock("envs", "k1"), pytest.raises(CacheError, match="waiting for another process building envs/k1"):
        st.ensure("envs", "k1", _build_with("x"), timeout=0.2)
    assert not st.path("envs", "k1").exists()


def test_entries_report_kind_key_size_completeness_and_meta() -> None:
    st = store_mod.Store()
    st.ensure("envs", "k1", _build_with("x" * 100_000, {"summary": "an env"}))
    (st.root / "mirrors" / "m1").mkdir(parents=True)  # incomplete: no marker
    (st.root / "envs" / ".tmp-scratch").mkdir()  # not an entry
    entries = {(e.kind, e.key): e for e in st.entries()}
    assert set(entries) == {("envs", "k1"), ("mirrors", "m1")}
    env = entries["envs", "k1"]
    assert env.complete and env.size >= 100_000 and env.meta["summary"] == "an env"
    assert env.path == st.path("envs", "k1") and abs(env.last_used - time.time()) < 60
    assert not entries["mirrors", "m1"].complete


def test_remove_skips_an_entry_in_use_or_being_built() -> None:
    st = store_mod.Store()
    st.ensure("envs", "k1", _build_with("x"))
    with st.using("envs", "k1") as path:
        assert path == st.path("envs", "k1")
        assert st.remove("envs", "k1") is False and st.is_complete("envs", "k1")
    with st.lock("envs", "k1"):
        assert st.remove("envs", "k1") is False and st.is_complete("envs", "k1")
    assert st.remove("envs", "k1") is True
    assert not st.path("envs", "k1").exists() and not st.is_complete("envs", "k1")


def test_using_marks_the_entry_as_recently_used() -> None:
    st = store_mod.Store()
    st.ensure("envs", "k1", _build_with("x"))
    _age(st, "envs", "k1", 10 * DAY)
    with st.using("envs", "k1"):
        pass
    (entry,) = st.entries()
    assert time.time() - entry.last_used < 60


def test_gc_max_age_removes_only_entries_unused_for_that_long() -> None:
    st = store_mod.Store()
    for key in ("old", "new"):
        st.ensure("envs", key, _build_with("x"))
    _age(st, "envs", "old", 10 * DAY)
    removed = st.gc(max_age=5 * DAY)
    assert [e.key for e in removed] == ["old"]
    assert [e.key for e in st.entries()] == ["new"]


def test_gc_max_size_removes_least_recently_used_first() -> None:
    st = store_mod.Store()
    for key, days in (("a", 3), ("b", 2), ("c", 1)):
        st.ensure("envs", key, _build_with("x" * 200_000))
        _age(st, "envs", key, days * DAY)
    one = st.entries()[0].size
    removed = st.gc(max_size=int(one * 1.5))
    assert [e.key for e in removed] == ["a", "b"] and [e.key for e in st.entries()] == ["c"]


def test_gc_never_removes_an_entry_in_use_or_being_built() -> None:
    st = store_mod.Store()
    for key in ("used", "building", "idle"):
        st.ensure("envs", key, _build_with("x"))
    with st.using("envs", "used"), st.lock("envs", "building"):
        removed = st.gc(max_size=0)
    assert [e.key for e in removed] == ["idle"]
    assert sorted(e.key for e in st.entries()) == ["building", "used"]


def test_cli_cache_ls_lists_entries_and_says_when_empty(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cache", "ls"]) == 0
    assert "(empty)" in capsys.readouterr().out
    st = store_mod.Store()
    st.ensure("envs", "0123456789abcdef0123", _build_with("x", {"summary": "3 packages over /usr/bin/python3"}))
    st.ensure("mirrors", "m1", _build_with("x", {"url": "https://example.com/o/r"}))
    assert cli.main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert f"cache: {st.root}" in out
    assert "0123456789abcdef " in out and "3 packages over /usr/bin/python3" in out
    assert "https://example.com/o/r" in out and "in 2 entries" in out


def test_cli_cache_gc_removes_old_entries_but_never_one_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    st = store_mod.Store()
    for key in ("busy", "stale"):
        st.ensure("envs", key, _build_with("x"))
        _age(st, "envs", key, 40 * DAY)
    with st.using("envs", "busy"):
        assert cli.main(["cache", "gc", "--max-age", "30d"]) == 0
    out = capsys.readouterr().out
    assert "removed envs/stale" in out and "removed 1 entries" in out
    assert [e.key for e in st.entries()] == ["busy"]
    assert cli.main(["cache", "gc", "--max-size", "0"]) == 0
    assert st.entries() == []


def test_cli_cache_gc_needs_a_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cache", "gc"]) == 2
    assert "--max-size or --max-age" in capsys.readouterr().err


def test_default_root_is_live_code_cache_else_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIVE_CODE_CACHE", str(tmp_path / "here"))
    assert store_mod.Store().root == tmp_path / "here"
    monkeypatch.delenv("LIVE_CODE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store_mod.default_root() == tmp_path / "xdg" / "live-code"


@pytest.mark.parametrize(
    ("kind", "key"), [("envs", "../escape"), ("envs", ".hidden"), ("envs", "x.done"), ("wheels", "k1"), ("envs", "")]
)
def test_bad_kind_or_key_is_a_bug(kind: str, key: str) -> None:
    with pytest.raises(AssertionError, match="BUG"):
        store_mod.Store().ensure(kind, key, _build_with("x"))
