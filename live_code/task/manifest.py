"""A repository's ``live-code.yaml`` (the manifest layout) or the legacy layout, and the typed
hyper-parameter schema it declares.

Manifest layout::

    framework: torch                 # torch | mxnet | none: what the base image must carry
    entry: python train.py           # one entry for every task kind, or a mapping per kind:
    # entry: {training: python train.py, mining: python mine.py, infer: python infer.py}
    requirements: requirements.txt   # optional; default requirements.txt, else extra-requirements.txt
    code_config: configs/default.yaml  # optional default for the task's code_config
    launcher: torchrun               # optional: with gpu_count > 1 run the entry under torchrun
    submodules: false                # fetch git submodules (default false)
    no_build_isolation: [detectron2]  # requirements built against the job env (its base's torch)
    lfs: false                       # smudge git LFS files (default false)
    hyperparameters:                 # per task kind (or `common`), each key with type/default/choices/help
      training:
        epochs: {type: int, default: 10, min: 1, help: number of passes over the training set}
        model: {type: str, default: tiny, choices: [tiny, small]}

The schema's parameters and how a value is read as their type are in ``task/schema.py``.

Legacy layout (the original live-code image, run unchanged): ``start.py`` else ``ymir/start.py``
with an optional ``extra-requirements.txt``; no schema.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from live_code import contract
from live_code.contract import TaskKind
from live_code.errors import ConfigError
from live_code.record import record
from live_code.task import config
from live_code.task.schema import Param, coerce, parse_schema

MANIFEST_NAME = "live-code.yaml"
LEGACY_ENTRIES = ("start.py", "ymir/start.py")
FRAMEWORKS = ("torch", "mxnet", "none")
LAUNCHERS = ("torchrun",)
_TOP_KEYS = (
    "framework",
    "entry",
    "requirements",
    "code_config",
    "launcher",
    "submodules",
    "lfs",
    "hyperparameters",
    "no_build_isolation",
)
_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # a distribution name (PEP 508)


@record
class Manifest:
    """What a repository declares about itself (defaults filled in for the legacy layout)."""

    legacy: bool
    framework: str
    #: argv per task kind; a kind missing here is not supported by the repo
    entries: Mapping[TaskKind, tuple[str, ...]]
    requirements: str | None
    code_config: str | None
    launcher: str | None
    submodules: bool
    lfs: bool
    #: schema per task kind, ``common`` merged into each
    schema: Mapping[TaskKind, Mapping[str, Param]]
    #: requirement names the installer builds without build isolation: their build imports the
    #: base's frameworks (a C++ extension of torch, such as detectron2's)
    no_build_isolation: tuple[str, ...] = ()

    def entry_for(self, kind: TaskKind) -> tuple[str, ...]:
        try:
            return self.entries[kind]
        except KeyError:
            msg = f"the repository has no entry point for {kind.value}"
            hint = f"add `{kind.value}: <command>` under `entry:` in {MANIFEST_NAME}"
            raise ConfigError(msg, value=sorted(k.value for k in self.entries), hint=hint) from None

    def defaults(self, kind: TaskKind) -> dict[str, Any]:
        return {name: p.default for name, p in self.schema.get(kind, {}).items()}


def load(repo_dir: str | os.PathLike[str]) -> Manifest:
    """The manifest of a checked-out repository, or the legacy layout's defaults."""
    repo = Path(repo_dir)
    path = repo / MANIFEST_NAME
    if path.is_file():
        if Path(os.path.realpath(repo)) not in Path(os.path.realpath(path)).parents:
            raise ConfigError(
                f"{MANIFEST_NAME} is a link to a file outside the repository",
                hint=f"commit {MANIFEST_NAME} itself, not a symlink",
            )
        data, _ = config.read_yaml_mapping(path, empty_ok=False)
        return parse(data, source=MANIFEST_NAME, repo_dir=repo)
    for entry in LEGACY_ENTRIES:
        if (repo / entry).is_file():
            argv = ("python3", entry)
            return Manifest(
                legacy=True,
                framework="none",
                entries={k: argv for k in TaskKind},
                requirements=None,
                code_config=None,
                launcher=None,
                submodules=False,
                lfs=False,
                schema={},
            )
    msg = f"the repository has neither {MANIFEST_NAME} nor a legacy entry point ({', '.join(LEGACY_ENTRIES)})"
    raise ConfigError(msg, hint=f"add a {MANIFEST_NAME} (see `live-code init`) or a start.py at the repository root")


def read_code_config(src: Path, rel: str | None) -> dict[str, Any]:
    """The repository's ``code_config`` file (a path inside it, a file of its own), or ``{}``."""
    if not rel:
        return {}
    path = src / rel
    if not path.is_file():
        raise ConfigError(
            f"code_config {rel} is not in the repository at this commit",
            value=rel,
            hint="fix code_config (a path relative to the repo root)",
        )
    if Path(os.path.realpath(src)) not in Path(os.path.realpath(path)).parents:
        raise ConfigError(
            f"code_config {rel} is a link to a file outside the repository",
            value=rel,
            hint="commit the config file itself, not a symlink",
        )
    code_config, _ = config.read_yaml_mapping(path)
    return code_config


def merged_config(manifest: Manifest, task: config.Task, src: Path) -> tuple[dict[str, Any], str | None]:
    """What the job reads: the manifest's defaults < the repository's ``code_config`` file <
    config.yaml, every schema key coerced to its type. Returns it and the code_config path used."""
    defaults: dict[str, Any] = {}
    for kind in task.ordered_kinds:
        defaults.update(manifest.defaults(kind))
    code_config_rel = task.config.code_config or manifest.code_config
    code_config = read_code_config(src, code_config_rel)
    merged = config.merge_hyperparameters(defaults, code_config, task.config.raw)
    for kind in task.ordered_kinds:
        merged = validate(
            manifest,
            kind,
            merged,
            source="the merged config (config.yaml over code_config over live-code.yaml defaults)",
        )
    return merged, code_config_rel


def parse(data: Mapping[str, Any], *, source: str = MANIFEST_NAME, repo_dir: Path | None = None) -> Manifest:
    for key in data:
        if key not in _TOP_KEYS:
            guess = config.did_you_mean(str(key), _TOP_KEYS)
            hint = f"did you mean {guess!r}?" if guess else f"known keys: {', '.join(_TOP_KEYS)}"
            raise ConfigError(f"{source}: unknown key {key!r}", hint=hint)
    framework = _choice(data, "framework", FRAMEWORKS, "none", source)
    launcher = _choice(data, "launcher", LAUNCHERS, None, source)
    entries = _entries(data.get("entry"), source, repo_dir)
    requirements = _rel_path(data, "requirements", source, repo_dir)
    code_config = _rel_path(data, "code_config", source, repo_dir)
    schema = parse_schema(data.get("hyperparameters") or {}, source)
    return Manifest(
        legacy=False,
        framework=framework,
        entries=MappingProxyType(entries),
        requirements=requirements,
        code_config=code_config,
        launcher=launcher,
        submodules=_flag(data, "submodules", source),
        lfs=_flag(data, "lfs", source),
        schema=MappingProxyType(schema),
        no_build_isolation=_names(data, "no_build_isolation", source),
    )


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str | None, source: str) -> Any:
    value = data.get(key, default)
    if value is not None and value not in allowed:
        raise ConfigError(f"{source}: {key} must be one of {', '.join(allowed)}", value=value)
    return value


def _names(data: Mapping[str, Any], key: str, source: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and _NAME_RE.match(v) for v in value):
        raise ConfigError(
            f"{source}: {key} must be a list of requirement names", value=value, hint=f"e.g. {key}: [detectron2]"
        )
    return tuple(value)


def _flag(data: Mapping[str, Any], key: str, source: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be true or false", value=value)
    return value


def _argv(value: Any, where: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return tuple(shlex.split(value))
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        return tuple(value)
    raise ConfigError(
        f"{source}: {where} must be a command line (text) or a list of strings",
        value=value,
        hint="e.g. `entry: python train.py`",
    )


def _entries(value: Any, source: str, repo_dir: Path | None) -> dict[TaskKind, tuple[str, ...]]:
    if value is None:
        raise ConfigError(f"{source}: `entry` is missing", hint="e.g. `entry: python start.py`")
    if isinstance(value, Mapping):
        out = {}
        for key, cmd in value.items():
            try:
                kind = TaskKind(key)
            except ValueError:
                guess = config.did_you_mean(str(key), [k.value for k in TaskKind])
                raise ConfigError(
                    f"{source}: unknown task kind {key!r} under entry",
                    hint=f"did you mean {guess!r}?" if guess else "use training, mining or infer",
                ) from None
            out[kind] = _argv(cmd, f"entry.{key}", source)
    else:
        argv = _argv(value, "entry", source)
        out = {k: argv for k in TaskKind}
    if repo_dir is not None:
        for kind, argv in out.items():
            script = next((a for a in argv if a.endswith(".py")), None)
            if script is not None and not (repo_dir / script).is_file():
                raise ConfigError(
                    f"{source}: the {kind.value} entry runs {script}, which is not in the repository",
                    value=" ".join(argv),
                    hint="fix the path (relative to the repository root)",
                )
    return out


def _rel_path(data: Mapping[str, Any], key: str, source: str, repo_dir: Path | None) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or os.path.isabs(value) or ".." in Path(value).parts:
        raise ConfigError(f"{source}: {key} must be a path inside the repository", value=value)
    if repo_dir is not None and not (repo_dir / value).is_file():
        raise ConfigError(f"{source}: {key} names {value}, which is not in the repository", value=value)
    return value


def validate(manifest: Manifest, kind: TaskKind, merged: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """The merged hyper-parameters with every schema key coerced to its type; raises ConfigError on
    the first key of the wrong type or outside its choices. Keys outside the schema pass as they are."""
    out = dict(merged)
    for name, param in manifest.schema.get(kind, {}).items():
        if name in out and out[name] is not None:
            out[name] = coerce(param, out[name], source)
    return out


def check_user_keys(manifest: Manifest, kinds: Iterable[TaskKind], keys: Iterable[str], *, source: str) -> list[str]:
    """The hyper-parameter names a user typed (``--set``, ``--config``) against the schema.

    With a schema, a name it does not declare (for any task kind: one config file often serves
    training and infer) is refused, naming the closest names declared for ``kinds`` (else for any
    kind): a typo such as ``epoch`` for ``epochs`` would otherwise be ignored by the job. Platform
    and live-code keys (``class_names``, ``gpu_id``, ``live_code_timeout`` ...) always pass. Without
    a schema (the legacy layout, or none declared) nothing can be checked: the unknown names are
    returned for a warning."""
    kinds = list(kinds)
    declared: set[str] = set()
    for params in manifest.schema.values():
        declared.update(params)
    here = {n for kind in kinds for n in manifest.schema.get(kind, {})}
    unknown = [
        k for k in keys if k not in declared and k not in contract.PLATFORM_KEYS and k not in config.LIVE_CODE_KEYS
    ]
    if not unknown or not declared:
        return unknown
    known = sorted(here or declared)
    lines = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        lines.append(f"{key!r}" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
    what = "+".join(k.value for k in contract.TASK_ORDER if k in kinds) if here else "declared"
    raise ConfigError(
        f"{source}: {', '.join(lines)} not in the {what} hyper-parameters of {MANIFEST_NAME}",
        value=unknown,
        hint=f"the declared names are {', '.join(known)}; fix the spelling, or declare "
        f"the key under hyperparameters: in {MANIFEST_NAME}",
    )
