"""config: env.yaml + config.yaml -> Task; YAML traps, robust web-form values, refused files."""

from __future__ import annotations

import dataclasses
import logging
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from live_code import contract, record, sdk
from live_code.contract import TaskKind
from live_code.errors import ConfigError
from live_code.task import config

TRAINING = frozenset({TaskKind.TRAINING})


def parse(text: str, *, kinds: frozenset[TaskKind] = frozenset()) -> config.RunConfig:
    """config.yaml text -> RunConfig, through the strict loader as load_task reads it."""
    data, spelled = config.parse_yaml(textwrap.dedent(text), source="config.yaml")
    return config.parse_config(data or {}, kinds=kinds, spelled=spelled)


def refused(text: str, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, **kwargs)
    return info.value


def write_task(tmp_path: Path, env: Mapping[str, Any] | str, cfg: Mapping[str, Any] | str) -> Path:
    """tmp/in/env.yaml and tmp/in/config.yaml (env.yaml keeps its container paths)."""
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / "env.yaml").write_text(env if isinstance(env, str) else yaml.safe_dump(dict(env)))
    (in_dir / "config.yaml").write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(dict(cfg)))
    return in_dir


def env_of(protocol: str = contract.PROTOCOL_1_1_0, kinds: frozenset[TaskKind] = TRAINING) -> dict[str, Any]:
    return contract.env_yaml(protocol=protocol, task_id="t" + "0" * 29, kinds=kinds)


# -- env.yaml ------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_env_of_every_protocol_parses_with_its_paths(protocol: str) -> None:
    env = config.parse_env(env_of(protocol, frozenset({TaskKind.MINING, TaskKind.INFER})))
    assert env.protocol == protocol
    assert env.kinds == {TaskKind.MINING, TaskKind.INFER}
    assert env.input.candidate_index_file == "/in/candidate-index.tsv"
    assert env.input.training_index_file == ""
    assert env.output.monitor_file == "/out/monitor.txt"
    assert env.manifest_file == ("/img-man/manifest.yaml" if protocol == "1.1.0" else "")


def test_env_without_protocol_version_is_0_0_1_and_missing_paths_get_contract_defaults() -> None:
    env = config.parse_env({"task_id": "t1", "run_training": True})
    assert env.protocol == "0.0.1"
    assert env.input.training_index_file == "/in/train-index.tsv"
    assert env.input.candidate_index_file == ""  # not used by training
    assert env.output == config.OutputPaths(**contract.ENV_OUTPUT_DEFAULTS)


def test_the_harness_and_the_sdk_read_the_same_env_yaml_sections() -> None:
    """The harness's records of env.yaml's sections and the SDK's dataclasses (public, for jobs)
    are defined apart, so that the harness's run path needs no dataclasses: the same keys, in the
    contract's order."""
    for harness, sdk_type, keys in (
        (config.InputPaths, sdk.EnvInput, contract.ENV_INPUT_DEFAULTS),
        (config.OutputPaths, sdk.EnvOutput, contract.ENV_OUTPUT_DEFAULTS),
    ):
        assert [f.name for f in record.fields(harness)] == list(keys) == [f.name for f in dataclasses.fields(sdk_type)]


def test_env_with_unknown_protocol_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        config.parse_env({**env_of(), "protocol_version": "9.9.9"})
    assert "9.9.9" in info.value.message
    assert all(v in info.value.message for v in contract.PROTOCOL_VERSIONS)


def test_env_with_no_task_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match="none of run_training, run_mining, run_infer"):
        config.parse_env({**env_of(), "run_training": False})


def test_env_combining_training_with_mining_is_refused() -> None:
    with pytest.raises(ConfigError, match="run_training cannot be combined"):
        config.parse_env({**env_of(), "run_mining": True})


def test_env_run_flags_accept_strings_and_refuse_others() -> None:
    env = config.parse_env({**env_of(), "run_training": "Yes", "run_mining": "off"})
    assert env.kinds == TRAINING
    with pytest.raises(ConfigError) as info:
        config.parse_env({**env_of(), "run_training": "maybe"})
    assert "run_training" in info.value.message and info.value.value == "maybe"


def test_env_with_an_empty_index_file_the_task_needs_is_refused() -> None:
    env = env_of()
    env["input"]["val_index_file"] = ""
    with pytest.raises(ConfigError, match="input.val_index_file is empty"):
        config.parse_env(env)


def test_env_with_empty_protocol_version_is_0_0_1_and_a_list_is_refused() -> None:
    assert config.parse_env({**env_of(), "protocol_version": ""}).protocol == "0.0.1"
    with pytest.raises(ConfigError, match="must be a mapping, not a list"):
        config.parse_env(["run_training"])  # type: ignore[arg-type]  # a list, not a mapping, on purpose


def test_env_path_that_is_not_a_string_is_refused() -> None:
    env = env_of()
    env["output"]["monitor_file"] = ["/out/monitor.txt"]
    with pytest.raises(ConfigError, match="output.monitor_file must be a path"):
        config.parse_env(env)


# -- config.yaml: YAML 1.1 type traps in refs --------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key", "read_as", "fix"),
    [
        ("git_tag: 1.10", "git_tag", "the number 1.1", 'git_tag: "1.10"'),
        ("git_commit: 0123456", "git_commit", "the number 42798", 'git_commit: "0123456"'),
        ("git_commit: 1234567", "git_commit", "the number 1234567", 'git_commit: "1234567"'),
        ("git_tag: 2024-01-01", "git_tag", "the date 2024-01-01", 'git_tag: "2024-01-01"'),
        ("git_branch: yes", "git_branch", "the boolean True", 'git_branch: "yes"'),
        ("git_commit: 0x1f", "git_commit", "the number 31", 'git_commit: "0x1f"'),
        ("git_tag: 190:20:30", "git_tag", "the number 685230", 'git_tag: "190:20:30"'),
        ("git_url: 12", "git_url", "the number 12", 'git_url: "12"'),
        ("code_config: 1.0", "code_config", "the number 1.0", 'code_config: "1.0"'),
    ],
)
def test_yaml_type_trap_in_a_ref_names_key_value_and_quoting(line: str, key: str, read_as: str, fix: str) -> None:
    e = refused(f"{line}\n")  # traps are reported before the pin is checked
    assert key in e.message and read_as in e.message
    assert "quotes" in e.message and fix in e.message


def test_float_trap_says_yaml_dropped_the_trailing_zero() -> None:
    e = refused("git_url: u\ngit_tag: 1.10\n")
    assert "YAML read 1.10 as the number 1.1" in e.message
    assert "trailing zeros" in e.message


def test_float_trap_is_caught_without_the_file_text_too() -> None:
    """A caller with only the loaded data (1.10 already became 1.1) still gets the quoting advice."""
    with pytest.raises(ConfigError) as info:
        config.parse_config({"git_url": "u", "git_tag": 1.1})
    assert "YAML read this as the number 1.1" in info.value.message and "quotes" in info.value.message


def test_strings_that_only_look_like_numbers_are_kept() -> None:
    # PyYAML keeps 1e10 (no dot) as text; a quoted 1.10 stays 1.10
    assert parse("git_url: u\ngit_tag: 1e10\n").source.tag == "1e10"  # type: ignore[union-attr]  # source is set for these configs
    assert parse('git_url: u\ngit_tag: "1.10"\n').source.tag == "1.10"  # type: ignore[union-attr]  # source is set for these configs


def test_ref_given_as_a_list_is_refused() -> None:
    e = refused("git_url: u\ngit_tag: [v1, v2]\n")
    assert "git_tag must be a string" in e.message and "quotes" in (e.hint or "")


def test_key_read_as_a_boolean_is_refused_with_quoting_advice() -> None:
    e = refused("on: 1\n")
    assert "boolean True" in e.message and '"on"' in e.message


# -- config.yaml: the source pin ---------------------------------------------------------------


def test_pin_kind_is_the_strongest_ref_given() -> None:
    sha = "a" * 40
    assert parse(f"git_url: u\ngit_commit: {sha}\ngit_tag: v1\n").source == config.SourcePin(
        url="u", commit=sha, tag="v1", branch=None, kind=config.PinKind.COMMIT
    )
    assert parse("git_url: u\ngit_tag: v1\ngit_branch: main\n").source.kind is config.PinKind.TAG  # type: ignore[union-attr]  # source is set for these configs
    pin = parse("git_url: u\ngit_branch: main\n").source
    assert pin is not None and pin.kind is config.PinKind.REF and pin.ref == "main"


def test_no_url_and_no_pin_is_no_source() -> None:
    # the live-code image's template ships empty values
    assert parse("git_url: ''\ngit_branch: ''\ncode_config: ''\n").source is None


def test_pin_without_url_is_refused() -> None:
    assert "git_tag given without git_url" in refused("git_tag: v1\n").message


def test_url_without_pin_is_refused() -> None:
    e = refused("git_url: https://example.invalid/r.git\n")
    assert "without a pin" in e.message and "git_commit" in (e.hint or "")


def test_commit_that_is_not_hex_is_refused() -> None:
    e = refused("git_url: u\ngit_commit: v1.0\n")
    assert "git_commit 'v1.0' is not a commit id" in e.message and "git_tag" in (e.hint or "")


def test_url_of_the_wrong_type_is_not_shown_in_the_error() -> None:
    e = refused("git_url: [https://user:s3cret@example.invalid/r.git]\ngit_tag: v1\n")
    assert "git_url must be a string, not a list" in e.message and "s3cret" not in e.render()
    e = refused("pip_find_links: {url: https://user:s3cret@example.invalid/w}\n")
    assert "pip_find_links must be a list of strings" in e.message and "s3cret" not in e.render()


def test_url_with_credentials_stays_out_of_repr() -> None:
    cfg = parse(
        "git_url: https://user:s3cret@example.invalid/r.git\ngit_tag: v1\n"
        "pip_index_url: https://tok:s3cret@pypi.invalid/simple\n"
    )
    assert "s3cret" not in repr(cfg.source) and "s3cret" not in repr(cfg.package_index)


@pytest.mark.parametrize("path", ["../defaults.yaml", "/etc/passwd", "~/x.yaml", "configs/../../x.yaml"])
def test_code_config_outside_the_repo_is_refused(path: str) -> None:
    e = refused(f"code_config: '{path}'\n")
    assert "code_config must be a path inside the repository" in e.message


def test_code_config_relative_path_is_kept() -> None:
    assert parse("code_config: configs/a.yaml\n").code_config == "configs/a.yaml"


# -- config.yaml: unknown live-code keys -------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "guess"),
    [
        ("git_urll", "git_url"),
        ("git_commmit", "git_commit"),
        ("pip_extra_index_url", "pip_extra_index_urls"),
        ("live_code_timout", "live_code_timeout"),
        ("pypi_mirrors", "pypi_mirror"),
        ("GIT_URL", "git_url"),
    ],
)
def test_unknown_live_code_key_suggests_the_known_one(key: str, guess: str) -> None:
    e = refused(f"{key}: x\n")
    assert repr(key) in e.message and f"did you mean {guess!r}?" in e.message


def test_unknown_prefixed_key_with_nothing_close_lists_the_known_keys() -> None:
    e = refused("live_code_debug: 1\n")
    assert "did you mean" not in e.message and "live_code_timeout" in (e.hint or "")


@pytest.mark.parametrize(
    ("key", "guess"), [("gitt_url", "git_url"), ("giturl", "git_url"), ("code_confg", "code_config")]
)
def test_key_very_close_to_a_live_code_key_is_refused_without_the_prefix(key: str, guess: str) -> None:
    assert f"did you mean {guess!r}?" in refused(f"{key}: x\n").message


def test_key_somewhat_close_to_a_live_code_key_is_only_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="live_code.task.config"):
        cfg = parse("model_config: yolov5s.yaml\nepochs: 3\n")
    assert dict(cfg.hyperparameters) == {"model_config": "yolov5s.yaml", "epochs": 3}
    assert "did you mean 'code_config'?" in caplog.text


def test_did_you_mean_helper() -> None:
    assert config.did_you_mean("epoch", ["epochs", "batch_size"]) == "epochs"
    assert config.did_you_mean("Batch_Size", ["epochs", "batch_size"]) == "batch_size"
    assert config.did_you_mean("zzz", ["epochs", "batch_size"]) is None


# -- config.yaml: robust reading of web-form values --------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("'True'", True),
        ("yes", True),
        ("'on'", True),
        ("'1'", True),
        ("1", True),
        ("false", False),
        ("'NO'", False),
        ("'off'", False),
        ("'0'", False),
        ("0", False),
        ("''", False),
        ("~", False),
    ],
)
def test_bool_options_accept_web_form_spellings(text: str, expected: bool) -> None:
    assert parse(f"live_code_allow_branch: {text}\n").options.allow_branch is expected


@pytest.mark.parametrize("text", ["maybe", "2", "[true]", "'tru'"])
def test_bool_option_refuses_anything_else_naming_key_and_value(text: str) -> None:
    e = refused(f"pip_offline: {text}\n")
    assert "pip_offline must be true or false" in e.message and "pip_offline: true" in (e.hint or "")
    assert e.value is not None


def test_lists_accept_strings_from_the_web_form() -> None:
    cfg = parse("""\
        class_names: "cat, dog,person"
        pretrained_model_params: /in/models/best/a.pt
        pip_extra_index_urls: "https://a.invalid/simple https://b.invalid/simple,https://c.invalid/simple"
        pip_find_links: /wheels
        """)
    assert cfg.class_names == ("cat", "dog", "person")
    assert cfg.pretrained_model_params == ("/in/models/best/a.pt",)
    assert cfg.package_index.extra_index_urls == (
        "https://a.invalid/simple",
        "https://b.invalid/simple",
        "https://c.invalid/simple",
    )
    assert cfg.package_index.find_links == ("/wheels",)


def test_lists_accept_lists() -> None:
    cfg = parse("class_names: [cat, dog]\nmodel_params_path: [/in/models/s/a.pt, /in/models/s/b.py]\n")
    assert cfg.class_names == ("cat", "dog")
    assert cfg.model_params_path == ("/in/models/s/a.pt", "/in/models/s/b.py")


def test_list_item_that_yaml_read_as_a_number_is_refused() -> None:
    e = refused("class_names: [cat, 1.10]\n")
    assert "class_names" in e.message and "the number 1.1" in e.message and "quotes" in (e.hint or "")


def test_duplicate_class_name_is_refused() -> None:
    assert "'cat' more than once" in refused("class_names: [cat, dog, cat]\n").message


def test_training_needs_class_names_but_mining_does_not() -> None:
    e = refused("gpu_id: ''\n", kinds=TRAINING)
    assert "class_names is empty" in e.message
    assert parse("gpu_id: ''\n", kinds=frozenset({TaskKind.MINING})).class_names == ()


def test_numbers_accept_strings() -> None:
    cfg = parse("gpu_count: '2'\nobject_type: '3'\ngpu_id: 0,1\n")
    assert (cfg.gpu_count, cfg.object_type, cfg.gpu_id) == (2, contract.ObjectType.SEMANTIC_SEGMENTATION, "0,1")


def test_gpu_defaults_to_cpu_and_gpu_count_follows_gpu_id() -> None:
    assert (parse("{}").gpu_id, parse("{}").gpu_count) == ("", 0)
    assert parse("gpu_id: ' 0, 1 ,2'\n").gpu_count == 3
    assert parse("gpu_id: 0\n").gpu_id == "0"


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("gpu_count: two", "gpu_count"),
        ("gpu_count: -1", "gpu_count"),
        ("gpu_count: 1.5", "gpu_count"),
        ("gpu_id: cuda:0", "gpu_id"),
        ("object_type: 7", "object_type"),
        ("object_type: det", "object_type"),
        ("shm_size: lots", "shm_size"),
    ],
)
def test_bad_platform_values_are_refused_naming_the_key(line: str, key: str) -> None:
    assert key in refused(line + "\n").message


def test_object_type_defaults_to_detection() -> None:
    assert parse("{}").object_type is contract.ObjectType.DETECTION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", contract.DEFAULT_EXPORT_FORMAT),
        ("ark:raw", "ark:raw"),
        ("det-voc:raw", "det-voc:raw"),
        ("COCO:RAW", "coco:raw"),
        ("none:raw", "none:raw"),
    ],
)
def test_export_format_is_normalised_and_defaults_to_the_platform_default(text: str, expected: str) -> None:
    assert parse(f"export_format: '{text}'\n").export_format == expected


@pytest.mark.parametrize("text", ["yolo:raw", "ark", "ark:jpg"])
def test_export_format_outside_the_contract_is_refused(text: str) -> None:
    e = refused(f"export_format: '{text}'\n")
    assert "export_format" in e.message and "ark:raw" in (e.hint or "")


def test_annotation_format_of_export_format() -> None:
    assert parse("export_format: det-ark:raw\n").annotation_format == "ark"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3600", 3600.0),
        ("'90m'", 5400.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("'1.5h'", 5400.0),
        ("45s", 45.0),
        ("1d", 86400.0),
        ("2.5", 2.5),
    ],
)
def test_timeout_accepts_numbers_and_durations(text: str, seconds: float) -> None:
    assert parse(f"live_code_timeout: {text}\n").options.timeout == seconds


@pytest.mark.parametrize("text", ["0", "-5", "2 hours", "1h30", "forever", ".nan", "true"])
def test_timeout_refuses_nonsense(text: str) -> None:
    e = refused(f"live_code_timeout: {text}\n")
    assert "live_code_timeout must be a positive duration" in e.message and "2h" in (e.hint or "")


def test_no_timeout_by_default() -> None:
    assert parse("{}").options == config.Options()


def test_pypi_mirror_is_the_index_url() -> None:
    assert parse("pypi_mirror: https://m.invalid/simple\n").package_index.index_url == "https://m.invalid/simple"
    same = parse("pypi_mirror: https://m.invalid/simple\npip_index_url: https://m.invalid/simple/\n")
    assert same.package_index.index_url == "https://m.invalid/simple/"


def test_pypi_mirror_and_a_different_index_url_are_refused_without_showing_them() -> None:
    e = refused("pypi_mirror: https://u:tok@a.invalid/simple\npip_index_url: https://b.invalid/simple\n")
    assert "pip_index_url and the legacy pypi_mirror" in e.message
    assert "tok" not in e.render()


def test_hyperparameters_are_everything_else_and_read_only() -> None:
    cfg = parse("""\
        task_id: t1
        class_names: [cat]
        git_url: u
        git_tag: v1
        pip_offline: true
        epochs: 10
        lr: 0.01
        max_boxes: 50
        augment: {flip: true}
        """)
    assert dict(cfg.hyperparameters) == {"epochs": 10, "lr": 0.01, "max_boxes": 50, "augment": {"flip": True}}
    with pytest.raises(TypeError):
        cfg.hyperparameters["epochs"] = 1  # type: ignore[index]  # writes to a read-only mapping on purpose
    assert cfg.raw["git_tag"] == "v1" and cfg.raw["epochs"] == 10
    with pytest.raises(record.FrozenInstanceError):
        cfg.gpu_count = 3  # type: ignore[misc]  # assigns to a frozen record on purpose


def test_hyperparameters_do_not_share_values_with_the_caller() -> None:
    data: dict[str, Any] = {"augment": {"flip": True}}
    cfg = config.parse_config(data)
    data["augment"]["flip"] = False
    assert cfg.hyperparameters["augment"] == {"flip": True}


def test_merge_hyperparameters_platform_wins_and_inputs_stay_untouched() -> None:
    defaults = {"epochs": 1, "lr": 0.1, "aug": {"flip": False}}
    code = {"epochs": 5, "batch": 8}
    platform = {"epochs": 10, "class_names": ["cat"]}
    merged = config.merge_hyperparameters(defaults, code, platform)
    assert merged == {"epochs": 10, "lr": 0.1, "aug": {"flip": False}, "batch": 8, "class_names": ["cat"]}
    merged["aug"]["flip"] = True
    assert defaults["aug"] == {"flip": False}
    assert config.merge_hyperparameters(None, None, {"a": 1}) == {"a": 1}


# -- files: refused shapes and contents --------------------------------------------------------


def read_refused(path: Path, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config.read_yaml_mapping(path, **kwargs)
    assert str(path) in info.value.message
    return info.value


def test_huge_file_is_refused_before_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    with open(path, "wb") as f:
        f.write(b"a: 1\n")
        f.truncate(100 << 20)  # sparse 100 MiB
    e = read_refused(path)
    assert "larger than 1024 KiB" in e.message


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes("epochs: 3\nname: caf\xe9\n".encode("latin-1"))
    e = read_refused(path)
    assert "not UTF-8" in e.message and "UTF-8" in (e.hint or "")


def test_utf16_file_is_refused_as_such(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes("epochs: 3\n".encode("utf-16"))
    assert "UTF-16" in read_refused(path).message


def test_utf8_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\xef\xbb\xbfepochs: 3\r\nlr: 0.1\r\n")
    assert config.read_yaml_mapping(path)[0] == {"epochs": 3, "lr": 0.1}


_MAPPING = "must be a YAML mapping"
_TAG = ("tag", "not allowed", "line 1")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # the top level is a mapping
        ("- a\n- b\n", (_MAPPING, "a list")),
        ("just text\n", (_MAPPING, "str")),
        ("3\n", (_MAPPING, "the number 3")),
        # no tags, safe or not
        ("a: !!python/object/apply:os.system ['touch /tmp/pwned']\n", _TAG),
        ("a: !custom 1\n", _TAG),
        ("a: !!str 1.10\n", _TAG),
        ("a: !!map {b: 1}\n", _TAG),
        # one document of valid YAML
        ("a: 1\n---\nb: 2\n", ("single document",)),
        ("a:\n\t- 1\n", ("'\\t'",)),
        ("a: [1, 2\n", ("not valid YAML",)),
        ("a: 'x\x00'\n", ("not valid YAML",)),
    ],
)
def test_a_config_file_that_is_not_a_plain_yaml_mapping_is_refused_saying_why(
    tmp_path: Path, text: str, says: tuple[str, ...]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    message = read_refused(path).message  # which names the file
    assert all(part in message for part in says), message


def test_billion_laughs_is_refused_at_the_first_anchor(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    e = read_refused(path)
    assert "anchor or alias" in e.message and "line 1" in e.message


def test_alias_without_anchor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\nb: *a\n")
    # PyYAML reports an undefined alias itself; either way it is a ConfigError naming the file
    read_refused(path)


def test_duplicate_key_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("git_tag: v1\nepochs: 3\ngit_tag: v2\n")
    e = read_refused(path)
    assert "'git_tag' twice" in e.message and "line 3" in e.message


def test_duplicate_key_in_a_nested_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("augment:\n  flip: true\n  flip: false\n")
    assert "'flip' twice" in read_refused(path).message


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("a: " + "[" * 10000 + "]" * 10000 + "\n")
    assert "deeper than" in read_refused(path).message


def test_yaml_syntax_error_does_not_echo_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("pip_index_url: https://u:s3cret@x.invalid/simple\nb: [\n")
    assert "s3cret" not in read_refused(path).render()


def test_empty_config_is_an_empty_mapping_but_empty_env_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# only a comment\n")
    assert config.read_yaml_mapping(path) == ({}, {})
    assert "is empty" in read_refused(path, empty_ok=False).message


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    assert "does not exist" in read_refused(tmp_path / "nope.yaml").message
    (tmp_path / "dir.yaml").mkdir()
    assert "is not a regular file" in read_refused(tmp_path / "dir.yaml").message


# -- load_task -----------------------------------------------------------------------------------


def test_load_task_maps_container_paths_and_keeps_them_as_written(tmp_path: Path) -> None:
    in_dir = write_task(tmp_path, env_of(), {"class_names": ["cat"], "task_id": "t" + "0" * 29, "epochs": 3})
    task = config.load_task(in_dir, out_dir=tmp_path / "out")
    assert task.kinds == TRAINING and task.ordered_kinds == (TaskKind.TRAINING,)
    assert task.env.input.training_index_file == "/in/train-index.tsv"
    assert task.host_path(task.env.input.training_index_file) == str(in_dir / "train-index.tsv")
    assert task.host_path(task.env.output.monitor_file) == str(tmp_path / "out" / "monitor.txt")
    assert task.host_path("/input/x") == "/input/x"
    assert task.config_file == str(in_dir / "config.yaml")
    assert task.hyperparameters == {"epochs": 3} and task.source is None


def test_load_task_with_explicit_files(tmp_path: Path) -> None:
    in_dir = write_task(tmp_path, env_of(contract.PROTOCOL_0_0_1, frozenset({TaskKind.INFER})), "gpu_id: ''\n")
    task = config.load_task(env_file=in_dir / "env.yaml", config_file=in_dir / "config.yaml")
    assert task.protocol == "0.0.1" and task.kinds == {TaskKind.INFER}
    assert task.path_map == config.PathMap()


def test_load_task_names_the_file_of_a_bad_value(tmp_path: Path) -> None:
    in_dir = write_task(tmp_path, env_of(), "class_names: [cat]\ngit_url: u\ngit_tag: 1.10\n")
    with pytest.raises(ConfigError) as info:
        config.load_task(in_dir)
    assert str(in_dir / "config.yaml") in info.value.message and 'git_tag: "1.10"' in info.value.message


def test_load_task_refuses_an_empty_env_file(tmp_path: Path) -> None:
    in_dir = write_task(tmp_path, "", "{}")
    with pytest.raises(ConfigError, match="env.yaml is empty"):
        config.load_task(in_dir)


def test_load_task_warns_when_task_ids_differ(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    in_dir = write_task(tmp_path, env_of(), {"class_names": ["cat"], "task_id": "other"})
    with caplog.at_level(logging.WARNING, logger="live_code.task.config"):
        task = config.load_task(in_dir)
    assert task.task_id == "t" + "0" * 29 and "differs" in caplog.text


def test_path_map_matches_whole_components_and_the_longest_root() -> None:
    pm = config.PathMap((("/in", "/h/in"), ("/in/models", "/m")))
    assert pm.to_host("/in") == "/h/in"
    assert pm.to_host("/in/assets/a.png") == "/h/in/assets/a.png"
    assert pm.to_host("/in/models/s/a.pt") == "/m/s/a.pt"
    assert pm.to_host("/inx/a") == "/inx/a"
    assert config.PathMap.from_dirs(out_dir="/o").to_host("/out/monitor.txt") == "/o/monitor.txt"


def test_the_harness_writes_the_yaml_pyyamls_python_emitter_writes() -> None:
    """``_yaml.dump`` uses libyaml's emitter (where PyYAML has it, as its wheels do) for the merged
    config and the provenance: it must write the values those records hold (quoted look-alikes,
    unicode, long and multi-line strings, nesting) as ``yaml.safe_dump`` does, and the same text
    but for the characters libyaml escapes (outside the BMP, NEL, the line separators)."""
    from live_code import _yaml

    assert hasattr(yaml, "CSafeDumper"), "this PyYAML lacks libyaml: the harness's dumper is the Python one"
    data = {
        "task_id": "t" + "0" * 29,
        "looks_like": ["yes", "no", "on", "1.0", "1e3", "0x1f", "~", "null", "2024-01-01", "", " lead", "trail "],
        "specials": ["a: b", "- x", "# not a comment", "@at", "`tick`", "%pct", "{x}", "[y]", "'q'", '"d"', "a\tb"],
        "unicode": ["模型", "café", "emoji \U0001f600", "\u2028sep", "\x85nel"],
        "long": "word " * 40,
        "lines": "first\nsecond\n\nfourth\n",
        "numbers": [0, -1, 3.5, 1e-9, float("inf"), True, None],
        "nested": {"list": [{"k": [1, [2, {"deep": "v"}]]}], "empty": {}, "none": []},
        "timings": {"task": 0.005, "fetch": 0.213},
    }
    for sort_keys in (True, False):
        back = yaml.safe_load(_yaml.dump(data, sort_keys=sort_keys))
        assert back == data and list(back) == (sorted(data) if sort_keys else list(data))
    plain = {k: v for k, v in data.items() if k != "unicode"} | {"unicode": ["模型", "café", "naïve"]}
    assert _yaml.dump(plain, sort_keys=False) == yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
