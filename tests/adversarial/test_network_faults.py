"""A hostile or broken network (threats 4, 6, 15, 16, 42, 43; section 3 "Environment and
infrastructure faults"): git servers that want a token, stall, reset the connection or redirect,
and a package index that never answers. The CLI takes only https, so its git servers here speak
TLS with a test certificate that the harness is told to trust (GIT_SSL_CAINFO)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from live_code import errors
from live_code.source import git
from tests.adversarial.servers import LateRedirectGitServer, RedirectServer, ResetServer, TlsGitServer
from tests.helpers.adversarial import (
    CANARIES,
    CANARY_TOKEN,
    CANARY_URL,
    JOB_OUTPUTS,
    Harness,
    assert_no_processes,
    job,
    served,
)
from tests.helpers.gitserver import HttpGitServer, SilentServer, processes_mentioning

# The job also copies its checkout's .git/config to /out: the canary check then covers it.
_COPY_GIT_CONFIG = "import shutil; shutil.copy('.git/config', os.path.join(OUT, 'checkout-git-config'))"


def _argv_with_canaries() -> list[str]:
    encoded = [base64.b64encode(f"x-access-token:{c}".encode()).decode() for c in CANARIES]
    return [cmd for needle in (*CANARIES, *encoded) for _, cmd in processes_mentioning(needle)]


def test_token_in_the_url_reaches_the_server_and_appears_nowhere(harness: Harness, https: tuple[Path, Path]) -> None:
    repo = harness.repo({"start.py": job(_COPY_GIT_CONFIG, JOB_OUTPUTS)}, tag="v1")
    seen_argv: list[str] = []
    with TlsGitServer(served(harness, repo), https, token=CANARY_URL) as srv:
        srv.on_request = lambda: seen_argv.extend(_argv_with_canaries())  # while git waits for the answer
        harness.set_config(
            git_url=srv.url("proj", userinfo=f"x-access-token:{CANARY_URL}"), git_commit=None, git_tag="v1"
        )
        out = harness.run()
        prov = harness.expect_success(out)
    assert any(a.startswith("Basic ") for a in srv.auth)  # the token was used
    assert seen_argv == []
    assert prov["source"]["url"] == srv.url("proj") and prov["source"]["commit"] == repo.sha
    assert (harness.out_dir / "checkout-git-config").is_file()


def test_token_from_the_environment_is_used_for_a_url_without_credential(
    harness: Harness, https: tuple[Path, Path]
) -> None:
    repo = harness.repo({})
    with TlsGitServer(served(harness, repo), https, token=CANARY_TOKEN) as srv:
        harness.set_config(git_url=srv.url("proj"), git_commit=repo.sha)
        harness.expect_success(harness.run())
        assert srv.auth_failures >= 1 and any(srv.auth)


def test_wrong_token_is_a_quick_auth_failure_not_retried(harness: Harness, https: tuple[Path, Path]) -> None:
    repo = harness.repo({})
    with TlsGitServer(served(harness, repo), https, token="the-right-token") as srv:
        harness.set_config(git_url=srv.url("proj"), git_commit=repo.sha)
        start = time.monotonic()
        out = harness.run()
        rec = harness.expect_failure(out, errors.SourceError, "after 1 attempt")
    assert time.monotonic() - start < 30
    assert "credential" in out.stderr and rec.message


def test_missing_repository_is_not_retried(harness: Harness, https: tuple[Path, Path]) -> None:
    repo = harness.repo({})
    with TlsGitServer(served(harness, repo), https) as srv:
        harness.set_config(git_url=srv.url("nope"), git_commit=repo.sha)
        harness.expect_failure(harness.run(), errors.SourceError, "after 1 attempt", "not found")
        assert len(srv.requests) == 1


def test_server_errors_are_retried_then_succeed(harness: Harness, https: tuple[Path, Path]) -> None:
    repo = harness.repo({})
    with TlsGitServer(served(harness, repo), https, fail_first=2) as srv:
        harness.set_config(git_url=srv.url("proj"), git_commit=repo.sha)
        out = harness.run()
        harness.expect_success(out)
    assert "retrying" in out.stderr


def test_stalled_git_server_fails_within_the_deadline(harness: Harness, https: tuple[Path, Path]) -> None:
    harness.settings = {"fetch_deadline": 3.0}
    with SilentServer() as silent:
        harness.set_config(git_url=f"https://127.0.0.1:{silent.port}/o/r", git_commit="a" * 40)
        start = time.monotonic()
        out = harness.run()
        elapsed = time.monotonic() - start
        harness.expect_failure(out, errors.SourceError, "no answer within the 3s deadline")
        assert list(processes_mentioning(f"127.0.0.1:{silent.port}")) == []
    assert elapsed < 3.0 + 10


def test_connection_reset_mid_response_is_retried_then_a_clear_failure(
    harness: Harness, https: tuple[Path, Path]
) -> None:
    with ResetServer(cert=https) as reset:
        harness.set_config(git_url=reset.url("o/r"), git_commit="a" * 40)
        out = harness.run()
        harness.expect_failure(out, errors.SourceError, "after 3 attempt(s)", "reset")
        assert reset.connections == 3


def test_redirect_to_plain_http_is_refused(harness: Harness, https: tuple[Path, Path]) -> None:
    repo = harness.repo({})
    with (
        HttpGitServer(served(harness, repo)) as plain,
        RedirectServer(f"http://127.0.0.1:{plain.port}", cert=https) as r,
    ):
        harness.set_config(git_url=r.url("proj"), git_commit=repo.sha)
        harness.expect_failure(harness.run(), errors.SourceError, "not supported or disabled")
        assert plain.requests == []


def test_redirect_to_another_host_does_not_take_the_credential_along(
    harness: Harness, https: tuple[Path, Path]
) -> None:
    """The credential helper is scoped to the URL's host: after a redirect, git has none to give."""
    repo = harness.repo({})
    with (
        TlsGitServer(served(harness, repo), https, token=CANARY_URL) as target,
        RedirectServer(f"https://127.0.0.1:{target.port}", cert=https) as r,
    ):
        harness.set_config(
            git_url=r.url("proj").replace("https://", f"https://x-access-token:{CANARY_URL}@"), git_commit=repo.sha
        )
        harness.expect_failure(harness.run(), errors.SourceError, "after 1 attempt")
        assert target.auth_failures >= 1 and not any(target.auth)


def test_redirect_of_the_first_request_to_another_host_is_followed(harness: Harness, https: tuple[Path, Path]) -> None:
    """Documented limit (threat 6): git's http.followRedirects=initial follows a redirect of the
    first request, to another host too (GitHub's renamed repos need it); there is no host
    allowlist, so keep internal hosts out of reach with the platform's egress policy."""
    repo = harness.repo({})
    with (
        TlsGitServer(served(harness, repo), https) as target,
        RedirectServer(f"https://127.0.0.1:{target.port}", cert=https) as r,
    ):
        harness.set_config(git_url=r.url("proj"), git_commit=repo.sha)
        harness.expect_success(harness.run())
        assert len(r.requests) == 1 and target.requests


@pytest.mark.parametrize("target", ["file:///etc", "ftp://127.0.0.1", "https://127.0.0.1:1"])
def test_redirect_to_another_scheme_is_refused_by_git(tmp_path: Path, target: str) -> None:
    """git level (http): curl may only follow a redirect to the protocols GIT_ALLOW_PROTOCOL
    lists, which is exactly the URL's own."""
    with RedirectServer(target) as r:
        rem = git.remote(
            git.normalise_url(r.url("proj"), allow_local=False, schemes={"http"}), deadline=git.Deadline(15)
        )
        with pytest.raises(errors.SourceError, match="not supported or disabled"):
            git.ls_remote(rem, ["refs/tags/v1"])
    assert_no_processes(tmp_path)


def test_redirect_of_a_later_request_is_not_followed(harness: Harness) -> None:
    """git level (http): after the first request, a redirect fails the fetch."""
    repo = harness.repo({}, tag="v1")
    root = served(harness, repo)
    with HttpGitServer(root) as other, LateRedirectGitServer(root, f"http://127.0.0.1:{other.port}") as srv:
        rem = git.remote(
            git.normalise_url(srv.url("proj"), allow_local=False, schemes={"http"}),
            deadline=git.Deadline(20),
            retry=git.RetryPolicy(attempts=1),
        )
        mirror = harness.root / "m.git"
        git.init_bare(mirror)
        with pytest.raises(errors.SourceError, match="302"):
            git.fetch(rem, mirror, ["+refs/tags/v1:refs/tags/v1"], depth=1)
        assert srv.redirected >= 1 and not [r for r in other.requests if r.startswith("POST")]
        assert git.resolve(mirror, "refs/tags/v1") is None


def test_package_index_that_never_answers_fails_at_the_install_deadline(harness: Harness) -> None:
    harness.settings = {"install_timeout": 4.0}
    with SilentServer() as silent:
        harness.use(
            harness.repo({"requirements.txt": "tinything==1.0\n"}),
            pip_index_url=f"http://127.0.0.1:{silent.port}/simple",
        )
        start = time.monotonic()
        out = harness.run()
        harness.expect_failure(out, errors.EnvironmentBuildError, "timed out")
        assert time.monotonic() - start < 4.0 + 15
        assert list(processes_mentioning(f"127.0.0.1:{silent.port}")) == []
    assert not [p for p in (harness.cache / "envs").iterdir() if p.is_dir()]
