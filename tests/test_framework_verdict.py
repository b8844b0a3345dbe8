"""Issue 18, acceptance 3: a requirement line on a protected framework gets the same verdict from
``live-code check`` and from ``live-code run`` (both call ``envs.framework_verdict``), over real
framework bases: the torch base of the tests (torch 2.13.0) and the mxnet one (mxnet 1.9.1).

- satisfied by the base: accepted, nothing installed, recorded with the base's version;
- another version (or a URL form) of what the base has: refused, naming the base's version and the fix;
- a framework package the base does not have: installed (check warns when pinned).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code.commands import sample
from tests.helpers import template_runs as runs

BASES = {"torch": "LIVE_CODE_TEST_FRAMEWORK_PYTHON", "mxnet": "LIVE_CODE_TEST_MXNET_PYTHON"}
#: (base, requirement line, verdict); base versions: torch 2.13.0(+cpu), mxnet 1.9.1
TABLE = [
    ("torch", "torch>=1.7.0", "base"),
    ("torch", "torch", "base"),
    ("torch", "torch==2.13.0", "base"),
    ("torch", "torch>=2.0,<3", "base"),
    ("torch", "torch==1.8.1", "refused"),
    ("torch", "torch<2", "refused"),
    (
        "torch",
        "torch @ https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-linux_x86_64.whl",
        "refused",
    ),
    ("torch", "nvidia-ml-py==12.560.30", "install"),
    ("mxnet", "mxnet>=1.6", "base"),
    ("mxnet", "mxnet==1.8.0", "refused"),
]
JOB = """\
import os
from live_code import sdk
env = sdk.read_env()
os.makedirs(env.output.models_dir, exist_ok=True)
open(os.path.join(env.output.models_dir, "m.txt"), "w").write("m")
sdk.write_model_stage("epoch_1", ["m.txt"], 0.5)
"""

pytestmark = [pytest.mark.slow, pytest.mark.framework, pytest.mark.registry]


def _base(name: str) -> str:
    python = os.environ.get(BASES[name])
    if not python:
        pytest.skip(f"needs the {name} base ({BASES[name]}, made by tests/run.sh)")
    return python


@pytest.mark.parametrize(("base", "line", "verdict"), TABLE, ids=[f"{b}:{line}" for b, line, _ in TABLE])
def test_check_and_run_give_one_verdict(
    tmp_path: Path, make_repo: Callable[..., Path], base: str, line: str, verdict: str
) -> None:
    python = _base(base)
    version = subprocess.run(
        [python, "-c", f"from importlib.metadata import version; print(version({base!r}))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()  # e.g. 2.13.0+cpu
    name = line.split("=")[0].split(">")[0].split("<")[0].split("@")[0].strip()
    repo = make_repo(
        {
            "live-code.yaml": f"framework: {base}\nentry: python start.py\n",
            "start.py": JOB,
            "requirements.txt": f"{line}\n",
        },
        tag="v1",
    )
    env = runs.harness_env(tmp_path / "cache", python)

    check = runs.check_static(f"{repo}@v1", env)
    sample.write_sample_dataset(tmp_path / "task", protocol=contract.PROTOCOL_1_1_0, fmt="voc", images=4)
    run = runs.run(tmp_path / "task", env, (str(repo), runs.git("rev-parse", "HEAD", cwd=repo)))
    prov = runs.provenance(tmp_path / "task")
    out = check.stdout
    if verdict == "base":
        assert (
            f"ok    requirements       requirements.txt:1: {line!r} is satisfied by the base's {name} {version}" in out
        ), out
        assert check.returncode == 0, out
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert prov["environment"]["satisfied_by_base"] == [  # type: ignore[index]  # provenance read from YAML is dict[str, object]
            f"requirements.txt:1: {line} (the base's {name} {version})"
        ]
        assert prov["environment"]["added"] == [] and prov["environment"]["unpinned"] == []  # type: ignore[index]  # provenance read from YAML is dict[str, object]
    elif verdict == "refused":
        message = f"requirements.txt:1: {line!r} would replace the base image's {name} {version}"
        assert check.returncode == 1 and message in out and f"pin {name}=={version}" in out, out
        assert run.returncode == 4, run.stderr[-3000:]
        assert message in run.stderr and f"pin {name}=={version}" in run.stderr
        assert message in prov["outcome"]["error"]  # type: ignore[index]  # provenance read from YAML is dict[str, object]
    else:
        assert f"warn  requirements       requirements.txt:1: {line!r}: the base has no {name}" in out, out
        assert check.returncode == 0, out
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert line.lower() in prov["environment"]["added"]  # type: ignore[index]  # provenance read from YAML is dict[str, object]


def test_the_table_covers_each_verdict_on_each_base() -> None:
    assert {(b, v) for b, _, v in TABLE} >= {
        ("torch", "base"),
        ("torch", "refused"),
        ("torch", "install"),
        ("mxnet", "base"),
        ("mxnet", "refused"),
    }
    assert yaml.safe_dump(TABLE)  # plain data: the README's table can be made from it
