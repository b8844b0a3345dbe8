"""``/in/env.yaml``: where the task's files are, which task kinds run and in which protocol, and
where the container's /in and /out are on this machine (:class:`PathMap`)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from live_code import contract
from live_code._yaml import describe as _describe
from live_code._yaml import read_yaml_mapping
from live_code.contract import TaskKind
from live_code.errors import ConfigError
from live_code.record import record
from live_code.task import values

logger = logging.getLogger(__name__)


@record
class PathMap:
    """Where container roots live on this machine: ``(("/in", "/tmp/t/in"), ("/out", "/tmp/t/out"))``.

    The empty map is the identity (inside the container). Only whole path components match, so
    ``/input`` is not under ``/in``.
    """

    roots: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_dirs(
        cls, in_dir: str | os.PathLike[str] | None = None, out_dir: str | os.PathLike[str] | None = None
    ) -> PathMap:
        pairs = ((contract.IN_DIR, in_dir), (contract.OUT_DIR, out_dir))
        return cls(tuple((root, os.path.abspath(d)) for root, d in pairs if d is not None))

    def to_host(self, path: str) -> str:
        for root, host in sorted(self.roots, key=lambda r: len(r[0]), reverse=True):
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return host + path[len(root.rstrip("/")) :]
        return path


@record
class InputPaths:
    """env.yaml's ``input`` section (``contract.ENV_INPUT_DEFAULTS`` names each key). An index file
    the task does not use is ``''``. The SDK reads the same section into a dataclass of its own
    (``sdk.EnvInput``): a record keeps ``dataclasses`` off the harness's run path (live_code.record)."""

    root_dir: str
    assets_dir: str
    annotations_dir: str
    models_dir: str
    training_index_file: str
    val_index_file: str
    candidate_index_file: str
    config_file: str


@record
class OutputPaths:
    """env.yaml's ``output`` section (``contract.ENV_OUTPUT_DEFAULTS``). YMIR reads the outputs at
    its fixed default places; the harness and tests point them elsewhere."""

    root_dir: str
    models_dir: str
    tensorboard_dir: str
    training_result_file: str
    mining_result_file: str
    infer_result_file: str
    monitor_file: str
    executor_log_file: str


@record
class Env:
    """One env.yaml, defaults of the contract filled in."""

    task_id: str
    protocol: str
    kinds: frozenset[TaskKind]
    input: InputPaths
    output: OutputPaths
    manifest_file: str = ""


def parse_env(data: Mapping[Any, Any], *, source: str = "env.yaml") -> Env:
    """Typed env.yaml for protocols 0.0.1 (key absent), 1.0.0 and 1.1.0."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source} must be a mapping, not {_describe(data)}")
    if not data:
        raise ConfigError(f"{source} is empty", hint="YMIR writes env.yaml for every task; check the /in mount")
    protocol = data.get("protocol_version")
    if protocol in (None, ""):
        protocol = contract.DEFAULT_PROTOCOL
    if protocol not in contract.PROTOCOL_VERSIONS:
        known = ", ".join(contract.PROTOCOL_VERSIONS)
        msg = f"{source}: protocol_version {protocol!r} is not one live-code knows ({known})"
        raise ConfigError(msg, hint="live-code supports YMIR 1.1 to 2.5; a newer YMIR may need a newer live-code")
    task_id = data.get("task_id")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id.strip():
        raise ConfigError(f"{source}: task_id must be a non-empty string", value=task_id)
    flags = {
        kind: values.boolean(f"run_{kind.value}", data.get(f"run_{kind.value}"), False, source) for kind in TaskKind
    }
    kinds = frozenset(kind for kind, on in flags.items() if on)
    if not kinds:
        msg = f"{source}: none of run_training, run_mining, run_infer is true: nothing to do"
        raise ConfigError(msg, hint="set run_training: true, or run_mining and/or run_infer")
    if TaskKind.TRAINING in kinds and len(kinds) > 1:
        msg = f"{source}: run_training cannot be combined with run_mining or run_infer (YMIR never does)"
        raise ConfigError(msg, hint="run training and mining/infer as separate tasks")
    used = {key for kind in kinds for key in contract.REQUIRED_INDEX[kind]}
    in_defaults = {
        k: (v if not k.endswith("_index_file") or k in used else "") for k, v in contract.ENV_INPUT_DEFAULTS.items()
    }
    inputs = _paths(data, "input", in_defaults, source)
    for key in sorted(used):
        if not inputs[key]:
            kind_names = ", ".join(sorted(k.value for k in kinds))
            raise ConfigError(f"{source}: input.{key} is empty but the task runs {kind_names}")
    outputs = _paths(data, "output", contract.ENV_OUTPUT_DEFAULTS, source)
    manifest = data.get("manifest_file") or ""
    if not isinstance(manifest, str):
        raise ConfigError(f"{source}: manifest_file must be a path", value=manifest)
    return Env(task_id.strip(), protocol, kinds, InputPaths(**inputs), OutputPaths(**outputs), manifest)


def _paths(data: Mapping[Any, Any], section: str, defaults: Mapping[str, str], source: str) -> dict[str, str]:
    given = data.get(section)
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise ConfigError(f"{source}: {section} must be a mapping of paths", value=given)
    paths = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            logger.debug("%s: ignoring unknown key %s.%s", source, section, key)
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {section}.{key} must be a path string", value=value)
        paths[key] = value
    return paths


def peek_task_id(in_dir: Path) -> str | None:
    """env.yaml's task_id for monitor.txt even when the task itself is invalid."""
    with contextlib.suppress(Exception):
        data, _ = read_yaml_mapping(in_dir / "env.yaml", empty_ok=False)
        if isinstance(data.get("task_id"), str):
            return data["task_id"]
    return None
