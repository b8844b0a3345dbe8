"""live_code/task/legacy.py: which executor SDK a legacy repo was written against, what its layout
implies, and the errors when that cannot be installed. End to end (real runs, offline): tests/
test_legacy_repos.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from live_code.envs import builder as envs
from live_code.errors import ConfigError, EnvironmentBuildError
from live_code.task import legacy

SDK1 = f"ymir-exc=={legacy.SDK1_VERSION}"
SDK2 = f"ymir-exc=={legacy.SDK2_VERSION}"
USER_REPOS = Path(__file__).parent / "resources" / "user_repos"


@pytest.mark.parametrize(
    ("source", "generation", "why"),
    [
        (
            "from ymir_exc import dataset_reader as dr, env, monitor, result_writer as rw\n"
            "rw.write_training_result(model_names=['m'], mAP=0.5, classAPs={})\n",
            "1",
            "start.py:1 imports ymir_exc",
        ),
        ("import os\nfrom ymir_exc.util import get_merged_config\n", "2", "start.py:2 uses ymir_exc.util"),
        ("from ymir_exc import (\n    env,\n    util,\n)\n", "2", "start.py:1 uses ymir_exc.util"),
        (
            "import ymir_exc.result_writer as rw\n\nrw.write_model_stage('a', [], {})\n",
            "2",
            "start.py:3 uses write_model_stage",
        ),
        (
            "from ymir_exc import monitor\nmonitor.write_monitor_logger_for_multiple_tasks(cfg, 'mining', 0.1)\n",
            "2",
            "uses write_monitor_logger_for_multiple_tasks",
        ),
        ("from ymir_exc import env\nitems_count = 3  # a name of the user's own\n", "1", "imports ymir_exc"),
        ("import os, ymir_exc\n", "1", "start.py:1 imports ymir_exc"),
        ("import cv2\nprint('no sdk')\n", None, "no Python file of the repository imports ymir_exc"),
        ("# from ymir_exc.util import get_merged_config (a comment is no import)\n", None, "no Python file"),
    ],
)
def test_detect_sdk(tmp_path: Path, source: str, generation: str | None, why: str) -> None:
    (tmp_path / "start.py").write_text(source)
    choice = legacy.detect_sdk(tmp_path)
    assert choice.generation == generation and why in choice.reason, choice


def test_the_fixture_repos_are_detected_as_written() -> None:
    assert legacy.detect_sdk(USER_REPOS / "ymir_exc1").generation == "1"
    choice = legacy.detect_sdk(USER_REPOS / "ymir_exc2")
    assert choice.generation == "2" and choice.reason.startswith("ymir/")


def test_a_2x_name_in_another_file_than_the_import_counts(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from ymir_exc import env\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "b.py").write_text("from ymir_exc.util import YmirStage\n")
    assert legacy.detect_sdk(tmp_path).reason == "pkg/b.py:1 uses ymir_exc.util, which only the 2.x SDK has"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "auto"),
        ("", "auto"),
        (1, "1"),
        (2, "2"),
        ("2.x", "2"),
        ("none", "none"),
        ("NONE", "none"),
        ("off", "none"),
        ("auto", "auto"),
    ],
)
def test_sdk_option(value: object, expected: str) -> None:
    assert legacy.sdk_option(value) == expected


@pytest.mark.parametrize("value", [3, "3", True, "latest", 1.5])
def test_a_bad_sdk_option_names_the_choices(value: object) -> None:
    with pytest.raises(ConfigError) as err:
        legacy.sdk_option(value, "config.yaml")
    assert "live_code_ymir_exc must be one of auto, 1, 2, none" in err.value.message and err.value.hint


def test_the_repos_own_lines_win(tmp_path: Path) -> None:
    (tmp_path / "start.py").write_text("from ymir_exc.util import get_merged_config\nimport cv2, loguru\n")
    own = {
        "ymir-exc": "extra-requirements.txt:1",
        "opencv-contrib-python-headless": "extra-requirements.txt:2",
        "loguru": "extra-requirements.txt:3",
    }
    implied = legacy.implied(tmp_path, own, "2", environ={})
    assert implied.requirements == ()
    assert implied.sdk.reason == "the repository lists its own ymir-exc (extra-requirements.txt:1)"


def test_what_a_legacy_repo_is_given(tmp_path: Path) -> None:
    (tmp_path / "start.py").write_text("from ymir_exc import env\n")
    implied = legacy.implied(tmp_path, {}, "auto", environ={})
    assert [r for r, _ in implied.requirements] == [SDK1, *legacy.EXTRAS.values()]
    assert implied.as_dict()["ymir_exc"] == {"sdk": SDK1, "reason": implied.sdk.reason}


def test_a_wheelhouse_setting_that_is_no_wheelhouse_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentBuildError) as err:
        legacy.wheelhouse({legacy.WHEELHOUSE_VAR: str(tmp_path)})
    assert legacy.WHEELHOUSE_VAR in err.value.message and "build-sdk-wheelhouse.sh" in (err.value.hint or "")


def test_the_pins_agree_with_the_wheelhouse_list() -> None:
    pins = Path(__file__).resolve().parent.parent / "base_images" / "common" / "sdk-wheelhouse.txt"
    lines = {ln.strip().lower() for ln in pins.read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    assert {SDK1, *legacy.EXTRAS.values()} <= lines
    assert legacy.SDK2_COMMIT in (pins.parent / "build-sdk-wheelhouse.sh").read_text()


# -- prepare_env: where the implied packages come from -------------------------------------------


def _legacy(make_repo: Callable[..., Path], source: str) -> Path:
    return make_repo({"start.py": source})


def _wheels(folder: Path, *reqs: str) -> str:
    """A folder of wheel names (prepare_env only looks at the names; nothing is installed here)."""
    folder.mkdir(exist_ok=True)
    for req in reqs:
        name, _, version = req.partition("==")
        (folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(b"")
    return str(folder)


def test_an_offline_task_without_a_wheelhouse_names_what_is_missing(tmp_path: Path, make_repo) -> None:
    repo = _legacy(make_repo, "from ymir_exc import env\n")
    index = envs.IndexSettings(find_links=(_wheels(tmp_path / "w", "loguru==0.7.3"),), offline=True)
    with pytest.raises(EnvironmentBuildError) as err:
        envs.prepare_env(repo, legacy_layout=True, index=index, environ={})
    assert f"lacks what the legacy layout implies: {SDK1}, opencv-python-headless==4.10.0.84" in err.value.message
    assert legacy.WHEELHOUSE_VAR in (err.value.hint or "") and "pip_find_links" in (err.value.hint or "")


def test_an_offline_task_whose_wheelhouse_has_them_needs_no_sdk_wheelhouse(tmp_path: Path, make_repo) -> None:
    repo = _legacy(make_repo, "from ymir_exc import env\n")
    wheels = _wheels(tmp_path / "w", SDK1, *legacy.EXTRAS.values())
    spec = envs.prepare_env(
        repo, legacy_layout=True, index=envs.IndexSettings(find_links=(wheels,), offline=True), environ={}
    )
    assert spec.index.find_links == (wheels,) and spec.implied.wheelhouse is None


def test_the_2x_sdk_needs_a_wheelhouse_online_too(make_repo) -> None:
    repo = _legacy(make_repo, "from ymir_exc.util import get_merged_config\n")
    with pytest.raises(EnvironmentBuildError) as err:
        envs.prepare_env(repo, legacy_layout=True, environ={})
    assert "needs the 2.x executor SDK (start.py:1 uses ymir_exc.util" in err.value.message
    assert "not on PyPI" in (err.value.hint or "") and legacy.SDK2_COMMIT in (err.value.hint or "")


def test_with_a_wheelhouse_and_nothing_else_to_resolve_no_index_is_used(tmp_path: Path, make_repo) -> None:
    repo = _legacy(make_repo, "from ymir_exc.util import get_merged_config\n")
    wheels = _wheels(tmp_path / "w", SDK2)
    spec = envs.prepare_env(repo, legacy_layout=True, environ={legacy.WHEELHOUSE_VAR: wheels})
    assert spec.index == envs.IndexSettings(find_links=(str(Path(wheels).resolve()),), offline=True)
    lines = [(r.origin, r.text) for r in spec.requirements.lines]
    assert lines == [(legacy.IMPLIED, SDK2), *((legacy.IMPLIED, r) for r in legacy.EXTRAS.values())]


def test_with_lines_of_its_own_the_index_is_kept_beside_the_wheelhouse(tmp_path: Path, make_repo) -> None:
    repo = make_repo({"start.py": "import easydict\n", "extra-requirements.txt": "easydict==1.13\n"})
    wheels = _wheels(tmp_path / "w", SDK2)
    spec = envs.prepare_env(repo, legacy_layout=True, environ={legacy.WHEELHOUSE_VAR: wheels})
    assert spec.index.offline is False and spec.index.find_links == (str(Path(wheels).resolve()),)
    assert spec.implied.sdk.generation is None  # no import of ymir_exc: no SDK


def test_the_implied_lines_change_the_env_key(tmp_path: Path, make_repo) -> None:
    """The same bytes with another SDK chosen is another env."""
    repo = _legacy(make_repo, "from ymir_exc import env\n")
    wheels = _wheels(tmp_path / "w", SDK1, SDK2)
    environ = {legacy.WHEELHOUSE_VAR: wheels}
    keys = {envs.prepare_env(repo, legacy_layout=True, environ=environ, sdk_option=o).key for o in ("1", "2", "none")}
    assert len(keys) == 3
