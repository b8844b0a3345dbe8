"""live_code.envs.base: the base interpreter as a job env sees it (its distributions and the protected
frameworks among them), read by running the real interpreter, and the metadata-only stub wheels that
let the installer resolve against it."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import pytest

from live_code.envs import base
from live_code.errors import EnvironmentBuildError


def _site_packages(env: Path) -> Path:
    (sp,) = env.glob("lib/python*/site-packages")
    return sp


def _dist_info(site: Path, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nName: not-a-header\n")


# -- reading the base -----------------------------------------------------------------------------


def test_base_fingerprint_reads_the_venv_base_and_its_protected_frameworks(base_python: str) -> None:
    info = base.base_fingerprint(base_python)
    assert info.protected == {"torch": "2.13.0", "nvidia-cublas-cu12": "12.4.5.8"}
    assert info.is_venv and not info.system_site
    assert info.venv_site_dirs == (str(_site_packages(Path(base_python).parent.parent)),)
    assert info.python_version == ".".join(map(str, sys.version_info[:3]))
    assert base.base_fingerprint(base_python).fingerprint() == info.fingerprint()


def test_signatures_follow_the_files_of_the_named_distributions_only(base_python: str) -> None:
    before = base.base_fingerprint(base_python, signatures_for=["torch"])
    sigs = {d.name: d.files for d in before.dists}
    assert len(sigs["torch"]) == 64 and sigs["nvidia-cublas-cu12"] == ""
    init = _site_packages(Path(base_python).parent.parent) / "torch" / "__init__.py"
    st = init.stat()
    try:
        os.utime(init, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        after = {d.name: d.files for d in base.base_fingerprint(base_python, signatures_for=["torch"]).dists}
        assert after["torch"] != sigs["torch"]
    finally:
        os.utime(init, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_an_interpreter_that_does_not_run_is_refused_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'no such thing' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(EnvironmentBuildError, match="cannot read the base interpreter") as err:
        base.base_fingerprint(broken)
    assert err.value.value == str(broken) and "LIVE_CODE_BASE_PYTHON" in (err.value.hint or "")


def test_the_harness_interpreter_reads_as_itself() -> None:
    info = base.base_fingerprint(sys.executable)
    assert info.executable == sys.executable and info.implementation == sys.implementation.name
    assert info.versions["packaging"]  # a dependency of live-code, so present here


# -- names and versions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "protected"),
    [
        ("torch", True),
        ("TorchVision", True),
        ("MXNet_CU112", True),
        ("nvidia-cudnn-cu12", True),
        ("cupy-cuda12x", True),
        ("onnxruntime-gpu", True),
        ("torchmetrics", False),
        ("onnxruntime", False),
        ("numpy", False),
    ],
)
def test_protected_names_are_the_frameworks_in_any_spelling(name: str, protected: bool) -> None:
    assert base.is_protected(name) is protected


def test_normal_version_is_pep_440_or_none() -> None:
    assert base.normal_version("2.13.0+cu124") == "2.13.0+cu124"
    assert base.normal_version("1.0.0-RC1") == "1.0.0rc1"
    assert base.normal_version("not a version") is None


def test_sha256_json_ignores_key_order_and_reads_tuples_as_lists() -> None:
    assert base.sha256_json({"a": 1, "b": (1, 2)}) == base.sha256_json({"b": [1, 2], "a": 1})
    assert base.sha256_json({"a": 1}) != base.sha256_json({"a": 2})


def test_own_dists_lists_what_the_env_itself_installed(tmp_path: Path) -> None:
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    _dist_info(site, "Tiny_Dep", "1.0")
    _dist_info(site, "six", "1.16.0")
    _dist_info(tmp_path / "elsewhere", "linked", "2.0")
    (tmp_path / "env" / "lib" / "python3.12").mkdir()
    (tmp_path / "env" / "lib" / "python3.12" / "site-packages").symlink_to(tmp_path / "elsewhere")  # not its own
    assert base.site_dirs(tmp_path / "env") == [site]
    assert base.own_dists(tmp_path / "env") == {"tiny-dep": "1.0", "six": "1.16.0"}


# -- the stub wheels ---------------------------------------------------------------------------------


def test_stubs_carry_each_distribution_s_metadata_and_skip_invalid_versions(tmp_path: Path) -> None:
    info = base.BaseInfo(
        executable="/x/python",
        python_version="3.11.7",
        implementation="cpython",
        platform="linux-x86_64",
        is_venv=True,
        system_site=False,
        venv_site_dirs=(),
        dists=(
            base.Dist("torch", "2.13.0", "/x", "r", ("filelock", "numpy; extra == 'np'"), ">=3.9", ("np",), ""),
            base.Dist("odd", "not-a-version", "/x", "r", (), "", (), ""),
        ),
    )
    base.write_stubs(tmp_path / "stubs", info)
    (wheel,) = (tmp_path / "stubs").iterdir()
    assert wheel.name == "torch-2.13.0-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        assert sorted(zf.namelist()) == [f"torch-2.13.0.dist-info/{n}" for n in ("METADATA", "RECORD", "WHEEL")]
        meta = zf.read("torch-2.13.0.dist-info/METADATA").decode()
    assert meta == (
        "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0\nRequires-Python: >=3.9\nProvides-Extra: np\n"
        "Requires-Dist: filelock\nRequires-Dist: numpy; extra == 'np'\n"
    )


def test_the_fingerprint_changes_with_a_distribution_but_not_its_signature() -> None:
    dist = base.Dist("torch", "2.13.0", "/x", "r", (), "", (), "sig-1")
    info = base.BaseInfo("/x/python", "3.11.7", "cpython", "linux-x86_64", True, False, (), (dist,))
    same = base.BaseInfo(**{**info.__dict__, "dists": (dist._replace(files="sig-2"),)})
    other = base.BaseInfo(**{**info.__dict__, "dists": (dist._replace(version="2.14.0"),)})
    assert same.fingerprint() == info.fingerprint() != other.fingerprint()
