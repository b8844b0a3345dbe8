"""A requirement that exists only as an sdist, over a base that carries its build backend (issue 20).

The real torch image's conda Python carries setuptools (so do the test images' bases), and uv
resolves a job's requirements against the base by offering each base distribution as a
metadata-only stub wheel. Resolving an sdist builds its metadata in an isolated build env, whose
build requirements (``setuptools``) come from the same places: the stub, preferred for its build
tag, was installed there, and every such build failed with "No module named 'setuptools'". The stubs
must serve the job's resolution only, never a build env.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from tests.helpers import site as _site
from tests.helpers import template_runs as runs

JOB = _site.probe_job(
    f"{_site.CEXT_NAME}=={_site.CEXT_VERSION}", "lc_cext_probe", "lc_cext_probe.add(2, 3)", "built from its sdist:"
)


@pytest.mark.slow
@pytest.mark.registry
def test_an_sdist_builds_over_a_base_that_has_setuptools(tmp_path: Path, make_repo) -> None:
    base = tmp_path / "base"
    venv.create(base, with_pip=True)
    python = str(base / "bin" / "python")
    # the newest setuptools, as a conda Python (or torch's dependencies) brings it: the version a
    # build env would pick from the index is the base's own, which the stub also offers
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "setuptools"], check=True, timeout=300)
    sdists = tmp_path / "sdists"
    _site.make_cext_sdist(sdists, native=False)
    repo = make_repo(JOB, tag="v1")
    task = tmp_path / "task"
    sample.write_sample_dataset(task, kinds={TaskKind.TRAINING}, fmt="voc", protocol=contract.PROTOCOL_1_1_0, images=4)
    runs.configure(task, git_url=str(repo), git_tag="v1", pip_find_links=[str(sdists)])
    env = runs.harness_env(tmp_path / "cache", python)
    cmd = [sys.executable, "-m", "live_code", "run", "--in", str(task / "in"), "--out", str(task / "out")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    assert "built from its sdist: 5" in res.stdout
    assert f"{_site.CEXT_NAME}=={_site.CEXT_VERSION}" in runs.provenance(task)["environment"]["added"]  # type: ignore[index]  # provenance read from YAML is dict[str, object]
