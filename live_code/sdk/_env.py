"""Reading ``env.yaml``: the task's kinds and every input and output path (contract section 2)."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from typing import Any

import yaml

from live_code import contract
from live_code.contract import TaskKind
from live_code.sdk._errors import EnvFileError


@dataclasses.dataclass(frozen=True)
class EnvInput:
    """The ``input`` section of env.yaml. An index file the task does not use is ``''``."""

    root_dir: str
    assets_dir: str
    annotations_dir: str
    models_dir: str
    training_index_file: str
    val_index_file: str
    candidate_index_file: str
    config_file: str


@dataclasses.dataclass(frozen=True)
class EnvOutput:
    """The ``output`` section of env.yaml.

    YMIR reads the outputs at its fixed default places; the harness and tests point them elsewhere.
    """

    root_dir: str
    models_dir: str
    tensorboard_dir: str
    training_result_file: str
    mining_result_file: str
    infer_result_file: str
    monitor_file: str
    executor_log_file: str


@dataclasses.dataclass(frozen=True)
class Env:
    """One task's ``env.yaml``, with the contract's defaults filled in for keys it lacks."""

    task_id: str
    #: ``'0.0.1'`` when the key is absent (YMIR 1.1), as the ymir_exc SDK assumes
    protocol_version: str
    run_training: bool
    run_mining: bool
    run_infer: bool
    input: EnvInput
    output: EnvOutput
    #: ``''`` before protocol 1.1.0
    manifest_file: str = ""
    #: the file this was read from (``''`` when built from a mapping)
    path: str = ""

    @property
    def kinds(self) -> frozenset[TaskKind]:
        """The task kinds this container runs."""
        flags = (
            (TaskKind.TRAINING, self.run_training),
            (TaskKind.MINING, self.run_mining),
            (TaskKind.INFER, self.run_infer),
        )
        return frozenset(kind for kind, on in flags if on)


def env_file_path() -> str:
    """Where env.yaml is: ``$LIVE_CODE_ENV_FILE`` (set by the harness and by tests), else ``/in/env.yaml``.

    Only this one variable is honoured (not ymir_exc's ``YMIR_ENV_FILE``-style names).
    """
    return os.environ.get(contract.ENV_FILE_VAR) or contract.ENV_FILE


def read_env(path: str | os.PathLike[str] | None = None) -> Env:
    """Read and check env.yaml (default: :func:`env_file_path`). Raises :class:`EnvFileError`."""
    file = os.fspath(path) if path is not None else env_file_path()
    try:
        st = os.stat(file)
    except OSError as e:
        msg = (
            f"cannot read env.yaml {file!r}: {e.strerror}; inside YMIR it is /in/env.yaml, "
            f"elsewhere set {contract.ENV_FILE_VAR} to its path"
        )
        raise EnvFileError(msg) from None
    # cached by (path, mtime, size): write_progress may be called every iteration
    return _read_env_cached(os.path.abspath(file), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _read_env_cached(file: str, mtime_ns: int, size: int) -> Env:
    try:
        with open(file, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise EnvFileError(f"cannot parse env.yaml {file!r}: {e}") from None
    return parse_env(data, path=file)


def parse_env(data: Any, *, path: str = "") -> Env:
    """Build an :class:`Env` from an already loaded env.yaml mapping (e.g. ``contract.env_yaml()``)."""
    where = path or "env.yaml"
    if not isinstance(data, Mapping):
        raise EnvFileError(f"{where}: must be a mapping, got {type(data).__name__}")
    task_id = data.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise EnvFileError(f"{where}: task_id must be a non-empty string, got {task_id!r}")
    raw_protocol = data.get("protocol_version")
    protocol = contract.DEFAULT_PROTOCOL if raw_protocol in (None, "") else str(raw_protocol)
    try:
        contract.protocol_tuple(protocol)
    except ValueError:
        msg = f"{where}: protocol_version must look like '1.1.0', got {raw_protocol!r}"
        raise EnvFileError(msg) from None
    flags = {key: _flag(data, key, where) for key in ("run_training", "run_mining", "run_infer")}
    manifest = data.get("manifest_file") or ""
    return Env(
        task_id=task_id,
        protocol_version=protocol,
        input=EnvInput(**_section(data, "input", contract.ENV_INPUT_DEFAULTS, where)),
        output=EnvOutput(**_section(data, "output", contract.ENV_OUTPUT_DEFAULTS, where)),
        manifest_file=str(manifest),
        path=path,
        **flags,
    )


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if isinstance(value, bool):
        return value
    if value in (None, ""):
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise EnvFileError(f"{where}: {key} must be true or false, got {value!r}")


def _section(data: Mapping[str, Any], name: str, defaults: Mapping[str, str], where: str) -> dict[str, str]:
    section = data.get(name) or {}
    if not isinstance(section, Mapping):
        raise EnvFileError(f"{where}: {name} must be a mapping, got {type(section).__name__}")
    out = {}
    for key, default in defaults.items():
        # a present '' is kept: the platform writes '' for index files the task does not use
        value = section.get(key, default)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise EnvFileError(f"{where}: {name}.{key} must be a path string, got {value!r}")
        out[key] = value
    return out
