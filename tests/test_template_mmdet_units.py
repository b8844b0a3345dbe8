"""The framework-free parts of remote_templates/mmdet (issue 9, acceptance 1), without mmdet:
the config edits and the stage names. The model-file choice and the mining/infer glue are the
SDK's (tests/test_sdk_models.py, tests/test_sdk_tasks.py).

The template's modules are imported by path, as the job imports them (its folder on sys.path).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from live_code import sdk
from tests.helpers.template_runs import load_module

TEMPLATE = Path(__file__).resolve().parent.parent / "remote_templates" / "mmdet"
CLASSES = ("cat", "dog", "person")


def _load(name: str) -> ModuleType:
    return load_module(TEMPLATE, name)


cfgedit = _load("cfgedit")
modelfiles = _load("modelfiles")


def test_framework_free_modules_import_no_framework() -> None:
    for name in ("mmdet", "mmengine", "mmcv", "torch", "numpy"):
        assert name not in sys.modules or name in ("torch", "numpy"), f"{name} was imported"
    for module in (cfgedit, modelfiles):
        text = Path(module.__file__).read_text()
        assert "import torch" not in text and "import mm" not in text and "import numpy" not in text


# -- config edits ---------------------------------------------------------------------------------


def _yolox_like() -> dict[str, object]:
    """The parts of mmdet 3.3's yolox_tiny config the edits touch (key names from that file)."""
    return {
        "model": {
            "type": "YOLOX",
            "bbox_head": {"type": "YOLOXHead", "num_classes": 80},
            "data_preprocessor": {
                "batch_augments": [{"type": "BatchSyncRandomResize", "random_size_range": (320, 640)}]
            },
        },
        "train_dataloader": {
            "batch_size": 8,
            "num_workers": 4,
            "dataset": {
                "type": "MultiImageMixDataset",
                "pipeline": [
                    {"type": "Mosaic", "img_scale": (640, 640)},
                    {"type": "RandomAffine", "border": (-320, -320)},
                    {"type": "Resize", "scale": (640, 640), "keep_ratio": True},
                ],
                "dataset": {
                    "type": "CocoDataset",
                    "data_root": "data/coco/",
                    "ann_file": "annotations/x.json",
                    "data_prefix": {"img": "train2017/"},
                },
            },
        },
        "val_dataloader": {
            "batch_size": 8,
            "dataset": {
                "type": "CocoDataset",
                "ann_file": "a.json",
                "pipeline": [{"type": "Resize", "scale": (416, 416)}],
            },
        },
        "val_evaluator": {"type": "CocoMetric", "ann_file": "data/coco/a.json"},
        "train_cfg": {"max_epochs": 300, "val_interval": 10, "dynamic_intervals": [(285, 1)]},
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.01}},
        "param_scheduler": [
            {"type": "mmdet.QuadraticWarmupLR", "by_epoch": True, "begin": 0, "end": 5},
            {"type": "CosineAnnealingLR", "eta_min": 0.0005, "begin": 5, "T_max": 285, "end": 285, "by_epoch": True},
            {"type": "ConstantLR", "by_epoch": True, "factor": 1, "begin": 285, "end": 300},
        ],
        "custom_hooks": [{"type": "YOLOXModeSwitchHook", "num_last_epochs": 15}, {"type": "EMAHook", "priority": 49}],
        "default_hooks": {"checkpoint": {"type": "CheckpointHook", "interval": 10}, "logger": {"interval": 50}},
        "visualizer": {"type": "DetLocalVisualizer", "vis_backends": [{"type": "LocalVisBackend"}]},
        "auto_scale_lr": {"base_batch_size": 64},
    }


def _settings(**kw: object) -> object:
    base = dict(
        class_names=CLASSES,
        train_json="/out/w/train.json",
        val_json="/out/w/val.json",
        work_dir="/out/w",
        tensorboard_dir="/out/tensorboard",
        max_epochs=30,
        batch_size=4,
        num_workers=0,
        val_interval=2,
    )
    base.update(kw)
    return cfgedit.TrainingSettings(**base)


def test_configure_training_points_everything_at_the_task() -> None:
    source = _yolox_like()
    cfg = cfgedit.configure_training(source, _settings(load_from="/in/models/best.pth"))
    assert source["model"]["bbox_head"]["num_classes"] == 80, "the source is not changed"
    assert cfg["model"]["bbox_head"]["num_classes"] == 3
    inner = cfg["train_dataloader"]["dataset"]["dataset"]
    assert inner["ann_file"] == "/out/w/train.json" and inner["data_prefix"] == {"img": ""}
    assert inner["data_root"] == "" and inner["metainfo"] == {"classes": CLASSES}
    val = cfg["val_dataloader"]["dataset"]
    assert val["ann_file"] == "/out/w/val.json" and val["test_mode"] is True
    assert cfg["test_dataloader"]["dataset"]["ann_file"] == "/out/w/val.json"
    assert cfg["val_evaluator"]["ann_file"] == cfg["test_evaluator"]["ann_file"] == "/out/w/val.json"
    assert cfg["train_dataloader"]["batch_size"] == 4 and cfg["train_dataloader"]["persistent_workers"] is False
    assert cfg["train_cfg"] == {"max_epochs": 30, "val_interval": 2, "type": "EpochBasedTrainLoop"}
    assert cfg["load_from"] == "/in/models/best.pth" and cfg["work_dir"] == "/out/w" and cfg["resume"] is False
    assert cfg["visualizer"]["vis_backends"] == [{"type": cfgedit.SCALAR_BACKEND, "save_dir": "/out/tensorboard"}]
    assert cfg["default_hooks"]["checkpoint"]["interval"] == -1
    assert {"type": cfgedit.STAGE_HOOK, "priority": 45, "class_names": list(CLASSES)} in cfg["custom_hooks"]
    assert "auto_scale_lr" not in cfg


def test_num_classes_is_set_in_every_head() -> None:
    model = {
        "rpn_head": {"type": "RPNHead"},
        "roi_head": {"bbox_head": [{"num_classes": 80}, {"num_classes": 80}], "mask_head": {"num_classes": 80}},
    }
    assert cfgedit.set_num_classes(model, 2) == 3
    assert model["roi_head"]["bbox_head"][1]["num_classes"] == 2 and model["roi_head"]["mask_head"]["num_classes"] == 2


def test_a_config_without_num_classes_or_datasets_is_refused() -> None:
    cfg = _yolox_like()
    del cfg["model"]["bbox_head"]["num_classes"]
    with pytest.raises(ValueError, match="num_classes"):
        cfgedit.configure_training(cfg, _settings())
    cfg = _yolox_like()
    del cfg["val_dataloader"]
    with pytest.raises(ValueError, match="val_dataloader"):
        cfgedit.configure_training(cfg, _settings())


def test_schedule_and_yolox_hooks_scale_to_the_epochs() -> None:
    cfg = cfgedit.configure_training(_yolox_like(), _settings(max_epochs=30))
    warm, cosine, constant = cfg["param_scheduler"]
    assert (warm["begin"], warm["end"]) == (0, 1)
    assert (cosine["begin"], cosine["end"], cosine["T_max"]) == (1, 28, 28)
    assert (constant["begin"], constant["end"]) == (28, 30)
    assert cfg["custom_hooks"][0]["num_last_epochs"] == 2
    short = cfgedit.configure_training(_yolox_like(), _settings(max_epochs=2))
    assert all(s["begin"] < s["end"] for s in short["param_scheduler"]), "mmengine refuses end <= begin"


def test_multistep_milestones_scale_and_iteration_warmup_stays() -> None:
    out = cfgedit.scale_schedule(
        [
            {"type": "LinearLR", "by_epoch": False, "begin": 0, "end": 500},
            {"type": "MultiStepLR", "by_epoch": True, "begin": 0, "end": 12, "milestones": [8, 11]},
        ],
        12,
        24,
    )
    assert out[0]["end"] == 500 and out[1]["milestones"] == [16, 22] and out[1]["end"] == 24


def test_img_size_and_learning_rate_reach_every_transform() -> None:
    cfg = cfgedit.configure_training(_yolox_like(), _settings(img_size=128, learning_rate=0.002))
    mosaic, affine, resize = cfg["train_dataloader"]["dataset"]["pipeline"]
    assert mosaic["img_scale"] == resize["scale"] == (128, 128) and affine["border"] == (-64, -64)
    assert cfg["val_dataloader"]["dataset"]["pipeline"][0]["scale"] == (128, 128)
    assert cfg["model"]["data_preprocessor"]["batch_augments"][0]["random_size_range"] == (96, 160)
    assert cfg["optim_wrapper"]["optimizer"]["lr"] == 0.002
    assert cfg["param_scheduler"][1]["eta_min"] == pytest.approx(0.0001)


def test_concatenated_datasets_are_all_pointed_at_the_task() -> None:
    dataset = {
        "type": "ConcatDataset",
        "datasets": [{"type": "VOCDataset"}, {"type": "RepeatDataset", "dataset": {"type": "VOCDataset"}}],
    }
    cfgedit.point_dataset(dataset, "/out/t.json", CLASSES, test_mode=False)
    assert [d["ann_file"] for d in cfgedit.innermost_dataset(dataset)] == ["/out/t.json", "/out/t.json"]
    assert all(d["type"] == "CocoDataset" for d in cfgedit.innermost_dataset(dataset))


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"coco/bbox_mAP": 0.3, "coco/bbox_mAP_50": 0.6}, 0.6),
        ({"coco/bbox_mAP": 0.3}, 0.3),
        ({"coco/bbox_mAP_50": -1.0}, 0.0),
        ({}, 0.0),
    ],
)
def test_metric_of_prefers_map50(metrics: dict[str, float], expected: float) -> None:
    assert cfgedit.metric_of(metrics) == expected


# -- model files ----------------------------------------------------------------------------------


def test_stages_are_named_by_epoch() -> None:
    assert modelfiles.stage_name(3) == "epoch_3"
    assert modelfiles.CONFIG_SUFFIX == ".py"


def test_find_config_looks_in_the_repo_then_the_package(tmp_path: Path) -> None:
    repo, package = tmp_path / "repo", tmp_path / "pkg"
    (repo / "configs").mkdir(parents=True)
    (package / "yolox").mkdir(parents=True)
    (repo / "configs" / "mine.py").write_text("")
    (package / "yolox" / "y.py").write_text("")
    assert modelfiles.find_config("configs/mine.py", str(repo), str(package)) == str(repo / "configs" / "mine.py")
    assert modelfiles.find_config("yolox/y.py", str(repo), str(package)) == str(package / "yolox" / "y.py")
    with pytest.raises(sdk.ConfigValueError, match="config_file"):
        modelfiles.find_config("yolox/nope.py", str(repo), str(package))
    with pytest.raises(sdk.ConfigValueError, match="not an mmdet config"):
        modelfiles.find_config("a.yaml", str(repo), None)


# -- mining ---------------------------------------------------------------------------------------


def test_aldd_regroups_levels_by_class() -> None:
    scores = _load("scores")
    flat = [[0.5] * 8 for _ in range(8)]
    spiky = [[0.9 if (x + y) % 2 else 0.1 for x in range(8)] for y in range(8)]
    small = [[0.2] * 4 for _ in range(4)]
    levels = [[flat, spiky], [small, small]]  # level -> class -> map
    assert scores.aldd(levels, [1.0, 1.0], 32) == sdk.aldd_score(
        [[flat, small], [spiky, small]], [1.0, 1.0], input_size=32
    )
    assert scores.aldd(levels, [1.0, 1.0], 32) > 0
    with pytest.raises(ValueError, match="map per class"):
        scores.aldd([[flat], [small, small]], [1.0], 32)
