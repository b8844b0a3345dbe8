"""remote_templates/detectron2 without detectron2 (issues 9 and 21): the framework-free parts (COCO
conversion, config edits as merge_from_list pairs, model files, mining/infer glue), its requirements
(detectron2 pinned to a full commit through a VCS requirement, which live-code accepts, while a
floating one is refused; the rest consistent with detectron2's setup.py at that commit, read from
../shared/sources/detectron2.bundle), its manifest (detectron2 built without build isolation) and
`live-code check --static` on the template. The end-to-end runs are in test_template_detectron2.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from live_code import contract, sdk
from live_code.commands.sample import encode_png
from live_code.contract import TaskKind
from live_code.envs import requirements as _requirements
from live_code.errors import RequirementError
from live_code.task import manifest as manifest_mod
from tests.helpers.template_runs import load_module

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "remote_templates" / "detectron2"
CLASSES = ("cat", "dog", "person")
PYTHON = os.environ.get("LIVE_CODE_TEST_FRAMEWORK_PYTHON", sys.executable)


def _load(name: str) -> ModuleType:
    return load_module(TEMPLATE, name)


d2config = _load("d2config")
modelfiles = _load("modelfiles")


def test_framework_free_modules_name_no_framework() -> None:
    for module in (d2config, modelfiles):
        text = Path(module.__file__).read_text()
        assert not re.search(r"^\s*(import|from) (torch|detectron2|numpy|cv2)\b", text, re.M), module.__file__


# -- COCO files (sdk.write_coco, tested in test_sdk_coco.py) --------------------------------------


def test_coco_files_for_registration_are_written_under_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    (in_dir / "assets").mkdir(parents=True)
    out_dir.mkdir()
    env = contract.env_yaml(
        protocol="1.1.0", task_id="t1", kinds=frozenset({TaskKind.TRAINING}), in_dir=str(in_dir), out_dir=str(out_dir)
    )
    (in_dir / "env.yaml").write_text(yaml.safe_dump(env))
    (in_dir / "config.yaml").write_text(yaml.safe_dump({"class_names": list(CLASSES)}))
    img, ann = in_dir / "assets" / "a.png", in_dir / "assets" / "a.txt"
    img.write_bytes(encode_png(16, 8, bytes(16 * 8 * 3)))
    ann.write_text("2,0,0,3,7\n")
    for key in ("training_index_file", "val_index_file"):
        Path(env["input"][key]).write_text(f"{img}\t{ann}\n")
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(in_dir / "env.yaml"))
    monkeypatch.delenv(contract.CONFIG_FILE_VAR, raising=False)
    target = out_dir / "detectron2-work" / f"{d2config.TRAIN_DATASET}.json"
    assert sdk.write_coco(sdk.Split.TRAINING, str(target), class_names=CLASSES) == (1, 1)
    data = json.loads(target.read_text())
    assert data["annotations"][0]["bbox"] == [0.0, 0.0, 4.0, 8.0] and data["annotations"][0]["category_id"] == 3
    assert [c["name"] for c in data["categories"]] == list(CLASSES)
    with pytest.raises(ValueError, match="read-only"):
        sdk.write_coco(sdk.Split.TRAINING, str(in_dir / "x.json"), class_names=CLASSES)


# -- config edits ---------------------------------------------------------------------------------


def _settings(**kw: object) -> object:
    base = dict(
        num_classes=3,
        output_dir="/out/detectron2-work",
        max_iter=900,
        ims_per_batch=2,
        base_lr=0.001,
        checkpoint_period=0,
        num_workers=0,
        device="cpu",
        weights="",
    )
    base.update(kw)
    return d2config.TrainingSettings(**base)


def test_training_opts_set_datasets_classes_solver_and_output() -> None:
    opts = d2config.training_opts(_settings(weights="/in/models/iter_100/iter_100.pth"), 90000, [60000, 80000], 1000)
    pairs = dict(zip(opts[::2], opts[1::2]))
    assert pairs["DATASETS.TRAIN"] == (d2config.TRAIN_DATASET,) and pairs["DATASETS.TEST"] == (d2config.VAL_DATASET,)
    assert pairs["MODEL.RETINANET.NUM_CLASSES"] == pairs["MODEL.ROI_HEADS.NUM_CLASSES"] == 3
    assert pairs["MODEL.WEIGHTS"] == "/in/models/iter_100/iter_100.pth"
    assert pairs["SOLVER.MAX_ITER"] == 900 and pairs["SOLVER.STEPS"] == (600, 800)
    assert pairs["SOLVER.WARMUP_ITERS"] == 90
    assert pairs["SOLVER.CHECKPOINT_PERIOD"] == pairs["TEST.EVAL_PERIOD"] == 90
    assert pairs["OUTPUT_DIR"] == "/out/detectron2-work" and pairs["MODEL.DEVICE"] == "cpu"
    assert "INPUT.MIN_SIZE_TRAIN" not in pairs
    assert len(opts) % 2 == 0 and all(isinstance(k, str) and k.isupper() for k in opts[::2] if "." not in k)


def test_from_scratch_a_frozen_bn_backbone_gets_group_norm_and_no_frozen_stages() -> None:
    scratch = dict(zip(*[iter(d2config.training_opts(_settings(), 90000, [], 1000, "FrozenBN"))] * 2))
    assert scratch["MODEL.RESNETS.NORM"] == scratch["MODEL.FPN.NORM"] == "GN"
    assert scratch["MODEL.BACKBONE.FREEZE_AT"] == 0
    for opts in (
        d2config.training_opts(_settings(weights="/in/models/a.pth"), 90000, [], 1000, "FrozenBN"),
        d2config.training_opts(_settings(), 90000, [], 1000, "GN"),
    ):
        assert "MODEL.RESNETS.NORM" not in opts[::2] and "MODEL.BACKBONE.FREEZE_AT" not in opts[::2]


def test_the_evaluation_keeps_every_box_for_coco_ap() -> None:
    pairs = dict(zip(*[iter(d2config.training_opts(_settings(), 90000, [], 1000))] * 2))
    assert pairs["MODEL.RETINANET.SCORE_THRESH_TEST"] == pairs["MODEL.ROI_HEADS.SCORE_THRESH_TEST"] == 0.0


def test_img_size_sets_train_and_test_input_sizes() -> None:
    pairs = dict(zip(*[iter(d2config.training_opts(_settings(img_size=128), 90000, [], 1000))] * 2))
    assert pairs["INPUT.MIN_SIZE_TRAIN"] == (128,) and pairs["INPUT.MAX_SIZE_TEST"] == 128


@pytest.mark.parametrize(
    ("max_iter", "requested", "expected"), [(900, 0, 90), (5, 0, 1), (100, 500, 100), (100, 30, 30)]
)
def test_checkpoint_period_gives_at_least_one_stage(max_iter: int, requested: int, expected: int) -> None:
    assert d2config.checkpoint_period(max_iter, requested) == expected


def test_steps_past_the_end_are_dropped() -> None:
    assert d2config.scaled_steps([60000, 80000], 90000, 30) == (20, 27)
    assert d2config.scaled_steps([60000, 80000], 90000, 1) == ()
    assert d2config.scaled_steps([5, 50], 0, 10) == (5,)


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ({"bbox": {"AP50": 61.5}}, 0.615),
        ({"bbox": {"AP50": float("nan")}}, 0.0),
        ({}, 0.0),
        ({"bbox": {"AP": 3.0}}, 0.0),
    ],
)
def test_ap50_is_a_fraction(results: dict[str, object], expected: float) -> None:
    assert d2config.ap50_of(results) == pytest.approx(expected)


# -- model files and glue -------------------------------------------------------------------------


def test_stage_is_weights_plus_yaml_config(tmp_path: Path) -> None:
    stage = tmp_path / "iter_90"
    stage.mkdir()
    (stage / "iter_90.pth").write_text("x")
    (stage / "iter_90.yaml").write_text("x")
    files = sdk.find_model_files(
        {"model_params_path": ["iter_90/iter_90.pth", "iter_90/iter_90.yaml"]},
        "model_params_path",
        config_suffix=modelfiles.CONFIG_SUFFIX,
        need_config=True,
        models_dir=str(tmp_path),
    )
    assert files.config == str(stage / "iter_90.yaml")
    assert modelfiles.stage_name(90) == "iter_90"
    assert (
        sdk.pick_checkpoint(["/m/model_0000099.pth", "/m/model_final.pth", "/m/model_0000199.pth"])
        == "/m/model_0000199.pth"
    )


def test_finetuning_takes_the_config_beside_the_weights() -> None:
    files = ["/in/models/iter_40/iter_40.pth", "/in/models/iter_40/iter_40.yaml", "/in/models/x/other.yaml"]
    assert modelfiles.config_beside(files[0], files) == "/in/models/iter_40/iter_40.yaml"
    assert modelfiles.config_beside("/in/models/a.pth", files) is None


def test_mining_offers_cald_and_entropy_not_aldd() -> None:
    mine = (TEMPLATE / "mine.py").read_text()
    assert 'ALGORITHMS = ("random", "entropy", "cald")' in mine
    allowed = ("random", "entropy", "cald")
    assert sdk.mining_algorithm({}, allowed, "cald") == "cald"
    with pytest.raises(sdk.ConfigValueError, match="aldd"):
        sdk.mining_algorithm({"mining_algorithm": "aldd"}, allowed, "cald")


# -- requirements and live-code check --static ---------------------------------------------------


def test_requirements_pin_detectron2_to_a_full_commit() -> None:
    reqs = _requirements.parse_requirements(TEMPLATE / "requirements.txt", TEMPLATE, strict_pins=True)
    d2 = next(r for r in reqs.lines if r.name == "detectron2")
    assert d2.kind == "vcs" and d2.pinned and re.search(r"@[0-9a-f]{40}$", d2.spec)
    assert reqs.unpinned == ()


def test_the_manifest_builds_detectron2_against_the_job_env() -> None:
    manifest = manifest_mod.load(TEMPLATE)
    assert manifest.no_build_isolation == ("detectron2",) and manifest.framework == "torch"
    reqs = _requirements.parse_requirements(TEMPLATE / "requirements.txt", TEMPLATE, strict_pins=True)
    assert "detectron2" in {r.name for r in reqs.lines}


def _bundle() -> str | None:
    path = os.environ.get("LIVE_CODE_TEST_DETECTRON2_BUNDLE") or str(
        ROOT.parent / "shared" / "sources" / "detectron2.bundle"
    )
    return path if os.path.isfile(path) else None


@pytest.mark.skipif(
    _bundle() is None,
    reason="no detectron2 bundle (LIVE_CODE_TEST_DETECTRON2_BUNDLE, default "
    "../shared/sources/detectron2.bundle) to read its setup.py from",
)
def test_requirements_hold_what_setup_py_asks_at_the_pinned_commit(tmp_path: Path) -> None:
    """Every install_requires of detectron2's setup.py at the pinned commit is pinned here to a version
    it accepts; and the commit is after the Pillow 10 fix (no PIL.Image.LINEAR), which 2dde706 lacked."""
    reqs = _requirements.parse_requirements(TEMPLATE / "requirements.txt", TEMPLATE, strict_pins=True)
    sha = re.search(r"@([0-9a-f]{40})$", next(r.spec for r in reqs.lines if r.name == "detectron2"))[1]
    clone = tmp_path / "detectron2"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(_bundle()), str(clone)], check=True, timeout=300)
    show = subprocess.run(
        ["git", "-C", str(clone), "show", f"{sha}:setup.py"], check=True, capture_output=True, text=True
    ).stdout
    block = show.split("install_requires=[", 1)[1].split("],", 1)[0]
    wanted = [Requirement(m) for m in re.findall(r'^\s*"([^"]+)",', block, re.M)]
    assert len(wanted) > 10, block
    pinned = {r.name: r.specifier for r in reqs.lines if r.name and r.kind == "name"}
    for req in wanted:
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pinned, f"setup.py asks for {req}, requirements.txt does not pin it"
        version = pinned[name].removeprefix("==")
        assert req.specifier.contains(version, prereleases=True), f"{name}=={version} is outside {req}"
    grep = subprocess.run(
        ["git", "-C", str(clone), "grep", "-n", "Image.LINEAR", sha, "--", "detectron2"], capture_output=True, text=True
    )
    assert grep.stdout == "", grep.stdout


@pytest.mark.parametrize("ref", ["main", "v0.6", "2dde706"])
def test_a_floating_detectron2_requirement_is_refused(tmp_path: Path, ref: str) -> None:
    line = f"detectron2 @ git+https://github.com/facebookresearch/detectron2@{ref}\n"
    (tmp_path / "requirements.txt").write_text(line)
    with pytest.raises(RequirementError, match="full commit SHA"):
        _requirements.parse_requirements(tmp_path / "requirements.txt", tmp_path)


def test_live_code_check_static_passes_on_the_template(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(PYTHONPATH=str(ROOT), LIVE_CODE_CACHE=str(tmp_path / "cache"), LIVE_CODE_BASE_PYTHON=PYTHON)
    proc = subprocess.run(
        [sys.executable, "-m", "live_code", "check", str(TEMPLATE), "--static"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout and "all pinned" in proc.stdout
