"""Job envs: requirement checks, the key, and real builds from a local wheelhouse over a fake base.

The session builds, by hand (a wheel is a zip with a dist-info), a wheelhouse of tiny packages and a
"base" venv holding a fake ``torch`` 2.13.0 and ``nvidia-cublas-cu12``. Builds use the real uv (and
pip for the fallback) with ``--no-index``; only the test marked ``registry`` talks to PyPI. The uv
the builds run is a wrapper script that logs its argv and environment, then runs the real uv.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from live_code.envs import builder as envs
from live_code.errors import EnvironmentBuildError, RequirementError
from live_code.source import store as store_mod
from tests.helpers.envs import REAL_UV, job_python, offline, write_wheel

SHA = "0123456789abcdef0123456789abcdef01234567"


# -- helpers (the wheelhouse and base fixtures are in tests/helpers/envs.py) -----------------------


def calls(uv_log: Path, sub: str) -> list[str]:
    """argv of the logged uv calls that ran ``uv pip <sub>``."""
    return [a for p in sorted(uv_log.glob("*.argv")) if (a := p.read_text()).startswith(f"pip {sub} ")]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


def prepare(
    repo: Path, base_python: str, wheelhouse: Path, installer: envs.Installer | None = None, **kw: object
) -> envs.EnvSpec:
    kw.setdefault("index", offline(wheelhouse))
    return envs.prepare_env(repo, base_python=base_python, installer=installer, **kw)  # type: ignore[arg-type]  # keyword arguments passed through as object


def site_packages(env: Path) -> Path:
    (sp,) = env.glob("lib/python*/site-packages")
    return sp


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def base_frameworks(base_python: str) -> dict[str, str]:
    """Content hash of every file of the fake frameworks in the base."""
    sp = site_packages(Path(base_python).parent.parent)
    out: dict[str, str] = {}
    for pattern in ("torch*", "nvidia*"):
        for entry in sp.glob(pattern):
            out.update({f"{entry.name}/{k}": v for k, v in tree_hashes(entry).items()})
    return out


# -- base and key ----------------------------------------------------------------------------------


def test_env_key_is_stable_and_changes_with_each_input(
    repo: Path, base_python: str, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "requirements.txt").write_text("tinyapp==1.0\n")
    spec = prepare(repo, base_python, wheelhouse)
    assert prepare(repo, base_python, wheelhouse).key == spec.key

    def key(**kw: object) -> str:
        return envs.env_key(*[kw.get(k, getattr(spec, k)) for k in ("base", "requirements", "index", "installer")])  # type: ignore[arg-type]  # the spec's fields, some replaced by the test

    other_base = envs.BaseInfo(**{**spec.base.__dict__, "python_version": "3.99.0"})
    other_dists = envs.BaseInfo(**{**spec.base.__dict__, "dists": spec.base.dists[:-1]})
    variants = {
        "python": key(base=other_base),
        "base": key(base=other_dists),
        "index": key(index=envs.IndexSettings(index_url="https://mirror.example/simple")),
        "installer": key(installer=envs.Installer("uv", ("uv",), "0.0.1")),
        "pip": key(installer=envs.Installer("pip", ("pip",), spec.installer.version)),
    }
    (repo / "requirements.txt").write_text("tinyapp==1.0 \n")  # one byte more
    variants["bytes"] = prepare(repo, base_python, wheelhouse).key
    monkeypatch.setattr(envs, "LAYOUT_VERSION", envs.LAYOUT_VERSION + 1)
    variants["layout"] = key()
    assert spec.key not in variants.values() and len(set(variants.values())) == len(variants)


def test_index_credentials_are_redacted_in_display_and_key(base_python: str) -> None:
    one = envs.IndexSettings(index_url="https://user:s3cret@mirror.example/simple")
    two = envs.IndexSettings(index_url="https://user:other@mirror.example/simple")
    assert "s3cret" not in json.dumps(one.display())
    assert one.display() == two.display()


# -- builds ----------------------------------------------------------------------------------------


def test_second_run_reuses_the_env_and_a_one_byte_change_builds_a_new_one(
    repo: Path, base_python: str, wheelhouse: Path, uv_wrapper: envs.Installer, uv_log: Path, installer_cache: Path
) -> None:
    st = store_mod.Store()
    (repo / "requirements.txt").write_text("tinyapp==1.0\n")
    lines: list[str] = []
    first = envs.ensure_env(
        st, prepare(repo, base_python, wheelhouse, uv_wrapper), installer_cache=installer_cache, reporter=lines.append
    )
    assert first.built and len(calls(uv_log, "install")) == 1
    assert any("installing 2 packages" in line for line in lines) and any("+ tinyapp==1.0" in line for line in lines)
    assert job_python(first.path, "import tinyapp, tinydep, torch; print(torch.__version__)") == "2.13.0"

    again = envs.ensure_env(st, prepare(repo, base_python, wheelhouse, uv_wrapper), installer_cache=installer_cache)
    assert (again.built, again.path, again.provenance) == (False, first.path, first.provenance)
    # one resolution and one lock (issue 22) for the first run, nothing for the second
    assert len(calls(uv_log, "install")) == 1 and len(calls(uv_log, "compile")) == 2

    (repo / "requirements.txt").write_text("tinyapp==1.0\n#\n")
    changed = envs.ensure_env(st, prepare(repo, base_python, wheelhouse, uv_wrapper), installer_cache=installer_cache)
    assert changed.built and changed.key != first.key and len(calls(uv_log, "install")) == 2


def test_provenance_records_key_installer_base_and_what_the_env_adds(
    repo: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    (repo / "requirements.txt").write_text("tinyapp==1.0\ntinydep\n")
    spec = prepare(repo, base_python, wheelhouse)
    result = envs.ensure_env(store_mod.Store(), spec, installer_cache=installer_cache)
    prov = result.provenance
    assert prov["key"] == spec.key == result.key
    assert (prov["installer"], prov["installer_version"]) == ("uv", spec.installer.version)
    assert prov["added"] == ["tinyapp==1.0", "tinydep==1.0"]
    assert prov["base_fingerprint"] == spec.base.fingerprint()
    assert prov["protected"] == {"torch": "2.13.0", "nvidia-cublas-cu12": "12.4.5.8"}
    assert prov["unpinned"] == ["requirements.txt:2: tinydep"]
    assert prov["requirements_file"] == "requirements.txt"
    assert store_mod.Store().meta("envs", spec.key)["summary"].startswith("2 packages over")


def test_no_requirements_gives_an_empty_env_that_sees_the_base(
    repo: Path, base_python: str, wheelhouse: Path, uv_wrapper: envs.Installer, uv_log: Path
) -> None:
    result = envs.ensure_env(store_mod.Store(), prepare(repo, base_python, wheelhouse, uv_wrapper))
    assert result.built and result.provenance["added"] == [] and calls(uv_log, "install") == []
    base_sp = site_packages(Path(base_python).parent.parent)
    assert job_python(result.path, "import torch; print(torch.__file__)") == str(base_sp / "torch" / "__init__.py")


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_requirement_depending_on_torch_installs_nothing_torch_related(
    repo: Path, base_python: str, wheelhouse: Path, installer_cache: Path, installer: str
) -> None:
    """The uv trap (perf-baselines.md 2.3): needs-torch depends on torch>=2 and nvidia-cublas-cu12,
    the wheelhouse offers torch 2.14.0; the base's 2.13.0 must be used and nothing installed."""
    before = base_frameworks(base_python)
    (repo / "requirements.txt").write_text("needs-torch==1.0\n")
    spec = prepare(repo, base_python, wheelhouse, envs.find_installer(installer))
    result = envs.ensure_env(store_mod.Store(), spec, installer_cache=installer_cache)
    installed = sorted(p.name for p in site_packages(result.path).iterdir())
    assert not [n for n in installed if n.startswith(("torch", "nvidia"))], installed
    assert result.provenance["added"] == ["needs-torch==1.0"]
    assert job_python(result.path, "import torch, needs_torch; print(torch.__version__)") == "2.13.0"
    assert base_frameworks(base_python) == before


def test_other_torch_version_fails_before_install_naming_the_line(
    repo: Path, base_python: str, wheelhouse: Path, uv_wrapper: envs.Installer, uv_log: Path
) -> None:
    before = base_frameworks(base_python)
    (repo / "requirements.txt").write_text("tinyapp==1.0\ntorch==2.14.0\n")
    with pytest.raises(RequirementError) as info:
        envs.ensure_env(store_mod.Store(), prepare(repo, base_python, wheelhouse, uv_wrapper))
    assert str(info.value).startswith("requirements.txt:2: 'torch==2.14.0' would replace the base image's torch 2.13.0")
    assert "torch==2.13.0" in (info.value.hint or "")
    assert [p for p in uv_log.glob("*.argv") if "--version" not in p.read_text()] == []
    assert store_mod.Store().entries() == [] and base_frameworks(base_python) == before


@pytest.mark.parametrize(
    "line", ["nvidia-cublas-cu12==12.1.0", "torch>=2.14", f"torch @ git+https://example.com/t@{SHA}"]
)
def test_protected_framework_forms_are_refused(repo: Path, base_python: str, wheelhouse: Path, line: str) -> None:
    (repo / "requirements.txt").write_text(f"{line}\n")
    with pytest.raises(RequirementError, match=r"^requirements.txt:1: .*would replace the base image's"):
        prepare(repo, base_python, wheelhouse)


def test_compatible_torch_lines_are_accepted_and_install_nothing(
    repo: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    (repo / "requirements.txt").write_text("torch\ntorch>=2.0,<3\ntorch==2.13.0\n")
    result = envs.ensure_env(store_mod.Store(), prepare(repo, base_python, wheelhouse), installer_cache=installer_cache)
    assert result.provenance["added"] == []


def test_framework_package_the_base_lacks_is_installed_with_a_warning(
    repo: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    (repo / "requirements.txt").write_text("torchaudio==2.13.0\n")
    lines: list[str] = []
    result = envs.ensure_env(
        store_mod.Store(),
        prepare(repo, base_python, wheelhouse),
        installer_cache=installer_cache,
        reporter=lines.append,
    )
    assert result.provenance["added"] == ["torchaudio==2.13.0"]
    assert any(line.startswith("warning: installed torchaudio 2.13.0") for line in lines)


def test_local_wheel_inside_the_repo_is_installed(repo: Path, base_python: str, wheelhouse: Path) -> None:
    wheel = write_wheel(repo / "vendor", "vendored", "0.1", ("tinydep",))
    (repo / "requirements.txt").write_text(f"vendor/{wheel.name}\n")
    result = envs.ensure_env(store_mod.Store(), prepare(repo, base_python, wheelhouse))
    assert result.provenance["added"] == ["tinydep==1.0", "vendored==0.1"]


def test_dependency_on_another_torch_fails_in_resolution_and_leaves_nothing(
    repo: Path, base_python: str, wheelhouse: Path, uv_wrapper: envs.Installer, uv_log: Path
) -> None:
    before = base_frameworks(base_python)
    (repo / "requirements.txt").write_text("needs-new-torch==1.0\n")
    spec = prepare(repo, base_python, wheelhouse, uv_wrapper)
    with pytest.raises(EnvironmentBuildError, match="could not resolve the requirements") as info:
        envs.ensure_env(store_mod.Store(), spec)
    assert "torch==2.14.0" in str(info.value)
    assert calls(uv_log, "install") == [] and not store_mod.Store().path("envs", spec.key).exists()
    assert base_frameworks(base_python) == before


def test_failed_build_is_removed_and_the_next_run_builds(
    repo: Path, base_python: str, wheelhouse: Path, tmp_path: Path, installer_cache: Path
) -> None:
    st = store_mod.Store()
    (repo / "requirements.txt").write_text("tinydep==1.0 --hash=sha256:" + "0" * 64 + "\n")
    spec = prepare(repo, base_python, wheelhouse)
    with pytest.raises(EnvironmentBuildError, match="install the requirements"):  # the hash reached uv
        envs.ensure_env(st, spec, installer_cache=installer_cache)
    assert not st.path("envs", spec.key).exists() and not st.is_complete("envs", spec.key)
    good = hashlib.sha256((wheelhouse / "tinydep-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    (repo / "requirements.txt").write_text(f"tinydep==1.0 --hash=sha256:{good}\n")
    assert envs.ensure_env(st, prepare(repo, base_python, wheelhouse), installer_cache=installer_cache).built


def test_offline_wheelhouse_from_the_task_is_what_the_installer_uses(
    repo: Path, base_python: str, wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-wheelhouse"
    write_wheel(other, "tinydep", "7.0")
    decoy = tmp_path / "decoy-wheelhouse"
    write_wheel(decoy, "tinydep", "9.0")
    for var in ("PIP_FIND_LINKS", "UV_FIND_LINKS"):  # the harness's environment must not leak in
        monkeypatch.setenv(var, str(decoy))
    (repo / "requirements.txt").write_text("tinydep\n")
    st = store_mod.Store()
    for folder, version in ((wheelhouse, "1.0"), (other, "7.0")):
        result = envs.ensure_env(st, prepare(repo, base_python, folder))
        assert result.provenance["added"] == [f"tinydep=={version}"]


class _Index:
    """A PEP 503 "simple" index of a folder of wheels on 127.0.0.1 that records each request."""

    def __init__(self, wheels: Path) -> None:
        self.requests: list[str] = []
        self.auth: list[str] = []
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _answer(self, head: bool) -> None:
                index.requests.append(self.path)
                index.auth.append(self.headers.get("Authorization", ""))
                parts = [p for p in self.path.split("/") if p]
                body, ctype = b"", "text/html"
                if parts[:1] == ["simple"] and len(parts) == 2:
                    links = [
                        f'<a href="/files/{w.name}">{w.name}</a>'
                        for w in sorted(wheels.glob("*.whl"))
                        if w.name.split("-")[0].replace("_", "-") == parts[1]
                    ]
                    body = ("<html><body>" + "".join(links) + "</body></html>").encode() if links else b""
                elif parts[:1] == ["files"] and (wheels / parts[-1]).is_file():
                    body, ctype = (wheels / parts[-1]).read_bytes(), "application/octet-stream"
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[_Index]:
    wheels = tmp_path / "mirror-wheels"
    write_wheel(wheels, "mirrorpkg", "3.0", ("tinydep",))
    write_wheel(wheels, "tinydep", "5.0")
    index = _Index(wheels)
    yield index
    index.server.shutdown()


def test_mirror_from_the_task_is_used_and_no_secret_reaches_the_installer(
    repo: Path,
    base_python: str,
    mirror: _Index,
    uv_wrapper: envs.Installer,
    uv_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    canaries = {
        "LIVE_CODE_GIT_TOKEN": "canary-git-7f3a",
        "AWS_SECRET_ACCESS_KEY": "canary-aws-91c2",
        "PIP_INDEX_URL": "https://canary-pip-index.invalid/simple",
        "UV_INDEX_URL": "https://canary-uv.invalid/",
    }
    for k, v in canaries.items():
        monkeypatch.setenv(k, v)
    (repo / "requirements.txt").write_text("mirrorpkg==3.0\n")
    index = envs.IndexSettings(index_url=mirror.url.replace("http://", "http://ci:m1rr0r-t0ken@"))
    lines: list[str] = []
    spec = envs.prepare_env(repo, base_python=base_python, index=index, installer=uv_wrapper)
    result = envs.ensure_env(store_mod.Store(), spec, reporter=lines.append)
    assert result.provenance["added"] == ["mirrorpkg==3.0", "tinydep==5.0"]
    assert "/simple/mirrorpkg/" in mirror.requests and "/files/mirrorpkg-3.0-py3-none-any.whl" in mirror.requests
    assert any(a.startswith("Basic ") for a in mirror.auth)  # the credential went to the mirror only
    runs = {p.read_text(): p.with_suffix(".env").read_text() for p in uv_log.glob("*.argv")}
    assert [a for a in runs if a.startswith("pip install ")]
    for argv, environ in runs.items():
        assert not [v for v in canaries.values() if v in environ], argv
        assert f"HOME={os.environ['HOME']}\n" not in environ
        if argv.startswith("pip "):
            assert "UV_NO_CONFIG=1\n" in environ and f"PIP_CONFIG_FILE={os.devnull}\n" in environ
    argvs = list(runs)
    everything = "\n".join([*argvs, *lines, json.dumps(result.provenance), caplog.text])
    assert "m1rr0r-t0ken" not in everything and mirror.url.replace("http://", "http://***@") in json.dumps(
        result.provenance
    )


@pytest.mark.slow
def test_killed_install_is_rebuilt_by_the_next_run(
    repo: Path, base_python: str, wheelhouse: Path, uv_wrapper: envs.Installer, uv_log: Path, tmp_path: Path
) -> None:
    (repo / "requirements.txt").write_text("slowpkg==1.0\n")
    spec = prepare(repo, base_python, wheelhouse, uv_wrapper)
    st = store_mod.Store()
    driver = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _DRIVER,
            json.dumps(_driver_args(repo, base_python, wheelhouse, uv_wrapper, st, tmp_path / "ic")),
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    installer = _wait_for_installer(uv_log, driver)
    time.sleep(0.3)  # let it write part of the 3000 files
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert _gone(installer, within=1.0), "the orphaned installer kept running"
    assert st.path("envs", spec.key).is_dir() and not st.is_complete("envs", spec.key)
    result = envs.ensure_env(st, spec)
    assert result.built and result.provenance["added"] == ["slowpkg==1.0"]
    assert (site_packages(result.path) / "slowpkg" / "m39999.py").is_file()
    assert sorted(p.name for p in result.path.parent.iterdir()) == [spec.key, f"{spec.key}.done"]  # no debris


def test_four_concurrent_runs_build_the_env_once(
    repo: Path, base_python: str, wheelhouse: Path, uv_wrapper: envs.Installer, uv_log: Path, tmp_path: Path
) -> None:
    (repo / "requirements.txt").write_text("tinyapp==1.0\n")
    args = json.dumps(_driver_args(repo, base_python, wheelhouse, uv_wrapper, store_mod.Store(), tmp_path / "ic"))
    procs = [subprocess.Popen([sys.executable, "-c", _DRIVER, args], stdout=subprocess.PIPE) for _ in range(4)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert sorted(r["built"] for r in results) == [False, False, False, True]
    assert len({r["path"] for r in results}) == 1
    assert len(calls(uv_log, "install")) == 1


@pytest.mark.slow
def test_install_deadline_kills_the_installer_and_removes_the_env(
    repo: Path, base_python: str, wheelhouse: Path, tmp_path: Path
) -> None:
    (repo / "requirements.txt").write_text("slowpkg==1.0\n")
    spec = prepare(repo, base_python, wheelhouse)
    started = time.monotonic()
    with pytest.raises(EnvironmentBuildError, match=r"could not install the requirements \(timed out\)"):
        envs.ensure_env(store_mod.Store(), spec, installer_cache=tmp_path / "cold", timeout=1.0)
    assert time.monotonic() - started < 10
    assert not store_mod.Store().path("envs", spec.key).exists()


def test_a_changed_base_framework_is_detected_after_install(repo: Path, wheelhouse: Path, tmp_path: Path) -> None:
    """The post-install check can fail: a base whose torch files change while the env is built."""
    base = tmp_path / "base"
    subprocess.run([REAL_UV, "venv", "-q", "--python", sys.executable, str(base)], check=True)
    subprocess.run(
        [
            REAL_UV,
            "pip",
            "install",
            "-q",
            "--python",
            str(base / "bin/python"),
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "torch==2.13.0",
        ],
        check=True,
    )
    (repo / "requirements.txt").write_text("tinydep==1.0\n")
    spec = prepare(repo, str(base / "bin/python"), wheelhouse)
    init = site_packages(base) / "torch" / "__init__.py"

    def touch_torch_during_install(line: str) -> None:
        if "+ tinydep" in line:
            init.write_text(init.read_text() + "# changed\n")

    with pytest.raises(EnvironmentBuildError, match=r"changed the base image's torch 2\.13\.0"):
        envs.ensure_env(store_mod.Store(), spec, reporter=touch_torch_during_install)
    assert init.read_text().endswith("# changed\n")
    assert not store_mod.Store().path("envs", spec.key).exists()


@pytest.mark.registry
def test_installs_a_small_pinned_package_from_the_real_registry(repo: Path, base_python: str, tmp_path: Path) -> None:
    (repo / "requirements.txt").write_text("six==1.16.0\n")
    spec = envs.prepare_env(repo, base_python=base_python)
    result = envs.ensure_env(store_mod.Store(), spec, installer_cache=tmp_path / "ic", timeout=300)
    assert result.provenance["added"] == ["six==1.16.0"]
    assert job_python(result.path, "import six; print(six.__version__)") == "1.16.0"


# -- helpers for the tests that run builds in other processes ---------------------------------------

_DRIVER = """
import json, sys
from live_code.envs import builder as envs
from live_code.source import store
a = json.loads(sys.argv[1])
spec = envs.prepare_env(a["repo"], base_python=a["base"], installer=envs.find_installer("uv", uv=a["uv"]),
                        index=envs.IndexSettings(find_links=(a["wheelhouse"],), offline=True))
result = envs.ensure_env(store.Store(a["cache"]), spec, installer_cache=a["installer_cache"],
                         reporter=lambda line: None)
print(json.dumps({"built": result.built, "path": str(result.path)}))
"""


def _driver_args(
    repo: Path, base: str, wheelhouse: Path, uv: envs.Installer, st: store_mod.Store, cache: Path
) -> dict[str, str]:
    return {
        "repo": str(repo),
        "base": base,
        "wheelhouse": str(wheelhouse),
        "uv": uv.argv[0],
        "cache": str(st.root),
        "installer_cache": str(cache),
    }


def _wait_for_installer(uv_log: Path, driver: subprocess.Popen[bytes]) -> int:
    """pid of the ``uv pip install`` the driver started (the wrapper execs uv: same pid)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for argv in uv_log.glob("*.argv"):
            if argv.read_text().startswith("pip install "):
                return int(argv.name.split(".")[0])
        assert driver.poll() is None, "the build ended before the installer was seen"
        time.sleep(0.02)
    raise AssertionError("the installer never started")


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


# -- bytecode: compiled while the job runs, not during the build ---------------------------------


def _pycs(env: Path) -> list[Path]:
    return sorted(site_packages(env).rglob("*.pyc"))


def test_build_leaves_bytecode_to_the_background_compile_which_runs_once(
    repo: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    (repo / "requirements.txt").write_text("tinyapp==1.0\n")
    env = envs.ensure_env(store_mod.Store(), prepare(repo, base_python, wheelhouse), installer_cache=installer_cache)
    assert _pycs(env.path) == [], "the build itself compiles nothing (the job must not wait for it)"
    proc = envs.start_bytecode_compile(env.path)
    assert proc is not None and envs.finish_bytecode_compile(proc, timeout=60)
    compiled = {p.parent.parent.name for p in _pycs(env.path)}
    assert {"tinyapp", "tinydep"} <= compiled
    assert (env.path / envs.COMPILED_MARKER).is_file()
    assert envs.start_bytecode_compile(env.path) is None, "a compiled env is not compiled again"


def test_a_killed_compile_leaves_no_marker_and_the_next_run_compiles_again(
    repo: Path, base_python: str, wheelhouse: Path, installer_cache: Path
) -> None:
    (repo / "requirements.txt").write_text("manymods==1.0\n")
    env = envs.ensure_env(store_mod.Store(), prepare(repo, base_python, wheelhouse), installer_cache=installer_cache)
    proc = envs.start_bytecode_compile(env.path)
    assert proc is not None
    # a job starts at the same moment: the compile gets only CPU time that nothing else wants
    assert os.sched_getscheduler(proc.pid) == os.SCHED_IDLE
    time.sleep(0.2)
    assert envs.finish_bytecode_compile(proc) is False and proc.returncode is not None  # killed, reaped
    assert not (env.path / envs.COMPILED_MARKER).exists()
    again = envs.start_bytecode_compile(env.path)
    assert again is not None and envs.finish_bytecode_compile(again, timeout=120)
    assert len(_pycs(env.path)) >= 3000
    assert job_python(env.path, "import manymods.m2999 as m; print(m.f29(1))") == "30"
