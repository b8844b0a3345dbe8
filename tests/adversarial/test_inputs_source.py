"""Bad URLs, refs and repository content through ``live-code run`` (security-research.md section 3,
"URL", "Commit / tag", "Repository content"; threats 1-5, 7-13). URL and ref refusals happen
before git runs; payloads that would run a command point at a marker file that must not appear."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from live_code import errors
from tests.helpers.adversarial import CANARY_URL, JOB_OUTPUTS, Harness, Link, Repo, job
from tests.helpers.repos import git

SHA = "0123456789abcdef0123456789abcdef01234567"


def _marker(harness: Harness) -> Path:
    return harness.root / "pwned"


# every one refused before git runs (UnsafeSourceError: exit 3, YMIR code 300001); {m} is a marker path
BAD_URLS = [
    "ext::sh -c touch% {m}",
    "ext::sh -c 'touch {m}'",
    "fd::17/foo",
    "something::https://example.com/x",
    "--upload-pack=touch {m}",
    "-u/tmp/x",
    "--config=protocol.ext.allow=always",
    "-cprotocol.ext.allow=always",
    "--template=/tmp/t",
    "--bundle-uri=file:///etc",
    "--separate-git-dir=/tmp/g",
    "file:///etc",
    "/abs/path",
    "./rel",
    "../up",
    "~/repo",
    "ssh://-oProxyCommand=touch%20{m}/x",
    "git@-oProxyCommand=x:o/r",
    "git://example.com/o/r",
    "http://example.com/o/r",
    "ftp://example.com/o/r",
    f"https://user:{CANARY_URL}@exa mple.com/o/r",
    f"https://example.com/o/r?token={CANARY_URL}",
    f"https://example.com/o/r#{CANARY_URL}",
    f"ssh://git:{CANARY_URL}@example.com/o/r",
    "https://example.com/$HOME/r",
    "https://example.com/${AWS_SECRET_ACCESS_KEY}",
    "https://example.com/%USERPROFILE%/r",
    "https:///o/r",
    "https://example.com/o\n/r",
    "https://example.com/o\r/r",
    "https://example.com/o\t/r",
    "https://example.com/o/r\x00",
    "https://exa mple.com/o/r",
    "https://exämple.com/o/r",
    "https://example.com/" + "a" * 10_000,
    "https://example.com:99999/o/r",
    "https://example.com/../etc",
    "https://user%0Ahost=evil:tok@example.com/o/r",
    "https://[::1/o/r",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_url_is_refused_before_git_runs(harness: Harness, url: str) -> None:
    harness.allow_local = False
    harness.set_config(git_url=url.replace("{m}", str(_marker(harness))), git_commit=SHA)
    rec = harness.expect_failure(harness.run(timeout=60), errors.UnsafeSourceError, "git_url refused")
    assert not _marker(harness).exists()
    assert "source" not in harness.provenance()
    assert len(rec.message) < 600


@pytest.mark.parametrize("url", ["ext::sh -c touch% {m}", "--upload-pack=touch {m}", "file://{repo}", "{repo}"])
def test_local_and_transport_urls_need_the_operator_switch(harness: Harness, url: str) -> None:
    """file:// and local paths only with LIVE_CODE_ALLOW_LOCAL_REPOS=1 (never from the task)."""
    repo = harness.repo({})
    harness.allow_local = False
    harness.set_config(
        git_url=url.replace("{m}", str(_marker(harness))).replace("{repo}", str(repo.path)), git_commit=repo.sha
    )
    harness.expect_failure(harness.run(timeout=60), errors.UnsafeSourceError, "git_url refused")
    assert not _marker(harness).exists()


# git_commit / git_tag / git_branch values refused before git runs
BAD_REFS = [
    ("git_commit", "--upload-pack=touch {m}"),
    ("git_commit", "g" * 40),
    ("git_commit", "abc"),
    ("git_commit", "a" * 41),
    ("git_commit", "-" + "a" * 39),
    ("git_tag", "--upload-pack=touch {m}"),
    ("git_tag", "--output={m}"),
    ("git_tag", "-u/tmp/x"),
    ("git_tag", "/abs"),
    ("git_tag", "a..b"),
    ("git_tag", "v1@{1}"),
    ("git_tag", "v1^"),
    ("git_tag", "v1~1"),
    ("git_tag", "a:b"),
    ("git_tag", "a b"),
    ("git_tag", "a\nb"),
    ("git_tag", "a\x07b"),
    ("git_tag", "refs/heads/../../x"),
    ("git_tag", "refs/tags/v1"),
    ("git_tag", "x.lock"),
    ("git_branch", "--upload-pack=touch {m}"),
    ("git_branch", "../../x"),
]


@pytest.mark.parametrize(("key", "value"), BAD_REFS)
def test_bad_ref_is_refused_before_git_runs(harness: Harness, key: str, value: str) -> None:
    repo = harness.repo({}, tag="v1")
    harness.set_config(
        **{"git_url": str(repo.path), "git_commit": None, key: value.replace("{m}", str(_marker(harness)))}
    )
    out = harness.run(timeout=60)
    if out.returncode == errors.ConfigError.exit_code:  # refused already by the config reader (a YAML trap)
        harness.expect_failure(out, errors.ConfigError, key)
    else:
        harness.expect_failure(out, errors.UnsafeSourceError, "refused")
    assert not _marker(harness).exists()
    assert "source" not in harness.provenance()


def _two_commits(harness: Harness) -> tuple[Repo, str, str]:
    repo = harness.repo({}, tag="v1")
    first = repo.sha
    git("checkout", "-q", "-b", "dev", cwd=repo.path)
    second = repo.commit({"new.txt": "2"})
    git("checkout", "-q", "main", cwd=repo.path)
    return repo, first, second


def test_commit_that_does_not_exist_is_a_source_error_and_not_retried(harness: Harness) -> None:
    repo = harness.repo({})
    harness.set_config(git_url=str(repo.path), git_commit="f" * 40)
    out = harness.run()
    harness.expect_failure(out, errors.SourceError, "after 1 attempt", "f" * 40)


def test_sha256_length_commit_is_not_supported(harness: Harness) -> None:
    repo = harness.repo({})
    harness.set_config(git_url=str(repo.path), git_commit="a" * 64)
    harness.expect_failure(harness.run(), errors.SourceError, "SHA-256", code=errors.SourceError.ymir_code)


@pytest.mark.parametrize(
    ("pin", "words"),
    [
        ({"git_tag": "v9"}, ["no tag 'v9'"]),
        ({"git_tag": "dev"}, ["no tag 'dev'"]),  # a branch, not a tag (the hint says so)
        ({"git_branch": "dev"}, ["'dev' is a branch"]),
        ({"git_tag": "v1", "git_commit": "SECOND"}, ["not the pinned commit"]),
    ],
)
def test_pin_that_names_the_wrong_thing_is_a_source_error(
    harness: Harness, pin: dict[str, str], words: list[str]
) -> None:
    repo, _, second = _two_commits(harness)
    pin = {k: second if v == "SECOND" else v for k, v in pin.items()}
    harness.set_config(**{"git_url": str(repo.path), "git_commit": None, **pin})
    out = harness.run()
    harness.expect_failure(out, errors.SourceError, *words)
    if pin == {"git_tag": "dev"}:
        assert "it is a branch, not a tag" in out.stderr


@pytest.mark.parametrize(
    ("pin", "which"),
    [
        ({"git_commit": "FIRST_UPPER"}, "first"),
        ({"git_commit": "FIRST_7"}, "first"),
        ({"git_tag": "v1"}, "first"),
        ({"git_branch": "v1"}, "first"),
        ({"git_branch": "dev", "live_code_allow_branch": True}, "second"),
    ],
)
def test_documented_pin_forms_run_the_pinned_commit(harness: Harness, pin: dict[str, object], which: str) -> None:
    """Documented successes: an uppercase or 7-hex abbreviated commit, a tag, the legacy
    git_branch naming a tag, and a branch when the task allows floating refs."""
    repo, first, second = _two_commits(harness)
    values = {k: (first.upper() if v == "FIRST_UPPER" else first[:7] if v == "FIRST_7" else v) for k, v in pin.items()}
    harness.set_config(**{"git_url": str(repo.path), "git_commit": None, **values})
    prov = harness.expect_success(harness.run())
    assert prov["source"]["commit"] == (first if which == "first" else second)


def test_moved_tag_stops_the_next_run_naming_both_commits(harness: Harness) -> None:
    repo, first, second = _two_commits(harness)
    harness.set_config(git_url=str(repo.path), git_commit=None, git_tag="v1")
    harness.expect_success(harness.run())
    git("tag", "-f", "v1", second, cwd=repo.path)
    harness.expect_failure(harness.run(), errors.SourceError, "tag moved", first, second)


def test_commit_reachable_only_from_a_pull_request_ref_is_fetched(harness: Harness) -> None:
    """Documented limit (threat 11): a full commit id is fetched from the repository whatever ref
    reaches it (here only refs/pull/1/head, as a fork's pull request on GitHub): live-code does not
    check that it is on a branch or tag of the named repository."""
    repo = harness.repo({})
    git("checkout", "-q", "-b", "fork", cwd=repo.path)
    foreign = repo.commit({"start.py": (repo.path / "start.py").read_text() + "print('from a fork')\n"})
    git("update-ref", "refs/pull/1/head", foreign, cwd=repo.path)
    git("checkout", "-q", "main", cwd=repo.path)
    git("branch", "-D", "fork", cwd=repo.path)
    harness.set_config(git_url=str(repo.path), git_commit=foreign)
    out = harness.run()
    assert harness.expect_success(out)["source"]["commit"] == foreign
    assert "from a fork" in out.stdout


# -- repository content ------------------------------------------------------------------------------


def _with_gitlink(harness: Harness, files: dict[str, str | bytes | Link], gitmodules: str, path: str, sha: str) -> Repo:
    """A repo whose tree has a submodule entry (gitlink) at ``path`` and the given .gitmodules."""
    repo = harness.repo({**files, ".gitmodules": gitmodules})
    git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}", cwd=repo.path)
    git("commit", "-qm", "submodule", cwd=repo.path)
    return Repo(repo.path, git("rev-parse", "HEAD", cwd=repo.path))


def _hooked_submodule(harness: Harness) -> Repo:
    """A repo to use as a submodule, with a post-checkout hook that would create the marker."""
    sub = harness.repo({"lib.py": "X = 1\n"})
    hook = sub.path / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {_marker(harness)}\n")
    hook.chmod(0o755)
    return sub


def test_submodules_are_not_fetched_unless_the_manifest_asks(harness: Harness) -> None:
    sub = _hooked_submodule(harness)
    repo = _with_gitlink(harness, {}, f'[submodule "lib"]\n\tpath = lib\n\turl = {sub.path}\n', "lib", sub.sha)
    harness.use(repo)
    harness.expect_success(harness.run())
    assert not _marker(harness).exists()


@pytest.mark.parametrize(
    ("url", "path", "error", "words"),
    [
        ("ext::sh -c touch% {m}", "lib", errors.UnsafeSourceError, ["git_url refused"]),
        # git's own fsck (transfer.fsckObjects) refuses these .gitmodules while fetching the parent
        ("--upload-pack=touch {m}", "lib", errors.SourceError, ["disallowed submodule url"]),
        ("{sub}", "../escape", errors.UnsafeSourceError, ["leaves the checkout"]),
    ],
)
def test_hostile_submodule_is_refused_when_the_manifest_asks_for_submodules(
    harness: Harness,
    url: str,
    path: str,
    error: type[errors.LiveCodeError],
    words: list[str],
) -> None:
    sub = _hooked_submodule(harness)
    manifest = yaml.safe_dump({"entry": "python start.py", "submodules": True})
    url = url.replace("{m}", str(_marker(harness))).replace("{sub}", str(sub.path))
    gitmodules = f'[submodule "lib"]\n\tpath = {path}\n\turl = {url}\n'
    repo = _with_gitlink(harness, {"live-code.yaml": manifest}, gitmodules, "lib", sub.sha)
    harness.use(repo)
    harness.expect_failure(harness.run(), error, *words)
    assert not _marker(harness).exists()
    assert not (harness.root / "escape").exists()


def test_lfs_pointer_is_checked_out_as_the_pointer(harness: Harness) -> None:
    """Documented: no LFS filter runs (no system/global git config, GIT_LFS_SKIP_SMUDGE); the
    checkout holds the pointer file, and a manifest asking for LFS is refused."""
    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 12345\n"
    start = job("assert open('weights.bin').read().startswith('version https://git-lfs')", JOB_OUTPUTS)
    repo = harness.repo(
        {".gitattributes": "*.bin filter=lfs diff=lfs merge=lfs -text\n", "weights.bin": pointer, "start.py": start}
    )
    harness.use(repo)
    harness.expect_success(harness.run())
    lfs = harness.repo({"live-code.yaml": yaml.safe_dump({"entry": "python start.py", "lfs": True})})
    harness.use(lfs)
    harness.expect_failure(harness.run(), errors.ConfigError, "LFS")


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("code_config", errors.ConfigError, ["code_config", "outside the repository"]),
        ("live-code.yaml", errors.ConfigError, ["live-code.yaml", "outside the repository"]),
        ("requirements.txt", errors.RequirementError, ["requirements.txt", "outside the repository"]),
    ],
)
def test_symlink_out_of_the_repository_is_refused_without_reading_it(
    harness: Harness,
    name: str,
    error: type[errors.LiveCodeError],
    words: list[str],
) -> None:
    """A repo may not make the harness read a host file (threat 13): the canary in the linked
    file must not reach /out or the messages."""
    secret = harness.root / "host-secret.yaml"
    secret.write_text(f"token: {CANARY_URL}\nentry: python start.py\n")
    link = "cfg.yaml" if name == "code_config" else name
    repo = harness.repo({link: Link(str(secret))})
    harness.use(repo, **({"code_config": "cfg.yaml"} if name == "code_config" else {}))
    harness.expect_failure(harness.run(), error, *words)


def test_repository_that_does_not_exist_is_not_retried(harness: Harness) -> None:
    harness.set_config(git_url=str(harness.root / "nowhere"), git_commit=SHA)
    harness.expect_failure(harness.run(), errors.SourceError, "after 1 attempt")


def test_repository_without_entry_point_is_a_config_error(harness: Harness) -> None:
    repo = harness.repo({"pyproject.toml": "[project]\nname = 'x'\n"}, legacy=True)
    git("rm", "-q", "start.py", cwd=repo.path)
    git("commit", "-qm", "no entry", cwd=repo.path)
    harness.set_config(git_url=str(repo.path), git_commit=git("rev-parse", "HEAD", cwd=repo.path))
    harness.expect_failure(harness.run(), errors.ConfigError, "neither live-code.yaml nor a legacy entry point")
