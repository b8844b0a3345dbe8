"""sdk.model_paths / pick_checkpoint / find_model_files / model_class_names: the model files a task
names (shared by the mmdet and detectron2 templates, whose modelfiles.py wrap them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from live_code import contract, sdk
from live_code.contract import TaskKind


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An infer task whose env.yaml models dir holds stage ``s1`` (two checkpoints and a config)."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    stage = in_dir / "models" / "s1"
    stage.mkdir(parents=True)
    out_dir.mkdir()
    for name in ("iter_100.ckpt", "iter_200.ckpt", "iter_200.cfg", "notes.txt"):
        (stage / name).write_text("x")
    env = contract.env_yaml(
        protocol="1.1.0", task_id="t1", kinds=frozenset({TaskKind.INFER}), in_dir=str(in_dir), out_dir=str(out_dir)
    )
    (in_dir / "env.yaml").write_text(yaml.safe_dump(env))
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(in_dir / "env.yaml"))
    assert sdk.read_env().input.models_dir == str(in_dir / "models")
    return in_dir / "models"


def test_model_paths_looks_bare_names_up_in_the_env_models_dir(models_dir: Path) -> None:
    config = {"model_params_path": ["s1/iter_200.ckpt", str(models_dir / "s1" / "iter_100.ckpt"), "s1/gone.ckpt"]}
    assert sdk.model_paths(config, "model_params_path") == [
        str(models_dir / "s1" / "iter_200.ckpt"),
        str(models_dir / "s1" / "iter_100.ckpt"),
    ]
    assert sdk.model_paths(config, "model_params_path", models_dir="/nowhere") == [
        str(models_dir / "s1" / "iter_100.ckpt")
    ]
    assert sdk.model_paths({}, "model_params_path") == []


def test_find_model_files_takes_any_suffixes(models_dir: Path) -> None:
    names = [f"s1/{n}" for n in ("iter_100.ckpt", "iter_200.ckpt", "iter_200.cfg", "notes.txt")]
    config = {"model_params_path": names}
    files = sdk.find_model_files(config, "model_params_path", weights_suffix=".ckpt", config_suffix=".cfg")
    assert files == sdk.ModelFiles(str(models_dir / "s1" / "iter_200.ckpt"), str(models_dir / "s1" / "iter_200.cfg"))
    plain = sdk.find_model_files(config, "model_params_path", weights_suffix=".ckpt")
    assert plain.config is None and plain.weights.endswith("iter_200.ckpt")


def test_missing_model_is_a_model_not_found_error_naming_the_key(models_dir: Path) -> None:
    config = {"model_params_path": ["s1/notes.txt"]}
    with pytest.raises(sdk.ModelNotFoundError, match=r"no \.pth file among model_params_path \['s1/notes.txt'\]"):
        sdk.find_model_files(config, "model_params_path")
    config = {"model_params_path": ["s1/iter_100.ckpt"]}
    with pytest.raises(sdk.SdkError, match=r"no \.cfg config beside .*iter_100\.ckpt"):
        sdk.find_model_files(
            config, "model_params_path", weights_suffix=".ckpt", config_suffix=".cfg", need_config=True
        )
    files = sdk.find_model_files(config, "model_params_path", weights_suffix=".ckpt", config_suffix=".cfg")
    assert files.config is None


def test_a_config_not_beside_the_weights_is_the_first_named(tmp_path: Path) -> None:
    for name in ("a.cfg", "b.cfg", "epoch_1.pth"):
        (tmp_path / name).write_text("x")
    config = {"k": ["b.cfg", "a.cfg", "epoch_1.pth"]}
    files = sdk.find_model_files(config, "k", config_suffix=".cfg", models_dir=str(tmp_path))
    assert files.config == str(tmp_path / "b.cfg")


def test_pick_checkpoint_prefers_best_then_the_highest_number_then_the_name() -> None:
    assert sdk.pick_checkpoint(["/m/epoch_9.pth", "/m/epoch_12.pth"]) == "/m/epoch_12.pth"
    assert sdk.pick_checkpoint(["/m/epoch_12.pth", "/m/best_mAP_epoch_2.pth"]) == "/m/best_mAP_epoch_2.pth"
    assert sdk.pick_checkpoint(["/m/a.pth", "/m/c.pth", "/m/b.pth"]) == "/m/c.pth"
    assert sdk.pick_checkpoint(["/m/model_7.pt", "/m/model_70.pth"], ".pt") == "/m/model_7.pt"
    assert sdk.pick_checkpoint([]) is None


def test_model_class_names_must_fit_the_model() -> None:
    assert sdk.model_class_names({}, ["a", "b"]) == ["a", "b"]
    assert sdk.model_class_names({"class_names": ["x", "y"]}, ["a", "b"]) == ["x", "y"]
    assert sdk.model_class_names({"class_names": ["x"]}, []) == ["x"]  # a model that does not say
    with pytest.raises(sdk.ConfigValueError, match=r"\['x'\] do not fit the model's 2 classes"):
        sdk.model_class_names({"class_names": ["x"]}, ["a", "b"])
