"""live_code.sdk: reading the task (env, config, dataset) and writing progress and results."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import yaml

from live_code import contract, sdk
from live_code.contract import MonitorState, TaskKind
from live_code.sdk._io import READABLE, replace_file
from tests.helpers.sdk_tasks import CLASSES, TASK_ID, make_task

T, M, I = TaskKind.TRAINING, TaskKind.MINING, TaskKind.INFER  # noqa: E741 (I is INFER beside T and M: the kinds as the tables write them)


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., sdk.Env]:
    """``task(protocol, kinds, config=None)`` makes a task dir and points the SDK at it."""
    monkeypatch.delenv(contract.CONFIG_FILE_VAR, raising=False)

    def _make(
        protocol: str = "1.1.0",
        kinds: Iterable[TaskKind] = (T,),
        config: dict[str, object] | None = None,
    ) -> sdk.Env:
        env_file = make_task(tmp_path, protocol, kinds, config)
        monkeypatch.setenv(contract.ENV_FILE_VAR, str(env_file))
        return sdk.read_env()

    return _make


# -- the public surface ---------------------------------------------------------------------------


def test_all_lists_exactly_the_public_names_sorted() -> None:
    assert sdk.__all__ == sorted(sdk._MODULE_OF)
    for name in sdk.__all__:  # each is what its module defines, imported on first use
        assert getattr(sdk, name) is getattr(importlib.import_module(sdk._MODULE_OF[name]), name), name
    public = {
        name
        for name, value in vars(sdk).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert sorted(public) == sdk.__all__
    assert set(dir(sdk)) >= set(sdk.__all__)
    with pytest.raises(AttributeError, match="no attribute 'read_envv'"):
        sdk.read_envv  # noqa: B018 (the look-up is the test)


def test_the_formats_submodule_is_an_attribute_of_the_sdk_without_an_import_of_it() -> None:
    """``sdk.formats.read_voc`` worked when the package imported every part; it still does."""
    code = "import live_code.sdk as sdk\nprint(sdk.formats.read_voc.__module__, hasattr(sdk, 'formatz'))\n"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["live_code.sdk.formats.annotations", "False"]


def test_the_names_type_checkers_see_are_the_names_imported_at_run_time() -> None:
    """The ``if TYPE_CHECKING:`` imports of the SDK's ``__init__`` and its table of lazy imports
    name the same modules and the same names."""
    tree = ast.parse(Path(sdk.__file__).read_text())
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "_typing.TYPE_CHECKING"]
    seen = {n.module: " ".join(a.name for a in n.names) for n in block.body if isinstance(n, ast.ImportFrom)}
    assert seen == sdk._WHERE


def test_every_public_name_has_a_docstring() -> None:
    undocumented = [n for n in sdk.__all__ if not (getattr(sdk, n).__doc__ or "").strip()]
    assert undocumented == []


def test_importing_the_sdk_loads_no_other_harness_module_or_dependency() -> None:
    code = (
        "import sys, live_code.sdk as sdk\n"
        "print(sorted(m for m in sys.modules if m.startswith('live_code')))\n"
        "sdk.read_env, sdk.iter_items, sdk.write_mining_result, sdk.write_progress\n"
        "print(sorted(m for m in ('live_code.sdk._fit', 'live_code.sdk._coco', 'live_code.sdk._miner',"
        " 'live_code.sdk._tensorboard', 'socket') if m in sys.modules))\n"
        "[getattr(sdk, name) for name in sdk.__all__]\n"
        "print(sorted(m for m in sys.modules if m.startswith('live_code') and not m.startswith('live_code.sdk')))\n"
        "print(sorted(m for m in ('git', 'filelock', 'requests', 'packaging') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    # importing it loads nothing more; a job that reads its task and writes a result loads only those
    # parts; all of it, only the contract of the harness
    assert out.splitlines() == ["['live_code', 'live_code.sdk']", "[]", "['live_code', 'live_code.contract']", "[]"]


def test_sdk_errors_are_value_errors() -> None:
    for cls in (sdk.EnvFileError, sdk.ConfigValueError, sdk.DatasetFormatError, sdk.ResultError):
        assert issubclass(cls, sdk.SdkError) and issubclass(cls, ValueError)


# -- env.yaml -------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_read_env_reads_the_env_file_named_by_the_variable(task: Callable[..., sdk.Env], protocol: str) -> None:
    env = task(protocol, (M, I))
    assert env.task_id == TASK_ID
    assert env.protocol_version == protocol
    assert (env.run_training, env.run_mining, env.run_infer) == (False, True, True)
    assert env.kinds == {M, I}
    assert env.input.candidate_index_file.endswith("/in/candidate-index.tsv")
    assert env.input.training_index_file == ""
    assert env.output.infer_result_file.endswith("/out/infer-result.json")
    assert env.manifest_file == ("/img-man/manifest.yaml" if protocol == "1.1.0" else "")


def test_read_env_defaults_missing_keys_from_the_contract(tmp_path: Path) -> None:
    file = tmp_path / "env.yaml"
    file.write_text("task_id: t1\nrun_training: true\ninput: {assets_dir: /data/assets}\n")
    env = sdk.read_env(file)
    assert env.protocol_version == "0.0.1"
    assert env.input.assets_dir == "/data/assets"
    assert env.input.training_index_file == "/in/train-index.tsv"
    assert env.output.training_result_file == "/out/models/result.yaml"
    assert env.output.executor_log_file == "/out/ymir-executor-out.log"
    assert env.kinds == {T}


def test_env_is_frozen(tmp_path: Path) -> None:
    file = tmp_path / "env.yaml"
    file.write_text("task_id: t1\n")
    env = sdk.read_env(file)
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.task_id = "other"  # type: ignore[misc]  # assigns to a frozen dataclass on purpose


def test_read_env_sees_a_rewritten_file(tmp_path: Path) -> None:
    file = tmp_path / "env.yaml"
    file.write_text("task_id: t1\n")
    assert sdk.read_env(file).task_id == "t1"
    file.write_text("task_id: t22\nprotocol_version: 1.1.0\n")
    assert (sdk.read_env(file).task_id, sdk.read_env(file).protocol_version) == ("t22", "1.1.0")


def test_read_env_without_a_file_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(tmp_path / "nope.yaml"))
    with pytest.raises(sdk.EnvFileError, match=contract.ENV_FILE_VAR):
        sdk.read_env()


def test_env_file_path_defaults_to_in_env_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contract.ENV_FILE_VAR, raising=False)
    assert sdk.env_file_path() == "/in/env.yaml"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- a\n- b\n", "must be a mapping"),
        ("run_training: true\n", "task_id"),
        ("task_id: t\nprotocol_version: one\n", "protocol_version"),
        ("task_id: t\nrun_mining: maybe\n", "run_mining"),
        ("task_id: t\ninput: [a]\n", "input must be a mapping"),
        ("task_id: t\noutput: {monitor_file: 3}\n", "output.monitor_file"),
        ("task_id: [t\n", "cannot parse"),
    ],
)
def test_read_env_refuses_a_malformed_env_file(tmp_path: Path, text: str, match: str) -> None:
    file = tmp_path / "env.yaml"
    file.write_text(text)
    with pytest.raises(sdk.EnvFileError, match=match):
        sdk.read_env(file)


# -- config ---------------------------------------------------------------------------------------


def test_read_config_prefers_the_harness_merged_file(
    task: Callable[..., sdk.Env], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = task(config={"epochs": 3})
    assert sdk.read_config() == {"epochs": 3}
    merged = tmp_path / "merged.yaml"
    merged.write_text("epochs: 7\nlr: 0.1\n")
    monkeypatch.setenv(contract.CONFIG_FILE_VAR, str(merged))
    assert sdk.read_config(env) == {"epochs": 7, "lr": 0.1}
    assert sdk.config_file_path() == str(merged)


def test_read_config_of_an_empty_file_is_empty(task: Callable[..., sdk.Env]) -> None:
    env = task()
    Path(env.input.config_file).write_text("")
    assert sdk.read_config() == {}


@pytest.mark.parametrize(("text", "match"), [("- 1\n", "must be a mapping"), ("a: [1\n", "cannot parse")])
def test_read_config_refuses_a_malformed_file(task: Callable[..., sdk.Env], text: str, match: str) -> None:
    Path(task().input.config_file).write_text(text)
    with pytest.raises(sdk.ConfigValueError, match=match):
        sdk.read_config()


def test_read_config_names_a_missing_file(task: Callable[..., sdk.Env]) -> None:
    env = task()
    os.unlink(env.input.config_file)
    with pytest.raises(sdk.ConfigValueError, match="cannot read the config file"):
        sdk.read_config()


@pytest.mark.parametrize("value", [True, "true", "True", " YES ", "on", "1", 1])
def test_get_bool_reads_true_as_the_web_form_sends_it(value: object) -> None:
    assert sdk.get_bool({"k": value}, "k", False) is True


@pytest.mark.parametrize("value", [False, "false", "No", "off", "0", 0])
def test_get_bool_reads_false_as_the_web_form_sends_it(value: object) -> None:
    assert sdk.get_bool({"k": value}, "k", True) is False


@pytest.mark.parametrize("config", [{}, {"k": None}, {"k": ""}])
def test_getters_give_the_default_for_missing_or_blank_values(config: dict[str, object]) -> None:
    assert sdk.get_bool(config, "k", True) is True
    assert sdk.get_int(config, "k", 5) == 5
    assert sdk.get_float(config, "k", 0.5) == 0.5
    assert sdk.get_list(config, "k", ["a"]) == ["a"]
    assert sdk.get_list(config, "k") == []


@pytest.mark.parametrize("value", ["maybe", 2, [True]])
def test_get_bool_refuses_what_is_not_a_boolean_and_names_the_key(value: object) -> None:
    with pytest.raises(sdk.ConfigValueError, match="'flag'"):
        sdk.get_bool({"flag": value}, "flag")


@pytest.mark.parametrize(("value", "expected"), [(12, 12), ("12", 12), (" 12 ", 12), (12.0, 12), ("1e3", 1000)])
def test_get_int_reads_integers_in_any_spelling(value: object, expected: int) -> None:
    assert sdk.get_int({"n": value}, "n") == expected


@pytest.mark.parametrize("value", [12.5, "12.5", "ten", True, "inf"])
def test_get_int_refuses_what_is_not_an_integer(value: object) -> None:
    with pytest.raises(sdk.ConfigValueError, match="'n'"):
        sdk.get_int({"n": value}, "n")


@pytest.mark.parametrize(("value", "expected"), [(3, 3.0), ("1e-3", 0.001), (0.5, 0.5), ("-2", -2.0)])
def test_get_float_reads_numbers_and_numeric_strings(value: object, expected: float) -> None:
    assert sdk.get_float({"x": value}, "x") == expected


def test_get_float_refuses_text() -> None:
    with pytest.raises(sdk.ConfigValueError, match="'x'"):
        sdk.get_float({"x": "fast"}, "x")


@pytest.mark.parametrize(
    ("value", "item_type", "expected"),
    [
        (["a", "b"], None, ["a", "b"]),
        ("a,b", None, ["a", "b"]),
        (" a , b ,", None, ["a", "b"]),
        ("[a, b]", None, ["a", "b"]),
        ("[640, 640]", int, [640, 640]),
        ("640,480", int, [640, 480]),
        ("0.5, 1", float, [0.5, 1.0]),
        ("true,no", bool, [True, False]),
        ([1, 2], str, ["1", "2"]),
        ("solo", None, ["solo"]),
        (7, None, [7]),
    ],
)
def test_get_list_reads_lists_as_the_web_form_sends_them(
    value: object,
    item_type: type | None,
    expected: list[object],
) -> None:
    assert sdk.get_list({"k": value}, "k", item_type=item_type) == expected


def test_get_list_refuses_a_broken_list_and_a_bad_item() -> None:
    with pytest.raises(sdk.ConfigValueError, match="not a valid list"):
        sdk.get_list({"k": "[a, b"}, "k")
    with pytest.raises(sdk.ConfigValueError, match="'k'"):
        sdk.get_list({"k": "1,x"}, "k", item_type=int)
    with pytest.raises(TypeError, match="item_type"):
        sdk.get_list({"k": "1"}, "k", item_type=dict)


def test_get_list_default_is_a_copy() -> None:
    default = ["a"]
    sdk.get_list({}, "k", default).append("b")
    assert default == ["a"]


# -- dataset --------------------------------------------------------------------------------------


def _image(env: sdk.Env, name: str) -> str:
    path = Path(env.input.assets_dir) / name[-6:-4] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really an image")
    return str(path)


def _annotation(env: sdk.Env, name: str, text: str) -> str:
    path = Path(env.input.annotations_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _index(env: sdk.Env, key: str, rows: list[tuple[str, ...]]) -> None:
    Path(getattr(env.input, key)).write_text("".join("\t".join(r) + "\n" for r in rows))


def test_iter_items_reads_ark_txt_of_both_versions(task: Callable[..., sdk.Env]) -> None:
    env = task()
    a, b = _image(env, "aaaa01.jpg"), _image(env, "bbbb02.png")
    ark_v2 = "0, 242, 61, 424, 249, -1.0, 0.0\n\n2, 1, 2, 3, 4, 0.9, 0.5\n7, 1, 1, 5, 5, -1.0, 0.0\n"
    ark_v1 = "1,10,20,30,40\n"
    _index(
        env,
        "training_index_file",
        [(a, _annotation(env, "aaaa01.txt", ark_v2)), (b, _annotation(env, "bbbb02.txt", ark_v1))],
    )
    items = list(sdk.iter_items(sdk.Split.TRAINING))
    assert items == [
        sdk.DatasetItem(
            a,
            str(Path(env.input.annotations_dir) / "aaaa01.txt"),
            (
                sdk.Box(0, "cat", 242, 61, 424, 249, 0.0),
                sdk.Box(2, "person", 1, 2, 3, 4, 0.5),  # class 7 is not in class_names: skipped
            ),
        ),
        sdk.DatasetItem(b, str(Path(env.input.annotations_dir) / "bbbb02.txt"), (sdk.Box(1, "dog", 10, 20, 30, 40),)),
    ]
    box = items[0].boxes[0]
    assert (box.w, box.h) == (183, 189)  # inclusive max: w = xmax - xmin + 1


def test_iter_items_reads_voc_xml_by_class_name(task: Callable[..., sdk.Env]) -> None:
    env = task()
    a = _image(env, "cccc03.jpg")
    xml = """<annotation>
  <filename>{a}</filename><size><width>640</width><height>480</height><depth>3</depth></size>
  <object><name>dog</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>50</xmax><ymax>60</ymax>
    <rotate_angle>0.25</rotate_angle></bndbox><difficult>0</difficult></object>
  <object><name>zebra</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>
  <object><name> cat </name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>9.0</xmax><ymax>19</ymax></bndbox></object>
</annotation>"""
    _index(env, "val_index_file", [(a, _annotation(env, "cccc03.xml", xml))])
    (item,) = sdk.iter_items("validation", env=env)
    assert item.boxes == (sdk.Box(1, "dog", 5, 6, 50, 60, 0.25), sdk.Box(0, "cat", 0, 0, 9, 19))


def test_iter_items_reads_one_coco_file_for_every_image(task: Callable[..., sdk.Env]) -> None:
    env = task()
    a, b, c = _image(env, "dddd04.jpg"), _image(env, "eeee05.jpg"), _image(env, "ffff06.jpg")
    coco = {
        "images": [
            {"id": 1, "file_name": "dddd04.jpg"},
            {"id": 2, "file_name": "eeee05.jpg"},
            {"id": 3, "file_name": "ffff06.jpg"},
        ],
        "categories": [{"id": i, "name": n, "supercategory": "object"} for i, n in enumerate(CLASSES)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 2, "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 0, "bbox": [0, 0, 5, 5], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1.4, 2.6, 3, 4], "iscrowd": 0},
        ],
    }
    ann = _annotation(env, "coco-annotations.json", json.dumps(coco))
    _index(env, "training_index_file", [(a, ann), (b, ann), (c, ann)])
    items = list(sdk.iter_items(sdk.Split.TRAINING))
    assert [i.boxes for i in items] == [
        (sdk.Box(2, "person", 10, 20, 39, 59), sdk.Box(1, "dog", 1, 3, 3, 6)),
        (sdk.Box(0, "cat", 0, 0, 4, 4),),
        (),
    ]
    assert items[0].boxes[0].w == 30 and items[0].boxes[0].h == 40


def test_iter_items_matches_coco_categories_by_name(task: Callable[..., sdk.Env]) -> None:
    env = task()
    a = _image(env, "gggg07.jpg")
    coco = {
        "images": [{"id": 5, "file_name": "gggg07.jpg"}],
        "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "horse"}],  # 1-based, another order
        "annotations": [
            {"image_id": 5, "category_id": 1, "bbox": [1, 1, 2, 2]},
            {"image_id": 5, "category_id": 2, "bbox": [1, 1, 2, 2]},
        ],
    }
    _index(env, "training_index_file", [(a, _annotation(env, "c.json", json.dumps(coco)))])
    (item,) = sdk.iter_items(sdk.Split.TRAINING)
    assert item.boxes == (sdk.Box(1, "dog", 1, 1, 2, 2),)


def test_iter_items_uses_the_coco_category_id_as_index_without_categories(task: Callable[..., sdk.Env]) -> None:
    env = task()
    a = _image(env, "hhhh08.jpg")
    coco = {
        "images": [{"id": 1, "file_name": "x/hhhh08.jpg"}],
        "annotations": [{"image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 1]}],
    }
    _index(env, "training_index_file", [(a, _annotation(env, "c.json", json.dumps(coco)))])
    assert next(sdk.iter_items(sdk.Split.TRAINING)).boxes == (sdk.Box(2, "person", 0, 0, 0, 0),)


def test_iter_items_takes_class_names_from_the_argument_over_the_config(task: Callable[..., sdk.Env]) -> None:
    env = task()
    a = _image(env, "iiii09.jpg")
    _index(env, "training_index_file", [(a, _annotation(env, "iiii09.txt", "0, 1, 1, 2, 2\n1, 1, 1, 2, 2\n"))])
    (item,) = sdk.iter_items(sdk.Split.TRAINING, class_names=["bird"])
    assert item.boxes == (sdk.Box(0, "bird", 1, 1, 2, 2),)


def test_iter_items_needs_class_names_for_annotated_splits(task: Callable[..., sdk.Env]) -> None:
    env = task(config={"epochs": 1})
    a = _image(env, "jjjj10.jpg")
    _index(env, "training_index_file", [(a, _annotation(env, "jjjj10.txt", ""))])
    with pytest.raises(sdk.ConfigValueError, match="class_names"):
        sdk.iter_items(sdk.Split.TRAINING)  # at the call, before any file is read


def test_iter_items_of_candidates_has_no_annotations(task: Callable[..., sdk.Env]) -> None:
    env = task(kinds=(M, I), config={})
    a, b = _image(env, "kkkk11.jpg"), _image(env, "llll12.jpg")
    Path(env.input.candidate_index_file).write_text(f"{a}\n\n{b}\n")
    assert list(sdk.iter_items(sdk.Split.CANDIDATE)) == [sdk.DatasetItem(a, None), sdk.DatasetItem(b, None)]
    assert sdk.count_items(sdk.Split.CANDIDATE) == 2


def test_count_items_counts_the_index_lines(task: Callable[..., sdk.Env]) -> None:
    env = task()
    _index(env, "training_index_file", [("/a.jpg", "/a.txt"), ("/b.jpg", "/b.txt")])
    _index(env, "val_index_file", [])
    assert (sdk.count_items("training"), sdk.count_items("validation")) == (2, 0)


def test_a_split_the_task_has_no_index_for_is_an_env_error(task: Callable[..., sdk.Env]) -> None:
    task(kinds=(M,))
    with pytest.raises(sdk.EnvFileError, match="no training split"):
        sdk.iter_items(sdk.Split.TRAINING)
    with pytest.raises(sdk.EnvFileError, match="input.val_index_file"):
        sdk.count_items(sdk.Split.VALIDATION)


def _voc(objects: str) -> str:
    """A VOC file of ``objects`` (the XML of its <object> elements)."""
    return f"<annotation>{objects}</annotation>"


def _coco(annotations: list[dict[str, object]]) -> str:
    """A COCO file of one image (id 1) and ``annotations``."""
    return json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": annotations})


@pytest.mark.parametrize(
    ("name", "text", "place", "match"),
    [
        ("a.txt", "0, 1, 2, 3, 4\n0, 1, 2, 3, 4, 5\n", "line 2", "found 6"),
        ("a.txt", "0, 1, 2, 3, 4\n\nx, 1, 2, 3, 4\n", "line 3", "not a number"),
        ("a.txt", "0, 1, 2, 3, nan\n", "line 1", "not a number"),
        ("a.xml", "<annotation>\n<object><name>cat</name>\n</annotation>", "line 3", "not valid XML"),
        ("a.xml", _voc("<object><name>cat</name></object>"), "object 1", "no <bndbox>"),
        (
            "a.xml",
            _voc("<object><name>cat</name><bndbox><xmin>1</xmin></bndbox></object>"),
            "object 1",
            "<ymin> is missing",
        ),
        ("a.xml", _voc("<object><bndbox/></object>"), "object 1", "no <name>"),
        ("a.json", '{"images": [\n{"id": 1, "file_name": "a.jpg"}\n', "line 3", "not valid JSON"),
        ("a.json", _coco([{"image_id": 9}]), "annotations[0]", "not in images"),
        ("a.json", _coco([{"image_id": 1, "category_id": 0, "bbox": [1, 2]}]), "annotations[0]", "bbox"),
    ],
)
def test_a_broken_annotation_names_the_file_and_the_place(
    task: Callable[..., sdk.Env],
    name: str,
    text: str,
    place: str,
    match: str,
) -> None:
    env = task()
    ann = _annotation(env, name, text)
    _index(env, "training_index_file", [(_image(env, "mmmm13.jpg"), ann)])
    with pytest.raises(sdk.DatasetFormatError, match=match) as info:
        list(sdk.iter_items(sdk.Split.TRAINING))
    assert (info.value.path, info.value.place) == (ann, place)
    assert str(info.value).startswith(f"{ann}: {place}: ")


def test_a_missing_index_file_is_a_dataset_error(task: Callable[..., sdk.Env]) -> None:
    env = task()
    with pytest.raises(sdk.DatasetFormatError, match="cannot read the index file") as info:
        list(sdk.iter_items(sdk.Split.TRAINING))
    assert info.value.path == env.input.training_index_file
    with pytest.raises(sdk.DatasetFormatError, match="cannot read the index file"):
        sdk.count_items(sdk.Split.VALIDATION)


def test_training_lines_without_an_annotation_column_have_no_boxes(task: Callable[..., sdk.Env]) -> None:
    env = task()
    Path(env.input.training_index_file).write_text("/in/assets/a.jpg\n/in/assets/b.jpg\t\n")
    assert list(sdk.iter_items(sdk.Split.TRAINING)) == [
        sdk.DatasetItem("/in/assets/a.jpg", None),
        sdk.DatasetItem("/in/assets/b.jpg", None),
    ]


def test_a_missing_annotation_file_names_it_and_the_index_line(task: Callable[..., sdk.Env]) -> None:
    env = task()
    _index(env, "training_index_file", [("/in/x.jpg", "/nonexistent/x.txt")])
    with pytest.raises(sdk.DatasetFormatError, match=r"/nonexistent/x.txt: cannot read .*line 1"):
        list(sdk.iter_items(sdk.Split.TRAINING))


def test_an_unknown_annotation_extension_is_refused(task: Callable[..., sdk.Env]) -> None:
    env = task()
    _index(env, "training_index_file", [("/in/x.jpg", _annotation(env, "x.csv", "0,1,2,3,4\n"))])
    with pytest.raises(sdk.DatasetFormatError, match="unknown annotation format '.csv'"):
        list(sdk.iter_items(sdk.Split.TRAINING))


# -- monitor.txt ----------------------------------------------------------------------------------


def _refused_unwritten(path: str, match: str, write: Callable[..., object], *args: object) -> None:
    """``write(*args)`` (values of a wrong type on purpose) raises ResultError (``match``) and leaves
    no file at ``path``: a refused result is never half-written."""
    with pytest.raises(sdk.ResultError, match=match):
        write(*args)
    assert not Path(path).exists()


def _monitor(env: sdk.Env) -> contract.MonitorRecord:
    return contract.parse_monitor(Path(env.output.monitor_file).read_text())


def test_write_progress_writes_a_running_record(task: Callable[..., sdk.Env]) -> None:
    env = task()
    assert sdk.write_progress(0.25) == 0.25
    record = _monitor(env)
    assert (record.task_id, record.percent, record.state) == (TASK_ID, 0.25, MonitorState.RUNNING)
    assert record.return_code == 0
    assert sorted(os.listdir(env.output.root_dir)) == ["models", "monitor.txt"]  # no temp file left


@pytest.mark.parametrize(("percent", "written"), [(1.5, 1.0), (-0.2, 0.0), (1, 1.0)])
def test_write_progress_clamps_to_0_and_1(task: Callable[..., sdk.Env], percent: float, written: float) -> None:
    env = task()
    sdk.write_progress(percent)
    assert _monitor(env).percent == written


def test_write_progress_refuses_nan(task: Callable[..., sdk.Env]) -> None:
    task()
    with pytest.raises(ValueError, match="NaN"):
        sdk.write_progress(float("nan"))


@pytest.mark.parametrize(
    ("kind", "percent", "written"),
    [(M, 0.5, 0.25), (M, 1.0, 0.5), (I, 0.0, 0.5), ("infer", 0.5, 0.75)],
)
def test_write_progress_maps_each_kind_into_its_half_when_mining_and_infer_run(
    task: Callable[..., sdk.Env],
    kind: TaskKind | str,
    percent: float,
    written: float,
) -> None:
    env = task(kinds=(M, I))
    sdk.write_progress(percent, task=kind)
    assert _monitor(env).percent == written


def test_write_progress_of_a_single_kind_is_not_scaled(task: Callable[..., sdk.Env]) -> None:
    env = task(kinds=(I,))
    sdk.write_progress(0.5, task=I)
    assert _monitor(env).percent == 0.5


def test_write_progress_refuses_a_kind_the_task_does_not_run(task: Callable[..., sdk.Env]) -> None:
    task(kinds=(I,))
    with pytest.raises(ValueError, match="mining is not one of"):
        sdk.write_progress(0.5, task=M)


def test_write_error_writes_state_4_with_code_and_detail(task: Callable[..., sdk.Env]) -> None:
    env = task()
    sdk.write_error(sdk.ReturnCode.DATASET_ERROR, "no training images\nTraceback ...\nValueError")
    record = _monitor(env)
    assert (record.state, record.return_code, record.percent) == (MonitorState.ERROR, 300002, 1.0)
    assert record.message == "no training images\nTraceback ...\nValueError"


def test_write_error_refuses_code_0(task: Callable[..., sdk.Env]) -> None:
    task()
    with pytest.raises(ValueError, match="non-zero"):
        sdk.write_error(0, "x")


def test_the_sdk_never_writes_state_done() -> None:
    source = "".join(p.read_text() for p in Path(sdk.__file__).parent.glob("*.py"))
    assert "MonitorState.DONE" not in source


# -- training result ------------------------------------------------------------------------------


def _model(env: sdk.Env, *parts: str) -> None:
    path = Path(env.output.models_dir, *parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")


def _result(env: sdk.Env) -> dict[str, object]:
    data = yaml.safe_load(Path(env.output.training_result_file).read_text())
    assert isinstance(data, dict)
    return data


def test_write_model_stage_merges_stages_and_picks_the_best(task: Callable[..., sdk.Env]) -> None:
    env = task("1.1.0")
    _model(env, "epoch_1", "w.pt")
    _model(env, "epoch_2", "w.pt")
    _model(env, "config.py")
    assert sdk.write_model_stage("epoch_1", ["w.pt", "config.py"], 0.7, timestamp=100) == "epoch_1"
    assert (
        sdk.write_model_stage(
            "epoch_2",
            ["w.pt"],
            {"mAP": 0.5, "mAR": 0.6, "tp": 3, "fp": 1, "fn": 0},
            timestamp=200,
            evaluate_config={"iou_thr": 0.5},
        )
        == "epoch_1"
    )
    result = _result(env)
    assert result["best_stage_name"] == "epoch_1"
    assert result["model_stages"] == {
        "epoch_1": {"stage_name": "epoch_1", "files": ["w.pt", "config.py"], "timestamp": 100, "mAP": 0.7},
        "epoch_2": {
            "stage_name": "epoch_2",
            "files": ["w.pt"],
            "timestamp": 200,
            "mAP": 0.5,
            "mAR": 0.6,
            "tp": 3,
            "fp": 1,
            "fn": 0,
        },
    }
    assert result["evaluate_config"] == {"iou_thr": 0.5}


def test_write_model_stage_breaks_ties_for_the_newer_stage(task: Callable[..., sdk.Env]) -> None:
    env = task("1.1.0")
    _model(env, "a.pt")
    sdk.write_model_stage("late", ["a.pt"], 0.5, timestamp=300)
    assert sdk.write_model_stage("early", ["a.pt"], 0.5, timestamp=100) == "late"


def test_write_model_stage_ranks_by_the_main_metric_of_the_task(task: Callable[..., sdk.Env]) -> None:
    env = task("1.1.0")
    _model(env, "a.pt")
    sdk.write_model_stage("s1", ["a.pt"], {"maskAP": 0.2, "mAP": 0.9}, timestamp=1)
    assert sdk.write_model_stage("s2", ["a.pt"], {"maskAP": 0.3, "mAP": 0.1}, timestamp=2) == "s2"


def test_write_model_stage_keeps_the_ten_newest_and_the_best(task: Callable[..., sdk.Env]) -> None:
    env = task("1.1.0")
    _model(env, "a.pt")
    sdk.write_model_stage("best", ["a.pt"], 0.9, timestamp=0)
    for i in range(1, 13):
        sdk.write_model_stage(f"epoch_{i}", ["a.pt"], 0.1, timestamp=i)
    stages = _result(env)["model_stages"]
    assert isinstance(stages, dict)
    assert sorted(stages) == sorted(["best"] + [f"epoch_{i}" for i in range(3, 13)])


def test_write_model_stage_turns_dashes_into_underscores(task: Callable[..., sdk.Env]) -> None:
    env = task("1.1.0")
    _model(env, "epoch_3", "a.pt")
    assert sdk.write_model_stage("epoch-3", ["a.pt"], 0.1) == "epoch_3"


def test_write_model_stage_writes_attachments(task: Callable[..., sdk.Env]) -> None:
    env = task("1.1.0")
    _model(env, "a.pt")
    _model(env, "attachments", "images", "pr.png")
    sdk.write_model_stage("s", ["a.pt"], 0.1, attachments={"images": ["pr.png"]})
    assert _result(env)["attachments"] == {"images": ["pr.png"]}
    with pytest.raises(sdk.ResultError, match="attachment .*missing"):
        sdk.write_model_stage("s", ["a.pt"], 0.1, attachments={"images": ["nope.png"]})


@pytest.mark.parametrize(
    ("name", "files", "metrics", "match"),
    [
        ("10", ["a.pt"], 0.5, "stage name '10'"),
        ("a b", ["a.pt"], 0.5, "stage name"),
        ("s", [], 0.5, "non-empty list"),
        ("s", "a.pt", 0.5, "non-empty list"),
        ("s", ["nope.pt"], 0.5, "'nope.pt' of stage 's' not found"),
        ("s", ["/abs/a.pt"], 0.5, "basename"),
        ("s", ["../a.pt"], 0.5, "basename"),
        ("s", ["a.pt"], 1.5, "within 0..1"),
        ("s", ["a.pt"], float("nan"), "within 0..1"),
        ("s", ["a.pt"], "0.5", "must be a number"),
        ("s", ["a.pt"], {"map": 0.5}, "unknown metric 'map'"),
        ("s", ["a.pt"], {"mAR": 0.5}, "one of maskAP, mIoU, mAP"),
        ("s", ["a.pt"], {"mAP": 0.5, "tp": -1}, "tp must be >= 0"),
        ("s", ["a.pt"], {"mAP": 0.5, "fp": 1.5}, "fp must be an integer"),
    ],
)
def test_write_model_stage_refuses_what_ymir_would_reject(
    task: Callable[..., sdk.Env],
    name: str,
    files: object,
    metrics: object,
    match: str,
) -> None:
    env = task("1.1.0")
    _model(env, "a.pt")
    _refused_unwritten(env.output.training_result_file, match, sdk.write_model_stage, name, files, metrics)


def test_write_model_stage_refuses_a_symlinked_model_file(task: Callable[..., sdk.Env]) -> None:
    env = task("1.1.0")
    _model(env, "real.pt")
    os.symlink(Path(env.output.models_dir, "real.pt"), Path(env.output.models_dir, "link.pt"))
    with pytest.raises(sdk.ResultError, match="regular file"):
        sdk.write_model_stage("s", ["link.pt"], 0.5)


@pytest.mark.parametrize("protocol", ["0.0.1", "1.0.0"])
def test_write_model_stage_needs_flat_files_before_protocol_1_1_0(task: Callable[..., sdk.Env], protocol: str) -> None:
    env = task(protocol)
    _model(env, "s", "a.pt")
    with pytest.raises(sdk.ResultError, match="not found"):
        sdk.write_model_stage("s", ["a.pt"], 0.5)


def test_write_model_stage_refuses_to_merge_into_a_foreign_file(task: Callable[..., sdk.Env]) -> None:
    env = task("1.1.0")
    _model(env, "a.pt")
    Path(env.output.training_result_file).write_text("model: [a.pt]\nmap: 0.5\n")
    with pytest.raises(sdk.ResultError, match="no model_stages"):
        sdk.write_model_stage("s", ["a.pt"], 0.5)


def test_write_model_stage_writes_the_legacy_schema_for_protocol_0_0_1(task: Callable[..., sdk.Env]) -> None:
    env = task("0.0.1")
    _model(env, "a.pt")
    _model(env, "b.pt")
    assert sdk.write_model_stage("epoch_1", ["a.pt"], 0.6) == contract.LEGACY_STAGE_NAME
    assert _result(env) == {"model": ["a.pt"], "map": 0.6}
    sdk.write_model_stage("epoch_2", ["b.pt"], 0.4)  # worse: the better model stays
    assert _result(env) == {"model": ["a.pt"], "map": 0.6}
    sdk.write_model_stage("epoch_3", ["b.pt"], 0.6)  # as good and newer: replaces
    assert _result(env) == {"model": ["b.pt"], "map": 0.6}


# -- mining result --------------------------------------------------------------------------------


def test_write_mining_result_sorts_high_to_low_and_keeps_ties_in_order(task: Callable[..., sdk.Env]) -> None:
    env = task(kinds=(M,))
    sdk.write_mining_result(
        [("/in/a.jpg", 0.1), ("/in/b.jpg", 0.9), ("/in/c.jpg", 0.5), ("/in/d.jpg", 0.5), ("/in/e.jpg", 1)],
    )
    assert Path(env.output.mining_result_file).read_text() == (
        "/in/e.jpg\t1.0\n/in/b.jpg\t0.9\n/in/c.jpg\t0.5\n/in/d.jpg\t0.5\n/in/a.jpg\t0.1\n"
    )


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([("/a.jpg", float("nan"))], "finite"),
        ([("/a.jpg", float("inf"))], "finite"),
        ([("/a.jpg", "high")], "must be a number"),
        ([("/a.jpg", 0.1), ("/a.jpg", 0.2)], "scored twice"),
        ([("/a\t.jpg", 0.1)], "without tabs"),
        ([("", 0.1)], "non-empty"),
    ],
)
def test_write_mining_result_refuses_bad_rows(
    task: Callable[..., sdk.Env],
    rows: list[tuple[str, object]],
    match: str,
) -> None:
    env = task(kinds=(M,))
    _refused_unwritten(env.output.mining_result_file, match, sdk.write_mining_result, rows)


# -- infer result ---------------------------------------------------------------------------------


def _infer(env: sdk.Env) -> dict[str, object]:
    data = json.loads(Path(env.output.infer_result_file).read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(("protocol", "key"), [("0.0.1", "annotations"), ("1.0.0", "boxes"), ("1.1.0", "boxes")])
def test_write_infer_result_uses_the_list_key_of_the_protocol(
    task: Callable[..., sdk.Env],
    protocol: str,
    key: str,
) -> None:
    env = task(protocol, kinds=(I,))
    n = sdk.write_infer_result(
        {"/in/assets/aa/x.jpg": [sdk.Detection("cat", 0.8, 30.4, 30.6, 50.2, 49.6, 0.1)], "/in/assets/bb/y.jpg": []}
    )
    assert n == 1
    box = {"x": 30, "y": 31, "w": 51, "h": 49}
    if protocol != "0.0.1":
        box["rotate_angle"] = 0.1  # type: ignore[assignment]  # a float among the box's ints, as YMIR 1.1 writes
    assert _infer(env) == {
        "detection": {"x.jpg": {key: [{"box": box, "class_name": "cat", "score": 0.8}]}, "y.jpg": {key: []}}
    }


def test_write_infer_result_clips_at_the_top_left_and_drops_empty_boxes(task: Callable[..., sdk.Env]) -> None:
    env = task(kinds=(I,))
    sdk.write_infer_result(
        {
            "a.jpg": [
                sdk.Detection.from_xyxy("dog", 0.5, -3.2, -0.4, 10.0, 20.0),
                sdk.Detection("dog", 0.4, 5, 5, 0.2, 10),
            ]
        }
    )
    assert _infer(env)["detection"] == {
        "a.jpg": {
            "boxes": [
                {"box": {"x": 0, "y": 0, "w": 10, "h": 20}, "class_name": "dog", "score": 0.5},
            ]
        }
    }


@pytest.mark.parametrize(
    ("detections", "match"),
    [
        ({"a.jpg": [sdk.Detection("cat", float("nan"), 1, 1, 2, 2)]}, "finite"),
        ({"a.jpg": [sdk.Detection("cat", 0.5, float("inf"), 1, 2, 2)]}, "finite"),
        ({"a.jpg": [sdk.Detection("", 0.5, 1, 1, 2, 2)]}, "no class name"),
        ({"a.jpg": [(1, 1, 2, 2)]}, "Detection records"),
        ({"/x/a.jpg": [], "/y/a.jpg": []}, "share the basename"),
    ],
)
def test_write_infer_result_refuses_what_would_not_be_valid(
    task: Callable[..., sdk.Env],
    detections: dict[str, list[object]],
    match: str,
) -> None:
    env = task(kinds=(I,))
    _refused_unwritten(env.output.infer_result_file, match, sdk.write_infer_result, detections)


def test_writers_take_an_explicit_env_over_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(tmp_path / "missing.yaml"))
    env = sdk.read_env(make_task(tmp_path / "task", "1.1.0", (M, I)))
    sdk.write_progress(0.5, task=M, env=env)
    sdk.write_mining_result([("/in/a.jpg", 0.5)], env=env)
    sdk.write_infer_result({"/in/a.jpg": []}, env=env)
    assert sorted(os.listdir(env.output.root_dir)) == ["infer-result.json", "models", "monitor.txt", "result.tsv"]


# -- a file replaced whole -----------------------------------------------------------------------


@pytest.mark.parametrize("durable", [True, False])
def test_replace_file_writes_text_whole_and_readable(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "result.txt"
    target.write_text("old\n")
    target.chmod(0o600)
    replace_file(target, "new\r\nß\n", durable=durable)
    assert target.read_bytes() == "new\r\nß\n".encode() and target.stat().st_mode & 0o777 == READABLE
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]
    replace_file(str(tmp_path / "made" / "here.txt"), "x", durable=durable)  # the directory is made
    assert (tmp_path / "made" / "here.txt").read_text() == "x"


def test_a_failed_replace_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    target.write_text("old\n")
    with pytest.raises(TypeError):
        replace_file(target, 42)  # type: ignore[arg-type]  # a wrong type on purpose, to fail mid-write
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["result.txt"]
