"""live_code.source.git: URL and ref checks, git's hardened environment, and network calls against real
git servers on 127.0.0.1 (git daemon, git http-backend, a server that never answers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from live_code import util
from live_code.errors import SourceError, UnsafeSourceError
from live_code.source import git
from tests.helpers.gitserver import GitDaemon, HttpGitServer, SilentServer, processes_mentioning
from tests.helpers.repos import git as run

FAST = git.RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
CANARY = "canary-tok-5f1e9a7c3d"


def _remote(url: str, *, deadline: float = 20, retry: git.RetryPolicy = FAST, secret: str | None = None) -> git.Remote:
    nurl = git.normalise_url(url, allow_local=True, schemes={"https", "ssh", "http", "git"})
    if secret:
        nurl = nurl.with_secret(secret)
    return git.remote(nurl, deadline=git.Deadline(deadline), retry=retry)


def _raw_remote(url: str, protocols: set[str], deadline: float = 10) -> git.Remote:
    """A Remote built around an unchecked URL: the validator is bypassed on purpose."""
    nurl = git.NormalisedUrl("https", "x", "/x", url)
    return git.Remote(nurl, git.hardened_env(protocols=protocols), git.Deadline(deadline), FAST)


# -- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://github.com/owner/repo", "https://github.com/owner/repo"),
        ("HTTPS://GitHub.COM:443/owner/repo/", "https://github.com/owner/repo"),
        ("https://github.com./owner/repo.git", "https://github.com/owner/repo.git"),
        ("https://git.example.org:8443/group/sub/repo", "https://git.example.org:8443/group/sub/repo"),
        ("ssh://git@github.com/owner/repo", "ssh://git@github.com/owner/repo"),
        ("ssh://git@github.com:22/owner/repo", "ssh://git@github.com/owner/repo"),
        ("git@github.com:owner/repo.git", "git@github.com:owner/repo.git"),
    ],
)
def test_normalise_url_accepts_https_and_ssh_forms(url: str, expected: str) -> None:
    assert git.normalise_url(url, allow_local=False).url == expected


def test_cache_id_is_the_same_for_spellings_of_one_url_and_ignores_the_credential() -> None:
    ids = {
        git.normalise_url(u, allow_local=False).cache_id
        for u in (
            "https://github.com/o/r",
            "HTTPS://github.com:443/o/r/",
            f"https://u:{CANARY}@github.com/o/r",
        )
    }
    assert len(ids) == 1
    assert git.normalise_url("https://github.com/o/other", allow_local=False).cache_id not in ids


@pytest.mark.parametrize(
    "url, user",
    [
        (f"https://bob:{CANARY}@example.com/o/r", "bob"),
        (f"https://{CANARY}@example.com/o/r", git.TOKEN_USERNAME),
        (f"https://x-access-token:{CANARY.replace('-', '%2D')}@example.com/o/r", "x-access-token"),
    ],
)
def test_credential_is_split_off_the_url(url: str, user: str) -> None:
    n = git.normalise_url(url, allow_local=False)
    assert n.secret == CANARY and n.username == user
    assert n.url == "https://example.com/o/r"
    assert n.display == "https://***@example.com/o/r"
    assert CANARY not in repr(n)


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwn",
        "ext::sh",
        "fd::17/foo",
        "fd::0,1",
        "something::https://example.com/x",
        "--upload-pack=touch /tmp/pwn",
        "-u/tmp/x",
        "--config=protocol.ext.allow=always",
        "-cprotocol.ext.allow=always",
        "--template=/tmp/t",
        "file:///etc",
        "/abs/path",
        "./rel",
        "../up",
        "http://example.com/o/r",
        "git://example.com/o/r",
        "ftp://example.com/o/r",
        "data://text/plain,x",
        "ssh://-oProxyCommand=touch%20x/y",
        "ssh://user:password@example.com/o/r",
        "git@-oProxyCommand=x:o/r",
        "https:///o/r",
        "https://exa mple.com/o/r",
        "https://example.com/o\n/r",
        "https://example.com/o/r\x00",
        "https://example.com/$HOME/r",
        "https://example.com/${AWS_SECRET_ACCESS_KEY}",
        "https://example.com/o/r?token=abc",
        "https://example.com/o/r#frag",
        "https://example.com/../etc",
        "https://example.com/",
        "https://exämple.com/o/r",
        "https://example.com:99999/o/r",
        "https://user%0Ahost=evil:tok@example.com/o/r",
        "https://" + "a" * 3000 + ".com/o/r",
        "",
    ],
)
def test_normalise_url_refuses_unsafe_forms(url: str) -> None:
    with pytest.raises(UnsafeSourceError) as e:
        git.normalise_url(url, allow_local=False)
    assert e.value.hint


def test_refusal_does_not_echo_the_credential() -> None:
    for url in (
        f"https://u:{CANARY}@exa mple.com/o/r",
        f"https://u:{CANARY}@example.com/o/r?x=1",
        f"https://example.com/o/r?token={CANARY}",
        f"http://u:{CANARY}@example.com/o/r",
    ):
        with pytest.raises(UnsafeSourceError) as e:
            git.normalise_url(url, allow_local=False)
        assert CANARY not in e.value.render() and CANARY not in str(e.value)


def test_local_paths_need_allow_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not git.allow_local_from_env()
    monkeypatch.setenv(git.ALLOW_LOCAL_ENV, "1")
    assert git.allow_local_from_env()
    monkeypatch.chdir(tmp_path)
    for url in (str(tmp_path / "repo"), f"file://{tmp_path}/repo", "repo", "./repo/"):
        n = git.normalise_url(url, allow_local=True)
        assert (n.scheme, n.url) == ("file", f"file://{os.path.realpath(tmp_path)}/repo")
    with pytest.raises(UnsafeSourceError, match="disabled"):
        git.normalise_url(str(tmp_path), allow_local=False)


def test_http_and_git_schemes_only_when_listed() -> None:
    assert (
        git.normalise_url("http://127.0.0.1:8080/r", allow_local=False, schemes={"http"}).url
        == "http://127.0.0.1:8080/r"
    )
    with pytest.raises(UnsafeSourceError):
        git.normalise_url("https://example.com/r", allow_local=False, schemes={"http"})
    with pytest.raises(UnsafeSourceError):  # ext cannot be listed in
        git.normalise_url("ext::sh", allow_local=False, schemes={"ext", "https"})


def test_token_from_env_honours_the_host_list() -> None:
    n = git.normalise_url("https://git.example.com/o/r", allow_local=False)
    assert git.token_from_env(n, {}) is None
    assert git.token_from_env(n, {git.TOKEN_ENV: CANARY}) == CANARY
    assert git.token_from_env(n, {git.TOKEN_ENV: CANARY, git.TOKEN_HOSTS_ENV: "git.example.com"}) == CANARY
    assert git.token_from_env(n, {git.TOKEN_ENV: CANARY, git.TOKEN_HOSTS_ENV: "github.com, x.org"}) is None


# -- refs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["v1.0.0", "release/2024-01", "v1.0+build.5", "main", "feature_x", "a@b"])
def test_check_ref_accepts_plain_names(name: str) -> None:
    assert git.check_ref(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "--upload-pack=touch /tmp/pwn",
        "-u/tmp/x",
        "--output=/tmp/x",
        "/abs",
        "refs/heads/x",
        "a..b",
        "a b",
        "a\nb",
        "a:b",
        "a^",
        "a~1",
        "a@{1}",
        "@",
        "x/",
        "x.lock",
        "x/.hidden",
        "a//b",
        "",
        "a\\b",
        "*",
        "x" * 300,
    ],
)
def test_check_ref_refuses_option_forms_and_odd_names(name: str) -> None:
    with pytest.raises(UnsafeSourceError):
        git.check_ref(name)


def test_check_sha() -> None:
    assert git.check_sha("ABCDEF0") == "abcdef0"
    assert git.check_sha("a" * 40) == "a" * 40
    for bad in ("abc", "g" * 40, "a" * 41, "--upload-pack=x", "0x1f", 1234567):
        with pytest.raises(UnsafeSourceError):
            git.check_sha(bad)  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(SourceError, match="SHA-256"):
        git.check_sha("a" * 64)


# -- environment -----------------------------------------------------------------------------


def test_hardened_env_is_an_allowlist_with_the_locks() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/x",
        "GIT_DIR": "/elsewhere",
        "GIT_SSH_COMMAND": "evil",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "GIT_ASKPASS": "/bin/echo",
        "LIVE_CODE_GIT_TOKEN": CANARY,
    }
    env = git.hardened_env(protocols={"https", "ext", "fd"}, base=base)
    assert env["GIT_ALLOW_PROTOCOL"] == "https"
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert "GIT_DIR" not in env and "GIT_ASKPASS" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "BatchMode=yes" in env["GIT_SSH_COMMAND"]
    assert CANARY not in "".join(env.values())
    config = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
    assert config["core.hooksPath"] == os.devnull and config["transfer.fsckObjects"] == "true"
    assert config["protocol.allow"] == "never"


def test_secret_goes_only_into_the_helper_environment() -> None:
    n = git.normalise_url(f"https://bob:{CANARY}@example.com/o/r", allow_local=False)
    env = git.hardened_env(n, protocols={"https"})
    holders = [k for k, v in env.items() if CANARY in v]
    assert holders == ["LIVE_CODE_GIT_HELPER_SECRET"]
    keys = [env[f"GIT_CONFIG_KEY_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))]
    assert "credential.https://example.com.helper" in keys


def test_hardened_git_ignores_global_config_and_hooks(
    tmp_path: Path,
    make_repo: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An image-level ~/.gitconfig with an insteadOf rewrite and a template hook has no effect."""
    marker = tmp_path / "hook-ran"
    home = tmp_path / "home"
    (home / "tpl" / "hooks").mkdir(parents=True)
    hook = home / "tpl" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (home / ".gitconfig").write_text(
        f'[init]\n\ttemplateDir = {home / "tpl"}\n[url "ext::sh -c touch% {marker}"]\n\tinsteadOf = file://\n'
    )
    repo = make_repo({"a.txt": "a"})
    sha = run("rev-parse", "HEAD", cwd=repo)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(home / "tpl"))
    env = git.hardened_env(protocols={"file"})
    mirror = tmp_path / "m.git"
    git.init_bare(mirror)
    git.run_git(
        ["--git-dir", str(mirror), "fetch", "-q", "--", f"file://{repo}", f"+{sha}:refs/x"],
        env=env,
        deadline=git.Deadline(10),
    )
    git.materialise(mirror, sha, tmp_path / "wt")
    assert (tmp_path / "wt" / "a.txt").read_text() == "a"
    assert not marker.exists()
    assert not (mirror / "hooks").exists() and not (tmp_path / "wt" / ".git" / "hooks").exists()


# -- the validator bypassed: git's own locks still hold ----------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "ext::sh -c touch% {marker}",
        "ext::sh -c 'touch {marker}'",
        "fd::17/foo",
        "--upload-pack=touch {marker}",
        "-u touch {marker}",
        "--config=protocol.ext.allow=always",
    ],
)
def test_unsafe_url_is_blocked_by_git_when_the_validator_is_bypassed(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    rem = _raw_remote(payload.format(marker=marker), {"https", "ssh"})
    with pytest.raises(SourceError):
        git.ls_remote(rem, ["refs/tags/v1"])
    mirror = tmp_path / "m.git"
    git.init_bare(mirror)
    with pytest.raises(SourceError):
        git.fetch(rem, mirror, ["+refs/tags/v1:refs/tags/v1"], depth=1)
    assert not marker.exists()


def test_ext_payload_would_run_without_the_protocol_lock(tmp_path: Path) -> None:
    """Control for the test above: the environment is what stops the ext:: payload."""
    marker = tmp_path / "pwned"
    env = {**git.hardened_env(protocols=set()), "GIT_ALLOW_PROTOCOL": "ext"}
    util.cmd_output("git", "ls-remote", "--", f"ext::sh -c touch% {marker}", env=env, timeout=10, check=False)
    assert marker.exists()


def test_option_as_ref_is_not_run_when_the_validator_is_bypassed(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    marker = tmp_path / "pwned"
    repo = make_repo({"a": "a"})
    rem = _remote(str(repo))
    mirror = tmp_path / "m.git"
    git.init_bare(mirror)
    for ref in (f"--upload-pack=touch {marker}", f"--output={marker}", "-u/bin/false"):
        with pytest.raises(SourceError):
            git.fetch(rem, mirror, [ref])
        with pytest.raises(SourceError):
            git.fetch_commit(rem, mirror, ref, "refs/x")
        assert git.ls_remote(rem, [ref]) == {}
    assert not marker.exists()


def test_file_transport_is_blocked_unless_enabled(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a": "a"}, tag="v1")
    for url in (f"file://{repo}", str(repo)):
        with pytest.raises(SourceError, match="not allowed"):
            git.ls_remote(_raw_remote(url, {"https", "ssh"}), ["refs/tags/v1"])
    assert "refs/tags/v1" in git.ls_remote(_raw_remote(str(repo), {"file"}), ["refs/tags/v1"])


# -- failures: classification, retries, deadlines --------------------------------------------


@pytest.mark.parametrize(
    "stderr, reason, transient",
    [
        ("fatal: unable to access 'https://h/x/': Could not resolve host: h", "network", True),
        (
            "fatal: unable to access 'https://h/x/': Failed to connect to h port 443: Connection refused",
            "network",
            True,
        ),
        (
            "error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502\nfatal: early EOF",
            "network",
            True,
        ),
        ("fatal: unable to access 'https://h/x/': The requested URL returned error: 429", "network", True),
        ("fatal: repository 'https://h/x/' not found", "not-found", False),
        ("remote: Repository not found.\nfatal: Authentication failed for 'https://h/x/'", "auth", False),
        ("fatal: could not read Username for 'https://h': terminal prompts disabled", "auth", False),
        ("fatal: couldn't find remote ref refs/tags/v9", "no-ref", False),
        ("fatal: remote error: upload-pack: not our ref 0123", "no-ref", False),
        ("error: Server does not allow request for unadvertised object 0123", "sha-not-allowed", False),
        ("fatal: transport 'file' not allowed", "refused", False),
        ("fatal: unable to access 'https://h/': SSL certificate problem: unable to get local issuer", "tls", False),
        ("fatal: something new", "error", False),
    ],
)
def test_classify(stderr: str, reason: str, transient: bool) -> None:
    failure = git.classify(stderr)
    assert (failure.reason, failure.transient) == (reason, transient)
    assert git.classify(stderr, timed_out=True).reason == "timeout"


def _served(tmp_path: Path, make_repo: Callable[..., Path]) -> tuple[Path, str]:
    repo = make_repo({"a.txt": "a"}, name="srv/proj", tag="v1")
    return tmp_path / "srv", run("rev-parse", "HEAD", cwd=repo)


def test_transient_http_failures_are_retried(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    root, sha = _served(tmp_path, make_repo)
    with HttpGitServer(root, fail_first=2) as srv:
        assert git.ls_remote(_remote(srv.url("proj")), ["refs/tags/v1"]) == {"refs/tags/v1": sha}
        assert len(srv.requests) >= 3


def test_retries_stop_after_the_attempt_budget(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    root, _ = _served(tmp_path, make_repo)
    with HttpGitServer(root, fail_first=100) as srv:
        with pytest.raises(SourceError, match="after 3 attempt"):
            git.ls_remote(_remote(srv.url("proj")), ["refs/tags/v1"])
        assert len(srv.requests) == 3


def test_missing_repo_and_auth_failure_are_not_retried(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    root, _ = _served(tmp_path, make_repo)
    with HttpGitServer(root) as srv:
        with pytest.raises(SourceError, match="after 1 attempt") as e:
            git.ls_remote(_remote(srv.url("nope")), ["refs/tags/v1"])
        assert "does not exist" in (e.value.hint or "")
    with HttpGitServer(root, token=CANARY) as srv:
        for secret in (None, "wrong-token-123"):
            with pytest.raises(SourceError, match="after 1 attempt") as e:
                git.ls_remote(_remote(srv.url("proj"), secret=secret), ["refs/tags/v1"])
            assert "credential" in (e.value.hint or "")
            assert "wrong-token-123" not in e.value.render()
    with GitDaemon(root) as daemon:
        with pytest.raises(SourceError, match="after 1 attempt"):
            git.ls_remote(_remote(daemon.url("nope")), ["refs/tags/v1"])


def test_token_reaches_the_server_through_the_credential_helper(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    root, sha = _served(tmp_path, make_repo)
    with HttpGitServer(root, token=CANARY) as srv:
        assert git.ls_remote(_remote(srv.url("proj"), secret=CANARY), ["refs/tags/v1"]) == {"refs/tags/v1": sha}
        # the helper is scoped to the URL's host: another host does not get the token
        other = git.normalise_url(
            srv.url("proj").replace("127.0.0.1", "localhost"), allow_local=False, schemes={"http"}
        )
        rem = git.Remote(
            other.with_secret(CANARY),
            git.hardened_env(
                git.normalise_url(srv.url("proj"), allow_local=False, schemes={"http"}).with_secret(CANARY),
                protocols={"http"},
            ),
            git.Deadline(10),
            FAST,
        )
        with pytest.raises(SourceError):
            git.ls_remote(rem, ["refs/tags/v1"])


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_server_that_never_answers_fails_within_the_deadline(tmp_path: Path, scheme: str) -> None:
    deadline, grace = 2.0, 3.0
    with SilentServer() as silent:
        rem = _remote(f"{scheme}://127.0.0.1:{silent.port}/proj", deadline=deadline)
        mirror = tmp_path / "m.git"
        git.init_bare(mirror)
        start = time.monotonic()
        with pytest.raises(SourceError):
            git.fetch(rem, mirror, ["+refs/tags/v1:refs/tags/v1"], depth=1)
        elapsed = time.monotonic() - start
        assert elapsed < deadline + grace
        leftovers = list(processes_mentioning(f"127.0.0.1:{silent.port}"))
        assert leftovers == []


def test_deadline_kills_the_process_group(tmp_path: Path) -> None:
    """run_git itself: a git that would wait forever is gone at the deadline, helpers included."""
    with SilentServer() as silent:
        env = git.hardened_env(protocols={"git"})
        start = time.monotonic()
        with pytest.raises(util.CalledProcessError) as e:
            git.run_git(
                ["ls-remote", "--", f"git://127.0.0.1:{silent.port}/x"],
                env=env,
                deadline=git.Deadline(1.5),
                network=True,
            )
        assert e.value.timed_out and time.monotonic() - start < 4
        assert list(processes_mentioning(f"127.0.0.1:{silent.port}")) == []


# -- fetching --------------------------------------------------------------------------------


def test_fetch_commit_by_sha_fetches_only_that_commit(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "1"}, name="srv/proj")
    first = run("rev-parse", "HEAD", cwd=repo)
    (repo / "a.txt").write_text("2")
    run("commit", "-qam", "second", cwd=repo)
    with GitDaemon(tmp_path / "srv") as daemon:
        mirror = tmp_path / "m.git"
        git.init_bare(mirror)
        assert git.fetch_commit(_remote(daemon.url("proj")), mirror, first, "refs/x") is True
    assert run("--git-dir", str(mirror), "rev-list", "--all", cwd=tmp_path) == first
    assert git.is_complete(mirror, first)
    info, _ = git.read_commit(mirror, first)
    assert info.tree == run("rev-parse", f"{first}^{{tree}}", cwd=repo) and info.time.endswith("Z")


def test_fetch_commit_falls_back_to_branches_and_tags_on_a_v0_server(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"a.txt": "1"}, name="srv/proj")
    first = run("rev-parse", "HEAD", cwd=repo)
    (repo / "a.txt").write_text("2")
    run("commit", "-qam", "second", cwd=repo)
    with HttpGitServer(tmp_path / "srv", v2=False) as srv:
        rem = _remote(srv.url("proj"))
        mirror = tmp_path / "m.git"
        git.init_bare(mirror)
        assert git.fetch_commit(rem, mirror, first, "refs/x") is False
        assert git.resolve(mirror, "refs/x") == first
        with pytest.raises(SourceError, match="not on any branch or tag"):
            git.fetch_commit(rem, mirror, "0" * 40, "refs/y")
        run("config", "uploadpack.allowReachableSHA1InWant", "true", cwd=repo)
        other = tmp_path / "other.git"
        git.init_bare(other)
        assert git.fetch_commit(rem, other, first, "refs/x") is True


def test_commits_with_prefix_lists_every_match(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a": "a"})
    sha = run("rev-parse", "HEAD", cwd=repo)
    assert git.commits_with_prefix(repo / ".git", sha[:7]) == [sha]
    assert git.commits_with_prefix(repo / ".git", "0000000") == [] or sha.startswith("0000000")


def test_materialise_leaves_an_independent_checkout(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a", "sub/b.txt": "b"}, tag="v1")
    sha = run("rev-parse", "HEAD", cwd=repo)
    dest = tmp_path / "wt"
    git.materialise(repo / ".git", sha, dest, tag="v1")
    assert run("rev-parse", "HEAD", cwd=dest) == sha
    assert run("describe", "--tags", cwd=dest) == "v1"
    assert run("status", "--porcelain", cwd=dest) == ""
    assert not (dest / ".git" / "objects" / "info" / "alternates").exists()
    assert "url" not in (dest / ".git" / "config").read_text()
    assert sorted(p.name for p in dest.iterdir()) == [".git", "a.txt", "sub"]


def test_materialise_of_a_commit_with_history_is_a_shallow_repository_git_can_check(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    """The job's .git holds the one commit: shallow where the commit has parents (as a depth-1
    fetch leaves it, so ``git log`` and ``fsck`` work), the annotated tag object with it, and the
    tree id and time returned. The same from a mirror that is itself shallow, whose git shows the
    commit without parents."""
    repo = make_repo({"a.txt": "1"})
    for n in ("2", "3"):
        (repo / "a.txt").write_text(n)
        (repo / f"f{n}.txt").write_text(n)
        run("commit", "-q", "-am", f"commit {n}", cwd=repo)
        run("add", "-A", cwd=repo)
        run("commit", "-q", "-m", f"add f{n}", cwd=repo)
    run("tag", "-a", "v2", "-m", "release 2", cwd=repo)
    sha = run("rev-parse", "HEAD", cwd=repo)
    shallow_mirror = tmp_path / "shallow.git"
    git.init_bare(shallow_mirror)
    git.run_git(
        ["--git-dir", str(shallow_mirror), "fetch", "-q", "--depth", "1", "--", f"file://{repo}", f"+{sha}:refs/x"],
        env=git.hardened_env(protocols={"file"}),
        deadline=git.Deadline(10),
    )
    assert (shallow_mirror / "shallow").exists()
    for source, tag in ((repo / ".git", "v2"), (shallow_mirror, None)):
        dest = tmp_path / f"wt-{source.name}"
        info = git.materialise(source, sha, dest, tag=tag)
        assert (info, [run("rev-parse", "HEAD^", cwd=repo)]) == git.read_commit(repo / ".git", sha)
        assert info.tree == run("rev-parse", "HEAD^{tree}", cwd=repo)
        assert (dest / ".git" / "shallow").read_text() == f"{sha}\n"
        assert run("log", "--format=%H", cwd=dest) == sha
        assert run("rev-parse", "--is-shallow-repository", cwd=dest) == "true"
        assert run("status", "--porcelain", cwd=dest) == ""
        run("fsck", "--no-dangling", "--no-progress", cwd=dest)  # raises on a missing object
        assert (dest / "f3.txt").read_text() == "3"
        if tag:
            assert run("cat-file", "-t", "refs/tags/v2", cwd=dest) == "tag"
            assert run("describe", cwd=dest) == "v2"
        else:
            assert run("tag", cwd=dest) == ""


def test_materialise_across_filesystems_and_from_a_mirror_path_git_would_split(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    """pack-objects makes its temporary files beside the pack it writes (a rename across two
    filesystems fails): the cache and the run's folder may be on two. The mirror reaches it as an
    alternate in the environment, where ``:`` separates entries: a path holding one still works."""
    repo = make_repo({"a.txt": "a"})
    sha = run("rev-parse", "HEAD", cwd=repo)
    other_fs = Path("/dev/shm")
    if not other_fs.is_dir() or os.stat(other_fs).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own (a tmpfs), to check out across two")
    mirror = Path(tempfile.mkdtemp(prefix='live-code-test-a:b"c\u00e9-', dir=other_fs)) / "m.git"
    try:
        git.init_bare(mirror)
        git.run_git(
            ["--git-dir", str(mirror), "fetch", "-q", "--", f"file://{repo}", f"+{sha}:refs/x"],
            env=git.hardened_env(protocols={"file"}),
            deadline=git.Deadline(10),
        )
        dest = tmp_path / "wt"
        git.materialise(mirror, sha, dest)
        assert (dest / "a.txt").read_text() == "a"
        run("fsck", "--no-progress", cwd=dest)
        assert not (dest / ".git" / "objects" / "info" / "alternates").exists()
    finally:
        shutil.rmtree(mirror.parent, ignore_errors=True)


def test_materialise_of_a_root_commit_is_not_shallow(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a"})
    sha = run("rev-parse", "HEAD", cwd=repo)
    dest = tmp_path / "wt"
    git.materialise(repo / ".git", sha, dest)
    assert not (dest / ".git" / "shallow").exists()
    assert run("rev-parse", "--is-shallow-repository", cwd=dest) == "false"
    run("fsck", "--no-progress", cwd=dest)


def test_run_git_needs_time_left() -> None:
    clock = git.Deadline(0)
    with pytest.raises(util.CalledProcessError, match="deadline"):
        git.run_git(["--version"], env=git.hardened_env(protocols=()), deadline=clock)
    assert subprocess.run(["git", "--version"], capture_output=True).returncode == 0


@pytest.mark.parametrize(
    ("parent", "url", "expected"),
    [
        ("https://host/org/app.git", "../lib.git", "https://host/org/lib.git"),
        ("https://host/org/app.git", "./lib.git", "https://host/org/app.git/lib.git"),
        ("https://host/app.git", "../../lib.git", "https://host/lib.git"),
        ("/srv/repos/app", "../lib", "/srv/repos/lib"),
        ("https://host/org/app.git", "https://other/x.git", "https://other/x.git"),
    ],
)
def test_relative_submodule_urls_resolve_against_the_parent(parent: str, url: str, expected: str) -> None:
    assert git.resolve_submodule_url(parent, url) == expected


def test_submodule_path_leaving_the_checkout_is_refused(make_repo) -> None:
    repo = make_repo({".gitmodules": '[submodule "evil"]\n\tpath = ../escape\n\turl = https://host/x.git\n'})
    with pytest.raises(UnsafeSourceError, match="leaves the checkout"):
        git.submodules(repo)
