"""``live-code local``: build a task directory as YMIR would and run the same pipeline on it.

The work dir holds what a YMIR sandbox holds, so ``live-code replay`` works on it too::

    WORK/in/                  env.yaml, config.yaml, assets, annotations, index files, models
    WORK/out/                 the job's outputs, monitor.txt, live-code-provenance.yaml
    WORK/task_config.yaml     {executor_config: <config.yaml>, task_context: {...}}
    WORK/source/              only for a snapshot: the folder committed into a git repo of its own

The repository is ``PATH_OR_URL@PIN`` (a commit, a tag; a branch or ``HEAD`` only with
``allow_branch``, the meaning of ``live_code_allow_branch``), or a local folder without a pin: its
files as they are now (git's ignore rules applied when it lies in a git work tree) are committed
into ``WORK/source`` with a fixed author and date, so the same files give the same commit, and the
provenance says it was a snapshot. Local paths are allowed: the operator is the user here.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, cast

import yaml

from live_code import contract, util
from live_code.commands import datasets
from live_code.contract import TaskKind
from live_code.errors import ConfigError, EnvironmentBuildError, JobError, LiveCodeError, SourceError
from live_code.run import pipeline
from live_code.source import git
from live_code.source.store import Pin, Store
from live_code.task import config as config_mod
from live_code.task import manifest as manifest_mod

log = logging.getLogger(__name__)

TASK_CONFIG = "task_config.yaml"
#: the job's own output (stdout and stderr) of a local run, next to in/ and out/
JOB_LOG = "job.log"
#: asset name (``<sha1>.<ext>``, as YMIR names it) -> the user's file, for a converted folder or COCO json
NAMES = "names.tsv"
#: the converted dataset's boxes by asset name, for the report (mining and infer tasks carry none)
GROUND_TRUTH = "ground-truth.json"
_PIN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+/-]*$")
_REPO_KEYS = ("git_url", "git_commit", "git_tag", "git_branch")
#: a fixed identity and date: a snapshot's commit id depends on its files only
_SNAPSHOT_ENV = {
    "GIT_AUTHOR_NAME": "live-code snapshot",
    "GIT_AUTHOR_EMAIL": "snapshot@live-code.invalid",
    "GIT_COMMITTER_NAME": "live-code snapshot",
    "GIT_COMMITTER_EMAIL": "snapshot@live-code.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}
_GIT_SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false")


class RepoSpec(NamedTuple):
    location: str
    pin: str | None


def parse_repo(text: str) -> RepoSpec:
    """Split ``PATH_OR_URL@PIN`` on the last ``@`` after the host part (``git@host:org/r.git@v1``,
    ``https://tok@host/r.git@abc123``); an existing path is taken whole."""
    text = text.strip()
    if not text:
        raise ConfigError("--repo is empty", hint="give PATH_OR_URL@PIN, e.g. https://host/org/repo.git@v1")
    if os.path.exists(text):
        return RepoSpec(text, None)
    if "://" in text:
        start = text.find("/", text.index("://") + 3)
        start = len(text) if start < 0 else start
    else:
        colon, slash = text.find(":"), text.find("/")
        start = colon if colon > 0 and (slash < 0 or colon < slash) else 0
    at = text.rfind("@")
    if at >= start and at > 0 and _PIN_RE.match(text[at + 1 :]):
        return RepoSpec(text[:at], text[at + 1 :])
    return RepoSpec(text, None)


class Source(NamedTuple):
    """What goes into config.yaml for the repository, and what the provenance adds. A credential
    in the URL is taken out of it: it reaches git as ``token``, never the task's files."""

    keys: dict[str, Any]
    pin: Pin
    record: dict[str, Any]
    token: str | None = None


def resolve_source(spec: RepoSpec, work: Path, *, allow_branch: bool = False) -> Source:
    """The config keys for ``spec``; a folder without pin is snapshotted into ``work/source``."""
    path = Path(spec.location).expanduser()
    local = path.exists()
    record: dict[str, Any] = {"repo": util.redact(spec.location) + (f"@{spec.pin}" if spec.pin else "")}
    if spec.pin is None:
        if not (local and path.is_dir()):
            raise ConfigError(
                f"--repo {util.redact(spec.location)} has no pin",
                value=util.redact(spec.location),
                hint="add @<tag or commit>, or give a local folder to run its files as they are",
            )
        sha, files = snapshot(path, work / "source", exclude=work)
        record.update(snapshot_of=str(path.resolve()), files=files, **folder_state(path))
        log.info("snapshot of %s (%d files, uncommitted changes included) is commit %s", path, files, sha[:12])
        return Source({"git_url": str(work / "source"), "git_commit": sha}, Pin("commit", sha), record)
    url, token = str(path.resolve()) if local else spec.location, None
    if not local:
        nurl = git.normalise_url(spec.location, allow_local=False)
        url, token = (nurl.url, nurl.secret) if nurl.secret else (url, None)
    pin = spec.pin
    if pin == "HEAD":
        if not local:
            raise ConfigError("@HEAD is for a local repository", hint="pin a tag or a commit of the remote repository")
        if not allow_branch:
            raise SourceError(
                "HEAD moves with every commit, like a branch",
                value="HEAD",
                hint="pin a tag or commit, or pass --allow-branch (recorded with its commit)",
            )
        _, out, _ = util.cmd_output(
            "git",
            *_GIT_SAFE,
            "-C",
            url,
            "rev-parse",
            "--verify",
            "HEAD^{commit}",
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            timeout=30,
        )
        sha = out.strip()
        record.update(pin="HEAD", commit=sha)
        return Source({"git_url": url, "git_commit": sha, "live_code_allow_branch": True}, Pin("commit", sha), record)
    if git.is_hex(pin) and len(pin) >= 7:
        return Source({"git_url": url, "git_commit": pin}, Pin("commit", pin), record, token)
    if local and _is_local_tag(url, pin):
        record["pin_kind"] = "tag"
        return Source({"git_url": url, "git_tag": pin}, Pin("tag", pin), record, token)
    keys: dict[str, Any] = {"git_url": url, "git_branch": pin}  # a tag or branch: _peek tells which
    if allow_branch:
        keys["live_code_allow_branch"] = True
    return Source(keys, Pin("legacy-ref", pin), record, token)


def _is_local_tag(repo: str, name: str) -> bool:
    rc, _, _ = util.cmd_output(
        "git",
        *_GIT_SAFE,
        "-C",
        repo,
        "rev-parse",
        "-q",
        "--verify",
        f"refs/tags/{name}",
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        timeout=30,
        check=False,
    )
    return rc == 0


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


def folder_state(folder: Path) -> dict[str, Any]:
    """What an audit needs of a snapshotted folder: its git HEAD, whether it has uncommitted
    changes (untracked files included, ignored ones not) and a hash of them; ``{"git": false}``
    outside a git work tree."""
    env = {**os.environ, **_SNAPSHOT_ENV}

    def out(*args: str) -> tuple[int, str]:
        rc, text, _ = util.cmd_output("git", *_GIT_SAFE, "-C", str(folder), *args, env=env, timeout=60, check=False)
        return rc, text

    rc, head = out("rev-parse", "--verify", "-q", "HEAD^{commit}")
    if rc != 0:
        rc, _ = out("rev-parse", "--is-inside-work-tree")
        return {"git": rc == 0, "head": None, "dirty": True}
    _, top = out("rev-parse", "--show-toplevel")
    here = ("--", ".", f":(exclude){WORK_ROOT_NAME}")  # earlier runs' task dirs are not a change
    _, status = out("status", "--porcelain=v1", "-z", "--untracked-files=all", *here)
    _, diff = out("diff", "HEAD", "--binary", *here)
    digest = hashlib.sha256(diff.encode() + status.encode())
    for entry in status.split("\0"):
        untracked = Path(top.strip()) / entry[3:]
        if entry.startswith("?? ") and untracked.is_file():  # its bytes are part of the change
            digest.update(untracked.read_bytes())
    dirty = bool(status.strip("\0"))
    return {"git": True, "head": head.strip(), "dirty": dirty, "diff_sha256": digest.hexdigest() if dirty else None}


#: the default work root of ``live-code local``: never part of a snapshot of the folder it lies in
WORK_ROOT_NAME = "live-code-work"


def snapshot(folder: Path, dest: Path, *, exclude: Path | None = None) -> tuple[str, int]:
    """Commit the files of ``folder`` into a new repository at ``dest``: (commit id, file count).
    ``exclude`` (the run's work dir), ``live-code-work/`` at the folder's root (earlier runs) and
    ``dest`` itself are left out."""
    folder = folder.resolve()
    skip = [p.resolve() for p in (exclude, dest, folder / WORK_ROOT_NAME) if p is not None]
    env = {**os.environ, **_SNAPSHOT_ENV}
    rc, out, _ = util.cmd_output(
        "git",
        *_GIT_SAFE,
        "-C",
        str(folder),
        "ls-files",
        "-z",
        "-co",
        "--exclude-standard",
        env=env,
        timeout=60,
        check=False,
    )
    if rc == 0:
        rels = sorted({r for r in out.split("\0") if r and (folder / r).is_file()})
    else:  # not inside a git work tree: every file but caches and version-control dirs
        rels = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__") and not d.startswith(".venv")]
            rels += [os.path.relpath(os.path.join(dirpath, f), folder) for f in filenames if not f.endswith(".pyc")]
    rels = [r for r in rels if not any(s == (folder / r) or s in (folder / r).parents for s in skip)]
    if not rels:
        raise ConfigError(f"{folder} holds no files to run", value=str(folder))
    dest.mkdir(parents=True)
    for rel in rels:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / rel, dest / rel, follow_symlinks=False)
    for args in (
        ("init", "-q", "-b", "main", "--template="),
        ("add", "-A"),
        ("commit", "-q", "--no-verify", "-m", "snapshot of a working folder (live-code local)"),
    ):
        util.cmd_output("git", *_GIT_SAFE, *args, cwd=dest, env=env, timeout=120)
    _, sha, _ = util.cmd_output("git", "rev-parse", "HEAD", cwd=dest, env=env, timeout=30)
    return sha.strip(), len(rels)


# -- models ------------------------------------------------------------------------------------


class Model(NamedTuple):
    stage: str
    files: tuple[Path, ...]
    class_names: tuple[str, ...]


def read_model(model_dir: Path, stage: str | None = None) -> Model:
    """A stage of an earlier run's ``out/models`` (``result.yaml``) or of a YMIR model package
    (``ymir-info.yaml``): the best one unless ``stage`` is given."""
    info: dict[str, Any] = {}
    names: tuple[Any, ...] = ()
    if (model_dir / "ymir-info.yaml").is_file():
        info = yaml.safe_load((model_dir / "ymir-info.yaml").read_text()) or {}
        names = tuple((info.get("executor_config") or {}).get("class_names") or ())
        stages, best = info.get("stages") or {}, info.get("best_stage_name")
    elif (model_dir / "result.yaml").is_file():
        result = yaml.safe_load((model_dir / "result.yaml").read_text()) or {}
        if "model" in result:  # the legacy schema: one flat stage
            stages, best = {contract.LEGACY_STAGE_NAME: {"files": result["model"]}}, contract.LEGACY_STAGE_NAME
        else:
            stages, best = result.get("model_stages") or {}, result.get("best_stage_name")
    else:
        raise ConfigError(
            f"{model_dir} holds no result.yaml or ymir-info.yaml: it is not a model",
            value=str(model_dir),
            hint="give an earlier training run's out/models, or an unpacked YMIR model package",
        )
    name = stage or best
    if name not in stages:
        raise ConfigError(
            f"{model_dir} has no stage {name!r}", value=sorted(stages), hint="pass --stage with one of them"
        )
    files = []
    for f in stages[name].get("files") or []:
        path = next((p for p in (model_dir / str(name) / f, model_dir / f) if p.is_file()), None)
        if path is None:
            raise ConfigError(f"{model_dir}: file {f} of stage {name} is missing", value=f)
        files.append(path)
    if not names:
        for cfg in (model_dir.parent / pipeline.CONFIG_NAME, model_dir.parent.parent / "in" / "config.yaml"):
            if cfg.is_file():
                names = tuple((yaml.safe_load(cfg.read_text()) or {}).get("class_names") or ())
                break
    return Model(str(name), tuple(files), tuple(str(n) for n in names))


def _install_model(model: Model, in_dir: Path, protocol: str) -> list[str]:
    stage_dir = contract.allows_stage_dirs(protocol)
    paths = []
    for f in model.files:
        rel = f"models/{model.stage}/{f.name}" if stage_dir else f"models/{f.name}"
        (in_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, in_dir / rel)
        paths.append(f"{contract.IN_DIR}/{rel}")
    return paths


# -- the run -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LocalRequest:
    repo: str
    kinds: frozenset[TaskKind]
    dataset: str
    work: Path | None = None
    config_file: Path | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
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


@dataclasses.dataclass(frozen=True)
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
    work = (req.work or default_work(req.kinds)).absolute()
    if work.exists() and any(work.iterdir()):
        raise ConfigError(
            f"the work dir {work} exists and is not empty",
            value=str(work),
            hint="give a new --work DIR (each run keeps its own in/ and out/)",
        )
    check_paths(req)
    user = _user_config(req)
    work.mkdir(parents=True, exist_ok=True)
    with util.clean_path_on_failure(work):
        source = resolve_source(parse_repo(req.repo), work, allow_branch=req.allow_branch)
        source, manifest = _peek(source, work, store or Store(), req.allow_branch)
        unchecked = manifest_mod.check_user_keys(manifest, req.kinds, user, source="--set/--config")
        if unchecked:
            log.warning(
                "the repository declares no hyper-parameter schema: %s passed to the job unchecked "
                "(a misspelt name is ignored by the job)",
                ", ".join(repr(k) for k in unchecked),
            )
        check_base(manifest, base_python)
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
        cfg_path = work / "in" / "config.yaml"
        cfg = yaml.safe_load(cfg_path.read_text()) or {}
        if classes and list(classes) != cfg.get("class_names"):
            cfg["class_names"] = list(classes)
        cfg.update(user)
        cfg.update(source.keys)
        extra = {**source.record, "dataset": info.summary(), "work": str(work)}
        if model is not None and req.model is not None:
            protocol = config_mod.load_task(work / "in").protocol
            key = "pretrained_model_params" if TaskKind.TRAINING in req.kinds else "model_params_path"
            cfg[key] = _install_model(model, work / "in", protocol)
            lock = req.model.absolute() / "pylock.toml"  # the env's lock travels with the model (issue 22)
            if lock.is_file():
                shutil.copy2(lock, work / "in" / "models" / "pylock.toml")
            extra["model"] = f"{req.model} (stage {model.stage})"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
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
    for note in info.notes:
        log.info("dataset: %s", note)
    write_names(req.dataset, work)
    return Prepared(work, info, extra, source.token)


def check_paths(req: LocalRequest) -> None:
    """Every path argument, before anything is written: what is there, and what was expected."""
    if req.dataset != "sample" and not Path(req.dataset).expanduser().exists():
        raise ConfigError(
            f"--dataset {req.dataset} does not exist",
            value=req.dataset,
            hint="give `sample`, a task dir (in/env.yaml), a folder of images (with VOC xml) or a COCO json",
        )
    if req.model is not None and not req.model.is_dir():
        what = "is a file" if req.model.exists() else "does not exist"
        raise ConfigError(
            f"--model {req.model} {what}",
            value=str(req.model),
            hint="give a folder: an earlier training run's out/models, or an unpacked YMIR model package",
        )
    if req.config_file is not None and not req.config_file.is_file():
        what = "is a directory" if req.config_file.exists() else "does not exist"
        raise ConfigError(
            f"--config {req.config_file} {what}",
            value=str(req.config_file),
            hint="give a YAML file of hyper-parameters (config.yaml keys)",
        )
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


# -- the user's names ----------------------------------------------------------------------------


def write_names(dataset: str, work: Path) -> dict[str, Path]:
    """``WORK/names.tsv``: each asset of a converted dataset (a folder of images, a COCO json)
    with the file it was copied from, found by content; nothing for ``sample`` or a task dir,
    whose names are YMIR's already. Returns asset name -> original file."""
    path = Path(dataset).expanduser()
    if dataset == "sample" or not path.exists() or not (work / "in" / "assets").is_dir():
        return {}
    root = path.parent if path.is_file() else path
    if (root / "in" / "env.yaml").is_file() or (root / "env.yaml").is_file():
        return {}  # a task dir: its names are YMIR's
    by_sha1: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != WORK_ROOT_NAME)
        for f in sorted(filenames):
            if Path(f).suffix.lower() in contract.IMAGE_EXTENSIONS:
                file = Path(dirpath, f)
                by_sha1.setdefault(hashlib.sha1(file.read_bytes()).hexdigest(), file.resolve())
    names = {
        a.name: by_sha1[a.stem]
        for a in sorted((work / "in" / "assets").rglob("*"))
        if a.is_file() and a.stem in by_sha1
    }
    if names:
        lines = [f"{asset}\t{original}" for asset, original in sorted(names.items())]
        util.atomic_write(work / NAMES, "# asset name\tthe original file\n" + "\n".join(lines) + "\n")
        _write_ground_truth(path, names, work)
    return names


def _write_ground_truth(dataset: Path, names: Mapping[str, Path], work: Path) -> None:
    """``WORK/ground-truth.json``: the dataset's boxes by asset name, in infer-result.json's box
    form, so ``report`` can show them beside the predictions of a mining or infer task (whose in/
    carries no annotations)."""
    try:
        coco = datasets._coco_file(dataset)
        items, _, _ = datasets._read_coco(coco) if coco else datasets._read_voc(dataset)
    except (LiveCodeError, OSError, ValueError) as e:
        log.debug("no ground truth for the report: %s", e)
        return
    by_file = {it.image.resolve(): it.boxes for it in items if it.boxes}
    doc = {
        asset: [
            {
                "class_name": b.name,
                "box": {"x": b.xmin, "y": b.ymin, "w": b.xmax - b.xmin + 1, "h": b.ymax - b.ymin + 1},
            }
            for b in by_file[original]
        ]
        for asset, original in sorted(names.items())
        if original in by_file
    }
    if doc:
        util.atomic_write(work / GROUND_TRUTH, json.dumps(doc, indent=1, ensure_ascii=False))


def read_names(work: Path) -> dict[str, Path]:
    """asset name -> original file, from ``WORK/names.tsv`` (empty when there is none)."""
    path = work / NAMES
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        asset, tab, original = line.partition("\t")
        if tab and not line.startswith("#"):
            out[asset] = Path(original)
    return out


def export_results(work: Path, dest: Path) -> list[Path]:
    """The infer and mining results of the task dir ``work`` with the user's own file names:
    ``dest/infer-result.json`` keyed by each original file's path relative to the dataset folder
    (``cat 1.jpg``, ``sub/dog.JPG``), ``dest/result.tsv`` with the same paths (an asset without an
    original keeps its name). Returns the files written."""
    originals = read_names(work)
    if not originals:
        raise ConfigError(
            f"{work} has no {NAMES}: its images had no other names",
            value=str(work),
            hint="export works on a task converted from a folder of images or a COCO json",
        )
    root = os.path.commonpath([str(p.parent) for p in originals.values()])
    names = {asset: os.path.relpath(p, root) for asset, p in originals.items()}
    out = work / "out"
    written = []
    dest.mkdir(parents=True, exist_ok=True)
    infer = out / "infer-result.json"
    if infer.is_file():
        doc = json.loads(infer.read_text(encoding="utf-8"))
        detection = doc.get("detection") if isinstance(doc, dict) else None
        if isinstance(detection, dict):
            doc["detection"] = {str(names.get(os.path.basename(k), k)): v for k, v in detection.items()}
        util.atomic_write(dest / "infer-result.json", json.dumps(doc, indent=2, ensure_ascii=False))
        written.append(dest / "infer-result.json")
    mining = out / "result.tsv"
    if mining.is_file():
        rows = []
        for line in mining.read_text(encoding="utf-8").splitlines():
            path, tab, rest = line.partition("\t")
            rows.append(f"{names.get(os.path.basename(path), path)}{tab}{rest}")
        util.atomic_write(dest / "result.tsv", "\n".join(rows) + ("\n" if rows else ""))
        written.append(dest / "result.tsv")
    if not written:
        raise ConfigError(
            f"{out} holds no infer-result.json or result.tsv to export",
            value=str(out),
            hint="export the results of a mining or infer task",
        )
    return written


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


class _Tee(io.RawIOBase):
    """The job's output into its log file and, echoed, to live-code's stderr (never stdout: that
    holds the command's results)."""

    def __init__(self, log_file: BinaryIO, echo: BinaryIO | None) -> None:
        self.log_file, self.echo = log_file, echo

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.log_file.write(data)
        if self.echo is not None:
            try:
                self.echo.write(data)
            except (OSError, ValueError):
                self.echo = None
        return len(data)

    def flush(self) -> None:
        self.log_file.flush()
        if self.echo is not None:
            self.echo.flush()


def job_runner(log_path: Path) -> pipeline.Runner:
    """The supervisor, with the job's output written to ``log_path`` and echoed to stderr."""
    from live_code.run import supervisor

    def run(request: supervisor.RunRequest) -> supervisor.RunOutcome:
        echo = getattr(sys.stderr, "buffer", None)
        with open(log_path, "ab") as log_file:
            sys.stderr.flush()
            return supervisor.run(dataclasses.replace(request, sink=cast(BinaryIO, _Tee(log_file, echo))))

    return run


def announce_sandbox(settings: pipeline.Settings) -> str:
    mode, reason = pipeline.describe_sandbox(settings)
    if mode == "bwrap":
        log.info("sandbox: bubblewrap: the job sees the task at /in (read-only) and /out, as in YMIR")
    elif mode == "fallback":
        log.warning(
            "sandbox: none (%s): falling back to mapped paths on this machine (env.yaml, config.yaml "
            "and the index files rewritten); code that hard-codes /in or /out fails here, and a write "
            "into /in is found after the job",
            reason,
        )
    return mode


def explain(e: LiveCodeError) -> LiveCodeError:
    """The error with a hint that says what it means for a YMIR task (a write into /in)."""
    if isinstance(e, JobError) and "Read-only file system" in e.message and contract.IN_DIR in e.message:
        msg = f"the job wrote into {contract.IN_DIR}, which is read-only in YMIR: {e.message}"
        err = JobError(msg, value=e.value, hint="write caches and temporary files under /out or /tmp, never /in")
        err.__cause__ = e
        return err
    if isinstance(e, SourceError) and "is a branch" in e.message:
        return SourceError(e.message, value=e.value, hint="pin a tag or a commit, or pass --allow-branch")
    return e


def annotate_provenance(out_dir: Path, extra: Mapping[str, Any]) -> None:
    """Add ``extra`` to the run's provenance records (out/ and, for training, out/models)."""
    for path in (out_dir / pipeline.PROVENANCE_NAME, out_dir / "models" / pipeline.PROVENANCE_NAME):
        if path.is_file():
            record = yaml.safe_load(path.read_text()) or {}
            record.update(extra)
            util.atomic_write(path, util.redact(yaml.safe_dump(record, sort_keys=False, allow_unicode=True)))


def prefetch(
    url: str,
    pin: str,
    *,
    base_python: str | None = None,
    index: Any = None,
    allow_branch: bool = False,
    env: bool = True,
    store: Store | None = None,
) -> dict[str, str]:
    """Fetch ``url`` at ``pin`` into the cache and build its environment: what a derived image or
    an air-gapped site bakes in. Returns what was cached (source commit, mirror, env key)."""
    import tempfile

    from live_code.envs import builder as envs
    from live_code.task import manifest as manifest_mod

    store = store or Store()
    spec = RepoSpec(url, pin)
    tmp = Path(tempfile.mkdtemp(prefix="live-code-prefetch-"))
    try:
        source = resolve_source(spec, tmp, allow_branch=allow_branch)
        prov = store.fetch_source(
            source.keys["git_url"],
            source.pin,
            tmp / "src",
            allow_branch=allow_branch,
            allow_local=git.allow_local_from_env(),
            token=source.token or os.environ.get("LIVE_CODE_GIT_TOKEN"),
        )
        out = {"commit": prov.commit, "url": prov.url, "mirror": git.normalise_url(prov.url, allow_local=True).cache_id}
        if env:
            manifest = manifest_mod.load(tmp / "src")
            python = base_python or os.environ.get("LIVE_CODE_BASE_PYTHON") or None
            # the key a task's run computes (a legacy repo: with what its layout implies, SDK chosen "auto")
            spec_env = envs.prepare_env(
                tmp / "src",
                manifest.requirements,
                base_python=python,
                legacy_layout=manifest.legacy,
                no_build_isolation=manifest.no_build_isolation,
                **({"index": index} if index is not None else {}),
            )
            with store.using("envs", spec_env.key):
                result = envs.ensure_env(
                    store,
                    spec_env,
                    installer_cache=store.root / "installer-cache",
                    reporter=lambda m: log.info("%s", m),
                )
                # an image bakes the bytecode in: its runs never compile (and the cache may be read-only)
                if not envs.finish_bytecode_compile(envs.start_bytecode_compile(result.path), timeout=3600.0):
                    log.warning("the env's bytecode compile did not complete; runs will compile it again")
            out["env"] = result.key
            out["env_packages"] = ", ".join(result.provenance.get("added") or []) or "none"
        return out
    finally:
        util.rmtree(tmp)


__all__: Sequence[str] = (
    "LocalRequest",
    "LocalResult",
    "RepoSpec",
    "annotate_provenance",
    "parse_repo",
    "prefetch",
    "prepare",
    "read_model",
    "resolve_source",
    "run",
    "snapshot",
)
