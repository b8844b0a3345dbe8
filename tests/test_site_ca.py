"""Sites behind their own CA (issue 20): the standard ``SSL_CERT_FILE`` names the site's CA bundle,
and live-code hands it to the installer (uv reads it; pip gets it as ``PIP_CERT``) and to git (as
``GIT_SSL_CAINFO``: Debian's and Ubuntu's git read nothing else). Without it, a failure says which
setting to give.

A CA is made in the test; a static PEP 503 index and a git smart-http server run over https on
127.0.0.1 with a certificate only that CA signs. ``live-code run`` on this machine, with every CA
setting of this machine removed from its environment: each task fails without ``SSL_CERT_FILE``,
naming it, and passes with it. tests/test_images_built.py does the same inside the torch image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from live_code import contract, util
from live_code.commands import sample
from live_code.contract import TaskKind
from live_code.envs import installer as _installer
from live_code.errors import EnvironmentBuildError
from live_code.source import git as git_mod
from tests.helpers import site as _site
from tests.helpers import template_runs as runs
from tests.helpers.repos import git
from tests.helpers.site import PROBE, probe_index, site_job_repo

#: every variable by which this machine's CA settings could reach the harness or its children
CA_VARS = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "CURL_CA_BUNDLE",
    "UV_NATIVE_TLS",
)
pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs openssl (Debian package openssl) to make the site's CA"
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> _site.SiteCA:
    return _site.SiteCA(tmp_path_factory.mktemp("site-ca"))


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, ca: _site.SiteCA) -> Iterator[_site.HttpsStaticServer]:
    with _site.HttpsStaticServer(probe_index(tmp_path_factory.mktemp("index")), ca) as server:
        yield server


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``live-code run``'s environment with none of this machine's CA settings, over a bare base."""
    base = tmp_path_factory.mktemp("base") / "venv"
    venv.create(base, with_pip=False)
    env = runs.harness_env(tmp_path_factory.mktemp("cache"), str(base / "bin" / "python"))
    for var in CA_VARS:
        env.pop(var, None)
    return env


def _task(root: Path, **values: object) -> Path:
    sample.write_sample_dataset(root, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0, images=4)
    runs.configure(root, git_tag="v1", **values)
    return root


def _run(task: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "live_code", "run", "--in", str(task / "in"), "--out", str(task / "out")]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_an_index_signed_by_the_site_ca_needs_ssl_cert_file_and_works_with_it(
    tmp_path: Path, ca: _site.SiteCA, index: _site.HttpsStaticServer, harness: dict[str, str]
) -> None:
    repo = site_job_repo(tmp_path / "repo")
    denied = _task(tmp_path / "denied", git_url=str(repo), pip_index_url=index.url("simple"))
    res = _run(denied, harness)
    out = res.stdout + res.stderr
    assert res.returncode == EnvironmentBuildError.exit_code, out[-3000:]
    assert "invalid peer certificate" in out or "certificate verify failed" in out, out[-3000:]
    assert "set SSL_CERT_FILE to the site's CA bundle" in out and "(SSL_CERT_FILE is not set)" in out, out[-3000:]
    assert "error" in (denied / "out" / "monitor.txt").read_text()

    allowed = _task(tmp_path / "allowed", git_url=str(repo), pip_index_url=index.url("simple"))
    res = _run(allowed, {**harness, "SSL_CERT_FILE": str(ca.cert)})
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert "job ran with the site's own index" in res.stdout
    assert runs.validate(allowed) == []
    env = runs.provenance(allowed)["environment"]
    assert f"{PROBE}==1.0" in env["added"] and env["index"]["index_url"] == index.url("simple")
    assert any(f"/simple/{PROBE}/" in line for line in index.requests), index.requests


@pytest.mark.slow
def test_a_git_server_signed_by_the_site_ca_needs_ssl_cert_file_and_works_with_it(
    tmp_path: Path, ca: _site.SiteCA, index: _site.HttpsStaticServer, harness: dict[str, str]
) -> None:
    """git gets the bundle as GIT_SSL_CAINFO: only SSL_CERT_FILE is set, and the fetch works."""
    served = tmp_path / "served"
    served.mkdir()
    site_job_repo(tmp_path / "repo")
    git("clone", "-q", "--bare", str(tmp_path / "repo"), str(served / "job.git"), cwd=tmp_path)
    env = {k: v for k, v in harness.items() if k != "LIVE_CODE_ALLOW_LOCAL_REPOS"}
    with _site.HttpsGitServer(served, ca) as server:
        url = server.url("job.git")
        denied = _task(tmp_path / "denied", git_url=url, pip_index_url=index.url("simple"))
        res = _run(denied, env)
        out = res.stdout + res.stderr
        assert res.returncode == 3, out[-3000:]  # SourceError
        assert "SSL_CERT_FILE" in out and "certificate" in out.lower(), out[-3000:]

        allowed = _task(tmp_path / "allowed", git_url=url, pip_index_url=index.url("simple"))
        res = _run(allowed, {**env, "SSL_CERT_FILE": str(ca.cert)})
        assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    prov = runs.provenance(allowed)
    assert prov["source"]["url"] == url and prov["source"]["fetched"] is True  # type: ignore[index]  # provenance read from YAML is dict[str, object]


def test_git_gets_ssl_cert_file_as_its_ca_bundle_unless_it_has_its_own() -> None:
    env = git_mod.hardened_env(protocols={"https"}, base={"PATH": "/usr/bin", "SSL_CERT_FILE": "/site/ca.pem"})
    assert env["GIT_SSL_CAINFO"] == "/site/ca.pem" and env["SSL_CERT_FILE"] == "/site/ca.pem"
    own = git_mod.hardened_env(protocols={"https"}, base={"SSL_CERT_FILE": "/site/ca.pem", "GIT_SSL_CAINFO": "/g.pem"})
    assert own["GIT_SSL_CAINFO"] == "/g.pem"
    assert "GIT_SSL_CAINFO" not in git_mod.hardened_env(protocols={"https"}, base={"PATH": "/usr/bin"})


@pytest.mark.parametrize(
    "output",
    [
        "error: Request failed after 3 retries\n  Caused by: invalid peer certificate: UnknownIssuer",
        "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "unable to get local issuer certificate (_ssl.c:1006)'))",
    ],
)
def test_an_untrusted_index_certificate_names_the_setting(output: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/site/ca.pem")
    with pytest.raises(EnvironmentBuildError) as info:
        _installer.fail("install the requirements", util.CalledProcessError(["uv", "pip", "install"], 2, output, ""))
    assert info.value.hint is not None
    assert "set SSL_CERT_FILE to the site's CA bundle" in info.value.hint
    assert "(SSL_CERT_FILE is /etc/site/ca.pem)" in info.value.hint


def test_other_installer_failures_keep_their_hint() -> None:
    with pytest.raises(EnvironmentBuildError) as info:
        _installer.fail(
            "install the requirements",
            util.CalledProcessError(["uv"], 1, "No solution found when resolving dependencies", ""),
        )
    assert info.value.hint == "check the requirements and the index settings"


def test_the_site_index_is_pep_503(tmp_path: Path) -> None:
    root = probe_index(tmp_path)
    page = (root / "simple" / PROBE / "index.html").read_text()
    assert 'href="../../files/site_ca_probe-1.0-py3-none-any.whl#sha256=' in page
    assert f'href="{PROBE}/"' in (root / "simple" / "index.html").read_text()
    assert os.path.getsize(root / "files" / "site_ca_probe-1.0-py3-none-any.whl") > 0
