"""live_code.task.manifest: a repository's ``live-code.yaml`` or its legacy layout, and the typed
hyper-parameter schema (parsing, defaults, coercion of web-form values, the user's key names)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from live_code.contract import TaskKind
from live_code.errors import ConfigError
from live_code.task import manifest as manifest_mod

TRAINING = frozenset({TaskKind.TRAINING})
SCHEMA = {
    "framework": "none",
    "entry": "python start.py",
    "hyperparameters": {
        "training": {
            "epochs": {"type": "int", "default": 1},
            "learning_rate": {"type": "float", "default": 0.1},
        },
    },
}


def _param(**spec: object) -> manifest_mod.Param:
    data = {"entry": "python start.py", "hyperparameters": {"common": {"p": spec}}}
    return manifest_mod.parse(data).schema[TaskKind.TRAINING]["p"]


# -- the layout: manifest or legacy -------------------------------------------------------------


def test_load_reads_the_manifest_and_checks_its_paths_against_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "requirements.txt").write_text("")
    (tmp_path / "live-code.yaml").write_text(
        "framework: torch\nentry: {training: python train.py}\nrequirements: requirements.txt\nsubmodules: true\n"
    )
    m = manifest_mod.load(tmp_path)
    assert (m.legacy, m.framework, m.requirements, m.submodules, m.lfs) == (
        False,
        "torch",
        "requirements.txt",
        True,
        False,
    )
    assert m.entry_for(TaskKind.TRAINING) == ("python", "train.py")
    with pytest.raises(ConfigError, match="no entry point for mining") as err:
        m.entry_for(TaskKind.MINING)
    assert "under `entry:`" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        ("entry: python missing.py\n", "runs missing.py, which is not in the repository"),
        ("entry: python start.py\nrequirements: reqs.txt\n", "requirements names reqs.txt, which is not in"),
        ("entry: python start.py\ncode_config: ../x.yaml\n", "code_config must be a path inside the repository"),
    ],
)
def test_load_refuses_paths_the_checkout_does_not_have(tmp_path: Path, manifest: str, words: str) -> None:
    (tmp_path / "start.py").write_text("")
    (tmp_path / "live-code.yaml").write_text(manifest)
    with pytest.raises(ConfigError, match=words):
        manifest_mod.load(tmp_path)


@pytest.mark.parametrize("entry", ["start.py", "ymir/start.py"])
def test_a_repo_without_manifest_is_the_legacy_layout_for_every_kind(tmp_path: Path, entry: str) -> None:
    (tmp_path / entry).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / entry).write_text("")
    m = manifest_mod.load(tmp_path)
    assert m.legacy and m.framework == "none" and m.schema == {}
    assert {k: m.entry_for(k) for k in TaskKind} == {k: ("python3", entry) for k in TaskKind}


def test_a_repo_with_neither_is_refused_naming_both(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"neither live-code.yaml nor a legacy entry point \(start.py, ymir/start.py\)"
    ):
        manifest_mod.load(tmp_path)


def test_a_manifest_linking_outside_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("entry: python start.py\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    os.symlink(outside, repo / "live-code.yaml")
    with pytest.raises(ConfigError, match="a link to a file outside the repository"):
        manifest_mod.load(repo)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"entry": "python start.py", "framwork": "torch"}, "unknown key 'framwork'"),
        ({"entry": "python start.py", "framework": "jax"}, "framework must be one of torch, mxnet, none"),
        ({"entry": "python start.py", "launcher": "mpirun"}, "launcher must be one of torchrun"),
        ({"entry": "python start.py", "lfs": "yes"}, "lfs must be true or false"),
        ({}, "`entry` is missing"),
        ({"entry": ""}, "entry must be a command line"),
        ({"entry": {"trainig": "python t.py"}}, "unknown task kind 'trainig' under entry"),
        ({"entry": "x", "hyperparameters": {"train": {}}}, "unknown hyperparameters section 'train'"),
        ({"entry": "x", "hyperparameters": {"common": {"e": {"type": "integer"}}}}, "type must be one of int"),
        ({"entry": "x", "hyperparameters": {"common": {"e": {"type": "int", "defualt": 1}}}}, "unknown field"),
        ({"entry": "x", "hyperparameters": {"common": {"e": {"type": "int", "choices": [1, "a"]}}}}, "holds 'a'"),
        ({"entry": "x", "hyperparameters": {"common": {"e": {"type": "int", "default": "ten"}}}}, "default of"),
    ],
)
def test_parse_refuses_a_bad_manifest_naming_the_key(data: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        manifest_mod.parse(data)


def test_unknown_key_suggests_the_known_one() -> None:
    with pytest.raises(ConfigError) as err:
        manifest_mod.parse({"entry": "python start.py", "requirement": "r.txt"})
    assert err.value.hint == "did you mean 'requirements'?"


def test_entry_as_a_list_keeps_its_words_and_as_text_is_split_like_a_shell() -> None:
    assert manifest_mod.parse({"entry": ["python", "my script.py"]}).entry_for(TaskKind.INFER) == (
        "python",
        "my script.py",
    )
    assert manifest_mod.parse({"entry": "python 'my script.py' --x"}).entry_for(TaskKind.INFER) == (
        "python",
        "my script.py",
        "--x",
    )


# -- the schema ---------------------------------------------------------------------------------


def test_common_parameters_reach_every_kind_and_a_kind_overrides_them() -> None:
    m = manifest_mod.parse(
        {
            "entry": "x",
            "hyperparameters": {
                "common": {"size": {"type": "int", "default": 640}, "seed": {"type": "int", "default": 1}},
                "mining": {"size": {"type": "int", "default": 320}},
            },
        }
    )
    assert m.defaults(TaskKind.TRAINING) == {"size": 640, "seed": 1}
    assert m.defaults(TaskKind.MINING) == {"size": 320, "seed": 1}
    with pytest.raises(TypeError):
        m.schema[TaskKind.TRAINING]["size"] = _param(type="int")  # type: ignore[index]  # read-only on purpose


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ({"type": "int"}, "10", 10),
        ({"type": "int"}, 3.0, 3),
        ({"type": "float"}, "0.5", 0.5),
        ({"type": "float"}, 2, 2.0),
        ({"type": "bool"}, "Yes", True),
        ({"type": "bool"}, "off", False),
        ({"type": "bool"}, 0, False),
        ({"type": "str"}, 5, "5"),
        ({"type": "list"}, "[a, b ,c]", ["a", "b", "c"]),
        ({"type": "list"}, ["x"], ["x"]),
        ({"type": "str", "choices": ["tiny", "small"]}, "small", "small"),
        ({"type": "int", "min": 1, "max": 3}, "3", 3),
    ],
)
def test_coerce_reads_web_form_text_as_the_declared_type(
    spec: dict[str, object], value: object, expected: object
) -> None:
    out = manifest_mod.coerce(_param(**spec), value, "config.yaml")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    ("spec", "value", "words"),
    [
        ({"type": "int"}, True, "must be of type int"),
        ({"type": "int"}, "1.5", "must be of type int"),
        ({"type": "float"}, "fast", "must be of type float"),
        ({"type": "bool"}, "maybe", "must be of type bool"),
        ({"type": "str"}, ["a"], "must be of type str"),
        ({"type": "str", "choices": ["tiny", "small"]}, "huge", "must be one of 'tiny', 'small'"),
        ({"type": "int", "min": 1}, 0, r"must be within 1\.\.inf"),
        ({"type": "float", "max": 1}, "2", r"must be within -inf\.\.1"),
    ],
)
def test_coerce_refuses_naming_the_key_and_the_value(spec: dict[str, object], value: object, words: str) -> None:
    with pytest.raises(ConfigError, match=f"config.yaml: hyper-parameter 'p' {words}") as err:
        manifest_mod.coerce(_param(help="what p does", **spec), value, "config.yaml")
    assert err.value.value == value


def test_the_help_text_is_in_the_hint_of_a_wrong_type() -> None:
    with pytest.raises(ConfigError) as err:
        manifest_mod.coerce(_param(type="int", help="number of epochs"), "ten", "config.yaml")
    assert err.value.hint == "set p to a value of type int (number of epochs)"


def test_validate_coerces_declared_keys_and_passes_the_others() -> None:
    m = manifest_mod.parse(SCHEMA)
    merged = {"epochs": "5", "learning_rate": None, "class_names": ["a"], "my_flag": "x"}
    out = manifest_mod.validate(m, TaskKind.TRAINING, merged, source="config.yaml")
    assert out == {"epochs": 5, "learning_rate": None, "class_names": ["a"], "my_flag": "x"}
    assert merged["epochs"] == "5"  # the caller's mapping is left as it was
    assert manifest_mod.validate(m, TaskKind.MINING, {"epochs": "five"}, source="c") == {"epochs": "five"}
    with pytest.raises(ConfigError, match="c: hyper-parameter 'epochs' must be of type int"):
        manifest_mod.validate(m, TaskKind.TRAINING, {"epochs": "five"}, source="c")


# -- moved here from tests/test_build_isolation.py and tests/test_local_up_front.py ------------------


def test_the_manifest_takes_a_list_of_requirement_names() -> None:
    base = {"entry": "python start.py"}
    assert manifest_mod.parse(base).no_build_isolation == ()
    assert manifest_mod.parse({**base, "no_build_isolation": ["detectron2", "my_ext.v2"]}).no_build_isolation == (
        "detectron2",
        "my_ext.v2",
    )
    for bad in ("detectron2", ["detectron2 --global-option=x"], [3], ["-e"]):
        with pytest.raises(ConfigError, match="no_build_isolation must be a list of requirement names"):
            manifest_mod.parse({**base, "no_build_isolation": bad})


def test_check_user_keys_passes_declared_platform_and_live_code_keys() -> None:
    manifest = manifest_mod.parse(SCHEMA)
    keys = ["epochs", "class_names", "gpu_id", "live_code_timeout"]
    assert manifest_mod.check_user_keys(manifest, TRAINING, keys, source="--set") == []
    with pytest.raises(ConfigError, match=r"'lerning_rate' \(did you mean 'learning_rate'\?\)") as info:
        manifest_mod.check_user_keys(manifest, TRAINING, ["lerning_rate", "zzz"], source="--set")
    assert info.value.value == ["lerning_rate", "zzz"]
    # a key of another task kind passes (one config file serves training and infer); a typo does not
    assert manifest_mod.check_user_keys(manifest, {TaskKind.MINING}, ["epochs"], source="--set") == []
    with pytest.raises(ConfigError, match=r"'epoch' \(did you mean 'epochs'\?\) not in the declared"):
        manifest_mod.check_user_keys(manifest, {TaskKind.MINING}, ["epoch"], source="--set")
    legacy = manifest_mod.parse({"entry": "python start.py"})
    assert manifest_mod.check_user_keys(legacy, TRAINING, ["epoch", "gpu_id"], source="--set") == ["epoch"]
