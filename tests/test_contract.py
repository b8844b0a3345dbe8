"""contract.py: the YMIR contract as data (ymir-contract.md sections 2, 5, 6, 8)."""

from __future__ import annotations

import math

import pytest

from live_code import contract
from live_code.contract import MonitorRecord, MonitorState, TaskKind

ALL = frozenset(TaskKind)
T, M, I = TaskKind.TRAINING, TaskKind.MINING, TaskKind.INFER  # noqa: E741 (I is INFER beside T and M: the kinds as the tables write them)


# -- protocol helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("0.0.1", (0, 0, 1)), ("1.1.0", (1, 1, 0)), ("2", (2,))])
def test_protocol_tuple_reads_dotted_digits(text: str, expected: tuple[int, ...]) -> None:
    assert contract.protocol_tuple(text) == expected


@pytest.mark.parametrize("text", ["", "1.x", "v1.1.0", "1..0", "1.1.0-rc1"])
def test_protocol_tuple_refuses_what_is_not_a_version(text: str) -> None:
    with pytest.raises(ValueError, match="not a protocol version"):
        contract.protocol_tuple(text)


@pytest.mark.parametrize(
    ("protocol", "stages", "stage_dirs", "list_key", "angle"),
    [
        ("0.0.1", False, False, "annotations", False),
        ("1.0.0", True, False, "boxes", True),
        ("1.1.0", True, True, "boxes", True),
    ],
)
def test_protocol_helpers_switch_formats_per_version(
    protocol: str,
    stages: bool,
    stage_dirs: bool,
    list_key: str,
    angle: bool,
) -> None:
    assert contract.uses_model_stages(protocol) is stages
    assert contract.allows_stage_dirs(protocol) is stage_dirs
    assert contract.infer_list_key(protocol) == list_key
    assert contract.allows_rotate_angle(protocol) is angle


def test_protocol_versions_are_ordered_and_default_is_the_oldest() -> None:
    tuples = [contract.protocol_tuple(p) for p in contract.PROTOCOL_VERSIONS]
    assert tuples == sorted(tuples)
    assert contract.DEFAULT_PROTOCOL == contract.PROTOCOL_VERSIONS[0] == "0.0.1"


def test_required_output_and_index_cover_every_kind() -> None:
    assert set(contract.REQUIRED_OUTPUT) == set(TaskKind) == set(contract.REQUIRED_INDEX)
    assert all(k in contract.ENV_OUTPUT_DEFAULTS for k in contract.REQUIRED_OUTPUT.values())
    assert all(k in contract.ENV_INPUT_DEFAULTS for keys in contract.REQUIRED_INDEX.values() for k in keys)


# -- env.yaml -------------------------------------------------------------------------------------


def test_env_yaml_for_protocol_1_1_0_has_the_v2_only_keys() -> None:
    env = contract.env_yaml(protocol="1.1.0", task_id="t1", kinds={T})
    assert env["protocol_version"] == "1.1.0"
    assert env["manifest_file"] == "/img-man/manifest.yaml"
    assert env["output"]["executor_log_file"] == "/out/ymir-executor-out.log"  # type: ignore[index]  # env_yaml returns dict[str, object]
    assert (env["run_training"], env["run_mining"], env["run_infer"]) == (True, False, False)


def test_env_yaml_for_protocol_1_0_0_has_a_version_but_no_v2_keys() -> None:
    env = contract.env_yaml(protocol="1.0.0", task_id="t1", kinds={M})
    assert env["protocol_version"] == "1.0.0"
    assert "manifest_file" not in env
    assert "executor_log_file" not in env["output"]  # type: ignore[operator]  # env_yaml returns dict[str, object]


def test_env_yaml_for_protocol_0_0_1_has_no_version_key() -> None:
    env = contract.env_yaml(protocol="0.0.1", task_id="t1", kinds={I})
    assert "protocol_version" not in env
    assert "manifest_file" not in env
    assert "executor_log_file" not in env["output"]  # type: ignore[operator]  # env_yaml returns dict[str, object]


@pytest.mark.parametrize(
    ("kinds", "used"),
    [
        ({T}, {"training_index_file", "val_index_file"}),
        ({M}, {"candidate_index_file"}),
        ({M, I}, {"candidate_index_file"}),
    ],
)
def test_env_yaml_blanks_the_index_files_a_task_does_not_use(kinds: set[TaskKind], used: set[str]) -> None:
    inputs = contract.env_yaml(protocol="1.1.0", task_id="t", kinds=kinds)["input"]
    for key in ("training_index_file", "val_index_file", "candidate_index_file"):
        assert (inputs[key] != "") is (key in used), key  # type: ignore[index]  # env_yaml returns dict[str, object]


def test_env_yaml_rebases_paths_onto_other_roots() -> None:
    env = contract.env_yaml(protocol="1.1.0", task_id="t", kinds={T}, in_dir="/tmp/x/in", out_dir="/tmp/x/out")
    assert env["input"]["training_index_file"] == "/tmp/x/in/train-index.tsv"  # type: ignore[index]  # env_yaml returns dict[str, object]
    assert env["input"]["config_file"] == "/tmp/x/in/config.yaml"  # type: ignore[index]  # env_yaml returns dict[str, object]
    assert env["output"]["training_result_file"] == "/tmp/x/out/models/result.yaml"  # type: ignore[index]  # env_yaml returns dict[str, object]
    assert env["manifest_file"] == "/img-man/manifest.yaml"  # not under /in: left alone


# -- monitor.txt ----------------------------------------------------------------------------------


def test_format_then_parse_monitor_round_trips_a_running_record() -> None:
    record = MonitorRecord("t0001", 1663839980.5, 0.25, MonitorState.RUNNING)
    text = contract.format_monitor(record)
    assert text == "t0001\t1663839980.500000\t0.250000\t2\t0\n"
    assert contract.parse_monitor(text) == record


def test_format_then_parse_monitor_round_trips_an_error_with_a_traceback() -> None:
    message = "boom\nTraceback (most recent call last):\n  File x\nValueError: bad"
    record = MonitorRecord("t1", 10.0, 1.0, MonitorState.ERROR, 300002, message)
    text = contract.format_monitor(record)
    first, _, rest = text.partition("\n")
    assert first.split("\t") == ["t1", "10.000000", "1.000000", "4", "300002", "boom"]
    assert rest.startswith("Traceback")
    assert contract.parse_monitor(text) == record


def test_format_monitor_turns_tabs_of_the_short_message_into_spaces() -> None:
    text = contract.format_monitor(MonitorRecord("t", 1.0, 1.0, MonitorState.ERROR, 1, "a\tb"))
    assert text.count("\t") == 5
    assert contract.parse_monitor(text).message == "a b"


@pytest.mark.parametrize("percent", [-0.01, 1.01, math.nan, math.inf])
def test_format_monitor_refuses_a_percent_outside_0_to_1(percent: float) -> None:
    with pytest.raises(ValueError, match="percent"):
        contract.format_monitor(MonitorRecord("t", 1.0, percent, MonitorState.RUNNING))


def test_parse_monitor_reads_the_four_field_legacy_line() -> None:
    record = contract.parse_monitor("train_0\t1622552974\t0.5\t2\n")
    assert record == MonitorRecord("train_0", 1622552974.0, 0.5, MonitorState.RUNNING, 0, "")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "at least 4"),
        ("t\t1\t0.5\n", "at least 4"),
        ("t 1 0.5 2\n", "at least 4"),  # spaces are not separators
        ("t\tnow\t0.5\t2\n", "malformed"),
        ("t\t1\t0.5\t7\n", "malformed"),  # unknown state
        ("t\t1\t0.5\t2\tx\n", "malformed"),  # return code not an int
    ],
)
def test_parse_monitor_refuses_what_the_platform_refuses(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        contract.parse_monitor(text)


# -- task percent ranges --------------------------------------------------------------------------


def test_task_percent_range_is_everything_for_a_single_task() -> None:
    assert contract.task_percent_range(T, {T}) == (0.0, 1.0)
    assert contract.task_percent_range(I, {I}) == (0.0, 1.0)


def test_task_percent_range_puts_mining_before_infer() -> None:
    assert contract.task_percent_range(M, {M, I}) == (0.0, 0.5)
    assert contract.task_percent_range(I, {I, M}) == (0.5, 1.0)


def test_task_percent_range_refuses_a_kind_the_task_does_not_run() -> None:
    with pytest.raises(ValueError, match="training is not one of"):
        contract.task_percent_range(T, {M, I})


def test_task_percent_ranges_tile_0_to_1_for_every_combination() -> None:
    for kinds in ({T}, {M}, {I}, {M, I}, set(ALL)):
        ranges = sorted(contract.task_percent_range(k, kinds) for k in kinds)
        assert ranges[0][0] == 0.0 and ranges[-1][1] == 1.0
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


# -- stages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["epoch_10", "best", "_x", "E1"])
def test_stage_name_re_accepts_identifiers(name: str) -> None:
    assert contract.STAGE_NAME_RE.match(name)


@pytest.mark.parametrize("name", ["10", "epoch-10", "a/b", "", "é"])
def test_stage_name_re_refuses_what_is_not_an_identifier(name: str) -> None:
    assert not contract.STAGE_NAME_RE.match(name)


def test_main_metrics_are_stage_metrics_in_priority_order() -> None:
    assert contract.MAIN_METRICS == ("maskAP", "mIoU", "mAP")
    assert set(contract.MAIN_METRICS) <= set(contract.STAGE_METRICS)
