"""live_code.outputs: validators agree with the SDK writers, and every planted defect is reported
with its file and place (issue 3, acceptance 2)."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code import outputs
from live_code import sdk
from live_code.contract import TaskKind
from live_code.errors import OutputError
from live_code.outputs import Problem
from tests.test_sdk import CLASSES
from tests.test_sdk import TASK_ID
from tests.test_sdk import make_task

T, M, I = TaskKind.TRAINING, TaskKind.MINING, TaskKind.INFER
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
        sdk.write_model_stage("epoch_3", ["config.py"], 0.1, timestamp=3, env=given,
                              attachments={"images": ["pr.png"]}, evaluate_config={"iou_thr": 0.5})
    return env


def write_mining_infer(tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch | None = None) -> sdk.Env:
    given = _point_sdk(make_task(tmp_path, protocol, (M, I)), monkeypatch)
    env = given or sdk.read_env()
    sdk.write_mining_result([(c, i / 10) for i, c in enumerate(CANDIDATES)], env=given)
    sdk.write_infer_result({
        CANDIDATES[0]: [sdk.Detection("cat", 0.9, 1.2, 2, 30, 40.4), sdk.Detection("dog", 0.1, 0, 0, 5, 5, 0.5)],
        CANDIDATES[1]: [],
        CANDIDATES[2]: [sdk.Detection.from_xyxy("person", 0.5, -1, -1, 100, 200)],
    }, env=given)
    for percent in (0.0, 1.0):
        sdk.write_progress(percent, task=M, env=given)
        sdk.write_progress(percent, task=I, env=given)
    return env


# -- the SDK's files validate ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_what_the_sdk_writes_for_training_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str,
) -> None:
    env = write_training(tmp_path, protocol, monkeypatch)
    assert outputs.validate_outputs({T}, env.output.root_dir, protocol, CLASSES, None) == []
    assert outputs.validate_training_result(env.output.root_dir, protocol) == []  # a dir means <out>/models/result.yaml


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_what_the_sdk_writes_for_mining_and_infer_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str,
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
    return path, "model_stages.epoch_2.files", lambda d: d["model_stages"]["epoch_2"]  # type: ignore[index,return-value]


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
    _edit_yaml(env, lambda d: stage(d)[files_key].append("ghost.pt"))  # type: ignore[attr-defined]
    problems = outputs.validate_training_result(env.output.training_result_file, protocol)
    assert places(problems) == {("result.yaml", f"{place}[2]")}
    assert "ghost.pt" in problems[0].message and "not found" in problems[0].message


def test_a_missing_main_metric_is_reported_on_the_stage(tmp_path: Path) -> None:
    env = write_training(tmp_path, "1.1.0")
    _edit_yaml(env, lambda d: d["model_stages"]["epoch_1"].pop("mAP"))  # type: ignore[index]
    assert _training_problems(env) == {("result.yaml", "model_stages.epoch_1")}


@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 72, -0.1, "0.5", True])
def test_a_metric_that_is_not_a_finite_fraction_is_reported(tmp_path: Path, protocol: str, value: object) -> None:
    env = write_training(tmp_path, protocol)
    _, _, stage = _stage_two(env)
    key = "map" if protocol == "0.0.1" else "mAP"
    _edit_yaml(env, lambda d: stage(d).update({key: value}))
    place = "map" if protocol == "0.0.1" else "model_stages.epoch_2.mAP"
    assert _training_problems(env) == {("result.yaml", place)}


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
    _edit_yaml(env, lambda d: stage(d)[files_key].__setitem__(1, absolute))  # type: ignore[attr-defined]
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
    tmp_path: Path, change: Callable[[dict[str, object]], None], place: str,
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
    stage, name, place = ("epoch_2", "w2.pt", "model[0]") if protocol == "0.0.1" else \
        ("epoch_1", "w1.pt", "model_stages.epoch_1.files[0]")
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
    tmp_path: Path, protocol: str,
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


@pytest.mark.parametrize(
    ("rows", "place", "match"),
    [
        ([f"{CANDIDATES[3]} 0.9", *GOOD_ROWS[1:]], "line 1", "space, not a TAB"),
        ([*GOOD_ROWS[:2], "/in/assets/zz/other.jpg\t0.5", *GOOD_ROWS[2:]], "line 3", "not a candidate"),
        ([GOOD_ROWS[0], GOOD_ROWS[3], GOOD_ROWS[1], GOOD_ROWS[2]], "line 3", "not sorted"),
        ([GOOD_ROWS[0], f"{CANDIDATES[2]}\tnan", *GOOD_ROWS[2:]], "line 2", "finite"),
        ([GOOD_ROWS[0], f"{CANDIDATES[2]}\t-inf", *GOOD_ROWS[2:]], "line 2", "finite"),
        ([GOOD_ROWS[0], f"{CANDIDATES[2]}\thigh", *GOOD_ROWS[2:]], "line 2", "not a number"),
        ([*GOOD_ROWS, GOOD_ROWS[3]], "line 5", "listed again"),
    ],
)
def test_mining_defects_are_reported_on_their_line(tmp_path: Path, rows: list[str], place: str, match: str) -> None:
    problems = _mining(tmp_path, _tsv(*rows))
    assert (os.path.basename(problems[0].file), problems[0].place) == ("result.tsv", place)
    assert match in problems[0].message
    # a line YMIR cannot read also leaves its candidate without a line; nothing else is reported
    assert {p.place for p in problems[1:]} <= {""}


def test_a_truncated_mining_result_is_reported(tmp_path: Path) -> None:
    problems = _mining(tmp_path, _tsv(*GOOD_ROWS[:3]) + CANDIDATES[0][:20])
    assert places(problems) == {("result.tsv", "line 4"), ("result.tsv", "")}
    assert "truncated" in problems[0].message and "1 of 4 candidates have no line" in problems[1].message


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
    ("item", "place", "match"),
    [
        (_item(_box(x=30.5)), f"{PLACE}.box.x", "must be an integer"),
        (_item(_box(w="30")), f"{PLACE}.box.w", "JSON integer"),
        (_item(_box(h=True)), f"{PLACE}.box.h", "JSON integer"),
        (_item(_box(x=-1)), f"{PLACE}.box.x", ">= 0"),
        (_item(_box(y=-1)), f"{PLACE}.box.y", ">= 0"),
        (_item(_box(h=-2)), f"{PLACE}.box.h", "> 0"),
        (_item(_box(w=0)), f"{PLACE}.box.w", "> 0"),
        (_item({"x": 1, "y": 1, "w": 1}), f"{PLACE}.box.h", "missing"),
        (_item(_box(x2=5)), f"{PLACE}.box", "unexpected keys ['x2']"),
        (_item([1, 2, 3, 4]), f"{PLACE}.box", "must be an object"),
        (_item(class_name="zebra"), f"{PLACE}.class_name", "unknown class 'zebra'"),
        (_item(class_name=None), f"{PLACE}.class_name", "class name string"),
        ({"box": _box(), "class_name": "cat"}, f"{PLACE}.score", "missing"),
        (_item(score="high"), f"{PLACE}.score", "must be a number"),
        ("cat", PLACE, "must be an object"),
    ],
)
@pytest.mark.parametrize("protocol", contract.PROTOCOL_VERSIONS)
def test_box_defects_are_reported_with_their_place(
    tmp_path: Path, item: object, place: str, match: str, protocol: str,
) -> None:
    key = contract.infer_list_key(protocol)
    problems = _one(tmp_path, item, protocol, key)
    place = place.replace(".boxes[", f".{key}[")
    assert [(os.path.basename(p.file), p.place) for p in problems] == [("infer-result.json", place)]
    assert match in problems[0].message


def test_a_score_that_overflows_to_infinity_is_reported(tmp_path: Path) -> None:
    text = json.dumps({"detection": {A: {"boxes": [_item(score="S")]}}}).replace('"S"', "1e999")
    (problem,) = _infer(tmp_path, text)
    assert problem.place == f"detection[{A!r}].boxes[0].score" and "finite" in problem.message


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_reported_where_they_are(tmp_path: Path, token: str) -> None:
    text = json.dumps({"detection": {A: {"boxes": [_item(score="S"), _item(_box(x="X"))]}}})
    problems = _infer(tmp_path, text.replace('"S"', token).replace('"X"', token))
    assert places(problems) == {("infer-result.json", f"detection[{A!r}].boxes[0].score"),
                                ("infer-result.json", f"detection[{A!r}].boxes[1].box.x")}
    assert all(f"{token} is not valid JSON" in p.message for p in problems)


def test_nan_outside_the_boxes_is_still_reported(tmp_path: Path) -> None:
    (problem,) = _infer(tmp_path, '{"detection": {}, "speed": NaN}')
    assert problem.place == "" and "1 NaN/Infinity" in problem.message


def test_duplicate_json_keys_are_reported(tmp_path: Path) -> None:
    boxes = '{"boxes": []}'
    text = f'{{"detection": {{"{A}": {boxes}, "{B}": {boxes}, "{A}": {boxes}}}}}'
    (problem,) = _infer(tmp_path, text)
    assert (problem.place, A in problem.message) == ("detection", True)
    text = f'{{"detection": {{"{A}": {{"boxes": [{{"box": {{"x": 1, "x": 2, "y": 1, "w": 1, "h": 1}}, ' \
           f'"class_name": "cat", "score": 0.5}}]}}}}}}'
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
        ({"detection": {A: {"boxes": [], "annotations": []}}}, f"detection[{A!r}]"),
    ],
)
def test_structure_defects_are_reported(tmp_path: Path, data: object, place: str) -> None:
    assert places(_infer(tmp_path, json.dumps(data))) == {("infer-result.json", place)}


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
