"""The user's own image names (issue 23, acceptance 5): a folder of images becomes YMIR's
``<sha1>.<ext>`` assets, ``names.tsv`` maps them back, and ``local --export DIR`` writes the infer and
mining results under the names the user had."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from live_code.commands import local
from live_code.errors import ConfigError
from tests.helpers.jobs import LOCAL_JOB, local_argv

ROOT = Path(__file__).resolve().parent.parent
Image = pytest.importorskip("PIL.Image", reason="Pillow (the dev extra) writes the test's JPEG images")


def _images(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    (folder / "sub").mkdir()
    made = {}
    for i, name in enumerate(("cat 1.jpg", "dog.JPG", "sub/bird.jpeg")):
        Image.new("RGB", (40 + i, 30), (10 * i, 100, 200)).save(folder / name, "JPEG")
        made[name] = folder / name
    return made


def test_local_exports_infer_and_mining_results_under_the_original_names(tmp_path: Path, make_repo) -> None:
    data = tmp_path / "my photos"
    made = _images(data)
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "LIVE_CODE_BASE_PYTHON"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        (
            sys.executable,
            "-m",
            "live_code",
            *local_argv(f"{repo}@v1", task="mining+infer", dataset=str(data), work=tmp_path / "w"),
            "--classes",
            "cat,dog",
            "--sandbox",
            "off",
            "--export",
            str(tmp_path / "export"),
            "--json",
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["names"] == str(tmp_path / "w" / local.NAMES)
    names = local.read_names(tmp_path / "w")
    assert sorted(names.values()) == sorted(p.resolve() for p in made.values())
    assert all(len(Path(a).stem) == 40 for a in names), "the task's assets keep YMIR's names"
    infer = json.loads((tmp_path / "export" / "infer-result.json").read_text())
    assert set(infer["detection"]) == set(made)  # "cat 1.jpg", "dog.JPG", "sub/bird.jpeg"
    assert all(v["boxes"] for v in infer["detection"].values())
    rows = [line.split("\t") for line in (tmp_path / "export" / "result.tsv").read_text().splitlines()]
    assert sorted(r[0] for r in rows) == sorted(made)
    assert doc["exported"] == [str(tmp_path / "export" / "infer-result.json"), str(tmp_path / "export" / "result.tsv")]
    # the task's own outputs are YMIR's, untouched
    own = json.loads((tmp_path / "w" / "out" / "infer-result.json").read_text())
    assert set(own["detection"]) == set(names)


def test_export_of_a_task_without_names_says_why(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError, match="has no names.tsv"):
        local.export_results(tmp_path, tmp_path / "e")


def test_a_sample_dataset_has_no_names(tmp_path: Path) -> None:
    (tmp_path / "in" / "assets").mkdir(parents=True)
    assert local.write_names("sample", tmp_path) == {} and not (tmp_path / local.NAMES).exists()
