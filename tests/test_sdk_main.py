"""sdk.main: the task kinds env.yaml asks for run in the contract's order, progress frames each,
and a failure ends in monitor.txt's error state with YMIR's return code and a one-line reason."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from live_code import contract, sdk
from live_code.contract import MonitorState, ReturnCode, TaskKind

T, M, I = TaskKind.TRAINING, TaskKind.MINING, TaskKind.INFER  # noqa: E741  (the kinds' initials)


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``task(kinds, config=None)`` writes env.yaml and config.yaml, points the SDK at them and
    returns the out dir."""
    monkeypatch.delenv(contract.CONFIG_FILE_VAR, raising=False)
    monkeypatch.delenv("RANK", raising=False)

    def _make(kinds: Iterable[TaskKind] = (T,), config: dict[str, Any] | None = None) -> Path:
        in_dir, out_dir = tmp_path / "in", tmp_path / "out"
        in_dir.mkdir(exist_ok=True)
        (out_dir / "models").mkdir(parents=True, exist_ok=True)
        env = contract.env_yaml(
            protocol="1.1.0", task_id="t1", kinds=frozenset(kinds), in_dir=str(in_dir), out_dir=str(out_dir)
        )
        (in_dir / "env.yaml").write_text(yaml.safe_dump(env))
        (in_dir / "config.yaml").write_text(yaml.safe_dump(config or {"class_names": ["cat"]}))
        monkeypatch.setenv(contract.ENV_FILE_VAR, str(in_dir / "env.yaml"))
        return out_dir

    return _make


def _monitor(out: Path) -> contract.MonitorRecord:
    return contract.parse_monitor((out / "monitor.txt").read_text())


class Recorder:
    """Task functions that note what ran, with the progress monitor.txt showed when each started."""

    def __init__(self, out: Path) -> None:
        self.out, self.calls = out, []

    def __call__(self, kind: str) -> Callable[[sdk.Env, dict[str, Any]], None]:
        def run(env: sdk.Env, config: dict[str, Any]) -> None:
            self.calls.append((kind, _monitor(self.out).percent, env.task_id, config["class_names"]))

        return run


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ((T,), [("train", 0.0)]),
        ((M,), [("mine", 0.0)]),
        ((I,), [("infer", 0.0)]),
        ((I, M), [("mine", 0.0), ("infer", 0.5)]),  # mining first, each kind in its half of monitor.txt
    ],
)
def test_runs_the_asked_kinds_in_order_between_progress_records(
    task: Callable[..., Path], kinds: tuple[TaskKind, ...], expected: list[tuple[str, float]]
) -> None:
    out = task(kinds)
    record = Recorder(out)
    assert sdk.main(train=record("train"), mine=record("mine"), infer=record("infer"), exit=False) == 0
    assert [(k, p) for k, p, _, _ in record.calls] == expected
    assert {(c[2], tuple(c[3])) for c in record.calls} == {("t1", ("cat",))}
    final = _monitor(out)
    assert (final.percent, final.state, final.return_code) == (1.0, MonitorState.RUNNING, 0)  # never DONE


def test_exit_ends_the_process_with_the_status(task: Callable[..., Path]) -> None:
    task((T,))
    with pytest.raises(SystemExit) as stopped:
        sdk.main(train=lambda env, config: None)
    assert stopped.value.code == 0


def test_a_kind_without_a_function_fails_before_anything_runs(task: Callable[..., Path]) -> None:
    out = task((M, I))
    record = Recorder(out)
    assert sdk.main(mine=record("mine"), exit=False) == 1
    assert record.calls == []
    final = _monitor(out)
    assert (final.state, final.return_code) == (MonitorState.ERROR, ReturnCode.CONFIG_ERROR)
    assert final.message == "env.yaml asks for infer, which this repository does not implement"


class OwnCode(Exception):
    return_code = ReturnCode.NO_GPU


class OutOfMemoryError(RuntimeError):
    """Named as torch.cuda.OutOfMemoryError."""


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (sdk.ModelNotFoundError("no .pt among model_params_path []"), ReturnCode.MODEL_NOT_FOUND),
        (sdk.ConfigValueError("config key 'epochs': 'x' is not an int"), ReturnCode.CONFIG_ERROR),
        (sdk.EnvFileError("env.yaml: task_id must be a string"), ReturnCode.CONFIG_ERROR),
        (sdk.DatasetFormatError("/in/train-index.tsv", "line 3", "no such file"), ReturnCode.DATASET_ERROR),
        (sdk.ImageFormatError("/in/assets/a.gif is not an image"), ReturnCode.UNKNOWN_IMAGE_FORMAT),
        (sdk.ResultError("a box without a class"), ReturnCode.CONFIG_ERROR),
        (MemoryError(), ReturnCode.OUT_OF_MEMORY),
        (OutOfMemoryError("CUDA ran out"), ReturnCode.OUT_OF_MEMORY),
        (RuntimeError("CUDA error: out of memory"), ReturnCode.OUT_OF_MEMORY),
        (FloatingPointError("the loss became nan at epoch 3"), ReturnCode.NAN_IN_TRAINING),
        (ConnectionError("connection refused"), ReturnCode.NETWORK_ERROR),
        (TimeoutError("read timed out"), ReturnCode.NETWORK_ERROR),
        (OwnCode("gpu_id '0' but no CUDA device"), ReturnCode.NO_GPU),
        (sdk.TaskError("the image lacks libGL", ReturnCode.CONTAINER_ERROR), ReturnCode.CONTAINER_ERROR),
        (sdk.TaskError("a code of the job's own", 399999), 399999),
        (ZeroDivisionError("division by zero"), ReturnCode.CONTAINER_ERROR),
        (KeyError("boxes"), ReturnCode.CONTAINER_ERROR),
    ],
)
def test_an_exception_in_a_task_function_reports_its_ymir_code(
    task: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    code: int,
) -> None:
    out = task((T,))

    def train(env: sdk.Env, config: dict[str, Any]) -> None:
        raise error

    assert sdk.main(train=train, exit=False) == 1
    final = _monitor(out)
    assert (final.percent, final.state, final.return_code) == (1.0, MonitorState.ERROR, code)
    assert final.message == sdk.one_line_reason(error)
    assert len((out / "monitor.txt").read_text().splitlines()) == 1  # no traceback in monitor.txt
    captured = capsys.readouterr()
    assert "Traceback (most recent call last)" in captured.err and "in train" in captured.err
    (logged,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert logged.startswith(f"training failed with YMIR code {code}") and logged.endswith(final.message)


def test_the_reason_is_one_line_and_names_an_unexpected_error_type() -> None:
    assert sdk.one_line_reason(sdk.ConfigValueError("bad\n  value\tthere")) == "bad value there"
    assert sdk.one_line_reason(KeyError("boxes")) == "KeyError: 'boxes'"
    assert sdk.one_line_reason(MemoryError()) == "MemoryError"
    long = sdk.one_line_reason(ValueError("x" * 2000))
    assert len(long) == 500 and long.endswith("...")


def test_the_errors_mapping_comes_first() -> None:
    errors = {KeyError: 300005, sdk.SdkError: 300002}
    assert sdk.return_code_for(KeyError("x"), errors) == 300005
    assert sdk.return_code_for(sdk.ModelNotFoundError("x"), errors) == 300002
    assert sdk.return_code_for(ValueError("x"), errors) == ReturnCode.CONTAINER_ERROR


def test_a_later_kind_does_not_run_after_a_failure(task: Callable[..., Path]) -> None:
    out = task((M, I))
    record = Recorder(out)

    def mine(env: sdk.Env, config: dict[str, Any]) -> None:
        raise sdk.ModelNotFoundError("no model")

    assert sdk.main(mine=mine, infer=record("infer"), exit=False) == 1
    assert record.calls == []
    assert _monitor(out).return_code == ReturnCode.MODEL_NOT_FOUND


def test_module_function_names_are_imported_only_for_the_kinds_that_run(
    task: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = (
        "import pathlib\n\ndef run(env, config):\n    pathlib.Path(env.output.root_dir, '{name}.ran').write_text('')\n"
    )
    for name in ("lc_test_train", "lc_test_infer"):
        (tmp_path / f"{name}.py").write_text(code.format(name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = task((I,))
    assert sdk.main(train="lc_test_train:run", infer="lc_test_infer:run", exit=False) == 0
    assert (out / "lc_test_infer.ran").exists()
    assert "lc_test_train" not in sys.modules and not (out / "lc_test_train.ran").exists()


@pytest.mark.parametrize(
    ("ref", "reason"),
    [("no_colon", "neither a function nor 'module:function'"), ("json:no_such", "module 'json' has no function")],
)
def test_a_bad_function_name_is_a_config_error(task: Callable[..., Path], ref: str, reason: str) -> None:
    out = task((T,))
    assert sdk.main(train=ref, exit=False) == 1
    final = _monitor(out)
    assert final.return_code == ReturnCode.CONFIG_ERROR and reason in final.message


def test_without_env_yaml_it_fails_without_writing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(tmp_path / "nope.yaml"))
    assert sdk.main(train=lambda env, config: None, exit=False) == 1
    assert "cannot start the task: cannot read env.yaml" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_a_bad_config_file_is_a_config_error(task: Callable[..., Path]) -> None:
    out = task((T,))
    (out.parent / "in" / "config.yaml").write_text("[unclosed")
    assert sdk.main(train=lambda env, config: None, exit=False) == 1
    assert _monitor(out).return_code == ReturnCode.CONFIG_ERROR


def test_other_ranks_leave_progress_to_rank_0(task: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    out = task((T,))
    monkeypatch.setenv("RANK", "1")
    assert sdk.main(train=lambda env, config: None, exit=False) == 0
    assert not (out / "monitor.txt").exists()
    monkeypatch.setenv("RANK", "0")
    assert sdk.main(train=lambda env, config: None, exit=False) == 0
    assert _monitor(out).percent == 1.0
