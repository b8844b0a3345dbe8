"""live_code.run.outputs: validators agree with the SDK writers, and every planted defect is reported
with its file and place (issue 3, acceptance 2)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from live_code import contract, sdk
from live_code.contract import TaskKind
from live_code.errors import OutputError
from live_code.run import outputs
from live_code.run.outputs import Problem
from tests.helpers.sdk_tasks import CLASSES, TASK_ID, make_task

T, M, I = TaskKind.TRAINING, TaskKind.MINING, TaskKind.INFER  # noqa: E741 (I is INFER beside T and M: the kinds as the tables write them)
CANDIDATES = [f"/in/assets/{i:02x}/{i:040x}.jpg" for i in range(4)]
A, B, C, D = (os.path.basename(c) for c in CANDIDATES)


def places(problems: list[Problem]) -> set[tuple[str, str]]:
    """(file name, place) of each problem."""
    return {(os.path.basename(p.file), p.place) for p in problems}


def _model(env: sdk.Env, *parts: str) -> None:
    path = Path(env.output.models_dir, *parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")


def _point_sdk(env_file: Path, monkeypatch: pytest.MonkeyPatch | None) -> sdk.Env | None:
    """With ``monkeypatch`` the SDK finds the task through LIVE_CODE_ENV_FILE (writers get no env=)."""
    if monkeypatch is None:
        return sdk.read_env(env_file)
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(env_file))
    return None


def write_training(tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch | None = None) -> sdk.Env:
    """Two stages (a shared config file at the root) written by the SDK."""
    given = _point_sdk(make_task(tmp_path, protocol, (T,)), monkeypatch)
    env = given or sdk.read_env()
    stage_dirs = contract.allows_stage_dirs(protocol)
    _model(env, "config.py")
    for i in (1, 2):
        _model(env, *((f"epoch_{i}", "w.pt") if stage_dirs else (f"w{i}.pt",)))
        files = ["w.pt" if stage_dirs else f"w{i}.pt", "config.py"]
        sdk.write_model_stage(f"epoch_{i}", files, {"mAP": 0.5 + i / 10, "tp": 3}, timestamp=i, env=given)
    if contract.uses_model_stages(protocol):
        _model(env, "attachments", "images", "pr.png")
        sdk.write_model_stage(
            "epoch_3",
            ["config.py"],
            0.1,
            timestamp=3,
            env=given,
            attachments={"images": ["pr.png"]},
            evaluate_config={"iou_thr": 0.5},
        )
    return env


def write_mining_infer(tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch | None = None) -> sdk.Env:
    given = _point_sdk(make_task(tmp_path, protocol, (M, I)), monkeypatch)
    env = given or sdk.read_env()
    sdk.write_mining_result([(c, i / 10) for i, c in enumerate(CANDIDATES)], env=given)
    sdk.write_infer_result(
        {
            CANDIDATES[0]: [sdk.Detection("cat", 0.9, 1.2, 2, 30, 40.4), sdk.Detection("dog", 0.1, 0, 0, 5, 5, 0.5)],
            CANDIDATES[1]: [],
            CANDIDATES[2]: [sdk.Detection.from_xyxy("person", 0.5, -1, -1, 100, 200)],
        },
        env=given,
    )
    for percent in (0.0, 1.0):
        sdk.write_progress(percent, task=M, env=given)
        sdk.write_progress(percent, task=I, env=given)
    return env


# -- the SDK's files validate ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_what_the_sdk_writes_for_training_validates(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
) -> None:
    env = write_training(tmp_path, protocol, monkeypatch)
    assert outputs.validate_outputs({T}, env.output.root_dir, protocol, CLASSES, None) == []
    assert outputs.validate_training_result(env.output.root_dir, protocol) == []  # a dir means <out>/models/result.yaml


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_what_the_sdk_writes_for_mining_and_infer_validates(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
) -> None:
    env = write_mining_infer(tmp_path, protocol, monkeypatch)
    assert outputs.validate_outputs({M, I}, env.output.root_dir, protocol, CLASSES, CANDIDATES) == []
    assert outputs.validate_monitor(env.output.monitor_file, TASK_ID) == []


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_a_monitor_error_the_sdk_writes_validates(tmp_path: Path, protocol: str) -> None:
    env = sdk.read_env(make_task(tmp_path, protocol, (T,)))
    sdk.write_error(sdk.ReturnCode.OUT_OF_MEMORY, "CUDA out of memory\ntraceback", env=env)
    assert outputs.validate_monitor(env.output.monitor_file, TASK_ID) == []


# -- training defects -----------------------------------------------------------------------------


def _edit_yaml(env: sdk.Env, change: Callable[[dict[str, object]], None]) -> None:
    path = Path(env.output.training_result_file)
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def _training_problems(env: sdk.Env) -> set[tuple[str, str]]:
    return places(outputs.validate_training_result(env.output.training_result_file, env.protocol_version))


def _stage_two(env: sdk.Env) -> tuple[Path, str, Callable[[dict[str, object]], dict[str, object]]]:
    """The first model file of stage epoch_2 on disk, its place in result.yaml, and how to reach the
    mapping that holds the stage's metric and files (the legacy file holds only epoch_2)."""
    protocol = env.protocol_version
    models = Path(env.output.models_dir)
    if protocol == "0.0.1":
        return models / "w2.pt", "model", lambda d: d
    path = models / "epoch_2" / "w.pt" if contract.allows_stage_dirs(protocol) else models / "w2.pt"
    return path, "model_stages.epoch_2.files", lambda d: d["model_stages"]["epoch_2"]


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_a_missing_model_file_is_reported_with_its_stage_and_index(tmp_path: Path, protocol: str) -> None:
    env = write_training(tmp_path, protocol)
    path, place, _ = _stage_two(env)
    os.unlink(path)
    assert _training_problems(env) == {("result.yaml", f"{place}[0]")}


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_a_listed_file_that_does_not_exist_is_reported(tmp_path: Path, protocol: str) -> None:
    env = write_training(tmp_path, protocol)
    _, place, stage = _stage_two(env)
    files_key = "model" if protocol == "0.0.1" else "files"
    _edit_yaml(env, lambda d: stage(d)[files_key].append("ghost.pt"))  # type: ignore[attr-defined]  # the YAML read as object, edited in place
    problems = outputs.validate_training_result(env.output.training_result_file, protocol)
    assert places(problems) == {("result.yaml", f"{place}[2]")}
    assert "ghost.pt" in problems[0].message and "not found" in problems[0].message


def test_a_missing_main_metric_is_reported_on_the_stage(tmp_path: Path) -> None:
    env = write_training(tmp_path, "1.1.0")
    _edit_yaml(env, lambda d: d["model_stages"]["epoch_1"].pop("mAP"))  # type: ignore[index]  # the YAML read as object, edited in place
    assert _training_problems(env) == {("result.yaml", "model_stages.epoch_1")}


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
@pytest.mark.parametrize(
    ("value", "severity"),
    [
        (float("nan"), outputs.ERROR),
        (float("inf"), outputs.ERROR),
        (72, outputs.ERROR),
        (-0.1, outputs.ERROR),
        ("0.5", outputs.WARNING),
        (True, outputs.WARNING),  # YMIR reads float() of them
    ],
)
def test_a_metric_that_is_not_a_finite_fraction_is_reported(
    tmp_path: Path,
    protocol: str,
    value: object,
    severity: str,
) -> None:
    env = write_training(tmp_path, protocol)
    _, _, stage = _stage_two(env)
    key = "map" if protocol == "0.0.1" else "mAP"
    _edit_yaml(env, lambda d: stage(d).update({key: value}))
    place = "map" if protocol == "0.0.1" else "model_stages.epoch_2.mAP"
    (problem,) = outputs.validate_training_result(env.output.training_result_file, protocol)
    assert (os.path.basename(problem.file), problem.place, problem.severity) == ("result.yaml", place, severity)


def test_a_bad_best_stage_name_is_reported(tmp_path: Path) -> None:
    env = write_training(tmp_path, "1.1.0")
    _edit_yaml(env, lambda d: d.update(best_stage_name="epoch_9"))
    assert _training_problems(env) == {("result.yaml", "best_stage_name")}
    _edit_yaml(env, lambda d: d.pop("best_stage_name"))
    assert _training_problems(env) == {("result.yaml", "best_stage_name")}


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_a_symlinked_model_file_is_reported(tmp_path: Path, protocol: str) -> None:
    env = write_training(tmp_path, protocol)
    path, place, _ = _stage_two(env)
    os.rename(path, tmp_path / "elsewhere.pt")
    os.symlink(tmp_path / "elsewhere.pt", path)
    problems = outputs.validate_training_result(env.output.training_result_file, protocol)
    assert places(problems) == {("result.yaml", f"{place}[0]")}
    assert "symlink" in problems[0].message


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_an_absolute_path_in_files_is_reported(tmp_path: Path, protocol: str) -> None:
    env = write_training(tmp_path, protocol)
    _, place, stage = _stage_two(env)
    files_key = "model" if protocol == "0.0.1" else "files"
    absolute = str(Path(env.output.models_dir, "config.py"))  # exists, but YMIR refuses absolute paths
    _edit_yaml(env, lambda d: stage(d)[files_key].__setitem__(1, absolute))
    problems = outputs.validate_training_result(env.output.training_result_file, protocol)
    assert places(problems) == {("result.yaml", f"{place}[1]")}
    assert "absolute" in problems[0].message


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda s: s.update(stage_name="other"), "model_stages.epoch_1.stage_name"),
        (lambda s: s.pop("timestamp"), "model_stages.epoch_1.timestamp"),
        (lambda s: s.update(timestamp="yesterday"), "model_stages.epoch_1.timestamp"),
        (lambda s: s.update(tp=-1), "model_stages.epoch_1.tp"),
        (lambda s: s.update(files=[]), "model_stages.epoch_1.files"),
        (lambda s: s.update(files=["../w.pt"]), "model_stages.epoch_1.files[0]"),
        (lambda s: s.update(mIoU=2.0), "model_stages.epoch_1.mIoU"),
    ],
)
def test_stage_defects_are_reported_with_their_key(
    tmp_path: Path,
    change: Callable[[dict[str, object]], None],
    place: str,
) -> None:
    env = write_training(tmp_path, "1.1.0")
    _edit_yaml(env, lambda d: change(d["model_stages"]["epoch_1"]))
    assert _training_problems(env) == {("result.yaml", place)}


def test_a_missing_attachment_is_reported(tmp_path: Path) -> None:
    env = write_training(tmp_path, "1.1.0")
    os.unlink(Path(env.output.models_dir, "attachments", "images", "pr.png"))
    assert _training_problems(env) == {("result.yaml", "attachments.images[0]")}


def test_a_truncated_result_yaml_is_reported(tmp_path: Path) -> None:
    env = write_training(tmp_path, "1.1.0")
    path = Path(env.output.training_result_file)
    path.write_text("best_stage_name: epoch_1\nmodel_stages:\n  epoch_1: {files: [w.pt, con")
    problems = outputs.validate_training_result(path, "1.1.0")
    assert len(problems) == 1 and problems[0].place.startswith("line ")
    assert "not valid YAML" in problems[0].message
    # cut at a line end, it parses but lacks what the platform needs
    path.write_text("best_stage_name: epoch_1\n")
    assert places(outputs.validate_training_result(path, "1.1.0")) == {("result.yaml", "model_stages")}


@pytest.mark.parametrize(("text", "match"), [("- a\n", "must be a YAML mapping"), ("", "empty")])
def test_a_result_yaml_that_is_not_a_mapping_is_reported(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "result.yaml"
    path.write_text(text)
    (problem,) = outputs.validate_training_result(path, "1.1.0")
    assert (problem.place, match in problem.message) == ("", True)


def test_a_missing_result_yaml_is_reported(tmp_path: Path) -> None:
    (problem,) = outputs.validate_training_result(tmp_path / "models" / "result.yaml", "1.1.0")
    assert problem.place == "" and "missing" in problem.message


@pytest.mark.parametrize("protocol", ["0.0.1", "1.0.0"])
def test_stage_dirs_are_not_searched_before_protocol_1_1_0(tmp_path: Path, protocol: str) -> None:
    env = write_training(tmp_path, protocol)
    # 0.0.1 keeps only the better stage, epoch_2
    stage, name, place = (
        ("epoch_2", "w2.pt", "model[0]")
        if protocol == "0.0.1"
        else ("epoch_1", "w1.pt", "model_stages.epoch_1.files[0]")
    )
    os.rename(Path(env.output.models_dir, name), tmp_path / name)
    _model(env, stage, name)
    assert _training_problems(env) == {("result.yaml", place)}


def test_protocol_0_0_1_refuses_model_stages(tmp_path: Path) -> None:
    env = write_training(tmp_path, "1.1.0")
    assert places(outputs.validate_training_result(env.output.training_result_file, "0.0.1")) == {
        ("result.yaml", "model_stages"),
    }


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_the_legacy_schema_is_accepted_by_every_protocol_and_its_defects_reported(
    tmp_path: Path,
    protocol: str,
) -> None:
    path = tmp_path / "result.yaml"
    (tmp_path / "a.pt").write_bytes(b"w")
    path.write_text("model: [a.pt]\nmap: 0.5\n")
    assert outputs.validate_training_result(path, protocol) == []
    path.write_text("model: [a.pt, b.pt]\nmap: .nan\n")
    problems = outputs.validate_training_result(path, protocol)
    assert places(problems) == {("result.yaml", "model[1]"), ("result.yaml", "map")}


# -- mining defects -------------------------------------------------------------------------------


def _mining(tmp_path: Path, text: str, candidates: list[str] | None = CANDIDATES) -> list[Problem]:
    path = tmp_path / "result.tsv"
    path.write_text(text)
    return outputs.validate_mining_result(path, candidates)


def _tsv(*rows: str) -> str:
    return "".join(r + "\n" for r in rows)


GOOD_ROWS = [f"{CANDIDATES[3]}\t0.9", f"{CANDIDATES[2]}\t0.5", f"{CANDIDATES[1]}\t0.5", f"{CANDIDATES[0]}\t0.1"]


def test_a_well_formed_mining_result_validates_without_a_final_newline(tmp_path: Path) -> None:
    assert _mining(tmp_path, "\n".join(GOOD_ROWS)) == []
    assert _mining(tmp_path, _tsv(*GOOD_ROWS) + "\n") == []


E, W = outputs.ERROR, outputs.WARNING


@pytest.mark.parametrize(
    ("rows", "place", "match", "severity"),
    [
        ([f"{CANDIDATES[3]} 0.9", *GOOD_ROWS[1:]], "line 1", "space, not a TAB", E),
        ([*GOOD_ROWS[:2], "/in/assets/zz/other.jpg\t0.5", *GOOD_ROWS[2:]], "line 3", "not a candidate", E),
        ([GOOD_ROWS[0], GOOD_ROWS[3], GOOD_ROWS[1], GOOD_ROWS[2]], "line 3", "not sorted", E),
        ([GOOD_ROWS[0], f"{CANDIDATES[2]}\tnan", *GOOD_ROWS[2:]], "line 2", "finite", W),  # YMIR reads no score
        ([GOOD_ROWS[0], f"{CANDIDATES[2]}\t-inf", *GOOD_ROWS[2:]], "line 2", "finite", W),
        ([GOOD_ROWS[0], f"{CANDIDATES[2]}\thigh", *GOOD_ROWS[2:]], "line 2", "not a number", W),
        ([*GOOD_ROWS, GOOD_ROWS[3]], "line 5", "listed again", E),
        ([*GOOD_ROWS[:3], f"/elsewhere/{A}\t0.1", f"/other/{A}\t0.0"], "line 5", "listed again", E),
    ],
)
def test_mining_defects_are_reported_on_their_line(
    tmp_path: Path,
    rows: list[str],
    place: str,
    match: str,
    severity: str,
) -> None:
    problems = [p for p in _mining(tmp_path, _tsv(*rows)) if p.rule != "tsv-path-differs"]
    assert (os.path.basename(problems[0].file), problems[0].place) == ("result.tsv", place)
    assert match in problems[0].message and problems[0].severity == severity
    # a line YMIR cannot read also leaves its candidate without a line; nothing else is reported
    assert {p.place for p in problems[1:]} <= {""}


def test_a_truncated_mining_result_is_reported(tmp_path: Path) -> None:
    problems = _mining(tmp_path, _tsv(*GOOD_ROWS[:3]) + CANDIDATES[0][:20])
    assert places(problems) == {("result.tsv", "line 4"), ("result.tsv", "")}
    assert "truncated" in problems[0].message and "1 of 4 candidates have no line" in problems[1].message
    # a last line that lost only its score still names its image: YMIR reads it
    problems = _mining(tmp_path, _tsv(*GOOD_ROWS[:3]) + CANDIDATES[0] + "\t")
    assert [(p.place, p.rule) for p in problems] == [("line 4", "tsv-score")]


def test_missing_candidates_are_reported_once_for_the_file(tmp_path: Path) -> None:
    (problem,) = _mining(tmp_path, _tsv(*GOOD_ROWS[:2]))
    assert problem.place == "" and "2 of 4 candidates" in problem.message


def test_candidate_checks_are_skipped_without_candidates(tmp_path: Path) -> None:
    assert _mining(tmp_path, _tsv("/x.jpg\t0.5"), None) == []


@pytest.mark.parametrize(("text", "match"), [("", "no lines"), (None, "missing")])
def test_an_empty_or_missing_mining_result_is_reported(tmp_path: Path, text: str | None, match: str) -> None:
    if text is None:
        problems = outputs.validate_mining_result(tmp_path / "result.tsv", None)
    else:
        problems = _mining(tmp_path, text, None)
    assert [p.place for p in problems] == [""] and match in problems[0].message


def test_problems_of_one_file_are_capped(tmp_path: Path) -> None:
    problems = _mining(tmp_path, _tsv(*(f"/x{i}.jpg 0.5" for i in range(80))), None)
    assert len(problems) == outputs.MAX_PROBLEMS_PER_FILE + 1
    assert problems[-1].message == "... and 30 more problems"


# -- infer defects --------------------------------------------------------------------------------


def _box(x: object = 30, y: object = 30, w: object = 50, h: object = 50, **extra: object) -> dict[str, object]:
    return {"x": x, "y": y, "w": w, "h": h, **extra}


def _item(box: object = None, class_name: object = "cat", score: object = 0.8, **extra: object) -> dict[str, object]:
    return {"box": box if box is not None else _box(), "class_name": class_name, "score": score, **extra}


def _infer(tmp_path: Path, text: str, protocol: str = "1.1.0") -> list[Problem]:
    path = tmp_path / "infer-result.json"
    path.write_text(text)
    return outputs.validate_infer_result(path, protocol, CLASSES, CANDIDATES)


def _one(tmp_path: Path, item: object, protocol: str = "1.1.0", key: str = "boxes") -> list[Problem]:
    return _infer(tmp_path, json.dumps({"detection": {A: {key: [_item(), item]}}}), protocol)


def test_a_well_formed_infer_result_validates(tmp_path: Path) -> None:
    assert _one(tmp_path, _item(_box(0, 0, 1, 1, rotate_angle=0.5), "person", 1)) == []
    assert _one(tmp_path, _item(_box(30.0, 2, 3, 4))) == []  # integral floats pass YMIR's parser
    assert _one(tmp_path, _item(), key="annotations") == []  # the legacy key is read by YMIR 2
    assert _infer(tmp_path, json.dumps({"detection": {}})) == []  # images without boxes may be left out


PLACE = f"detection[{A!r}].boxes[1]"


@pytest.mark.parametrize(
    ("item", "place", "match", "severity"),
    [
        (_item(_box(x=30.5)), f"{PLACE}.box.x", "must be an integer", E),
        (_item(_box(w="30")), f"{PLACE}.box.w", "JSON integer", W),  # YMIR's parser reads "30"
        (_item(_box(h=True)), f"{PLACE}.box.h", "JSON integer", E),
        (_item(_box(x=-1)), f"{PLACE}.box.x", ">= 0", W),  # YMIR keeps the box as it is
        (_item(_box(y=-1)), f"{PLACE}.box.y", ">= 0", W),
        (_item(_box(h=-2)), f"{PLACE}.box.h", "> 0", W),
        (_item(_box(w=0)), f"{PLACE}.box.w", "> 0", W),
        (_item({"x": 1, "y": 1, "w": 1}), f"{PLACE}.box.h", "missing", W),  # YMIR reads 0
        (_item(_box(x2=5)), f"{PLACE}.box", "unexpected keys ['x2']", E),
        (_item([1, 2, 3, 4]), f"{PLACE}.box", "must be an object", E),
        (_item(class_name="zebra"), f"{PLACE}.class_name", "unknown class 'zebra'", E),
        (_item(class_name=None), f"{PLACE}.class_name", "class name string", E),
        ({"box": _box(), "class_name": "cat"}, f"{PLACE}.score", "missing", E),
        (_item(score="high"), f"{PLACE}.score", "must be a number", E),
        ("cat", PLACE, "must be an object", E),
    ],
)
@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_box_defects_are_reported_with_their_place(
    tmp_path: Path,
    item: object,
    place: str,
    match: str,
    severity: str,
    protocol: str,
) -> None:
    key = contract.infer_list_key(protocol)
    problems = _one(tmp_path, item, protocol, key)
    place = place.replace(".boxes[", f".{key}[")
    assert [(os.path.basename(p.file), p.place) for p in problems] == [("infer-result.json", place)]
    assert match in problems[0].message and problems[0].severity == severity


def test_a_score_that_overflows_to_infinity_is_reported(tmp_path: Path) -> None:
    text = json.dumps({"detection": {A: {"boxes": [_item(score="S")]}}}).replace('"S"', "1e999")
    (problem,) = _infer(tmp_path, text)
    assert problem.place == f"detection[{A!r}].boxes[0].score" and "finite" in problem.message
    assert problem.severity == outputs.WARNING  # YMIR reads it (json.loads) and keeps the box


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_reported_where_they_are(tmp_path: Path, token: str) -> None:
    text = json.dumps({"detection": {A: {"boxes": [_item(score="S"), _item(_box(x="X"))]}}})
    problems = _infer(tmp_path, text.replace('"S"', token).replace('"X"', token))
    assert places(problems) == {
        ("infer-result.json", f"detection[{A!r}].boxes[0].score"),
        ("infer-result.json", f"detection[{A!r}].boxes[1].box.x"),
    }
    assert all(f"{token} is not valid JSON" in p.message for p in problems)
    # YMIR's json.loads reads the score; its protobuf parser refuses the coordinate
    assert {p.place.rpartition(".")[2]: p.severity for p in problems} == {"score": W, "x": E}


def test_nan_outside_the_boxes_is_still_reported(tmp_path: Path) -> None:
    (problem,) = _infer(tmp_path, '{"detection": {}, "speed": NaN}')
    assert problem.place == "" and "1 NaN/Infinity" in problem.message and problem.severity == W


def test_duplicate_json_keys_are_reported(tmp_path: Path) -> None:
    boxes = '{"boxes": []}'
    text = f'{{"detection": {{"{A}": {boxes}, "{B}": {boxes}, "{A}": {boxes}}}}}'
    (problem,) = _infer(tmp_path, text)
    assert (problem.place, A in problem.message) == ("detection", True)
    text = (
        f'{{"detection": {{"{A}": {{"boxes": [{{"box": {{"x": 1, "x": 2, "y": 1, "w": 1, "h": 1}}, '
        f'"class_name": "cat", "score": 0.5}}]}}}}}}'
    )
    (problem,) = _infer(tmp_path, text)
    assert problem.place == f"detection[{A!r}].boxes[0].box" and "['x']" in problem.message


def test_a_truncated_infer_result_is_reported_with_line_and_column(tmp_path: Path) -> None:
    text = json.dumps({"detection": {A: {"boxes": [_item()]}}})
    (problem,) = _infer(tmp_path, text[:-7])
    assert problem.place.startswith("line 1 column ") and "not valid JSON" in problem.message


def test_an_image_that_is_not_a_candidate_is_reported(tmp_path: Path) -> None:
    (problem,) = _infer(tmp_path, json.dumps({"detection": {"zzz.jpg": {"boxes": []}, B: {"boxes": []}}}))
    assert problem.place == "detection['zzz.jpg']" and "not a candidate" in problem.message


def test_full_paths_as_image_keys_are_reduced_to_basenames(tmp_path: Path) -> None:
    assert _infer(tmp_path, json.dumps({"detection": {CANDIDATES[0]: {"boxes": [_item()]}}})) == []
    text = json.dumps({"detection": {CANDIDATES[0]: {"boxes": []}, A: {"boxes": []}}})
    assert places(_infer(tmp_path, text)) == {("infer-result.json", f"detection[{A!r}]")}


@pytest.mark.parametrize(
    ("data", "place"),
    [
        ({}, "detection"),
        ({"detection": []}, "detection"),
        ({"detection": {A: []}}, f"detection[{A!r}]"),
        ({"detection": {A: {"results": []}}}, f"detection[{A!r}]"),
        ({"detection": {A: {"boxes": {}}}}, f"detection[{A!r}].boxes"),
    ],
)
def test_structure_defects_are_reported(tmp_path: Path, data: object, place: str) -> None:
    problems = _infer(tmp_path, json.dumps(data))
    assert places(problems) == {("infer-result.json", place)} and problems[0].severity == E


def test_protocol_0_0_1_wants_annotations_and_no_rotate_angle(tmp_path: Path) -> None:
    (problem,) = _infer(tmp_path, json.dumps({"detection": {A: {"boxes": [_item()]}}}), "0.0.1")
    assert problem.place == f"detection[{A!r}]" and "only 'annotations'" in problem.message
    problems = _one(tmp_path, _item(_box(rotate_angle=0.0)), "0.0.1", key="annotations")
    assert places(problems) == {("infer-result.json", f"detection[{A!r}].annotations[1].box")}


def test_a_missing_infer_result_is_reported(tmp_path: Path) -> None:
    (problem,) = outputs.validate_infer_result(tmp_path / "nope.json", "1.1.0", CLASSES, CANDIDATES)
    assert problem.place == "" and "missing" in problem.message


def test_class_and_candidate_checks_are_skipped_when_not_given(tmp_path: Path) -> None:
    path = tmp_path / "infer-result.json"
    path.write_text(json.dumps({"detection": {"other.jpg": {"boxes": [_item(class_name="zebra")]}}}))
    assert outputs.validate_infer_result(path, "1.1.0", None, None) == []


# -- monitor and the whole task -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (None, "missing"),
        ("", "empty"),
        (f"{TASK_ID}\t1.0\t0.5\n", "at least 4"),
        (f"{TASK_ID}\t1.0\t1.0\t3\t0\n", "state 3"),
        ("t_other\t1.0\t0.5\t2\t0\n", "task id"),
    ],
)
def test_monitor_defects_are_reported(tmp_path: Path, text: str | None, match: str) -> None:
    path = tmp_path / "monitor.txt"
    if text is not None:
        path.write_text(text)
    (problem,) = outputs.validate_monitor(path, TASK_ID)
    assert match in problem.message


def test_validate_outputs_checks_only_the_kinds_of_the_task(tmp_path: Path) -> None:
    env = sdk.read_env(make_task(tmp_path, "1.1.0", (M,)))
    sdk.write_mining_result([(c, 0.5) for c in CANDIDATES], env=env)
    assert outputs.validate_outputs({M}, env.output.root_dir, "1.1.0", CLASSES, CANDIDATES) == []
    problems = outputs.validate_outputs({T, M, I}, env.output.root_dir, "1.1.0", CLASSES, CANDIDATES)
    assert places(problems) == {("result.yaml", ""), ("infer-result.json", "")}


def test_raise_for_problems_lists_them_in_an_output_error() -> None:
    outputs.raise_for_problems([])
    problems = [Problem("/out/result.tsv", f"line {i}", "bad") for i in range(1, 25)]
    with pytest.raises(OutputError, match="24 problem") as info:
        outputs.raise_for_problems(problems)
    assert "/out/result.tsv: line 1: bad" in info.value.message
    assert "... and 4 more" in info.value.message
    assert info.value.exit_code == 6


def test_problem_text_names_file_and_place() -> None:
    assert str(Problem("/out/x", "line 3", "bad")) == "/out/x: line 3: bad"
    assert str(Problem("/out/x", "", "missing")) == "/out/x: missing"


# -- every rule and the YMIR parser behind it (issue 18, acceptance 5) ----------------------------
#
# Each row writes a minimal output that breaks exactly one rule. A refusal (error) is paired with
# the YMIR parser that rejects the file or silently loses data for it; a warning with what the
# parsers do instead. Adding a rule to outputs.RULES without a row here fails the completeness tests.

Check = Callable[[Path], "list[Problem]"]
STAGE = {"stage_name": "s", "files": ["w.pt"], "timestamp": 1, "mAP": 0.5}
DROP = "<drop this key>"


def _result_yaml(
    stage: dict[str, object] | None = None,
    protocol: str = "1.1.0",
    *,
    key: str = "s",
    file: str = "w.pt",
    **top: object,
) -> Check:
    """A result.yaml with one stage ``key`` (``STAGE`` changed by ``stage``; DROP removes a key) and
    its model file."""

    def check(tmp_path: Path) -> list[Problem]:
        models = tmp_path / "models"
        (models / key).mkdir(parents=True)
        (models / key / file).parent.mkdir(parents=True, exist_ok=True)
        (models / key / file).write_bytes(b"weights")
        fields = {**STAGE, "stage_name": key, **(stage or {})}
        data = {"best_stage_name": key, "model_stages": {key: {k: v for k, v in fields.items() if v != DROP}}, **top}
        (models / "result.yaml").write_text(yaml.safe_dump({k: v for k, v in data.items() if v != DROP}))
        return outputs.validate_training_result(models / "result.yaml", protocol)

    return check


def _yaml_text(text: str, protocol: str = "1.1.0", files: tuple[str, ...] = ()) -> Check:
    def check(tmp_path: Path) -> list[Problem]:
        for name in files:
            (tmp_path / name).write_bytes(b"weights")
        (tmp_path / "result.yaml").write_text(text)
        return outputs.validate_training_result(tmp_path / "result.yaml", protocol)

    return check


def _model_file(make: Callable[[Path], None], name: str = "w.pt") -> Check:
    """A valid result.yaml whose model file ``make`` writes instead of a regular file."""

    def check(tmp_path: Path) -> list[Problem]:
        (tmp_path / "models" / "s").mkdir(parents=True)
        make(tmp_path / "models" / "s" / name)
        data = {"best_stage_name": "s", "model_stages": {"s": {**STAGE, "files": [name]}}}
        (tmp_path / "models" / "result.yaml").write_text(yaml.safe_dump(data))
        return outputs.validate_training_result(tmp_path / "models" / "result.yaml", "1.1.0")

    return check


def _tsv_text(*rows: str, candidates: list[str] | None = CANDIDATES) -> Check:
    return lambda tmp_path: _mining(tmp_path, _tsv(*rows), candidates)


def _json(data: object, protocol: str = "1.1.0") -> Check:
    return lambda tmp_path: _infer(tmp_path, data if isinstance(data, str) else json.dumps(data), protocol)


def _boxes(*items: object, protocol: str = "1.1.0") -> Check:
    return _json({"detection": {A: {contract.infer_list_key(protocol): list(items)}}}, protocol)


def _monitor(text: str | None) -> Check:
    def check(tmp_path: Path) -> list[Problem]:
        if text is not None:
            (tmp_path / "monitor.txt").write_text(text)
        return outputs.validate_monitor(tmp_path / "monitor.txt", TASK_ID)

    return check


def _path(make: Callable[[Path], None], validate: Callable[[Path], list[Problem]]) -> Check:
    def check(tmp_path: Path) -> list[Problem]:
        path = tmp_path / "out-file"
        make(path)
        return validate(path)

    return check


def _symlink(path: Path) -> None:
    (path.parent / "target").write_text(_tsv(*GOOD_ROWS))
    os.symlink(path.parent / "target", path)


def _mining_of(path: Path) -> list[Problem]:
    return outputs.validate_mining_result(path, None)


def _infer_of(path: Path) -> list[Problem]:
    return outputs.validate_infer_result(path, "1.1.0", CLASSES, CANDIDATES)


LEGACY = "model: [w.pt]\nmap: 0.5\n"

# (rule, what breaks it, the parser its entry in RULES names)
REFUSALS: list[tuple[str, Check, str]] = [
    ("output-missing", _path(lambda p: None, _infer_of), "infer.py"),
    ("output-symlink", _path(_symlink, _mining_of), "open the file on the host"),
    ("output-special", _path(os.mkfifo, _infer_of), "a FIFO blocks the task forever"),
    ("output-unreadable", _path(os.mkdir, _mining_of), "open()"),
    ("output-not-utf8", _path(lambda p: p.write_bytes(b"\xff\xfe/x.jpg\t0.5\n"), _mining_of), "UTF-8"),
    ("yaml-invalid", _yaml_text("model_stages: {s: [w.pt, co"), "mir/commands/training.py yaml.safe_load"),
    ("yaml-not-mapping", _yaml_text("- w.pt\n"), "mir/commands/training.py"),
    ("yaml-not-mapping", _yaml_text(""), "mir/commands/training.py"),
    ("stages-on-protocol-0.0.1", _result_yaml(protocol="0.0.1"), "YMIR 1.1.0 mir/commands/training.py"),
    ("stages-missing", _yaml_text("best_stage_name: s\n"), "mir/commands/training.py"),
    ("stage-not-mapping", _yaml_text("best_stage_name: s\nmodel_stages: {s: 3}\n"), "mir/tools/models.py"),
    ("stage-name-missing", _result_yaml({"stage_name": DROP}), "mir/tools/models.py"),
    ("stage-name-missing", _result_yaml({"stage_name": None}), "mir/tools/models.py"),
    ("files-not-list", _result_yaml({"files": "w.pt"}), "mir/tools/models.py"),
    ("files-not-list", _result_yaml(attachments={"images": "pr.png"}), "mir/tools/models.py"),
    ("file-name-invalid", _result_yaml({"files": [None]}), "mir/tools/models.py"),
    ("file-absolute", _result_yaml({"files": ["/out/models/s/w.pt"]}), "mir/tools/models.py"),
    ("file-not-found", _result_yaml({"files": ["ghost.pt"]}), "mir/tools/models.py _find_model_file"),
    ("file-not-found", _result_yaml({"files": ["../w.pt"]}), "mir/tools/models.py _find_model_file"),
    ("file-not-found", _result_yaml(attachments={"images": ["pr.png"]}), "mir/tools/models.py"),
    ("file-symlink", _model_file(lambda p: os.symlink(p.parent / "real.pt", p)), "mir/tools/models.py"),
    ("file-not-regular", _model_file(os.mkdir), "mir/tools/models.py"),
    ("timestamp-missing", _result_yaml({"timestamp": DROP}), "mir/tools/models.py"),
    ("timestamp-invalid", _result_yaml({"timestamp": None}), "mir/tools/models.py"),
    ("timestamp-invalid", _result_yaml({"timestamp": "yesterday"}), "mir/tools/models.py"),
    ("metric-invalid", _result_yaml({"mAP": 72}), "Field(ge=0, le=1)"),
    ("metric-invalid", _result_yaml({"mIoU": float("nan")}), "Field(ge=0, le=1)"),
    ("metric-invalid", _result_yaml({"mAP": "high"}), "Field(ge=0, le=1)"),
    ("metric-invalid", _result_yaml({"mAR": 10**400}), "Field(ge=0, le=1)"),  # no float: pydantic fails
    ("metric-invalid", _yaml_text("model: [w.pt]\nmap: 1.5\n", files=("w.pt",)), "mir/commands/training.py"),
    ("count-invalid", _result_yaml({"tp": -1}), "Field(ge=0)"),
    ("count-invalid", _result_yaml({"fn": "many"}), "Field(ge=0)"),
    ("best-stage-missing", _result_yaml(best_stage_name=DROP), "mir/commands/training.py"),
    ("best-stage-unknown", _result_yaml(best_stage_name="epoch_9"), "mir/commands/training.py"),
    ("attachments-not-mapping", _result_yaml(attachments=["pr.png"]), "ModelStorage.attachments"),
    ("evaluate-config-not-mapping", _result_yaml(evaluate_config=0.5), "ModelStorage.evaluate_config"),
    ("legacy-map-missing", _yaml_text("model: [w.pt]\n", files=("w.pt",)), "mir/commands/training.py"),
    ("tsv-space", _tsv_text(*GOOD_ROWS[:3], f"{CANDIDATES[0]} 0.1", candidates=None), "mir/commands/mining.py"),
    ("tsv-not-candidate", _tsv_text(*GOOD_ROWS, "/in/assets/zz/other.jpg\t0.0"), "mir/commands/mining.py"),
    ("tsv-not-candidate", _tsv_text(*GOOD_ROWS, CANDIDATES[0][:20]), "mir/commands/mining.py"),
    ("tsv-duplicate", _tsv_text(*GOOD_ROWS, GOOD_ROWS[3]), "mir/commands/mining.py"),
    ("tsv-unsorted", _tsv_text(GOOD_ROWS[3], *GOOD_ROWS[:3]), "no sort"),
    ("tsv-empty", _tsv_text(candidates=None), "mir/commands/mining.py"),
    ("tsv-candidates-missing", _tsv_text(*GOOD_ROWS[:2]), "mir/commands/mining.py"),
    ("json-invalid", _json(json.dumps({"detection": {A: {"boxes": []}}})[:-3]), "json.loads"),
    ("json-unreadable", _json("[" * 100_000), "json.loads"),
    ("json-duplicate-keys", _json('{"detection": {}, "detection": {}}'), "keeps the last value"),
    ("detection-missing", _json({"detection": []}), "mir/commands/infer.py"),
    ("detection-missing", _json([]), "mir/commands/infer.py"),
    (
        "image-same-basename",
        _json({"detection": {A: {"boxes": []}, CANDIDATES[0]: {"boxes": []}}}),
        "mir/commands/infer.py",
    ),
    ("image-not-candidate", _json({"detection": {"zzz.jpg": {"boxes": []}}}), "mir/commands/mining.py"),
    ("image-not-object", _json({"detection": {A: []}}), "mir/commands/infer.py"),
    ("image-no-list", _json({"detection": {A: {"results": [_item()]}}}), "mir/commands/infer.py"),
    ("image-no-list", _json({"detection": {A: {"boxes": [_item()]}}}, "0.0.1"), "YMIR 1.1.0 mir/commands/mining.py"),
    ("list-not-list", _json({"detection": {A: {"boxes": {"0": _item()}}}}), "mir/commands/infer.py"),
    ("box-not-object", _boxes("cat"), "mir/commands/infer.py"),
    ("box-rect-invalid", _boxes(_item([1, 2, 3, 4])), "ParseDict"),
    ("box-rect-invalid", _boxes({"class_name": "cat", "score": 0.5}), "ParseDict"),
    ("box-extra-keys", _boxes(_item(_box(x2=5))), "ParseDict"),
    ("box-extra-keys", _boxes(_item(_box(rotate_angle=0.0)), protocol="0.0.1"), "YMIR 1.1.0's Rect"),
    ("coord-invalid", _boxes(_item(_box(x=30.5))), "ParseDict"),
    ("coord-invalid", _boxes(_item(_box(h=True))), "ParseDict"),
    ("coord-invalid", _boxes(_item(_box(w="3 0"))), "ParseDict"),
    (
        "coord-invalid",
        _json(json.dumps({"detection": {A: {"boxes": [_item(_box(x="X"))]}}}).replace('"X"', "NaN")),
        "ParseDict",
    ),
    ("angle-invalid", _boxes(_item(_box(rotate_angle="left"))), "ParseDict"),
    ("angle-invalid", _boxes(_item(_box(rotate_angle=[0]))), "ParseDict"),
    ("class-name-invalid", _boxes(_item(class_name=None)), "mir/tools/class_ids.py"),
    ("class-name-invalid", _boxes(_item(class_name="  ")), "mir/tools/class_ids.py"),
    ("class-unknown", _boxes(_item(class_name="zebra")), "mir/commands/infer.py"),
    ("score-missing", _boxes({"box": _box(), "class_name": "cat"}), "mir/commands/infer.py"),
    ("score-invalid", _boxes(_item(score="high")), "float(score)"),
    ("score-invalid", _boxes(_item(score=None)), "float(score)"),
    ("score-invalid", _boxes(_item(score=10**400)), "float(score)"),  # OverflowError
    ("score-invalid", _boxes(_item(score="0.5"), protocol="0.0.1"), "YMIR 1.1.0 mir/commands/infer.py sorts"),
    ("monitor-missing", _monitor(None), "YMIR 1.1.0's monitor daemon"),
    ("monitor-empty", _monitor(""), "YMIR 1.1.0's monitor daemon"),
    ("monitor-malformed", _monitor(f"{TASK_ID}\t1.0\t0.5\n"), "percent_log_util.py"),
    ("monitor-malformed", _monitor(f"{TASK_ID}\t1.0\t0.5\t9\n"), "percent_log_util.py"),
    ("monitor-done", _monitor(f"{TASK_ID}\t1.0\t1.0\t3\t0\n"), "crontab_job.py"),
]

# (rule, what breaks it): YMIR reads these files; the gate passes them and says what is off
WARNED: list[tuple[str, Check]] = [
    ("stage-key-not-plain", _result_yaml(key="a/b")),
    (
        "stage-key-not-plain",
        _yaml_text(
            "best_stage_name: 7\nmodel_stages:\n  7: {stage_name: 7, files: [w.pt], timestamp: 1, mAP: 0.5}\n",
            protocol="1.0.0",
            files=("w.pt",),
        ),
    ),
    ("stage-name-differs", _result_yaml({"stage_name": "other"})),
    ("files-empty", _result_yaml({"files": []})),
    ("files-empty", _result_yaml(attachments={"images": []})),
    ("file-not-basename", _result_yaml({"files": ["sub/w.pt"]}, file="sub/w.pt")),
    ("timestamp-coerced", _result_yaml({"timestamp": "1663839980"})),
    ("timestamp-coerced", _result_yaml({"timestamp": 1663839980.5})),
    ("metric-coerced", _result_yaml({"mAP": "0.5"})),
    ("metric-coerced", _yaml_text("model: [w.pt]\nmap: true\n", files=("w.pt",))),
    ("main-metric-missing", _result_yaml({"mAP": DROP})),
    ("count-coerced", _result_yaml({"tp": "3"})),
    ("tsv-no-score", _tsv_text(*GOOD_ROWS[:3], CANDIDATES[0])),
    ("tsv-score", _tsv_text(*GOOD_ROWS[:3], f"{CANDIDATES[0]}\tlow")),
    ("tsv-score", _tsv_text(*GOOD_ROWS[:3], f"{CANDIDATES[0]}\tnan")),
    ("tsv-path-differs", _tsv_text(*GOOD_ROWS[:3], f"/elsewhere/{A}\t0.1")),
    ("json-nonfinite", _json('{"detection": {}, "speed": NaN}')),
    ("image-empty", _json({"detection": {A: {}}})),
    ("list-both-keys", _json({"detection": {A: {"boxes": [_item()], "annotations": [_item()]}}})),
    ("list-both-keys", _json({"detection": {A: {"boxes": [], "annotations": [_item()]}}}, "0.0.1")),
    ("coord-missing", _boxes(_item({"x": 1, "y": 1, "w": 1}))),
    ("coord-missing", _boxes(_item(_box(y=None)))),
    ("coord-negative", _boxes(_item(_box(x=-1)))),
    ("coord-negative", _boxes(_item(_box(y=-(10**400))))),  # compared as an integer
    ("coord-empty", _boxes(_item(_box(h=0)))),
    ("coord-empty", _boxes(_item(_box(w=-2)))),
    ("box-number-string", _boxes(_item(_box(w="30")))),
    ("box-number-string", _boxes(_item(_box(rotate_angle="0.5")))),
    ("score-coerced", _boxes(_item(score="0.5"))),
    ("score-coerced", _boxes(_item(score=True), protocol="1.0.0")),
    ("score-nonfinite", _json(json.dumps({"detection": {A: {"boxes": [_item(score="S")]}}}).replace('"S"', "NaN"))),
    ("score-nonfinite", _json(json.dumps({"detection": {A: {"boxes": [_item(score="S")]}}}).replace('"S"', "1e999"))),
    ("monitor-task-id", _monitor("t_other\t1.0\t0.5\t2\t0\n")),
]


def _rules(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.rule, p.severity) for p in problems}


@pytest.mark.parametrize(("rule", "check", "parser"), REFUSALS, ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSALS)])
def test_every_refusal_is_one_a_ymir_parser_enforces(tmp_path: Path, rule: str, check: Check, parser: str) -> None:
    problems = check(tmp_path)
    assert _rules(problems) == {(rule, outputs.ERROR)}, problems
    assert outputs.RULES[rule].severity == outputs.ERROR
    assert parser in outputs.RULES[rule].ymir and "YMIR " in outputs.RULES[rule].ymir
    with pytest.raises(OutputError, match=f"{len(problems)} problem"):
        outputs.raise_for_problems(problems)


@pytest.mark.parametrize(("rule", "check"), WARNED, ids=[f"{r[0]}-{i}" for i, r in enumerate(WARNED)])
def test_what_no_ymir_version_refuses_is_a_warning(tmp_path: Path, rule: str, check: Check) -> None:
    problems = check(tmp_path)
    assert _rules(problems) == {(rule, outputs.WARNING)}, problems
    assert outputs.RULES[rule].severity == outputs.WARNING and "YMIR " in outputs.RULES[rule].ymir
    outputs.raise_for_problems(problems)  # passes


def test_every_rule_has_a_row() -> None:
    errors = {r for r, rule in outputs.RULES.items() if rule.severity == outputs.ERROR}
    warnings = {r for r, rule in outputs.RULES.items() if rule.severity == outputs.WARNING}
    assert errors | warnings == set(outputs.RULES)
    assert {row[0] for row in REFUSALS} == errors
    assert {row[0] for row in WARNED} == warnings


# -- both 'boxes' and 'annotations': one file for YMIR 1.x and 2.x ---------------------------------


def _both(tmp_path: Path, boxes: list[object], annotations: list[object], protocol: str = "1.1.0") -> list[Problem]:
    other = {contract.infer_list_key(protocol): []}
    return _json({"detection": {A: {"boxes": boxes, "annotations": annotations}, B: other}}, protocol)(tmp_path)


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_both_keys_with_the_same_boxes_pass_with_a_warning_that_says_so(tmp_path: Path, protocol: str) -> None:
    boxes = [_item(), _item(_box(1, 2, 3, 4), "dog", 0.25)]
    (problem,) = _both(tmp_path, boxes, json.loads(json.dumps(boxes)), protocol)
    assert (problem.place, problem.rule, problem.severity) == (f"detection[{A!r}]", "list-both-keys", W)
    assert "the same boxes" in problem.message and "differ" not in problem.message
    outputs.raise_for_problems([problem])  # no refusal
    nan = json.dumps({"detection": {A: {"boxes": [_item(score="S")], "annotations": [_item(score="S")]}}})
    problems = _infer(tmp_path, nan.replace('"S"', "NaN"), protocol)
    assert "the same boxes" in next(p.message for p in problems if p.rule == "list-both-keys")


@pytest.mark.parametrize(
    ("boxes", "annotations"),
    [
        ([_item()], [_item(score=0.5)]),
        ([_item()], []),
        ([], [_item()]),
        ([_item(), _item()], [_item()]),
    ],
)
def test_both_keys_that_differ_pass_with_a_warning_that_says_so(
    tmp_path: Path,
    boxes: list[object],
    annotations: list[object],
) -> None:
    (problem,) = _both(tmp_path, boxes, annotations)
    assert (problem.rule, problem.severity) == ("list-both-keys", W)
    assert "they differ" in problem.message and "YMIR 1.1 reads 'annotations'" in problem.message


def test_errors_inside_either_list_remain_errors(tmp_path: Path) -> None:
    problems = _both(tmp_path, [_item(_box(x=30.5))], [_item(class_name="zebra")])
    assert {(p.place, p.rule, p.severity) for p in problems} == {
        (f"detection[{A!r}]", "list-both-keys", W),
        (f"detection[{A!r}].boxes[0].box.x", "coord-invalid", E),  # what YMIR 2 reads
        (f"detection[{A!r}].annotations[0].class_name", "class-unknown", E),  # what YMIR 1.1 reads
    }
    with pytest.raises(OutputError, match="2 problem"):
        outputs.raise_for_problems(problems)


def test_in_a_protocol_0_0_1_file_boxes_are_judged_as_ymir_2_and_annotations_as_ymir_1_1(tmp_path: Path) -> None:
    angled = _item(_box(rotate_angle=0.5))
    problems = _both(tmp_path, [angled], [_item()], "0.0.1")  # YMIR 2 reads rotate_angle in 'boxes'
    assert [p.rule for p in problems] == ["list-both-keys"]
    problems = _both(tmp_path, [_item()], [angled], "0.0.1")  # YMIR 1.1's Rect has no rotate_angle
    assert [(p.place, p.rule) for p in problems] == [
        (f"detection[{A!r}]", "list-both-keys"),
        (f"detection[{A!r}].annotations[0].box", "box-extra-keys"),
    ]


def test_a_sdk_file_with_both_keys_passes_the_whole_gate(tmp_path: Path) -> None:
    env = write_mining_infer(tmp_path, "1.1.0")
    path = Path(env.output.infer_result_file)
    data = json.loads(path.read_text())
    for image in data["detection"].values():
        image["annotations"] = image["boxes"]
    path.write_text(json.dumps(data))
    problems = outputs.validate_outputs({M, I}, env.output.root_dir, "1.1.0", CLASSES, CANDIDATES)
    assert {(p.rule, p.severity) for p in problems} == {("list-both-keys", W)} and len(problems) == 3
    outputs.raise_for_problems(problems)


# -- warnings never refuse; they are logged and capped on their own ------------------------------


def test_warnings_are_capped_apart_from_errors(tmp_path: Path) -> None:
    rows = [f"/x{i}.jpg\tlow" for i in range(80)] + [f"/x{i}.jpg 0.5" for i in range(60)]
    problems = _mining(tmp_path, _tsv(*rows), None)
    listed = [p for p in problems if p.rule]
    assert sum(p.severity == W for p in listed) == sum(p.severity == E for p in listed) == outputs.MAX_PROBLEMS_PER_FILE
    assert [(p.message, p.severity) for p in problems if not p.rule] == [
        ("... and 10 more problems", E),
        ("... and 30 more warnings", W),
    ]
    with pytest.raises(OutputError, match="51 problem"):
        outputs.raise_for_problems(problems)


def test_raise_for_problems_ignores_warnings_and_lists_only_errors() -> None:
    warning = Problem("/out/result.tsv", "line 1", "score 'low' is not a number", W, "tsv-score")
    outputs.raise_for_problems([warning])
    error = Problem("/out/result.tsv", "line 2", "bad")
    with pytest.raises(OutputError, match="1 problem") as info:
        outputs.raise_for_problems([warning, error])
    assert "line 2: bad" in info.value.message and "low" not in info.value.message


def test_log_warnings_logs_one_line_per_warning_with_file_and_place(caplog: pytest.LogCaptureFixture) -> None:
    warning = Problem("/out/infer-result.json", "detection['a.jpg']", "has both", W, "list-both-keys")
    with caplog.at_level("WARNING", logger="live_code.run.outputs"):
        assert outputs.log_warnings([warning, Problem("/out/x", "", "bad")]) == [warning]
    assert caplog.messages == ["warning: /out/infer-result.json: detection['a.jpg']: has both"]


# -- the fast path of the infer-result.json check (msgspec) ---------------------------------------


def _fast(
    text: str,
    protocol: str = "1.1.0",
    names: object = CLASSES,
    batch_above: int = 1 << 30,
    candidates: object = CANDIDATES,
) -> bool:
    from live_code.run.outputs import _infer_fast

    return _infer_fast.check(text.encode(), protocol, names, candidates, batch_above=batch_above)


FAST_VALID = [
    json.dumps({"detection": {A: {"boxes": [_item(), _item(_box(0, 0, 1, 1, rotate_angle=0.5), "person", 1)]}}}),
    json.dumps({"detection": {A: {"boxes": []}, B: {"boxes": [_item()]}}}, indent=2),
    json.dumps({"detection": {}}),
]


@pytest.mark.parametrize("batch_above", [0, 1 << 30])
def test_a_valid_file_is_proved_by_the_fast_path_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_above: int
) -> None:
    from live_code.run.outputs import _infer_fast, infer

    monkeypatch.setattr(infer, "_check_infer_file", lambda *a: pytest.fail("the full check ran"))
    fast = _infer_fast.check
    monkeypatch.setattr(_infer_fast, "check", lambda *a, **kw: fast(*a, **{"batch_above": batch_above, **kw}))
    monkeypatch.setattr(_infer_fast, "BATCH", 1)  # every image its own batch
    for text in FAST_VALID:
        assert _infer(tmp_path, text) == []
    legacy = json.dumps({"detection": {A: {"annotations": [_item()]}}})
    assert _fast(legacy, contract.PROTOCOL_0_0_1, batch_above=batch_above)
    assert _fast(FAST_VALID[0], names=None, batch_above=batch_above)


_NONE = '{"boxes": []}'
_ONE = '{"boxes": [{"box": {"x": 1, "y": 1, "w": 1, "h": 1}, "class_name": "cat", "score": 1}]}'
TRICKY_DUPLICATES = {
    "colon in an image name": f'{{"detection": {{"a:b.jpg": {_NONE}, "a.jpg": {_NONE}, "a.jpg": {_NONE}}}}}',
    # the escaped colon is not in the text: counted from the decoded name, it would make up for the repeat
    "escaped colon": f'{{"detection": {{"a.jpg": {{"boxes": [], "boxes": []}}, "x\\u003ay.jpg": {_NONE}}}}}',
    "repeated rect key": '{"detection": {"a.jpg": ' + _ONE.replace('"h": 1', '"h": 1, "h": 2') + "}}",
    "repeated top key": '{"detection": {}, "detection": {}}',
}


def test_the_fast_path_passes_colons_in_names() -> None:
    text = f'{{"detection": {{"a:b.jpg": {_ONE}, "c.jpg": {_NONE}}}}}'
    assert _fast(text, candidates=None) and _fast(text, candidates=None, batch_above=0)
    assert _fast(text.replace("a:b", "a\\u003ab"), candidates=None)  # escaped: no colon in the text


@pytest.mark.parametrize("batch_above", [0, 1 << 30])
@pytest.mark.parametrize("case", TRICKY_DUPLICATES)
def test_the_fast_path_never_passes_a_repeated_key(case: str, batch_above: int) -> None:
    text = TRICKY_DUPLICATES[case]
    assert not _fast(text, names=None, batch_above=batch_above, candidates=None)
    assert not _fast(text, batch_above=batch_above, candidates=None)
    assert _fast(json.dumps(json.loads(text)), batch_above=batch_above, candidates=None)  # the same, keys once
