"""Operator git mirrors (``LIVE_CODE_GIT_MIRRORS``, issue 21): the rules on their own, then the source
fetch, a ``live-code run`` with a submodule, and the installer's VCS requirements, each against a real
git server over https on 127.0.0.1 that stands in for github.com, with a certificate made here and
handed to git the way an operator hands a site CA (``GIT_SSL_CAINFO`` / ``SSL_CERT_FILE``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code.commands import sample
from live_code.envs import builder as envs
from live_code.envs import installer as _installer
from live_code.errors import ConfigError, EnvironmentBuildError, SourceError
from live_code.source import git, mirrors
from live_code.source.store import Pin, Store
from tests.adversarial.servers import TlsGitServer
from tests.helpers.envs import TOYEXT, job_python, offline
from tests.helpers.gitserver import free_port
from tests.helpers.repos import git as run_git

ROOT = Path(__file__).resolve().parent.parent
CANARY = "mirror-canary-tok-51c3e0a9"
FAST = git.RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


# -- the rules --------------------------------------------------------------------------------------

RULES = mirrors.parse(
    "https://github.com/=https://mirror.example/gh/\n"
    "  https://github.com/special-org=https://special.example/so "
    "https://gitlab.example.com:8443/group/=https://mirror.example/gl"
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/o/r", "https://mirror.example/gh/o/r"),
        ("https://github.com/o/r.git", "https://mirror.example/gh/o/r.git"),
        ("HTTPS://GitHub.com:443/o/r/", "https://mirror.example/gh/o/r"),  # as git.normalise_url spells it
        ("https://github.com/special-org/r", "https://special.example/so/r"),  # the longest prefix wins
        ("https://github.com/special-org", "https://special.example/so"),  # the prefix itself
        ("https://github.com/special-orgs/r", "https://mirror.example/gh/special-orgs/r"),  # whole segments only
        ("https://gitlab.example.com:8443/group/sub/r", "https://mirror.example/gl/sub/r"),
        ("https://gitlab.example.com/group/r", None),  # another port is another server
        ("https://github.com.evil/o/r", None),  # no partial host match
        ("https://evilgithub.com/o/r", None),
        ("https://sub.github.com/o/r", None),
        ("http://github.com/o/r", None),  # only https URLs are rewritten
        ("ssh://git@github.com/o/r", None),
        ("https://user@github.com/o/r", None),  # a URL with userinfo is not a checked URL
    ],
)
def test_rewrite_matches_whole_hosts_and_segments_and_the_longest_prefix_wins(url: str, expected: str | None) -> None:
    assert RULES.rewrite(url) == expected


def test_unset_or_empty_setting_has_no_rules() -> None:
    assert not mirrors.from_environ({}) and not mirrors.from_environ({mirrors.MIRRORS_ENV: "  \n "})
    assert mirrors.from_environ({}).rewrite("https://github.com/o/r") is None


def test_insteadof_config_keeps_path_boundaries() -> None:
    assert mirrors.parse("https://github.com=https://m.example/gh/").insteadof_config() == [
        ("url.https://m.example/gh/.insteadOf", "https://github.com/")
    ]


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("https://github.com/", "each entry is PREFIX=MIRROR"),
        ("=https://m.example/", "each entry is PREFIX=MIRROR"),
        ("https://github.com/=", "each entry is PREFIX=MIRROR"),
        ("http://github.com/=https://m.example/", "is not an https:// URL"),
        ("https://github.com/=git://m.example/", "is not an https:// URL"),
        ("https://github.com/=/srv/mirror", "is not an https:// URL"),
        ("https://github.com/=https://m.example/a https://GITHUB.com=https://m.example/b", "given twice"),
        ("https://github.com/=https://github.com", "the mirror is the prefix itself"),
        ("https://github.com/=https://m_x.example/", "no valid host"),
        ("https://github.com/=https://m.example:99999/", "no valid host"),
        ("https://github.com/=https://m.example/../x", "unusual path"),
        ("https://github.com/=https://m.example/a?b=c", "unusual path"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_entry_and_the_fix(setting: str, words: str) -> None:
    with pytest.raises(ConfigError, match=mirrors.MIRRORS_ENV) as err:
        mirrors.parse(setting)
    assert words in err.value.message and err.value.hint and err.value.value


def test_a_credential_in_the_setting_is_refused_and_not_repeated() -> None:
    with pytest.raises(ConfigError) as err:
        mirrors.parse(f"https://github.com/=https://bot:{CANARY}@m.example/")
    assert "credential" in err.value.message and "LIVE_CODE_GIT_TOKEN_HOSTS" in str(err.value.hint)
    assert CANARY not in err.value.render()


# -- servers ----------------------------------------------------------------------------------------


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch, tls_cert: tuple[Path, Path]) -> Path:
    """The harness's git trusts the server, as an operator's site CA is trusted."""
    monkeypatch.setenv("GIT_SSL_CAINFO", str(tls_cert[0]))
    monkeypatch.delenv("GIT_SSL_CAPATH", raising=False)
    return tls_cert[0]


class Served:
    """Repositories made with ``make_repo`` and served bare under ``root`` as ``<owner>/<name>``."""

    def __init__(self, root: Path, make_repo: Callable[..., Path]) -> None:
        self.root, self.make_repo = root, make_repo
        root.mkdir(parents=True, exist_ok=True)

    def add(self, path: str, files: dict[str, str], *, gitlinks: dict[str, str] | None = None) -> str:
        """A repository at ``path`` (e.g. ``org/app``) with ``files`` and submodule entries
        ``{path: sha}``; returns its commit."""
        repo = self.make_repo(files, name=f"work-{self.root.name}-{path.replace('/', '-')}")
        for sub_path, sha in (gitlinks or {}).items():
            run_git("update-index", "--add", "--cacheinfo", f"160000,{sha},{sub_path}", cwd=repo)
            run_git("commit", "-qm", "submodule", cwd=repo)
        run_git("tag", "v1", cwd=repo)
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        run_git("clone", "-q", "--bare", str(repo), str(self.root / path), cwd=self.root)
        return run_git("rev-parse", "HEAD", cwd=repo)


@pytest.fixture
def served(tmp_path: Path, make_repo: Callable[..., Path]) -> Served:
    root = tmp_path / "served"
    root.mkdir()
    return Served(root, make_repo)


@pytest.fixture
def server(served: Served, tls_cert: tuple[Path, Path]) -> Iterator[TlsGitServer]:
    with TlsGitServer(served.root, tls_cert) as srv:
        yield srv


def _rules(srv: TlsGitServer) -> mirrors.Mirrors:
    return mirrors.parse(f"https://github.com/=https://127.0.0.1:{srv.port}/")


def _fetch(url: str, dest: Path, rules: mirrors.Mirrors, pin: Pin | None = None, **kw: object):
    return Store().fetch_source(url, pin or Pin("tag", "v1"), dest, git_mirrors=rules, retry=FAST, deadline=30, **kw)  # type: ignore[arg-type]  # keyword arguments passed through as object


# -- the source fetch -------------------------------------------------------------------------------


def test_source_comes_from_the_mirror_and_provenance_names_both(
    tmp_path: Path, served: Served, server: TlsGitServer, trust: Path
) -> None:
    sha = served.add("org/app", {"app.py": "print('from the mirror')\n"})
    prov = _fetch("https://github.com/org/app", tmp_path / "run", _rules(server))
    assert (tmp_path / "run" / "app.py").read_text() == "print('from the mirror')\n"
    assert prov.commit == sha and prov.fetched
    assert prov.url == "https://github.com/org/app"
    assert prov.mirror == f"https://127.0.0.1:{server.port}/org/app"
    assert prov.as_dict()["mirror"] == prov.mirror
    assert server.requests and all(r.split()[1].startswith("/org/app/") for r in server.requests)


def test_pins_and_the_cache_are_keyed_by_the_url_the_task_gave(
    tmp_path: Path, served: Served, server: TlsGitServer, trust: Path
) -> None:
    served.add("org/app", {"app.py": "1\n"})
    _fetch("https://github.com/org/app", tmp_path / "a", _rules(server))
    pins = yaml.safe_load((Store().root / "pins.json").read_text())
    assert list(pins["tags"]) == ["https://github.com/org/app"]
    cache_id = git.normalise_url("https://github.com/org/app", allow_local=False).cache_id
    assert Store().is_complete("mirrors", cache_id)
    before = len(server.requests)
    # a full commit the cache holds needs no network, whichever mirror (or none) is set
    prov = _fetch(
        "https://github.com/org/app",
        tmp_path / "b",
        mirrors.NO_MIRRORS,
        pin=Pin("commit", pins["tags"]["https://github.com/org/app"]["v1"]["commit"]),
    )
    assert not prov.fetched and prov.mirror is None and len(server.requests) == before


def test_a_mirror_that_is_down_fails_naming_the_mirror_and_the_url(tmp_path: Path, trust: Path) -> None:
    port = free_port()  # nothing listens there
    rules = mirrors.parse(f"https://github.com/=https://127.0.0.1:{port}/")
    with pytest.raises(SourceError) as err:
        _fetch("https://github.com/org/app", tmp_path / "run", rules)
    text = err.value.render()
    assert f"https://127.0.0.1:{port}/org/app" in text and "https://github.com/org/app" in text
    assert "LIVE_CODE_GIT_MIRRORS" in str(err.value.hint)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_the_mirror_gets_the_token_only_where_the_token_hosts_allow(
    tmp_path: Path,
    served: Served,
    tls_cert: tuple[Path, Path],
    trust: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served.add("org/private", {"app.py": "secret code\n"})
    monkeypatch.setenv(git.TOKEN_ENV, CANARY)
    with TlsGitServer(served.root, tls_cert, token=CANARY) as srv:
        monkeypatch.setenv(git.TOKEN_HOSTS_ENV, "github.com")  # not for the mirror's host
        with pytest.raises(SourceError) as err:
            _fetch("https://github.com/org/private", tmp_path / "a", _rules(srv))
        assert "auth" in err.value.message.lower() or "credential" in str(err.value.hint)
        assert not any(CANARY in a for a in _decoded(srv.auth))

        monkeypatch.setenv(git.TOKEN_HOSTS_ENV, "127.0.0.1")
        prov = _fetch("https://github.com/org/private", tmp_path / "b", _rules(srv))
        assert (tmp_path / "b" / "app.py").read_text() == "secret code\n"
        assert any(CANARY in a for a in _decoded(srv.auth))
    record = yaml.safe_dump(prov.as_dict())
    assert CANARY not in record and CANARY not in caplog.text and CANARY not in err.value.render()
    assert CANARY not in (tmp_path / "b" / ".git" / "config").read_text()


def test_a_credential_in_the_task_url_is_not_sent_to_the_mirror(
    tmp_path: Path,
    served: Served,
    tls_cert: tuple[Path, Path],
    trust: Path,
) -> None:
    served.add("org/private", {"app.py": "x\n"})
    with TlsGitServer(served.root, tls_cert, token="the-mirror-wants-another") as srv:
        with pytest.raises(SourceError) as err:
            _fetch(f"https://bot:{CANARY}@github.com/org/private", tmp_path / "a", _rules(srv))
    assert not any(CANARY in a for a in _decoded(srv.auth)) and srv.auth_failures
    assert CANARY not in err.value.render()


def _decoded(headers: list[str]) -> list[str]:
    import base64

    return [base64.b64decode(h.split()[1]).decode() if h.startswith("Basic ") else h for h in headers]


def test_ssl_cert_file_alone_reaches_git(
    tmp_path: Path, served: Served, server: TlsGitServer, tls_cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's git (GnuTLS) reads only GIT_SSL_CAINFO: an operator's SSL_CERT_FILE is handed on."""
    served.add("org/app", {"app.py": "1\n"})
    monkeypatch.delenv("GIT_SSL_CAINFO", raising=False)
    monkeypatch.delenv("GIT_SSL_CAPATH", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_cert[0]))
    assert git.hardened_env(protocols={"https"})["GIT_SSL_CAINFO"] == str(tls_cert[0])
    assert _fetch("https://github.com/org/app", tmp_path / "run", _rules(server)).mirror


# -- a run: the task's repository and its submodule ---------------------------------------------------

JOB = """\
from live_code import sdk
env = sdk.read_env()
cands = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)]
sdk.write_mining_result([(c, float(n)) for n, c in enumerate(cands)])
print(open("vendor/lib/data.txt").read().strip())
"""


def test_live_code_run_fetches_the_repository_and_its_submodule_from_the_mirror(
    tmp_path: Path,
    served: Served,
    server: TlsGitServer,
    trust: Path,
) -> None:
    lib = served.add("org/lib", {"data.txt": "from the mirrored submodule\n"})
    gitmodules = '[submodule "lib"]\n\tpath = vendor/lib\n\turl = https://github.com/org/lib\n'
    manifest = "entry: python start.py\nsubmodules: true\n"
    app = served.add(
        "org/app",
        {"start.py": JOB, "live-code.yaml": manifest, ".gitmodules": gitmodules},
        gitlinks={"vendor/lib": lib},
    )
    task = tmp_path / "task"
    sample.write_sample_dataset(
        task, kinds=frozenset({contract.TaskKind.MINING}), fmt="voc", protocol=contract.PROTOCOL_1_1_0, images=3
    )
    config = yaml.safe_load((task / "in" / "config.yaml").read_text())
    config.update(git_url="https://github.com/org/app", git_commit=app)
    (task / "in" / "config.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        PYTHONPATH=str(ROOT),
        GIT_SSL_CAINFO=str(trust),
        LIVE_CODE_GIT_TOKEN=CANARY,
        LIVE_CODE_GIT_MIRRORS=f"https://github.com/=https://127.0.0.1:{server.port}/",
    )
    env.pop("LIVE_CODE_ALLOW_LOCAL_REPOS", None)
    res = subprocess.run(
        [sys.executable, "-m", "live_code", "run", "--in", str(task / "in"), "--out", str(task / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "from the mirrored submodule" in res.stdout
    prov = yaml.safe_load((task / "out" / "live-code-provenance.yaml").read_text())
    assert prov["source"]["url"] == "https://github.com/org/app" and prov["source"]["commit"] == app
    assert prov["source"]["mirror"] == f"https://127.0.0.1:{server.port}/org/app"
    (sub,) = prov["source"]["submodules"]
    assert sub == {
        "path": "vendor/lib",
        "url": "https://github.com/org/lib",
        "commit": lib,
        "mirror": f"https://127.0.0.1:{server.port}/org/lib",
    }
    assert {r.split()[1].split("/")[2] for r in server.requests} == {"app", "lib"}
    for text in (res.stdout, res.stderr, *(p.read_text() for p in (task / "out").rglob("*") if p.is_file())):
        assert CANARY not in text


# -- the installer: git+https requirements ------------------------------------------------------------


def _toyext(served: Served) -> str:
    """tests/resources/toyext served as github.com/org/toyext, with a submodule vendor/ that names
    https://github.com/org/toysub (the backend puts its data.txt into the wheel)."""
    sub = served.add("org/toysub", {"data.txt": "from the mirrored submodule\n"})
    files = {p.name: p.read_text() for p in TOYEXT.iterdir() if p.is_file()}
    files[".gitmodules"] = '[submodule "vendor"]\n\tpath = vendor\n\turl = https://github.com/org/toysub\n'
    return served.add("org/toyext", files, gitlinks={"vendor": sub})


@pytest.mark.parametrize("ca_variable", ["GIT_SSL_CAINFO", "SSL_CERT_FILE"])
def test_a_vcs_requirement_and_its_submodule_come_from_the_mirror(
    tmp_path: Path,
    served: Served,
    server: TlsGitServer,
    tls_cert: tuple[Path, Path],
    base_python: str,
    wheelhouse: Path,
    uv_wrapper: envs.Installer,
    uv_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    ca_variable: str,
) -> None:
    sha = _toyext(served)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text(f"toyext @ git+https://github.com/org/toyext@{sha}\n")
    for name in ("GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ca_variable, str(tls_cert[0]))  # the operator's site CA, one way or the other
    monkeypatch.setenv(git.TOKEN_ENV, CANARY)  # the installer runs build scripts: it never gets a token
    mirror = f"https://127.0.0.1:{server.port}"
    spec = envs.prepare_env(
        repo,
        base_python=base_python,
        index=offline(wheelhouse),
        installer=uv_wrapper,
        environ={mirrors.MIRRORS_ENV: f"https://github.com/={mirror}/"},
    )
    result = envs.ensure_env(Store(), spec, installer_cache=tmp_path / "installer-cache")
    assert job_python(result.path, "import toyext; print(toyext.VENDORED)") == "from the mirrored submodule"
    assert result.provenance["git_mirrors"] == [
        {"requirement": "requirements.txt:1", "url": "https://github.com/org/toyext", "mirror": f"{mirror}/org/toyext"}
    ]
    assert {r.split()[1].split("/")[2] for r in server.requests} == {"toyext", "toysub"}
    logged = [p.read_text() for p in uv_log.iterdir()]
    assert logged and not any(CANARY in text for text in logged)
    pip_calls = [p for p in uv_log.glob("*.argv") if p.read_text().startswith("pip ")]
    assert len(pip_calls) == 3  # compile, the lock's compile (issue 22) and install
    for argv_file in pip_calls:
        env_file = argv_file.with_suffix(".env")
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull
        assert env["GIT_SSL_CAINFO"] == str(tls_cert[0])
    # the key is the file's: the same commit from a mirror is the same env
    plain = envs.prepare_env(repo, base_python=base_python, index=offline(wheelhouse), installer=uv_wrapper, environ={})
    assert plain.key == spec.key and plain.requirements.lines[0].spec.endswith(f"github.com/org/toyext@{sha}")


def test_an_installer_mirror_that_is_down_fails_naming_the_mirror_and_the_url(
    tmp_path: Path,
    base_python: str,
    wheelhouse: Path,
    trust: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text(f"toyext @ git+https://github.com/org/toyext@{'a' * 40}\n")
    mirror = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    spec = envs.prepare_env(
        repo,
        base_python=base_python,
        index=offline(wheelhouse),
        environ={mirrors.MIRRORS_ENV: f"https://github.com/={mirror}/"},
    )
    with pytest.raises(EnvironmentBuildError) as err:
        envs.ensure_env(Store(), spec, installer_cache=tmp_path / "installer-cache")
    text = err.value.render()
    assert f"{mirror}/org/toyext" in text and "https://github.com/org/toyext" in text
    assert mirrors.MIRRORS_ENV in str(err.value.hint)


def test_the_installers_git_reads_no_user_or_system_config(tmp_path: Path) -> None:
    env = _installer.installer_env(
        tmp_path / "scratch",
        tmp_path / "cache",
        envs.IndexSettings(),
        mirrors.parse("https://github.com/=https://m.example/").insteadof_config(),
    )
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["HOME"].startswith(str(tmp_path))
    pairs = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
    assert pairs["protocol.allow"] == "never" and pairs["protocol.https.allow"] == "always"
    assert pairs["protocol.file.allow"] == "user"  # uv's clones from its own cache, never a submodule's path
    assert pairs["url.https://m.example/.insteadOf"] == "https://github.com/"
    assert pairs["credential.helper"] == ""


def test_a_mirror_serving_another_commit_for_a_known_tag_stops_the_run(
    tmp_path: Path,
    served: Served,
    server: TlsGitServer,
    tls_cert: tuple[Path, Path],
    trust: Path,
    make_repo: Callable[..., Path],
) -> None:
    served.add("org/app", {"app.py": "1\n"})
    _fetch("https://github.com/org/app", tmp_path / "a", _rules(server))
    other = Served(tmp_path / "other-mirror", make_repo)  # a stale or tampered copy: v1 elsewhere
    other.add("org/app", {"app.py": "something else\n"})
    with TlsGitServer(other.root, tls_cert) as srv:
        with pytest.raises(SourceError, match="tag moved") as err:
            _fetch("https://github.com/org/app", tmp_path / "b", _rules(srv))
    assert f"https://127.0.0.1:{srv.port}/org/app" in err.value.message
