"""The live-code command line: success output, one clear paragraph and a fixed exit code on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from live_code import cli, contract
from live_code.commands._cli import parse_overrides
from live_code.contract import TaskKind
from live_code.errors import ConfigError
from live_code.task import config


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m live_code ARGS`` as a user runs it (LIVE_CODE_CACHE comes from the autouse fixture)."""
    return subprocess.run(
        (sys.executable, "-m", "live_code", *args), cwd=cwd, capture_output=True, text=True, timeout=60
    )


def assert_one_clear_paragraph(proc: subprocess.CompletedProcess[str], exit_code: int, *needles: str) -> None:
    assert proc.returncode == exit_code, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err and "\n\n" not in err
    for needle in needles:
        assert needle in err


def test_sample_dataset_writes_a_task_and_lists_it(tmp_path: Path) -> None:
    proc = run_cli(
        "sample-dataset",
        "task",
        "--task",
        "mining+infer",
        "--format",
        "coco",
        "--protocol",
        "1.0.0",
        "--images",
        "4",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote a sample mining+infer task to {tmp_path / 'task'}" in proc.stdout
    assert "in/candidate-index.tsv" in proc.stdout
    task = config.load_task(tmp_path / "task" / "in", out_dir=tmp_path / "task" / "out")
    assert task.kinds == {TaskKind.MINING, TaskKind.INFER} and task.protocol == "1.0.0"
    assert len((tmp_path / "task" / "in" / "candidate-index.tsv").read_text().splitlines()) == 4


def test_sample_dataset_defaults(tmp_path: Path) -> None:
    assert cli.main(["sample-dataset", str(tmp_path / "t")]) == 0
    task = config.load_task(tmp_path / "t" / "in")
    assert task.kinds == {TaskKind.TRAINING} and task.protocol == contract.PROTOCOL_1_1_0
    assert task.config.export_format == "ark:raw"
    assert len(list((tmp_path / "t" / "in" / "assets").rglob("*.png"))) == 24


@pytest.mark.parametrize("images", ["0", "-3"])
def test_sample_dataset_with_too_few_images_is_a_config_error(tmp_path: Path, images: str) -> None:
    proc = run_cli("sample-dataset", "t", "--images", images, cwd=tmp_path)
    assert_one_clear_paragraph(proc, ConfigError.exit_code, "error: config-error:", "--images", "hint:")
    assert not (tmp_path / "t").exists()


def test_sample_dataset_with_a_non_number_of_images_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("sample-dataset", "t", "--images", "many", cwd=tmp_path)
    assert_one_clear_paragraph(proc, 2, "--images", "invalid int value: 'many'")


def test_sample_dataset_refuses_a_non_empty_dir_then_force_replaces_it(tmp_path: Path) -> None:
    (tmp_path / "t" / "in").mkdir(parents=True)
    (tmp_path / "t" / "in" / "env.yaml").write_text("mine\n")
    proc = run_cli("sample-dataset", "t", "--images", "3", cwd=tmp_path)
    assert_one_clear_paragraph(proc, ConfigError.exit_code, "already exists and is not empty", "--force")
    assert (tmp_path / "t" / "in" / "env.yaml").read_text() == "mine\n"
    proc = run_cli("sample-dataset", "t", "--images", "3", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "task_id" in (tmp_path / "t" / "in" / "env.yaml").read_text()


def test_sample_dataset_old_protocol_with_voc_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sample-dataset", str(tmp_path / "t"), "--format", "voc", "--protocol", "0.0.1"]) == 2
    err = capsys.readouterr().err
    assert "only as ark txt" in err and "Traceback" not in err


def test_cache_gc_without_limits_is_a_clear_error(tmp_path: Path) -> None:
    proc = run_cli("cache", "gc", cwd=tmp_path)
    assert_one_clear_paragraph(proc, ConfigError.exit_code, "cache gc needs --max-size or --max-age", "--max-age 30d")


def test_cache_ls_on_an_empty_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cache", "ls"]) == 0
    assert "(empty)" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("frobnicate", cwd=tmp_path)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_lists_the_missing_outputs_of_a_task(tmp_path: Path) -> None:
    assert cli.main(["sample-dataset", str(tmp_path / "t"), "--task", "mining+infer", "--images", "3"]) == 0
    proc = run_cli("validate", "--in", "t/in", "--out", "t/out", cwd=tmp_path)
    assert proc.returncode == 6 and "Traceback" not in proc.stderr
    assert "result.tsv" in proc.stdout and "infer-result.json" in proc.stdout and "monitor.txt" in proc.stdout


def test_run_without_a_task_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    proc = run_cli("run", "--in", "in", "--out", "out", cwd=tmp_path)
    assert_one_clear_paragraph(proc, ConfigError.exit_code, "holds no env.yaml", "--in DIR")


def test_set_options_are_read_as_yaml_values() -> None:
    assert parse_overrides(["epochs=3", "model = yolov5n", "lr=0.01", "tag="]) == {
        "epochs": 3,
        "model": "yolov5n",
        "lr": 0.01,
        "tag": "",
    }


@pytest.mark.parametrize(
    "command", [["check", "REPO"], ["local", "--repo", "REPO", "--task", "training", "--dataset", "sample"]]
)
def test_set_without_a_key_and_value_names_the_option(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(tmp_path) if a == "REPO" else a for a in command]
    assert cli.main([*argv, "--work", str(tmp_path / "w"), "--set", "epochs"]) == 2
    err = capsys.readouterr().err
    assert "--set takes KEY=VALUE" in err and "epochs" in err


def test_a_bug_is_exit_70_with_a_crash_log_that_holds_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug cannot be had on demand: the run's entry is replaced by one that raises, as a bug would."""
    from live_code.run import pipeline

    def broken(settings: object) -> None:
        raise ZeroDivisionError("a bug, with https://user:s3cret@example.com/r.git in it")

    monkeypatch.setattr(pipeline, "run", broken)
    monkeypatch.setenv("LIVE_CODE_CACHE", str(tmp_path / "cache"))
    assert cli.main(["run", "--in", str(tmp_path), "--out", str(tmp_path)]) == 70
    (log,) = (tmp_path / "cache" / "logs").glob("crash-*.log")
    assert str(log) in capsys.readouterr().err
    text = log.read_text()
    assert text.startswith("live-code ") and f"argv run --in {tmp_path}" in text
    assert "ZeroDivisionError: a bug" in text and "s3cret" not in text
