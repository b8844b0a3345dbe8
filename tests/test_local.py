"""``live-code local`` (issue 7): repo specs, snapshots, datasets in every accepted form, models,
and runs through the real pipeline, faithful to the container with bubblewrap and announced
without it (acceptance 2). Jobs are small legacy-layout repos run over the harness's own python."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from live_code import contract
from live_code.commands import datasets, local, sample
from live_code.contract import TaskKind
from live_code.errors import ConfigError, DatasetError, JobError, SourceError
from live_code.task import config
from tests.helpers.jobs import LOCAL_JOB, cli_env, local_argv
from tests.helpers.jobs import run_researcher_cli as run_cli
from tests.helpers.repos import git

ROOT = Path(__file__).resolve().parent.parent
TRAINING = frozenset({TaskKind.TRAINING})
MINING_INFER = frozenset({TaskKind.MINING, TaskKind.INFER})


def _write_in(
    dataset: str | Path, dest: Path, kinds: frozenset[TaskKind], fmt: str = "voc", **kw: Any
) -> datasets.DatasetInfo:
    """``datasets.write_in_dir`` for a task of ``kinds`` with the fixed task id and protocol of these tests."""
    return datasets.write_in_dir(
        str(dataset), dest, kinds=kinds, task_id="t" * 30, protocol=contract.PROTOCOL_1_1_0, fmt=fmt, **kw
    )


# -- repo specs and snapshots --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "location", "pin"),
    [
        ("git@host:org/repo.git@v1", "git@host:org/repo.git", "v1"),
        ("git@host:org/repo.git", "git@host:org/repo.git", None),
        ("https://tok@host/r.git@abc123", "https://tok@host/r.git", "abc123"),
        ("https://tok@host/r.git", "https://tok@host/r.git", None),
        ("ssh://git@host/org/r@release/2.0", "ssh://git@host/org/r", "release/2.0"),
        ("./remote_templates/minimal@HEAD", "./remote_templates/minimal", "HEAD"),
    ],
)
def test_repo_spec_splits_on_the_last_at_after_the_host(text: str, location: str, pin: str | None) -> None:
    assert local.parse_repo(text) == (location, pin)


def test_an_existing_path_with_an_at_is_taken_whole(tmp_path: Path) -> None:
    folder = tmp_path / "me@work"
    folder.mkdir()
    assert local.parse_repo(str(folder)) == (str(folder), None)


def test_snapshot_commits_the_files_as_they_are_and_respects_gitignore(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"start.py": "print(1)\n", ".gitignore": "*.log\n"})
    (repo / "start.py").write_text("print(2)\n")  # uncommitted change: part of the snapshot
    (repo / "new.py").write_text("x = 1\n")  # untracked: part of it too
    (repo / "debug.log").write_text("noise\n")  # ignored: left out
    sha, files = local.snapshot(repo, tmp_path / "s1")
    assert files == 3
    assert (tmp_path / "s1" / "start.py").read_text() == "print(2)\n"
    assert not (tmp_path / "s1" / "debug.log").exists()
    sha2, _ = local.snapshot(repo, tmp_path / "s2")
    assert sha2 == sha, "the same files give the same commit"
    (repo / "new.py").write_text("x = 2\n")
    assert local.snapshot(repo, tmp_path / "s3")[0] != sha


def test_snapshot_of_a_plain_folder(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    (folder / "__pycache__").mkdir(parents=True)
    (folder / "start.py").write_text("print(1)\n")
    (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")
    sha, files = local.snapshot(folder, tmp_path / "snap")
    assert files == 1 and len(sha) == 40
    assert git("status", "--porcelain", cwd=tmp_path / "snap") == ""


def test_head_needs_allow_branch_and_resolves_to_the_commit(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": "print(1)\n"})
    with pytest.raises(SourceError, match="HEAD moves"):
        local.resolve_source(local.RepoSpec(str(repo), "HEAD"), tmp_path)
    source = local.resolve_source(local.RepoSpec(str(repo), "HEAD"), tmp_path, allow_branch=True)
    assert source.keys["git_commit"] == git("rev-parse", "HEAD", cwd=repo)
    assert source.keys["live_code_allow_branch"] is True


# -- datasets ----------------------------------------------------------------------------------


def _voc_folder(root: Path, images: int = 6, pascal: bool = True) -> list[sample.SampleImage]:
    drawn = list(sample.draw_images(images, seed=3))
    img_dir, ann_dir = (root / "JPEGImages", root / "Annotations") if pascal else (root, root)
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    for n, im in enumerate(drawn):
        (img_dir / f"img{n}.png").write_bytes(im.png)
        xml = sample.voc_text(im, contract.PROTOCOL_1_1_0).replace(f"/in/{im.rel_path}", f"img{n}.png")
        (ann_dir / f"img{n}.xml").write_text(xml)
    return drawn


def _load(in_dir: Path) -> config.Task:
    return config.load_task(in_dir)


@pytest.mark.parametrize("pascal", [True, False])
@pytest.mark.parametrize("fmt", ["voc", "ark", "coco"])
def test_voc_folder_becomes_a_ymir_training_export(tmp_path: Path, pascal: bool, fmt: str) -> None:
    drawn = _voc_folder(tmp_path / "data", images=10, pascal=pascal)
    info = _write_in(tmp_path / "data", tmp_path / "in", TRAINING, fmt)
    names = tuple(sorted({b.class_name for im in drawn for b in im.boxes}))
    assert info.class_names == names and info.images == 10
    assert info.boxes == sum(len(im.boxes) for im in drawn)
    task = _load(tmp_path / "in")
    assert task.config.class_names == names and task.config.annotation_format == fmt
    train = (tmp_path / "in" / "train-index.tsv").read_text().splitlines()
    val = (tmp_path / "in" / "val-index.tsv").read_text().splitlines()
    assert (len(train), len(val)) == (8, 2)
    for line in train + val:
        image, annotation = line.split("\t")
        sha1 = Path(image).stem
        assert image == f"/in/assets/{sha1[-2:]}/{sha1}.png"
        assert (tmp_path / "in" / image[4:]).is_file() and (tmp_path / "in" / annotation[4:]).is_file()


def test_conversion_is_deterministic(tmp_path: Path) -> None:
    _voc_folder(tmp_path / "data")
    for name in ("a", "b"):
        _write_in(tmp_path / "data", tmp_path / name, TRAINING)
    for index in ("train-index.tsv", "val-index.tsv"):
        assert (tmp_path / "a" / index).read_text() == (tmp_path / "b" / index).read_text()


def test_classes_option_keeps_only_those_boxes(tmp_path: Path) -> None:
    drawn = _voc_folder(tmp_path / "data", images=8)
    info = _write_in(tmp_path / "data", tmp_path / "in", TRAINING, "ark", classes=("dog",))
    assert info.class_names == ("dog",)
    assert info.boxes == sum(1 for im in drawn for b in im.boxes if b.class_name == "dog")
    lines = [line for f in (tmp_path / "in" / "annotations").rglob("*.txt") for line in f.read_text().splitlines()]
    assert lines and all(line.startswith("0, ") for line in lines)


@pytest.mark.parametrize("layout", ["file", "dir", "dir-annotations"])
def test_coco_json_becomes_a_ymir_export(tmp_path: Path, layout: str) -> None:
    drawn = sample.draw_images(6, seed=5)
    data = tmp_path / "coco"
    (data / "images").mkdir(parents=True)
    for im in drawn:
        (data / "images" / f"{im.sha1}.png").write_bytes(im.png)
    doc = json.loads(sample.coco_text(drawn))
    ann = data / ("annotations" if layout == "dir-annotations" else "") / "instances.json"
    ann.parent.mkdir(exist_ok=True)
    ann.write_text(json.dumps(doc))
    given = str(ann) if layout == "file" else str(data)
    info = _write_in(given, tmp_path / "in", TRAINING, "coco")
    assert info.class_names == sample.CLASS_NAMES
    assert info.boxes == sum(len(im.boxes) for im in drawn)
    written = json.loads((tmp_path / "in" / "annotations" / "coco-annotations.json").read_text())
    assert len(written["annotations"]) == info.boxes
    assert {im["file_name"] for im in written["images"]} == {f"{im.sha1}.png" for im in drawn}


def test_coco_with_a_missing_image_names_it(tmp_path: Path) -> None:
    drawn = sample.draw_images(2)
    (tmp_path / "a.json").write_text(sample.coco_text(drawn))
    with pytest.raises(DatasetError, match="not found next to it"):
        _write_in(tmp_path / "a.json", tmp_path / "in", TRAINING)


def test_images_without_annotations_serve_mining_but_not_training(tmp_path: Path) -> None:
    data = tmp_path / "pics"
    data.mkdir()
    from PIL import Image  # a JPEG, as most real datasets hold

    Image.new("RGB", (40, 30), (10, 200, 30)).save(data / "a.jpeg")
    (data / "b.png").write_bytes(sample.draw_images(1)[0].png)
    info = _write_in(data, tmp_path / "in", MINING_INFER, classes=("cat",))
    assert info.images == 2
    cands = (tmp_path / "in" / "candidate-index.tsv").read_text().split()
    assert sorted(Path(c).suffix for c in cands) == [".jpg", ".png"]
    assert datasets.image_size(tmp_path / "in" / cands[0][4:]) in ((40, 30), (128, 128))
    with pytest.raises(DatasetError, match="no annotations"):
        _write_in(data, tmp_path / "in2", TRAINING)


def test_a_training_export_serves_mining_through_a_candidate_index(tmp_path: Path) -> None:
    sample.write_sample_dataset(tmp_path / "task", kinds=TRAINING, fmt="voc", images=8)
    info = _write_in(tmp_path / "task", tmp_path / "in", MINING_INFER)
    task = _load(tmp_path / "in")
    assert task.kinds == MINING_INFER and task.task_id == "t" * 30
    assert len((tmp_path / "in" / "candidate-index.tsv").read_text().split()) == 8
    assert info.class_names == sample.CLASS_NAMES and any("candidate-index" in n for n in info.notes)


def test_a_mining_export_cannot_train(tmp_path: Path) -> None:
    sample.write_sample_dataset(tmp_path / "task", kinds=MINING_INFER, images=4)
    with pytest.raises(DatasetError, match="no training and validation images"):
        _write_in(tmp_path / "task", tmp_path / "in", TRAINING)


# -- models --------------------------------------------------------------------------------------


def test_read_model_takes_the_best_stage_or_the_one_asked(tmp_path: Path) -> None:
    models = tmp_path / "out" / "models"
    for stage in ("epoch_1", "epoch_2"):
        (models / stage).mkdir(parents=True)
        (models / stage / f"{stage}.pt").write_text(stage)
    (models / "result.yaml").write_text(
        yaml.safe_dump(
            {
                "best_stage_name": "epoch_2",
                "model_stages": {
                    s: {"stage_name": s, "files": [f"{s}.pt"], "timestamp": 1, "mAP": 0.1}
                    for s in ("epoch_1", "epoch_2")
                },
            }
        )
    )
    (tmp_path / "out" / "live-code-config.yaml").write_text("class_names: [a, b]\n")
    model = local.read_model(models)
    assert (model.stage, [f.name for f in model.files], model.class_names) == ("epoch_2", ["epoch_2.pt"], ("a", "b"))
    assert local.read_model(models, "epoch_1").stage == "epoch_1"
    with pytest.raises(ConfigError, match="no stage 'epoch_9'"):
        local.read_model(models, "epoch_9")


def test_read_model_of_a_legacy_result_and_a_ymir_package(tmp_path: Path) -> None:
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "m.params").write_text("x")
    (tmp_path / "legacy" / "result.yaml").write_text("model: [m.params]\nmap: 0.5\n")
    assert local.read_model(tmp_path / "legacy").files == (tmp_path / "legacy" / "m.params",)
    pkg = tmp_path / "pkg"
    (pkg / "best").mkdir(parents=True)
    (pkg / "best" / "w.pt").write_text("x")
    (pkg / "ymir-info.yaml").write_text(
        yaml.safe_dump(
            {
                "executor_config": {"class_names": ["car"]},
                "best_stage_name": "best",
                "stages": {"best": {"files": ["w.pt"], "mAP": 0.3}},
            }
        )
    )
    model = local.read_model(pkg)
    assert model.class_names == ("car",) and model.files == (pkg / "best" / "w.pt",)
    with pytest.raises(ConfigError, match="not a model"):
        local.read_model(tmp_path)


# -- runs --------------------------------------------------------------------------------------


def _request(repo: str, work: Path, kinds: frozenset[TaskKind] = MINING_INFER, **kw: object) -> local.LocalRequest:
    return local.LocalRequest(repo=repo, kinds=kinds, dataset="sample", work=work, sample_images=4, **kw)  # type: ignore[arg-type]  # keyword arguments passed through as object


def test_local_run_of_a_folder_writes_a_replayable_task_dir(tmp_path: Path) -> None:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "start.py").write_text(LOCAL_JOB)
    cfg = tmp_path / "hp.yaml"
    cfg.write_text("my_lr: 0.1\nmy_epochs: 3\n")
    result = local.run(_request(str(folder), tmp_path / "work", config_file=cfg, overrides={"my_epochs": 5}))
    assert result.ok, result.error
    work = tmp_path / "work"
    task = config.load_task(work / "in", out_dir=work / "out")
    assert task.config.hyperparameters["my_epochs"] == 5 and task.config.hyperparameters["my_lr"] == 0.1
    assert (work / "out" / "result.tsv").is_file() and (work / "out" / "infer-result.json").is_file()
    task_config = yaml.safe_load((work / local.TASK_CONFIG).read_text())
    assert task_config["executor_config"]["git_url"] == str(work / "source")
    prov = yaml.safe_load(result.provenance.read_text())
    assert prov["local"]["dirty"] is True and prov["local"]["snapshot_of"] == str(folder.resolve())
    assert prov["local"]["git"] is False and prov["local"]["head"] is None
    assert prov["source"]["commit"] == task_config["executor_config"]["git_commit"]


def test_training_then_mining_with_the_trained_model(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    trained = local.run(_request(f"{repo}@v1", tmp_path / "train", TRAINING))
    assert trained.ok, trained.error
    mined = local.run(_request(f"{repo}@v1", tmp_path / "mine", model=trained.out_dir / "models"))
    assert mined.ok, mined.error
    cfg = yaml.safe_load((tmp_path / "mine" / "in" / "config.yaml").read_text())
    # the stage's files as YMIR hands them, the env's lock among them (issue 22)
    assert cfg["model_params_path"] == ["/in/models/best/model.txt", "/in/models/best/pylock.toml"]
    assert (tmp_path / "mine" / "in" / "models" / "best" / "model.txt").read_text() == "weights"
    prov = yaml.safe_load(mined.provenance.read_text())
    assert prov["source"]["pin"] == "v1" and prov["source"]["resolved_kind"] == "tag"


def test_repo_keys_in_the_config_are_refused(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    with pytest.raises(ConfigError, match="comes from --repo"):
        local.run(_request(f"{repo}@v1", tmp_path / "w", overrides={"git_url": "https://x/y"}))
    assert not (tmp_path / "w").exists()


def test_a_branch_pin_needs_allow_branch(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": LOCAL_JOB})
    with pytest.raises(SourceError, match="is a branch") as info:  # up front: nothing is built
        local.run(_request(f"{repo}@main", tmp_path / "w"))
    assert "--allow-branch" in (info.value.hint or "") and not (tmp_path / "w").exists()
    assert local.run(_request(f"{repo}@main", tmp_path / "w2", allow_branch=True)).ok


def test_a_non_empty_work_dir_is_refused(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        local.run(_request(f"{repo}@v1", tmp_path / "w"))
    assert (tmp_path / "w" / "keep.txt").read_text() == "mine"


@pytest.mark.needs_bwrap
def test_a_job_writing_into_in_fails_with_a_clear_message(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": "open('/in/cache.txt', 'w').write('x')\n" + LOCAL_JOB}, tag="v1")
    proc = run_cli(
        *local_argv(f"{repo}@v1", task="mining", work=tmp_path / "w", images=4),
        cwd=tmp_path,
    )
    assert proc.returncode == JobError.exit_code, proc.stderr
    assert "sandbox: bubblewrap" in proc.stderr
    assert "the job wrote into /in, which is read-only in YMIR" in proc.stderr
    assert "hint: write caches and temporary files under /out or /tmp" in proc.stderr
    assert not (tmp_path / "w" / "in" / "cache.txt").exists()
    assert f"replay it with: live-code replay {tmp_path / 'w'}" in proc.stdout


def test_without_bubblewrap_the_fallback_is_taken_and_announced(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    env = cli_env(allow_local_repos=False, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    proc = run_cli(
        *local_argv(f"{repo}@v1", task="mining+infer", work=tmp_path / "w", images=4),
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sandbox: none (bubblewrap cannot create a sandbox here" in proc.stderr
    assert "falling back to mapped paths on this machine" in proc.stderr
    prov = yaml.safe_load((tmp_path / "w" / "out" / "live-code-provenance.yaml").read_text())
    assert (
        prov["sandbox"]["mode"] == "fallback" and "No permissions to create new namespace" in prov["sandbox"]["reason"]
    )
    assert "in_written" not in prov["sandbox"]  # tests/test_fallback.py runs the templates and a job writing into in/
    rows = (tmp_path / "w" / "out" / "result.tsv").read_text().splitlines()
    assert rows and all(r.startswith("/in/assets/") for r in rows)  # container paths, as YMIR wants


def test_prefetch_warms_source_and_env(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"start.py": LOCAL_JOB}, tag="v1")
    proc = run_cli("prefetch", str(repo), "v1", cwd=tmp_path, env=cli_env())
    assert proc.returncode == 0, proc.stderr
    sha = git("rev-parse", "HEAD", cwd=repo)
    assert f"commit {sha}" in proc.stdout and "env:" in proc.stdout
    ls = run_cli("cache", "ls", cwd=tmp_path)
    assert "mirrors" in ls.stdout and "envs" in ls.stdout


def test_a_credential_in_the_repo_url_stays_out_of_the_task_files(tmp_path: Path) -> None:
    source = local.resolve_source(local.parse_repo("https://user:s3cr3t-token@git.example.com/org/r.git@v1"), tmp_path)
    assert source.token == "s3cr3t-token"
    assert source.keys == {"git_url": "https://git.example.com/org/r.git", "git_branch": "v1"}
    assert "s3cr3t" not in str(source.record)


def test_a_task_dir_is_reused_for_the_same_kind(tmp_path: Path) -> None:
    made = sample.write_sample_dataset(tmp_path / "task", kinds=TRAINING, fmt="coco", images=8)
    info = _write_in(tmp_path / "task", tmp_path / "in", TRAINING)
    assert info.class_names == sample.CLASS_NAMES
    for name in ("train-index.tsv", "val-index.tsv", "annotations/coco-annotations.json"):
        assert (tmp_path / "in" / name).read_bytes() == (made.in_dir / name).read_bytes()
    assert _load(tmp_path / "in").config.annotation_format == "coco"
