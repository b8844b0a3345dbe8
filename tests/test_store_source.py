"""Store.fetch_source: mirrors, pins and per-run working trees, against real repositories served as
local paths, by ``git daemon`` and by ``git http-backend`` on 127.0.0.1."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from live_code.errors import CacheError, SourceError, UnsafeSourceError
from live_code.source import git
from live_code.source.store import Pin, SourceProvenance, Store
from tests.helpers.gitserver import GitDaemon, HttpGitServer, SilentServer, processes_mentioning
from tests.helpers.repos import git as run

FAST = git.RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)
NET = {"https", "ssh", "http", "git"}
CANARY = "canary-7e1d0b5a9f3c"


class Project:
    """A served repository with three commits, a lightweight tag v1 (first commit), an annotated
    tag v2 (second commit) and a branch dev (third commit); main stays on the second."""

    def __init__(self, root: Path, make_repo: Callable[..., Path]) -> None:
        self.root = root
        self.repo = make_repo({"app.py": "print(1)\n", "data/x.txt": "one\n"}, name=f"{root.name}/proj", tag="v1")
        self.c1 = self.head()
        self.commit({"app.py": "print(2)\n"}, "second")
        self.c2 = self.head()
        run("tag", "-a", "-m", "release 2", "v2", cwd=self.repo)
        run("checkout", "-q", "-b", "dev", cwd=self.repo)
        self.commit({"app.py": "print(3)\n", "new.txt": "n\n"}, "third")
        self.c3 = self.head()
        run("checkout", "-q", "main", cwd=self.repo)

    def head(self) -> str:
        return run("rev-parse", "HEAD", cwd=self.repo)

    def commit(self, files: dict[str, str], msg: str) -> None:
        for rel, text in files.items():
            (self.repo / rel).write_text(text)
        run("add", "-A", cwd=self.repo)
        run("commit", "-qm", msg, cwd=self.repo)


@pytest.fixture
def project(tmp_path: Path, make_repo: Callable[..., Path]) -> Project:
    return Project(tmp_path / "srv", make_repo)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(git.ALLOW_LOCAL_ENV, "1")


def fetch(url: str, pin: Pin, dest: Path, **kw: Any) -> SourceProvenance:
    kw.setdefault("allow_local", git.allow_local_from_env())
    kw.setdefault("schemes", NET)
    kw.setdefault("retry", FAST)
    kw.setdefault("deadline", 30)
    return Store().fetch_source(url, pin, dest, **kw)


def assert_tree_is(dest: Path, project: Project, sha: str) -> None:
    """``dest`` holds exactly the files of ``sha`` and its HEAD is that commit."""
    assert run("rev-parse", "HEAD", cwd=dest) == sha
    expected = run("ls-tree", "-r", "--name-only", sha, cwd=project.repo).split("\n")
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() and ".git" not in p.parts)
    assert files == sorted(expected)
    for rel in files:
        assert (dest / rel).read_bytes() == subprocess.run(
            ["git", "show", f"{sha}:{rel}"], cwd=project.repo, capture_output=True, check=True
        ).stdout
    assert run("status", "--porcelain", cwd=dest) == ""


@pytest.fixture
def daemon(project: Project) -> Iterator[GitDaemon]:
    with GitDaemon(project.root) as d:
        yield d


@pytest.fixture(params=["local", "daemon", "http"])
def served(request: pytest.FixtureRequest, project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The project's URL through each transport."""
    if request.param == "local":
        monkeypatch.setenv(git.ALLOW_LOCAL_ENV, "1")
        yield str(project.repo)
    elif request.param == "daemon":
        with GitDaemon(project.root) as d:
            yield d.url("proj")
    else:
        with HttpGitServer(project.root) as s:
            yield s.url("proj")


# -- acceptance 1: every kind of pin gives exactly that commit --------------------------------


def test_fetch_every_kind_of_pin(tmp_path: Path, project: Project, served: str) -> None:
    cases = [
        (Pin("commit", project.c1), project.c1, "commit"),
        (Pin("commit", project.c2[:9].upper()), project.c2, "commit"),
        (Pin("tag", "v1"), project.c1, "tag"),
        (Pin("tag", "v2"), project.c2, "tag"),
        (Pin("branch", "dev"), project.c3, "branch"),
        (Pin("legacy-ref", "v2"), project.c2, "tag"),
        (Pin("legacy-ref", "dev"), project.c3, "branch"),
        (Pin("legacy-ref", project.c1[:10]), project.c1, "commit"),
        (Pin("tag", "v2", commit=project.c2[:8]), project.c2, "tag"),
    ]
    for i, (pin, sha, kind) in enumerate(cases):
        dest = tmp_path / f"run{i}"
        prov = fetch(served, pin, dest, allow_branch=True)
        assert (prov.commit, prov.resolved_kind, prov.pin, prov.pin_kind) == (sha, kind, pin.value, pin.kind)
        assert prov.tree == run("rev-parse", f"{sha}^{{tree}}", cwd=project.repo)
        assert_tree_is(dest, project, sha)
    mirrors = [p for p in (Store().root / "mirrors").iterdir() if p.is_dir()]
    assert len(mirrors) == 1


def test_provenance_record(tmp_path: Path, project: Project, local: None) -> None:
    prov = fetch(str(project.repo), Pin("tag", "v2"), tmp_path / "a")
    record = prov.as_dict()
    assert record == {
        "url": f"file://{os.path.realpath(project.repo)}",
        "pin": "v2",
        "pin_kind": "tag",
        "resolved_kind": "tag",
        "commit": project.c2,
        "tree": run("rev-parse", "v2^{tree}", cwd=project.repo),
        "commit_time": record["commit_time"],
        "tag_verified": False,
        "tag_first_commit": None,
        "fetched": True,
    }
    stamp = run("log", "-1", "--format=%cI", project.c2, cwd=project.repo)
    assert record["commit_time"][:19] == stamp[:19]
    assert json.loads(json.dumps(record)) == record
    again = fetch(str(project.repo), Pin("tag", "v2"), tmp_path / "b")
    assert again.tag_verified is True and again.fetched is False


def test_working_tree_is_its_own_repository(tmp_path: Path, project: Project, daemon: GitDaemon) -> None:
    dest = tmp_path / "run"
    fetch(daemon.url("proj"), Pin("tag", "v2"), dest)
    assert run("describe", "--tags", cwd=dest) == "v2"
    assert not (dest / ".git" / "objects" / "info" / "alternates").exists()
    assert not list(dest.rglob("FETCH_HEAD"))
    cache = str(Store().root)
    for p in (dest / ".git").rglob("*"):
        if p.is_file():
            assert cache.encode() not in p.read_bytes(), p
    # user code may write in its tree (and commit there) without touching the cache
    (dest / "app.py").write_text("changed")
    run("commit", "-qam", "local change", cwd=dest)
    other = tmp_path / "run2"
    fetch(daemon.url("proj"), Pin("tag", "v2"), other)
    assert (other / "app.py").read_text() == "print(2)\n"


# -- acceptance 2: a cached commit needs no network -------------------------------------------


def test_cached_commit_needs_no_network(tmp_path: Path, project: Project) -> None:
    with GitDaemon(project.root) as d:
        url = d.url("proj")
        first = fetch(url, Pin("commit", project.c1), tmp_path / "a")
        assert first.fetched
    # the server is gone: the same full SHA, and a legacy ref that is that SHA, still work
    second = fetch(url, Pin("commit", project.c1), tmp_path / "b", retry=git.RetryPolicy(attempts=1))
    assert second.fetched is False and second.commit == project.c1
    assert_tree_is(tmp_path / "b", project, project.c1)
    third = fetch(url, Pin("legacy-ref", project.c1), tmp_path / "c", retry=git.RetryPolicy(attempts=1))
    assert third.fetched is False
    with pytest.raises(SourceError):  # a commit not yet fetched does need the server
        fetch(url, Pin("commit", project.c2), tmp_path / "d", retry=git.RetryPolicy(attempts=1))
    assert not (tmp_path / "d").exists()


def test_single_commit_fetch_transfers_one_commit(tmp_path: Path, project: Project, daemon: GitDaemon) -> None:
    fetch(daemon.url("proj"), Pin("commit", project.c2), tmp_path / "a")
    mirror = next(p for p in (Store().root / "mirrors").iterdir() if p.is_dir())
    assert run("--git-dir", str(mirror), "rev-list", "--all", cwd=tmp_path) == project.c2


def test_v0_server_without_sha_fetch_falls_back_to_full_history(tmp_path: Path, project: Project) -> None:
    with HttpGitServer(project.root, v2=False) as srv:
        prov = fetch(srv.url("proj"), Pin("commit", project.c1), tmp_path / "a")
    assert prov.commit == project.c1
    assert_tree_is(tmp_path / "a", project, project.c1)


# -- acceptance 3: moved tags -------------------------------------------------------------------


def test_moved_tag_is_detected_on_the_next_run(tmp_path: Path, project: Project, daemon: GitDaemon) -> None:
    url = daemon.url("proj")
    assert fetch(url, Pin("tag", "v1"), tmp_path / "a").commit == project.c1
    run("tag", "-f", "v1", project.c3, cwd=project.repo)
    with pytest.raises(SourceError, match="tag moved") as e:
        fetch(url, Pin("tag", "v1"), tmp_path / "b")
    assert project.c1 in e.value.message and project.c3 in e.value.message
    assert "live_code_allow_moved_tag" in (e.value.hint or "")
    assert not (tmp_path / "b").exists()
    with pytest.raises(SourceError, match="tag moved"):  # the legacy key is held to the same rule
        fetch(url, Pin("legacy-ref", "v1"), tmp_path / "b")
    prov = fetch(url, Pin("tag", "v1"), tmp_path / "c", allow_moved_tag=True)
    assert (prov.commit, prov.tag_first_commit, prov.tag_verified) == (project.c3, project.c1, False)
    assert_tree_is(tmp_path / "c", project, project.c3)
    with pytest.raises(SourceError, match="tag moved"):  # allowing it once does not re-learn it
        fetch(url, Pin("tag", "v1"), tmp_path / "d")


def test_annotated_tag_moved_to_a_new_tag_object_on_the_same_commit_is_not_a_move(
    tmp_path: Path,
    project: Project,
    local: None,
) -> None:
    fetch(str(project.repo), Pin("tag", "v2"), tmp_path / "a")
    run("tag", "-f", "-a", "-m", "re-tagged", "v2", project.c2, cwd=project.repo)
    assert fetch(str(project.repo), Pin("tag", "v2"), tmp_path / "b").tag_verified is True


# -- pins that are wrong -----------------------------------------------------------------------


def test_branch_is_refused_unless_allowed(tmp_path: Path, project: Project, local: None) -> None:
    with pytest.raises(SourceError, match="branch") as e:
        fetch(str(project.repo), Pin("branch", "dev"), tmp_path / "a")
    assert "live_code_allow_branch" in (e.value.hint or "")
    with pytest.raises(SourceError, match="branch"):
        fetch(str(project.repo), Pin("legacy-ref", "dev"), tmp_path / "a")
    prov = fetch(str(project.repo), Pin("legacy-ref", "dev"), tmp_path / "b", allow_branch=True)
    assert (prov.resolved_kind, prov.commit) == ("branch", project.c3)


def test_commit_and_tag_that_disagree(tmp_path: Path, project: Project, local: None) -> None:
    with pytest.raises(SourceError, match="not the pinned commit"):
        fetch(str(project.repo), Pin("tag", "v2", commit=project.c1), tmp_path / "a")


def test_missing_refs_say_what_to_check(tmp_path: Path, project: Project, daemon: GitDaemon) -> None:
    url = daemon.url("proj")
    for pin, match in [
        (Pin("tag", "v9"), "no tag 'v9'"),
        (Pin("tag", "dev"), "no tag 'dev'"),
        (Pin("legacy-ref", "nothing"), "no tag, branch or commit"),
        (Pin("commit", "0" * 40), "not our ref|not on any"),
        (Pin("commit", "0000000"), "matches no commit"),
    ]:
        with pytest.raises(SourceError, match=match) as e:
            fetch(url, pin, tmp_path / "x")
        assert e.value.hint
    with pytest.raises(SourceError) as e:
        fetch(url, Pin("tag", "dev"), tmp_path / "x")
    assert "branch" in (e.value.hint or "")
    with pytest.raises(SourceError, match="no such repository") as e:
        fetch(daemon.url("nope"), Pin("tag", "v1"), tmp_path / "x")
    assert "does not exist" in (e.value.hint or "")


def _colliding_commits(repo: Path) -> tuple[str, str]:
    """Two commits whose ids share their first 7 hex digits (birthday search over messages)."""
    tree = run("rev-parse", "HEAD^{tree}", cwd=repo)
    parent = run("rev-parse", "HEAD", cwd=repo)
    seen: dict[str, bytes] = {}
    i = 0
    while True:
        body = (
            f"tree {tree}\nparent {parent}\nauthor t <t@t> 0 +0000\ncommitter t <t@t> 0 +0000\n\ncollide {i}\n"
        ).encode()
        sha = hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()
        if sha[:7] in seen:
            ids = []
            for raw in (seen[sha[:7]], body):
                ids.append(
                    subprocess.run(
                        ["git", "hash-object", "-t", "commit", "-w", "--stdin"],
                        cwd=repo,
                        input=raw,
                        capture_output=True,
                        check=True,
                    )
                    .stdout.decode()
                    .strip()
                )
            return ids[0], ids[1]
        seen[sha[:7]] = body
        i += 1


def test_ambiguous_abbreviated_commit_is_an_error(tmp_path: Path, project: Project, local: None) -> None:
    a, b = _colliding_commits(project.repo)
    run("branch", "ca", a, cwd=project.repo)
    run("branch", "cb", b, cwd=project.repo)
    with pytest.raises(SourceError, match="ambiguous") as e:
        fetch(str(project.repo), Pin("commit", a[:7]), tmp_path / "x")
    assert a in e.value.message and b in e.value.message
    # the shortest prefix that tells them apart (they may share more than 7 digits: 1 in 16 share 8)
    unique = next(i for i in range(7, 40) if a[i] != b[i]) + 1
    assert fetch(str(project.repo), Pin("commit", a[:unique]), tmp_path / "y").commit == a


def test_tag_of_a_tree_is_refused(tmp_path: Path, project: Project, local: None) -> None:
    run("tag", "-a", "-m", "tree", "treetag", "HEAD^{tree}", cwd=project.repo)
    with pytest.raises(SourceError, match="tree"):
        fetch(str(project.repo), Pin("tag", "treetag"), tmp_path / "x")


def test_destination_must_be_new_and_outside_the_cache(tmp_path: Path, project: Project, local: None) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "f").write_text("x")
    for dest in (busy, Store().root / "runs" / "x", Store().root.parent):
        with pytest.raises(CacheError):
            fetch(str(project.repo), Pin("commit", project.c1), dest)
    assert (busy / "f").read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fetch(str(project.repo), Pin("commit", project.c1), empty).commit == project.c1


# -- acceptance 4: refused before git runs ------------------------------------------------------


def _no_git_ran() -> None:
    mirrors = Store().root / "mirrors"
    assert not mirrors.exists() or not any(mirrors.iterdir())


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% {marker}",
        "fd::17/foo",
        "--upload-pack=touch {marker}",
        "-u{marker}",
        "--config=core.sshCommand=touch {marker}",
        "file://{repo}",
        "{repo}",
    ],
)
def test_unsafe_url_is_refused_before_git_runs(tmp_path: Path, project: Project, url: str) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(UnsafeSourceError):
        fetch(url.format(marker=marker, repo=project.repo), Pin("commit", project.c1), tmp_path / "x")
    assert not marker.exists() and not (tmp_path / "x").exists()
    _no_git_ran()


@pytest.mark.parametrize(
    "pin",
    [
        Pin("tag", "--upload-pack=touch {marker}"),
        Pin("branch", "-u{marker}"),
        Pin("legacy-ref", "--output={marker}"),
        Pin("commit", "--upload-pack=touch {marker}"),
        Pin("tag", "v1", commit="--output={marker}"),
        Pin("tag", "refs/../../x"),
    ],
)
def test_option_as_ref_is_refused_before_git_runs(
    tmp_path: Path, project: Project, daemon: GitDaemon, pin: Pin
) -> None:
    marker = tmp_path / "pwned"
    pin = Pin(pin.kind, pin.value.format(marker=marker), pin.commit and pin.commit.format(marker=marker))
    with pytest.raises(UnsafeSourceError):
        fetch(daemon.url("proj"), pin, tmp_path / "x", allow_branch=True)
    assert not marker.exists()
    _no_git_ran()


# -- acceptance 5: the canary token -------------------------------------------------------------


def _argv_holding(secret: str) -> list[str]:
    return [cmd for _, cmd in processes_mentioning(secret)]


def test_canary_token_appears_nowhere(tmp_path: Path, project: Project, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen_argv: list[str] = []
    git_was_running: list[bool] = []
    encoded = base64.b64encode(f"x-access-token:{CANARY}".encode()).decode()

    def check_processes() -> None:  # runs in the server while git waits for the answer
        git_was_running.append(bool(list(processes_mentioning("127.0.0.1"))))
        seen_argv.extend(_argv_holding(CANARY) + _argv_holding(encoded))

    with HttpGitServer(project.root, token=CANARY) as srv:
        srv.on_request = check_processes
        url = srv.url("proj", userinfo=f"x-access-token:{CANARY}")
        records = [
            fetch(url, Pin("tag", "v2"), tmp_path / "a").as_dict(),
            fetch(srv.url("proj"), Pin("commit", project.c3), tmp_path / "b", token=CANARY).as_dict(),
        ]
        errors = []
        for pin in (Pin("tag", "v9"), Pin("commit", "0" * 40)):
            with pytest.raises(SourceError) as e:
                fetch(url, pin, tmp_path / "c")
            errors.append(e.value)
        with pytest.raises(SourceError) as e:
            fetch(srv.url("proj", userinfo=f"u:{CANARY}-wrong"), Pin("tag", "v1"), tmp_path / "c")
        errors.append(e.value)
        assert srv.auth_failures >= 1
    assert git_was_running and all(git_was_running)
    assert seen_argv == []
    assert records[0]["url"] == srv.url("proj") and records[1]["commit"] == project.c3
    texts = [json.dumps(records), caplog.text] + [f"{e} {e.render()} {e.hint} {e.value}" for e in errors]
    for text in texts:
        assert CANARY not in text and encoded not in text
    assert "***@" in caplog.text
    for root in (Store().root, tmp_path / "a", tmp_path / "b"):
        for p in root.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                assert CANARY.encode() not in data and encoded.encode() not in data, p


def test_token_from_env_is_used_for_a_url_without_credential(
    tmp_path: Path,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(git.TOKEN_ENV, CANARY)
    with HttpGitServer(project.root, token=CANARY) as srv:
        url = srv.url("proj")
        token = git.token_from_env(git.normalise_url(url, allow_local=False, schemes=NET))
        assert fetch(url, Pin("tag", "v1"), tmp_path / "a", token=token).commit == project.c1
        with pytest.raises(SourceError) as e:
            fetch(url, Pin("tag", "v2"), tmp_path / "b")
        assert "credential" in (e.value.hint or "")


# -- acceptance 6: concurrency and SIGKILL ------------------------------------------------------


_SCRIPT = """
import json, sys
from live_code.source import git
from live_code.source.store import Pin, Store
url, kind, value, dest = sys.argv[1:5]
prov = Store().fetch_source(url, Pin(kind, value), dest, allow_local=git.allow_local_from_env(),
                            schemes={"https", "ssh", "http", "git"}, deadline=60)
print(json.dumps(prov.as_dict()))
"""


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "fetch_one.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    return script


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), **extra}


@pytest.mark.slow
def test_concurrent_processes_share_one_mirror(tmp_path: Path, project: Project, daemon: GitDaemon) -> None:
    url = daemon.url("proj")
    pins = [
        ("commit", project.c1, project.c1),
        ("commit", project.c2, project.c2),
        ("tag", "v1", project.c1),
        ("tag", "v2", project.c2),
    ] * 2
    script = _script(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, kind, value, str(tmp_path / f"run{i}")],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, (kind, value, _) in enumerate(pins)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    for i, (_, _, sha) in enumerate(pins):
        assert json.loads(outs[i][0])["commit"] == sha
        assert_tree_is(tmp_path / f"run{i}", project, sha)
    mirrors = [p for p in (Store().root / "mirrors").iterdir() if p.is_dir()]
    assert len(mirrors) == 1
    assert set(json.loads((Store().root / "pins.json").read_text())["tags"][url]) == {"v1", "v2"}


def _big_project(project: Project) -> str:
    blob = os.urandom(3 << 20)  # incompressible, so the throttled fetch takes a while
    (project.repo / "weights.bin").write_bytes(blob)
    project.commit({}, "big")
    return project.head()


def _kill_when_receiving(proc: subprocess.Popen[str], mirror: Path, group_of: str | None) -> None:
    """SIGKILL the fetching process (and with ``group_of``, every git working for it) once a pack is
    half-way in."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        packs = list((mirror / "objects" / "pack").glob("tmp_pack_*")) if mirror.exists() else []
        if any(p.stat().st_size > 100_000 for p in packs):
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the fetch never got going")
    victims = [proc.pid] + ([pid for pid, _ in processes_mentioning(group_of)] if group_of else [])
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _lock_is_held(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@pytest.mark.slow
@pytest.mark.parametrize("kill_git_too", [True, False], ids=["whole-job", "harness-only"])
def test_fetch_killed_mid_way_is_followed_by_a_clean_fetch(
    tmp_path: Path,
    project: Project,
    kill_git_too: bool,
) -> None:
    sha = _big_project(project)
    with HttpGitServer(project.root, throttle=200_000) as srv:
        url = srv.url("proj")
        mirror = Store().root / "mirrors" / git.normalise_url(url, allow_local=False, schemes=NET).cache_id
        proc = subprocess.Popen(
            [sys.executable, str(_script(tmp_path)), url, "commit", sha, str(tmp_path / "a")],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _kill_when_receiving(proc, mirror, str(mirror) if kill_git_too else None)
        assert proc.returncode == -signal.SIGKILL
        assert git.resolve(mirror, f"refs/live-code/{sha}") is None  # nothing a later run would trust
        if not kill_git_too:  # the orphaned git still holds the mirror's lock: nobody writes beside it
            assert list(processes_mentioning(str(mirror)))
            assert _lock_is_held(Store().root / "locks" / f"mirrors-{mirror.name}.lock")
        srv.throttle = None
        prov = fetch(url, Pin("commit", sha), tmp_path / "b")
    assert prov.commit == sha
    assert_tree_is(tmp_path / "b", project, sha)
    assert run("--git-dir", str(mirror), "fsck", "--connectivity-only", cwd=tmp_path) == ""
    assert list(processes_mentioning(str(mirror))) == []


# -- acceptance 7: a server that never answers --------------------------------------------------


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_silent_server_fails_within_the_deadline(tmp_path: Path, scheme: str) -> None:
    deadline, grace = 3.0, 3.0
    with SilentServer() as silent:
        url = f"{scheme}://127.0.0.1:{silent.port}/proj"
        start = time.monotonic()
        with pytest.raises(SourceError):
            fetch(url, Pin("tag", "v1"), tmp_path / "x", deadline=deadline)
        assert time.monotonic() - start < deadline + grace
        assert list(processes_mentioning(f"127.0.0.1:{silent.port}")) == []
        assert list(processes_mentioning(str(Store().root))) == []
    assert not (tmp_path / "x").exists()


def test_stale_git_locks_in_a_mirror_are_cleared(tmp_path: Path, project: Project, daemon: GitDaemon) -> None:
    url = daemon.url("proj")
    fetch(url, Pin("commit", project.c1), tmp_path / "a")
    mirror = Store().root / "mirrors" / git.normalise_url(url, allow_local=False, schemes=NET).cache_id
    for debris in ("shallow.lock", "packed-refs.lock", "objects/pack/tmp_pack_XYZ"):
        (mirror / debris).write_text("")
    (mirror / "refs" / "tags").mkdir(exist_ok=True)
    (mirror / "refs" / "tags" / "v2.lock").write_text("")
    assert fetch(url, Pin("tag", "v2"), tmp_path / "b").commit == project.c2
    assert not list(mirror.rglob("*.lock")) and not list(mirror.rglob("tmp_pack_*"))


def test_gc_keeps_a_mirror_in_use_and_removes_it_otherwise(tmp_path: Path, project: Project, local: None) -> None:
    fetch(str(project.repo), Pin("commit", project.c1), tmp_path / "a")
    store = Store()
    (entry,) = [e for e in store.entries() if e.kind == "mirrors"]
    assert entry.complete and entry.meta["url"].startswith("file://")
    with store.using("mirrors", entry.key):
        assert store.gc(max_age=-1) == []
    assert [e.key for e in store.gc(max_age=-1)] == [entry.key]
    assert fetch(str(project.repo), Pin("commit", project.c1), tmp_path / "b").fetched is True


def test_threads_in_one_process_fetch_the_same_pin(tmp_path: Path, project: Project, daemon: GitDaemon) -> None:
    url, results, errors = daemon.url("proj"), [], []

    def one(i: int) -> None:
        try:
            results.append(fetch(url, Pin("tag", "v2"), tmp_path / f"t{i}").commit)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [project.c2] * 4


# -- what a mirror holds, known without git where git would only say "nothing" -------------------


def test_a_new_mirror_holds_nothing_and_a_packed_trust_ref_is_still_found(tmp_path: Path) -> None:
    from live_code.source.localmirror import KEEP, holds_no_objects, trusted

    src = tmp_path / "src"
    src.mkdir()
    run("init", "-q", cwd=src)
    (src / "a.txt").write_text("a\n")
    run("add", "a.txt", cwd=src)
    run("commit", "-qm", "one", cwd=src)
    sha = run("rev-parse", "HEAD", cwd=src)
    mirror = tmp_path / "mirror"
    git.init_bare(mirror)
    assert holds_no_objects(mirror) and not trusted(mirror, sha)

    run("fetch", "-q", "--depth", "1", str(src), f"+{sha}:{KEEP}{sha}", cwd=mirror)
    assert not holds_no_objects(mirror) and trusted(mirror, sha)
    run("pack-refs", "--all", cwd=mirror)
    assert not (mirror / "refs" / "live-code" / sha).exists(), "the ref is in packed-refs now"
    assert trusted(mirror, sha), "a packed ref is asked of git"
    run("update-ref", "-d", f"{KEEP}{sha}", cwd=mirror)
    assert not trusted(mirror, sha)

    borrowed = tmp_path / "borrowed"
    git.init_bare(borrowed)
    (borrowed / "objects" / "info").mkdir(exist_ok=True)
    (borrowed / "objects" / "info" / "alternates").write_text(f"{mirror / 'objects'}\n")
    assert not holds_no_objects(borrowed), "objects borrowed through alternates count"
