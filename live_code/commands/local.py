"""``live-code local``: build a task directory as YMIR would and run the same pipeline on it.

The work dir holds what a YMIR sandbox holds, so ``live-code replay`` works on it too::

    WORK/in/                  env.yaml, config.yaml, assets, annotations, index files, models
    WORK/out/                 the job's outputs, monitor.txt, live-code-provenance.yaml
    WORK/task_config.yaml     {executor_config: <config.yaml>, task_context: {...}}
    WORK/source/              only for a snapshot: the folder committed into a git repo of its own

The repository is ``PATH_OR_URL@PIN`` (a commit, a tag; a branch or ``HEAD`` only with
``allow_branch``, the meaning of ``live_code_allow_branch``), or a local folder without a pin: its
files as they are now are committed into ``WORK/source`` (``live_code.commands.repo``), and the
provenance says it was a snapshot. The steps' homes: ``repo`` (the --repo argument), ``models``
(--model), ``names`` (the user's file names, --export), ``local_run`` (the pipeline run on the task
dir, shared with replay) and ``local_cli`` (the command line).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from live_code import contract, util
from live_code.commands import datasets
from live_code.commands.local_run import annotate_provenance, announce_sandbox, explain, job_runner
from live_code.commands.models import Model, install_model, read_model
from live_code.commands.names import GROUND_TRUTH, NAMES, export_results, read_names, write_names
from live_code.commands.repo import (
    WORK_ROOT_NAME,
    RepoSpec,
    Source,
    folder_state,
    parse_repo,
    resolve_source,
    snapshot,
)
from live_code.contract import TaskKind
from live_code.errors import ConfigError, EnvironmentBuildError, JobError, LiveCodeError
from live_code.record import field, record
from live_code.run import pipeline
from live_code.source.store import Pin, Store
from live_code.task import config as config_mod
from live_code.task import manifest as manifest_mod

log = logging.getLogger(__name__)

TASK_CONFIG = "task_config.yaml"
#: the job's own output (stdout and stderr) of a local run, next to in/ and out/
JOB_LOG = "job.log"
_REPO_KEYS = ("git_url", "git_commit", "git_tag", "git_branch")


def _peek(source: Source, work: Path, store: Store, allow_branch: bool) -> tuple[Source, manifest_mod.Manifest]:
    """The repository's manifest at the pin, read before the task is built; a legacy ref that
    turns out to be a tag becomes ``git_tag``. The fetch fills the cache the run then uses."""
    if source.pin.kind == "commit" and source.keys["git_url"] == str(work / "source"):
        return source, manifest_mod.load(work / "source")  # a snapshot: its files are right there
    dest = work / ".peek"
    try:
        prov = store.fetch_source(
            source.keys["git_url"],
            source.pin,
            dest,
            allow_branch=allow_branch,
            allow_local=True,
            token=source.token or os.environ.get("LIVE_CODE_GIT_TOKEN"),
        )
        manifest = manifest_mod.load(dest)
    except LiveCodeError as e:
        raise explain(e) from None
    finally:
        util.rmtree(dest)
    if source.pin.kind == "legacy-ref" and prov.resolved_kind == "tag":
        keys = {k: v for k, v in source.keys.items() if k not in ("git_branch", "live_code_allow_branch")}
        keys["git_tag"] = source.pin.value
        source = Source(keys, Pin("tag", source.pin.value), {**source.record, "pin_kind": "tag"}, source.token)
    return source, manifest


#: what a base must hold for each framework a manifest may declare (canonical distribution names)
_FRAMEWORK_DISTS = {"torch": ("torch",), "mxnet": ("mxnet", "mxnet-cu*", "mxnet-mkl")}


def check_base(manifest: manifest_mod.Manifest, base_python: str | None = None) -> None:
    """Refuse, before anything is built, a base interpreter without the framework the manifest
    declares: the job env is layered over the base, so the job could not import it."""
    wanted = _FRAMEWORK_DISTS.get(manifest.framework)
    if not wanted:
        return
    from live_code.envs.builder import base_fingerprint

    explicit = base_python or os.environ.get("LIVE_CODE_BASE_PYTHON")
    python = explicit or sys.executable
    names = base_fingerprint(python).versions
    if any(fnmatch.fnmatchcase(n, w) for n in names for w in wanted):
        return
    which = (
        f"the base interpreter {python}"
        if explicit
        else f"LIVE_CODE_BASE_PYTHON is unset, so the base is live-code's own interpreter {python}, which"
    )
    raise EnvironmentBuildError(
        f"the repository declares framework: {manifest.framework}, and {which} has no {manifest.framework}",
        value=python,
        hint=f"set LIVE_CODE_BASE_PYTHON to a python that has {manifest.framework} (e.g. make one: "
        f"python3 -m venv ~/fw && ~/fw/bin/pip install {manifest.framework}; then export "
        f"LIVE_CODE_BASE_PYTHON=~/fw/bin/python), or run in the live-code image of {manifest.framework}",
    )


# -- the run -------------------------------------------------------------------------------------


@record
class LocalRequest:
    repo: str
    kinds: frozenset[TaskKind]
    dataset: str
    work: Path | None = None
    config_file: Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    model: Path | None = None
    stage: str | None = None
    classes: tuple[str, ...] = ()
    fmt: str = "voc"
    protocol: str = contract.PROTOCOL_1_1_0
    sample_images: int = 24
    allow_branch: bool = False
    #: None: ``LIVE_CODE_SANDBOX`` or auto
    sandbox: str | None = None
    keep_work: bool = False


@record
class LocalResult:
    work: Path
    ok: bool
    sandbox: str
    dataset: datasets.DatasetInfo
    error: LiveCodeError | None = None

    @property
    def out_dir(self) -> Path:
        return self.work / "out"

    @property
    def provenance(self) -> Path:
        return self.out_dir / pipeline.PROVENANCE_NAME

    @property
    def job_log(self) -> Path:
        return self.work / JOB_LOG


def default_work(kinds: frozenset[TaskKind], root: Path | None = None) -> Path:
    name = "-".join(k.value for k in contract.TASK_ORDER if k in kinds)
    return (root or Path.cwd() / WORK_ROOT_NAME) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


class Prepared(NamedTuple):
    work: Path
    dataset: datasets.DatasetInfo
    #: what the provenance gets under ``local``
    extra: dict[str, Any]
    #: a credential taken out of the repository URL (for git only)
    token: str | None


def prepare(req: LocalRequest, *, store: Store | None = None, base_python: str | None = None) -> Prepared:
    """Write the work dir (in/, out/, task_config.yaml). Before anything is built, the repository's
    manifest is read: the user's hyper-parameter names are checked against its schema and the base
    interpreter (``base_python``, default: as ``pipeline.Settings.from_environ``) must hold the
    framework it declares."""
    work = _new_work(req)
    check_paths(req)
    user = _user_config(req)
    work.mkdir(parents=True, exist_ok=True)
    with util.clean_path_on_failure(work):
        source = _repository(req, work, store or Store(), user, base_python)
        info, extra = _write_task(req, work, source, user)
    for note in info.notes:
        log.info("dataset: %s", note)
    write_names(req.dataset, work)
    return Prepared(work, info, extra, source.token)


def _new_work(req: LocalRequest) -> Path:
    """The task dir to write: ``--work`` or a new one under ./live-code-work; never one with files."""
    work = (req.work or default_work(req.kinds)).absolute()
    if work.exists() and any(work.iterdir()):
        raise ConfigError(
            f"the work dir {work} exists and is not empty",
            value=str(work),
            hint="give a new --work DIR (each run keeps its own in/ and out/)",
        )
    return work


def _repository(
    req: LocalRequest, work: Path, store: Store, user: Mapping[str, Any], base_python: str | None
) -> Source:
    """The repository at its pin, its manifest read: the user's keys checked against its schema and
    the base checked for its framework."""
    source = resolve_source(parse_repo(req.repo), work, allow_branch=req.allow_branch)
    source, manifest = _peek(source, work, store, req.allow_branch)
    unchecked = manifest_mod.check_user_keys(manifest, req.kinds, user, source="--set/--config")
    if unchecked:
        log.warning(
            "the repository declares no hyper-parameter schema: %s passed to the job unchecked "
            "(a misspelt name is ignored by the job)",
            ", ".join(repr(k) for k in unchecked),
        )
    check_base(manifest, base_python)
    return source


def _write_task(
    req: LocalRequest, work: Path, source: Source, user: Mapping[str, Any]
) -> tuple[datasets.DatasetInfo, dict[str, Any]]:
    """``in/`` (the dataset, config.yaml with the user's keys, the repository and the model), an
    empty ``out/`` and ``task_config.yaml``; the task must read back as YMIR's would. Returns the
    dataset and what the provenance gets under ``local``."""
    task_id = "t" + hashlib.sha1(f"{work} {time.time()}".encode()).hexdigest()[:29]
    model = read_model(req.model.absolute(), req.stage) if req.model else None
    classes = req.classes or (model.class_names if model and TaskKind.TRAINING not in req.kinds else ())
    info = datasets.write_in_dir(
        req.dataset,
        work / "in",
        kinds=req.kinds,
        task_id=task_id,
        protocol=req.protocol,
        fmt=req.fmt,
        classes=classes,
        sample_images=req.sample_images,
    )
    extra = {**source.record, "dataset": info.summary(), "work": str(work)}
    cfg = _write_config(req, work, source, user, classes, model, extra)
    (work / "out").mkdir()
    context = {
        "task_id": task_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tool": "live-code local",
        **{k: v for k, v in extra.items() if k != "work"},
    }
    util.atomic_write(
        work / TASK_CONFIG, yaml.safe_dump({"executor_config": cfg, "task_context": context}, sort_keys=False)
    )
    config_mod.load_task(work / "in", out_dir=work / "out")  # the task must read back as YMIR's would
    return info, extra


def _write_config(
    req: LocalRequest,
    work: Path,
    source: Source,
    user: Mapping[str, Any],
    classes: tuple[str, ...],
    model: Model | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """in/config.yaml as the dataset wrote it, with the classes, the user's keys, the repository's
    keys and the model's files (installed into in/models; ``extra`` records which)."""
    cfg_path = work / "in" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text()) or {}
    if classes and list(classes) != cfg.get("class_names"):
        cfg["class_names"] = list(classes)
    cfg.update(user)
    cfg.update(source.keys)
    if model is not None:
        protocol = config_mod.load_task(work / "in").protocol
        key = "pretrained_model_params" if TaskKind.TRAINING in req.kinds else "model_params_path"
        cfg[key] = install_model(model, work / "in", protocol)
        extra["model"] = f"{req.model} (stage {model.stage})"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def check_paths(req: LocalRequest) -> None:
    """Every path argument, before anything is written: what is there, and what was expected."""
    if req.dataset != "sample" and not Path(req.dataset).expanduser().exists():
        raise ConfigError(
            f"--dataset {req.dataset} does not exist",
            value=req.dataset,
            hint="give `sample`, a task dir (in/env.yaml), a folder of images (with VOC xml) or a COCO json",
        )
    _expect(
        "--model",
        req.model,
        folder=True,
        hint="give a folder: an earlier training run's out/models, or an unpacked YMIR model package",
    )
    _expect("--config", req.config_file, folder=False, hint="give a YAML file of hyper-parameters (config.yaml keys)")
    if req.work is not None and req.work.exists() and not req.work.is_dir():
        raise ConfigError(
            f"--work {req.work} is a file", value=str(req.work), hint="give a new folder for the task dir (in/, out/)"
        )
    spec = parse_repo(req.repo)
    if (
        spec.pin is None
        and "://" not in spec.location
        and not Path(spec.location).expanduser().exists()
        and ":" not in spec.location
    ):
        raise ConfigError(
            f"--repo {spec.location}: no such folder",
            value=spec.location,
            hint="give a local folder, or PATH_OR_URL@PIN (a commit or tag)",
        )


def _expect(option: str, path: Path | None, *, folder: bool, hint: str) -> None:
    """``path`` (when given) is a folder, or a file: else an error saying what is there instead."""
    if path is None or (path.is_dir() if folder else path.is_file()):
        return
    what = ("is a file" if folder else "is a directory") if path.exists() else "does not exist"
    raise ConfigError(f"{option} {path} {what}", value=str(path), hint=hint)


def _user_config(req: LocalRequest) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    if req.config_file is not None:
        cfg, _ = config_mod.read_yaml_mapping(req.config_file)
    cfg.update(req.overrides)
    given = [k for k in _REPO_KEYS if k in cfg]
    if given:
        raise ConfigError(
            f"{', '.join(given)} in the config: the repository comes from --repo",
            value=given,
            hint="remove them from the config file; pass --repo PATH_OR_URL@PIN",
        )
    return cfg


def run(req: LocalRequest, *, store: Store | None = None) -> LocalResult:
    """Prepare the work dir and run the pipeline on it; a failed run is returned with its error
    (the work dir stays for ``replay`` and inspection)."""
    store = store or Store()
    work, info, extra, token = prepare(req, store=store)
    overrides: dict[str, Any] = {
        "in_dir": work / "in",
        "out_dir": work / "out",
        "allow_local": True,
        "work_root": work,
        "keep_work": req.keep_work,
    }
    if token:
        overrides["token"] = token
    if req.sandbox:
        overrides["sandbox"] = req.sandbox
    settings = pipeline.Settings.from_environ(**overrides)
    mode = announce_sandbox(settings)
    error: LiveCodeError | None = None
    try:
        pipeline.run(settings, store=store, runner=job_runner(work / JOB_LOG))
    except LiveCodeError as e:
        error = explain(e)
        if isinstance(error, JobError) and "output above" in (error.hint or ""):
            error = JobError(
                error.message,
                value=error.value,
                hint=f"read the job's output in {work / JOB_LOG} (it was echoed on stderr too)",
            )
    finally:
        annotate_provenance(work / "out", {"local": extra})
    return LocalResult(work, error is None, mode, info, error)


__all__: Sequence[str] = (
    "GROUND_TRUTH",
    "NAMES",
    "WORK_ROOT_NAME",
    "LocalRequest",
    "LocalResult",
    "Model",
    "RepoSpec",
    "annotate_provenance",
    "check_base",
    "export_results",
    "folder_state",
    "parse_repo",
    "prepare",
    "read_model",
    "read_names",
    "resolve_source",
    "run",
    "snapshot",
)
