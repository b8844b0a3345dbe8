"""What every training loop shares (live_code/sdk/_fit.py): the hyper-parameters with their checks,
a split loaded as samples, the horizontal flip of box rows, and the per-epoch bookkeeping."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from live_code import contract, sdk
from live_code.contract import TaskKind
from tests.helpers.sdk_tasks import CLASSES, make_task
from tests.helpers.tensorboard import read_events

DEFAULTS = {"epochs": 30, "batch_size": 8, "learning_rate": 0.005, "img_size": 64}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sdk.Env:
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(make_task(tmp_path, "1.1.0", {TaskKind.TRAINING})))
    monkeypatch.delenv(contract.CONFIG_FILE_VAR, raising=False)
    return sdk.read_env()


def _percent(env: sdk.Env) -> float:
    return contract.parse_monitor(Path(env.output.monitor_file).read_text()).percent


# -- hyper-parameters ---------------------------------------------------------------------------


def test_training_params_reads_the_config_over_the_defaults() -> None:
    config = {"class_names": ["a", "b"], "epochs": "3", "learning_rate": 0.1, "img_size": 96, "seed": 7}
    params = sdk.training_params(config, **DEFAULTS, stride=32)
    assert params == sdk.TrainingParams(["a", "b"], 3, 8, 0.1, 96, 0.45, 7)
    assert sdk.training_params({"class_names": ["a"], "iou_thres": 0.6}, **DEFAULTS).iou_thres == 0.6


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"epochs": 0}, r"epochs \(0\), batch_size \(8\) and learning_rate \(0.005\) must be positive"),
        ({"batch_size": -1}, r"batch_size \(-1\)"),
        ({"learning_rate": 0}, r"learning_rate \(0.0\) must be positive"),
        ({"img_size": 100}, "config key 'img_size': 100 must be a positive multiple of 32"),
        ({"class_names": []}, "no class_names: nothing to train"),
        ({"epochs": "many"}, "epochs"),
    ],
)
def test_training_params_names_the_bad_value(config: dict[str, object], message: str) -> None:
    with pytest.raises(sdk.ConfigValueError, match=message):
        sdk.training_params({"class_names": ["a"], **config}, **DEFAULTS, stride=32)


def test_input_size_is_a_positive_multiple_of_the_stride() -> None:
    assert sdk.input_size({}, 640, 32) == 640
    assert sdk.input_size({"img_size": "320"}, 640, 32) == 320
    assert sdk.input_size({"img_size": 17}, 640) == 17  # stride 1: any positive size
    for bad in (0, 16, 330):
        with pytest.raises(sdk.ConfigValueError, match=f"'img_size': {bad} must be a positive multiple of 32"):
            sdk.input_size({"img_size": bad}, 640, 32)


# -- samples ------------------------------------------------------------------------------------


def _split(env: sdk.Env, key: str, rows: dict[str, str]) -> None:
    """An index file over images (their bytes are never read here) with ark annotations."""
    lines = []
    for name, ark in rows.items():
        image = Path(env.input.assets_dir) / name
        image.write_bytes(b"pixels")
        annotation = Path(env.input.annotations_dir) / f"{name}.txt"
        annotation.parent.mkdir(parents=True, exist_ok=True)
        annotation.write_text(ark)
        lines.append(f"{image}\t{annotation}\n")
    Path(getattr(env.input, key)).write_text("".join(lines))


def test_load_samples_scales_the_boxes_to_the_network_input(env: sdk.Env) -> None:
    _split(env, "training_index_file", {"a.jpg": "1, 10, 20, 29, 59\n", "b.jpg": ""})
    sizes = {"a.jpg": (200, 100), "b.jpg": (50, 50)}
    read: list[tuple[str, int]] = []

    def load(path: str, size: int) -> tuple[str, int, int]:
        read.append((Path(path).name, size))
        return f"image of {Path(path).name}", *sizes[Path(path).name]

    samples = sdk.load_samples(sdk.Split.TRAINING, 40, CLASSES, load, lambda rows: ("rows", rows))
    assert read == [("a.jpg", 40), ("b.jpg", 40)]
    assert [(Path(s.path).name, s.image, s.width, s.height) for s in samples] == [
        ("a.jpg", "image of a.jpg", 200, 100),
        ("b.jpg", "image of b.jpg", 50, 50),
    ]
    # x by 40/200, y by 40/100; the inclusive xmax/ymax become exclusive edges (+1)
    assert samples[0].boxes == ("rows", [[1, 2.0, 8.0, 6.0, 24.0]])
    assert samples[1].boxes == ("rows", [])


def test_load_samples_names_the_index_of_an_empty_split(env: sdk.Env) -> None:
    Path(env.input.val_index_file).write_text("")
    with pytest.raises(sdk.DatasetFormatError, match="the split has no images") as info:
        sdk.load_samples(sdk.Split.VALIDATION, 32, CLASSES, lambda p, s: (p, 1, 1), list)
    assert env.input.val_index_file in str(info.value)


def test_flipped_rows_mirror_the_exclusive_edges() -> None:
    rows = [[2, 0.0, 1.0, 10.0, 5.0], [0, 30.5, 0.0, 64.0, 64.0]]
    assert sdk.flipped_rows(rows, 64) == [[2, 54.0, 1.0, 64.0, 5.0], [0, 0.0, 0.0, 33.5, 64.0]]
    assert sdk.flipped_rows(sdk.flipped_rows(rows, 64), 64) == rows
    assert sdk.flipped_rows([], 64) == []


# -- the per-epoch bookkeeping ------------------------------------------------------------------


def test_training_log_keeps_the_best_stage_and_reports_each_epoch(
    env: sdk.Env, caplog: pytest.LogCaptureFixture
) -> None:
    params = sdk.training_params({"class_names": ["cat", "dog"], "epochs": 4}, **DEFAULTS)
    caplog.set_level(logging.INFO, logger="live_code.sdk")
    log = sdk.TrainingLog(params, env=env)
    log.loaded(12, 3, "cpu")
    assert _percent(env) == pytest.approx(0.05)
    assert "training on 12 images, validating on 3, 2 classes, 64 px, 4 epochs on cpu" in caplog.text

    saved: list[tuple[str, float, float]] = []

    def save(stage: str, m_ap: float) -> None:  # the monitor still shows the previous epoch
        saved.append((stage, m_ap, _percent(env)))

    maps = [0.2, 0.5, 0.4, 0.5]
    with sdk.ScalarWriter(env.output.tensorboard_dir) as board:
        improved = [log.end_epoch(board, e, 1.0 / e, m, [m, None], save=save) for e, m in enumerate(maps, 1)]
        path = Path(board.path)
    assert improved == [True, True, False, False]  # an equal mAP is no improvement
    assert saved == [("epoch_1", 0.2, pytest.approx(0.05)), ("epoch_2", 0.5, pytest.approx(0.05 + 0.9 / 4))]
    assert (log.best_stage, log.best_map) == ("epoch_2", 0.5)
    assert _percent(env) == pytest.approx(0.95)
    assert "epoch 2/4: loss 0.5000, mAP@0.5 0.5000 (cat 0.500, dog -)" in caplog.text

    _, scalars = read_events(path)
    assert [(s.step, s.tag) for s in scalars] == [(e, tag) for e in range(1, 5) for tag in ("loss", "mAP")]
    assert [s.value for s in scalars if s.tag == "mAP"] == pytest.approx(maps)

    log.finish()
    assert "best stage epoch_2, mAP@0.5 0.5000, " in caplog.text
