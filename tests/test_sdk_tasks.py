"""The SDK's helpers every template's mining, infer and training share (live_code/sdk/_tasks.py) and
where a stage's files go (sdk.stage_dir)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from live_code import contract, sdk
from live_code.contract import MonitorState, TaskKind

CLASSES = ["cat", "dog"]


def _task(root: Path, monkeypatch: pytest.MonkeyPatch, kinds: frozenset[TaskKind], protocol: str = "1.1.0") -> Path:
    """A task with 12 candidate images named in its index (the helpers never open them); returns out."""
    in_dir, out_dir = root / "in", root / "out"
    in_dir.mkdir()
    out_dir.mkdir()
    env = contract.env_yaml(protocol=protocol, task_id="t1", kinds=kinds, in_dir=str(in_dir), out_dir=str(out_dir))
    (in_dir / "env.yaml").write_text(yaml.safe_dump(env))
    (in_dir / "config.yaml").write_text(yaml.safe_dump({"class_names": CLASSES}))
    (in_dir / "candidate-index.tsv").write_text("".join(f"/in/assets/{i:02d}.png\n" for i in range(12)))
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(in_dir / "env.yaml"))
    monkeypatch.delenv(contract.CONFIG_FILE_VAR, raising=False)
    return out_dir


def test_score_candidates_scores_every_image_with_progress_and_writes_result_tsv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _task(tmp_path, monkeypatch, frozenset({TaskKind.MINING, TaskKind.INFER}))
    seen: list[tuple[str, int, float]] = []

    def score(path: str, index: int) -> float:
        seen.append(
            (
                path,
                index,
                contract.parse_monitor((out / "monitor.txt").read_text()).percent
                if (out / "monitor.txt").exists()
                else -1.0,
            )
        )
        return index / 10

    scores = sdk.score_candidates(score)
    assert [(p, i) for p, i, _ in seen] == [(f"/in/assets/{i:02d}.png", i) for i in range(12)]
    assert seen[0][2] == -1.0 and seen[1][2] == 0.0 and seen[11][2] == pytest.approx(0.5 * 10 / 12)  # mining half
    assert scores == [(f"/in/assets/{i:02d}.png", i / 10) for i in range(12)]
    rows = (out / "result.tsv").read_text().splitlines()
    assert rows[0] == "/in/assets/11.png\t1.1" and len(rows) == 12  # sorted best first


def test_detect_candidates_writes_infer_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _task(tmp_path, monkeypatch, frozenset({TaskKind.INFER}))

    def detect(path: str) -> list[sdk.Detection]:
        return [sdk.Detection.from_xyxy("dog", 0.5, 1, 2, 11, 22)] if path.endswith("03.png") else []

    found = sdk.detect_candidates(detect, paths=["/in/assets/03.png", "/in/assets/04.png"])
    assert list(found) == ["/in/assets/03.png", "/in/assets/04.png"]
    result = yaml.safe_load((out / "infer-result.json").read_text())["detection"]
    assert result["03.png"]["boxes"] == [{"box": {"x": 1, "y": 2, "w": 10, "h": 20}, "class_name": "dog", "score": 0.5}]
    assert result["04.png"]["boxes"] == []
    record = contract.parse_monitor((out / "monitor.txt").read_text())
    assert (record.percent, record.state) == (0.0, MonitorState.RUNNING)  # the caller (sdk.main) writes the end


def test_clip_detections_scales_clips_thresholds_and_names() -> None:
    inf = float("inf")
    rows = [
        (-3.0, 2.0, 10.0, 50.0, 0.9, 1),
        (1.0, 1.0, 2.0, 2.0, 0.1, 0),  # under conf_thres
        (1.0, 1.0, 5.0, 5.0, 0.8, 7),  # no such class
        (-inf, -inf, inf, inf, 1.0, 0),  # a diverged model decodes such boxes
        (30.0, 1.0, 40.0, 5.0, 0.8, 0),  # right of the image: nothing left after clipping
    ]
    assert sdk.clip_detections(rows, CLASSES, 20, 40, conf_thres=0.2) == [
        sdk.Detection.from_xyxy("dog", 0.9, 0.0, 2.0, 10.0, 40.0)
    ]
    scaled = sdk.clip_detections([(4.0, 4.0, 8.0, 8.0, 0.5, 0)], CLASSES, 100, 100, scale=(2.0, 3.0))
    assert scaled == [sdk.Detection.from_xyxy("cat", 0.5, 8.0, 12.0, 16.0, 24.0)]


def test_cald_from_predictions_maps_augmented_boxes_back_before_scoring() -> None:
    base = [(10.0, 10.0, 30.0, 30.0, 0.9, 0)]
    augmented = {kind: [sdk.augment_box(kind, base[0], 64, 64)] for kind in sdk.CALD_AUGMENTATIONS}
    consistent = sdk.cald_from_predictions(base, augmented, 64, 64)
    assert consistent == pytest.approx(sdk.cald_score(base, [base] * 4), abs=1e-6)
    moved = {kind: [(40.0, 40.0, 60.0, 60.0, 0.3, 1)] for kind in sdk.CALD_AUGMENTATIONS}
    assert sdk.cald_from_predictions(base, moved, 64, 64) > consistent
    assert sdk.cald_from_predictions([], augmented, 64, 64) == -sdk.CALD_BETA
    with pytest.raises(ValueError, match="flip"):
        sdk.cald_from_predictions(base, {}, 64, 64)


def test_mining_algorithm_defaults_normalises_and_names_the_choices() -> None:
    allowed = ("random", "entropy", "aldd", "cald")
    assert sdk.mining_algorithm({"mining_algorithm": " ALDD "}, allowed, "entropy") == "aldd"
    assert sdk.mining_algorithm({"mining_algorithm": ""}, allowed, "entropy") == "entropy"
    assert sdk.mining_algorithm({}, allowed, "cald") == "cald"
    with pytest.raises(sdk.ConfigValueError, match="'coreset' is not one of random, entropy, aldd, cald"):
        sdk.mining_algorithm({"mining_algorithm": "coreset"}, allowed, "entropy")


@pytest.mark.parametrize(
    ("value", "ids"),
    [("", []), (None, []), (" ", []), ("0", ["0"]), ("0,1", ["0", "1"]), (0, ["0"]), ([0, 1], ["0", "1"])],
)
def test_gpu_ids_reads_what_the_platform_sends(value: object, ids: list[str]) -> None:
    assert sdk.gpu_ids({"gpu_id": value}) == ids


def test_training_class_names_must_be_there() -> None:
    assert sdk.training_class_names({"class_names": "a,b"}) == ["a", "b"]
    with pytest.raises(sdk.ConfigValueError, match="no class_names: nothing to train"):
        sdk.training_class_names({})


def test_require_images_names_the_split_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _task(tmp_path, monkeypatch, frozenset({TaskKind.TRAINING}))
    sdk.require_images(sdk.Split.TRAINING, 3)
    with pytest.raises(sdk.DatasetFormatError, match="val-index.tsv: the split has no images") as failed:
        sdk.require_images(sdk.Split.VALIDATION, 0)
    assert failed.value.return_code == contract.ReturnCode.DATASET_ERROR


def test_scaled_boxes_makes_the_inclusive_edge_exclusive() -> None:
    box = sdk.Box(class_index=1, class_name="dog", xmin=10, ymin=20, xmax=29, ymax=39)
    assert sdk.scaled_boxes([box], 0.5, 2.0) == [[1, 5.0, 40.0, 15.0, 80.0]]


@pytest.mark.parametrize(("protocol", "nested"), [("1.1.0", True), ("1.0.0", False), ("0.0.1", False)])
def test_stage_dir_follows_the_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str, nested: bool
) -> None:
    out = _task(tmp_path, monkeypatch, frozenset({TaskKind.TRAINING}), protocol)
    expected = out / "models" / "epoch_3" if nested else out / "models"
    assert sdk.stage_dir("epoch_3", create=False) == str(expected)
    assert not expected.exists()
    assert sdk.stage_dir("epoch_3") == str(expected) and expected.is_dir()


def test_image_size_with_falls_back_for_other_formats(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + b"\x00\x00\x00\rIHDR"
        + (7).to_bytes(4, "big")
        + (5).to_bytes(4, "big")
        + b"\x08\x02\x00\x00\x00"
    )
    other = tmp_path / "a.tif"
    other.write_bytes(b"II*\x00 not a header the SDK reads")
    asked: list[str] = []

    def fallback(path: str) -> tuple[int, int]:
        asked.append(path)
        if path.endswith(".tif"):
            return (40, 30)
        raise OSError("cannot identify image file")

    size_of = sdk.image_size_with(fallback)
    assert size_of(str(png)) == (7, 5) and asked == []  # the header: no fallback needed
    assert size_of(str(other)) == (40, 30)
    broken = tmp_path / "b.webp"
    broken.write_bytes(b"RIFF....")
    with pytest.raises(sdk.ImageFormatError, match="b.webp"):
        size_of(str(broken))
