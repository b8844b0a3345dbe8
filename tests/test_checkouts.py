"""live_code.source.checkouts: a warm fetch of a commit checked out before copies the verified
checkout and runs no git process; what it hands over is the same as a fresh checkout.

git runs through a logging wrapper first on PATH (a real git underneath), so each test counts
the git processes a fetch started.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from live_code.source import checkouts, git
from live_code.source.localmirror import CHECKOUTS
from live_code.source.store import Pin, Store
from tests.helpers.repos import git as run


@pytest.fixture
def git_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Put a git that logs its arguments, then runs the real one, first on PATH."""
    real = next(
        os.path.join(d, "git") for d in os.environ["PATH"].split(os.pathsep) if os.path.isfile(os.path.join(d, "git"))
    )
    wrap, log = tmp_path / "gitwrap", tmp_path / "git-calls"
    wrap.mkdir()
    (wrap / "git").write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    (wrap / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrap}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(git.ALLOW_LOCAL_ENV, "1")
    log.touch()

    def calls() -> list[str]:
        lines = log.read_text().splitlines()
        log.write_text("")
        return lines

    return calls


def _fetch(url: str, pin: Pin, dest: Path) -> dict[str, object]:
    return Store().fetch_source(url, pin, dest, allow_local=True, deadline=30).as_dict()


def _files(root: Path) -> dict[str, tuple[bytes, bool]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), bool(p.stat().st_mode & stat.S_IXUSR))
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@pytest.mark.parametrize("in_thread", [False, True], ids=["copy kept in the fetch", "copy kept by cp in a thread"])
def test_a_warm_fetch_copies_the_verified_checkout_without_git(
    tmp_path: Path, make_repo: Callable[..., Path], git_calls: Callable[[], list[str]], in_thread: bool
) -> None:
    """Whether the first fetch keeps its copy itself or in a thread (``checkouts.Later``, the
    pipeline's: by ``cp``), the copy keeps bytes, exec bits and links, and serves the next fetch."""
    repo = make_repo(
        {"app.py": "print(1)\n", "run.sh": "#!/bin/sh\n", "deps.lock": "x\n", "d/e.txt": "e\n", "d/f/empty": ""}
    )
    (repo / "run.sh").chmod(0o755)
    os.symlink("../app.py", repo / "d" / "link.py")
    run("add", "-A", cwd=repo)
    run("commit", "-qm", "exec bit", cwd=repo)
    sha = run("rev-parse", "HEAD", cwd=repo)
    git_calls()

    later = checkouts.Later() if in_thread else None
    store = Store()
    first = store.fetch_source(str(repo), Pin("commit", sha), tmp_path / "w1", allow_local=True, later=later).as_dict()
    if later is not None:
        later.join()
    assert git_calls(), "the first fetch runs git"
    second = _fetch(str(repo), Pin("commit", sha), tmp_path / "w2")
    assert git_calls() == []  # the warm fetch: no git process at all
    assert second == {**first, "fetched": False}
    assert first["tree"] == run("rev-parse", f"{sha}^{{tree}}", cwd=repo)
    assert _files(tmp_path / "w2") == _files(tmp_path / "w1")
    assert _files(tmp_path / "w2")["run.sh"][1] is True
    assert os.readlink(tmp_path / "w2" / "d" / "link.py") == "../app.py", "a symlink stays a link"
    assert (tmp_path / "w2" / "d" / "f" / "empty").read_bytes() == b""
    # the copy is a repository of its own at the commit, clean, and writing to it leaves the kept one alone
    assert run("rev-parse", "HEAD", cwd=tmp_path / "w2") == sha
    assert run("status", "--porcelain", cwd=tmp_path / "w2") == ""
    (tmp_path / "w2" / "app.py").write_text("changed\n")
    _fetch(str(repo), Pin("commit", sha), tmp_path / "w3")
    assert (tmp_path / "w3" / "app.py").read_text() == "print(1)\n"


def test_the_kept_checkout_survives_a_later_fetch_into_the_mirror(
    tmp_path: Path, make_repo: Callable[..., Path], git_calls: Callable[[], list[str]]
) -> None:
    """A fetch under the mirror lock removes git's leftover ``*.lock`` files, never a repository's."""
    repo = make_repo({"poetry.lock": "pinned\n", "tmp_pack_notes.txt": "mine\n"})
    c1 = run("rev-parse", "HEAD", cwd=repo)
    _fetch(str(repo), Pin("commit", c1), tmp_path / "w1")
    (repo / "b.txt").write_text("b\n")
    run("add", "-A", cwd=repo)
    run("commit", "-qm", "second", cwd=repo)
    c2 = run("rev-parse", "HEAD", cwd=repo)
    _fetch(str(repo), Pin("commit", c2), tmp_path / "w2")  # takes the mirror lock, removes debris
    git_calls()
    _fetch(str(repo), Pin("commit", c1), tmp_path / "w3")
    assert git_calls() == []
    assert (tmp_path / "w3" / "poetry.lock").read_text() == "pinned\n"
    assert (tmp_path / "w3" / "tmp_pack_notes.txt").read_text() == "mine\n"


def test_a_tag_pin_still_asks_the_server_and_copies_the_tagged_checkout(
    tmp_path: Path, make_repo: Callable[..., Path], git_calls: Callable[[], list[str]]
) -> None:
    repo = make_repo({"a.txt": "a\n"}, tag="v1")
    sha = run("rev-parse", "HEAD", cwd=repo)
    first = _fetch(str(repo), Pin("tag", "v1"), tmp_path / "w1")
    git_calls()
    second = _fetch(str(repo), Pin("tag", "v1"), tmp_path / "w2")
    calls = git_calls()
    assert len(calls) == 1 and " ls-remote " in f" {calls[0]} "  # the moved-tag check, nothing else
    assert second == {**first, "tag_verified": True, "fetched": False}
    assert run("rev-parse", "v1^{commit}", cwd=tmp_path / "w2") == sha
    # a commit pin of the same commit gets a checkout without the tag (as a fresh one would be)
    _fetch(str(repo), Pin("commit", sha), tmp_path / "w3")
    assert run("tag", "--list", cwd=tmp_path / "w3") == ""


def test_a_broken_or_foreign_marker_means_a_fresh_checkout(
    tmp_path: Path, make_repo: Callable[..., Path], git_calls: Callable[[], list[str]]
) -> None:
    repo = make_repo({"a.txt": "a\n"})
    sha = run("rev-parse", "HEAD", cwd=repo)
    _fetch(str(repo), Pin("commit", sha), tmp_path / "w1")
    kept = next((Store().root / "mirrors").glob(f"*/{CHECKOUTS}/{sha}"))
    meta = json.loads((kept / "meta.json").read_text())
    (kept / "meta.json").write_text(json.dumps({**meta, "commit": "0" * 40}))
    git_calls()
    prov = _fetch(str(repo), Pin("commit", sha), tmp_path / "w2")
    assert any("checkout" in c for c in git_calls())  # materialised with git again
    assert prov["tree"] == meta["tree"] and run("rev-parse", "HEAD", cwd=tmp_path / "w2") == sha


def test_the_copy_keeps_modes_and_refuses_what_a_checkout_cannot_hold(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_bytes(b"\x00" * 300_000)  # more than one sendfile call may move
    (src / "bin" / "tool").chmod(0o750)
    (src / "bin").chmod(0o710)
    (src / "ro.txt").write_text("r\n")
    (src / "ro.txt").chmod(0o444)
    dest.mkdir()
    checkouts._copy_tree(src, dest)
    assert (dest / "bin" / "tool").read_bytes() == (src / "bin" / "tool").read_bytes()
    assert stat.S_IMODE((dest / "bin" / "tool").stat().st_mode) == 0o750
    assert stat.S_IMODE((dest / "bin").stat().st_mode) == 0o710
    assert stat.S_IMODE((dest / "ro.txt").stat().st_mode) == 0o444

    os.mkfifo(src / "pipe")  # opened without blocking, then refused by name
    (tmp_path / "dest2").mkdir()
    with pytest.raises(OSError, match="pipe is not a regular file"):
        checkouts._copy_tree(src, tmp_path / "dest2")


# -- the pipeline's cold path (issue 24): the copy kept in a thread, the network call announced -------


def test_a_copy_being_kept_holds_its_mirror_in_use_until_it_ends(tmp_path: Path) -> None:
    """``Store.remove`` (what gc calls) refuses the mirror while a kept copy is still being made."""
    store = Store()
    store.ensure("mirrors", "m1", lambda p: None)
    go, ran = threading.Event(), threading.Event()

    def slow_copy() -> None:
        go.wait(30)
        ran.set()

    later = checkouts.Later()
    later.start(slow_copy, store.using("mirrors", "m1"))
    assert store.remove("mirrors", "m1") is False, "in use while the copy runs"
    go.set()
    later.join()
    assert ran.is_set(), "join waits for the copy"
    assert store.remove("mirrors", "m1") is True, "the hold ends with the copy"


def test_on_network_is_called_before_the_fetch_and_not_when_the_mirror_has_the_commit(
    tmp_path: Path, make_repo: Callable[..., Path], git_calls: Callable[[], list[str]]
) -> None:
    repo = make_repo({"a.txt": "a\n"})
    sha = run("rev-parse", "HEAD", cwd=repo)
    git_calls()
    seen: list[list[str]] = []

    def fetch(dest: Path) -> None:
        Store().fetch_source(
            str(repo), Pin("commit", sha), dest, allow_local=True, on_network=lambda: seen.append(git_calls())
        )

    fetch(tmp_path / "w1")
    assert len(seen) == 1, "one network call, announced once"
    assert not any(" fetch " in f" {c} " for c in seen[0]), f"announced before git fetched: {seen[0]}"
    assert any(" fetch " in f" {c} " for c in git_calls()), "and git fetched after it"
    fetch(tmp_path / "w2")
    assert len(seen) == 1, "a commit the mirror holds needs no network call, so nothing is announced"
