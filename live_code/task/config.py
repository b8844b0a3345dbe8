"""``/in/env.yaml`` + ``/in/config.yaml`` -> one frozen, typed :class:`Task`.

Pure parsing, thin reading: :func:`parse_env` and :func:`parse_config` take already-loaded YAML data
and return frozen records; :func:`read_yaml_mapping` does the I/O with a strict loader and turns every
read or syntax problem into a :class:`ConfigError` naming the file. :func:`load_task` ties them up.

Keys (contract sections 2 and 3): the platform injects ``task_id``, ``class_names``, ``gpu_id``,
``gpu_count``, ``object_type``, ``pretrained_model_params``/``model_params_path`` and reads
``export_format`` and ``shm_size``; the live-code image adds ``git_url``, a pin (``git_commit``,
``git_tag`` or the legacy ``git_branch``), ``code_config``, package-index settings and ``live_code_*``
options. Every other key is a hyper-parameter of the user's code. The web form may send booleans,
numbers and lists as strings and drops empty values, so those are read leniently.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import difflib
import enum
import logging
import os
import posixpath
import re
import types
from collections.abc import Iterable, Mapping
from typing import Any

from live_code import contract
from live_code._yaml import (
    MAX_DEPTH,  # noqa: F401 (re-exported)
    MAX_FILE_BYTES,  # noqa: F401 (re-exported)
    parse_yaml,  # noqa: F401 (re-exported)
    read_yaml_mapping,
)
from live_code._yaml import describe as _describe
from live_code.contract import TaskKind
from live_code.errors import ConfigError
from live_code.task import legacy

logger = logging.getLogger(__name__)


PIN_KEYS = ("git_commit", "git_tag", "git_branch")
_STRING_KEYS = ("git_url", *PIN_KEYS, "code_config")  # refs and paths: YAML type traps are refused
PACKAGE_KEYS = ("pip_index_url", "pip_extra_index_urls", "pip_find_links", "pip_offline", "pypi_mirror")
_URL_KEYS = frozenset({"git_url", "pip_index_url", "pypi_mirror", "pip_extra_index_urls", "pip_find_links"})
OPTION_KEYS = (
    "live_code_allow_branch",
    "live_code_allow_moved_tag",
    "live_code_strict_pins",
    "live_code_timeout",
    "live_code_ymir_exc",
    *("live_code_lock", "live_code_resolve_as_of"),  # issue 22: see _lock_options
)
LIVE_CODE_KEYS = frozenset((*_STRING_KEYS, *PACKAGE_KEYS, *OPTION_KEYS))
_LIVE_CODE_PREFIXES = ("git_", "pip_", "pypi_", "live_code_")
#: Platform keys that become typed Task fields (the others of contract.PLATFORM_KEYS, e.g. max_boxes,
#: stay hyper-parameters).
_TYPED_PLATFORM_KEYS = frozenset(
    {
        "task_id",
        "class_names",
        "gpu_id",
        "gpu_count",
        "object_type",
        "pretrained_model_params",
        "model_params_path",
        "run_mining",
        "run_infer",
        "export_format",
        "shm_size",
    }
)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_HEX_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")
_SHM_RE = re.compile(r"^\d+(\.\d+)?\s*[kmgt]?i?b?$", re.IGNORECASE)


# -- records -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
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


#: env.yaml ``input`` and ``output`` (the records are the contract's, shared with the SDK)
InputPaths = contract.EnvInput
OutputPaths = contract.EnvOutput


@dataclasses.dataclass(frozen=True)
class Env:
    """One env.yaml, defaults of the contract filled in."""

    task_id: str
    protocol: str
    kinds: frozenset[TaskKind]
    input: InputPaths
    output: OutputPaths
    manifest_file: str = ""


class PinKind(str, enum.Enum):
    """What decides the commit: ``git_commit`` > ``git_tag`` > the legacy ``git_branch``."""

    COMMIT = "commit"
    TAG = "tag"
    #: legacy ``git_branch``: a commit id, a tag or a branch name, as the original image took it;
    #: the git module tells which (and refuses a branch unless allowed)
    REF = "ref"


@dataclasses.dataclass(frozen=True)
class SourcePin:
    """The repository and its pin. When several refs are given, ``kind`` names the strongest and the
    others stay for the git module to check that they agree. ``url`` is not shown in repr: it may
    carry credentials."""

    url: str = dataclasses.field(repr=False)
    commit: str | None
    tag: str | None
    branch: str | None
    kind: PinKind

    @property
    def ref(self) -> str:
        """The ref that decides the commit."""
        ref = {PinKind.COMMIT: self.commit, PinKind.TAG: self.tag, PinKind.REF: self.branch}[self.kind]
        assert ref is not None, "BUG: a SourcePin without its deciding ref"
        return ref


@dataclasses.dataclass(frozen=True)
class PackageIndex:
    """Where requirements come from. URLs may carry credentials: kept out of repr."""

    index_url: str | None = dataclasses.field(default=None, repr=False)
    extra_index_urls: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    find_links: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    offline: bool = False


@dataclasses.dataclass(frozen=True)
class Options:
    """``live_code_*`` keys."""

    allow_branch: bool = False
    allow_moved_tag: bool = False
    strict_pins: bool = False
    timeout: float | None = None  # seconds; None: no limit
    #: the executor SDK a legacy-layout repo gets: auto, 1, 2 or none (live_code.task.legacy)
    ymir_exc: str = "auto"
    #: ``model`` or a path in the repo: install the env from this lock (live_code.envs.lock)
    lock: str | None = None
    #: ``commit`` or an ISO date: resolve unpinned requirements as of then
    resolve_as_of: str | None = None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One config.yaml: the typed keys, and the rest as read-only hyper-parameters."""

    task_id: str | None
    class_names: tuple[str, ...]
    gpu_id: str
    gpu_count: int
    object_type: contract.ObjectType
    pretrained_model_params: tuple[str, ...]
    model_params_path: tuple[str, ...]
    export_format: str
    shm_size: str | None
    source: SourcePin | None
    code_config: str | None
    package_index: PackageIndex
    options: Options
    #: every key that is neither a platform key nor a live-code key (read-only, values deep-copied)
    hyperparameters: Mapping[str, Any] = dataclasses.field(hash=False)
    #: the whole config.yaml as read (read-only), for the merged file user code reads
    raw: Mapping[str, Any] = dataclasses.field(hash=False, repr=False)

    @property
    def annotation_format(self) -> str:
        """``ark``, ``voc``, ``coco`` or ``none``: what the platform exported for training."""
        return contract.EXPORT_FORMATS[self.export_format.split(":")[0]]


@dataclasses.dataclass(frozen=True)
class Task:
    """The task of one run. Paths are as env.yaml wrote them (container paths); use
    :meth:`host_path` to open them outside the container."""

    env: Env
    config: RunConfig
    env_file: str
    config_file: str
    path_map: PathMap = PathMap()

    @property
    def task_id(self) -> str:
        return self.env.task_id

    @property
    def protocol(self) -> str:
        return self.env.protocol

    @property
    def kinds(self) -> frozenset[TaskKind]:
        return self.env.kinds

    @property
    def ordered_kinds(self) -> tuple[TaskKind, ...]:
        """The kinds in the order they run (mining before infer)."""
        return tuple(k for k in contract.TASK_ORDER if k in self.env.kinds)

    @property
    def source(self) -> SourcePin | None:
        return self.config.source

    @property
    def hyperparameters(self) -> Mapping[str, Any]:
        return self.config.hyperparameters

    def host_path(self, path: str) -> str:
        """``path`` (a container path from env.yaml or config.yaml) on this machine."""
        return self.path_map.to_host(path)


# -- pure helpers usable by later modules ------------------------------------------------------


def did_you_mean(key: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The known key closest to ``key`` (case-insensitive), or None when nothing is close."""
    by_lower = {k.lower(): k for k in known}
    found = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[found[0]] if found else None


def merge_hyperparameters(
    defaults: Mapping[str, Any] | None,
    code_config: Mapping[str, Any] | None,
    platform: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Manifest defaults < the repo's ``code_config`` < ``/in/config.yaml``: a fresh, deep-copied dict."""
    merged: dict[str, Any] = {}
    for layer in (defaults, code_config, platform):
        merged.update(copy.deepcopy(dict(layer or {})))
    return merged


# -- env.yaml ------------------------------------------------------------------------------------


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
    flags = {kind: _bool(f"run_{kind.value}", data.get(f"run_{kind.value}"), False, source) for kind in TaskKind}
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


# -- config.yaml ---------------------------------------------------------------------------------


def parse_config(
    data: Mapping[Any, Any],
    *,
    kinds: frozenset[TaskKind] | set[TaskKind] = frozenset(),
    source: str = "config.yaml",
    spelled: Mapping[str, str] | None = None,
) -> RunConfig:
    """Typed config.yaml. ``kinds`` (from env.yaml) enables checks that depend on the task;
    ``spelled`` maps top-level keys to their scalar text in the file, for clearer trap messages."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source} must be a mapping, not {_describe(data)}")
    spelled = spelled or {}
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        key = bad_keys[0]
        msg = (
            f"{source}: YAML read a key as {_describe(key)}, not as text (YAML 1.1 reads on/off/yes/no "
            'as booleans and bare digits as numbers); put the key in quotes, e.g. "on": ...'
        )
        raise ConfigError(msg, value=key)
    _check_unknown_keys(data, source)
    for key in _STRING_KEYS:
        _string(data, key, source, spelled)  # refuse YAML type traps before anything else
    class_names = _class_names(data.get("class_names"), source)
    if TaskKind.TRAINING in kinds and not class_names:
        raise ConfigError(
            f"{source}: class_names is empty; training needs at least one class",
            hint="select the labels to train on in the YMIR training form",
        )
    gpu_id = _gpu_id(data.get("gpu_id"), source)
    gpu_count = _int("gpu_count", data.get("gpu_count"), len(gpu_id.split(",")) if gpu_id else 0, source)
    object_type = _object_type(data.get("object_type"), source)
    hyper = {k: copy.deepcopy(v) for k, v in data.items() if k not in _TYPED_PLATFORM_KEYS and k not in LIVE_CODE_KEYS}
    task_id = data.get("task_id")
    if task_id is not None and (isinstance(task_id, bool) or not isinstance(task_id, (str, int))):
        raise ConfigError(f"{source}: task_id must be a string", value=task_id)
    return RunConfig(
        task_id=(str(task_id).strip() or None) if task_id is not None else None,
        class_names=class_names,
        gpu_id=gpu_id,
        gpu_count=gpu_count,
        object_type=object_type,
        pretrained_model_params=_str_list("pretrained_model_params", data.get("pretrained_model_params"), source),
        model_params_path=_str_list("model_params_path", data.get("model_params_path"), source),
        export_format=_export_format(data.get("export_format"), source),
        shm_size=_shm_size(data.get("shm_size"), source),
        source=_source_pin(data, source, spelled),
        code_config=_code_config(data, source, spelled),
        package_index=_package_index(data, source),
        options=Options(
            allow_branch=_bool("live_code_allow_branch", data.get("live_code_allow_branch"), False, source),
            allow_moved_tag=_bool("live_code_allow_moved_tag", data.get("live_code_allow_moved_tag"), False, source),
            strict_pins=_bool("live_code_strict_pins", data.get("live_code_strict_pins"), False, source),
            timeout=_seconds("live_code_timeout", data.get("live_code_timeout"), source),
            ymir_exc=legacy.sdk_option(data.get("live_code_ymir_exc"), source),
            **_lock_options(data, source),
        ),
        hyperparameters=types.MappingProxyType(hyper),
        raw=types.MappingProxyType(copy.deepcopy(dict(data))),
    )


def _lock_options(data: Mapping[str, Any], source: str) -> dict[str, str | None]:
    """``live_code_lock`` (``model`` or a relative path) and ``live_code_resolve_as_of`` (``commit``
    or an ISO 8601 date or time); not both."""
    lock = _plain_str("live_code_lock", data.get("live_code_lock"), source)
    as_of = data.get("live_code_resolve_as_of")
    as_of = as_of.isoformat() if isinstance(as_of, (datetime.date, datetime.datetime)) else as_of  # YAML reads dates
    as_of = _plain_str("live_code_resolve_as_of", as_of, source)
    if lock and (lock.startswith(("/", "~")) or ".." in lock.split("/")):
        raise ConfigError(
            f"{source}: live_code_lock must be `model` or a path inside the repository",
            value=lock,
            hint="e.g. pylock.toml",
        )
    if as_of and as_of != "commit":
        try:
            datetime.datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"{source}: live_code_resolve_as_of must be `commit` or a date (YYYY-MM-DD)", value=as_of
            ) from None
    if lock and as_of:
        raise ConfigError(
            f"{source}: live_code_lock and live_code_resolve_as_of are both set",
            hint="a lock already says which versions to install: keep one of them",
        )
    return {"lock": lock, "resolve_as_of": as_of}


def _check_unknown_keys(data: Mapping[str, Any], source: str) -> None:
    known = sorted(LIVE_CODE_KEYS)
    for key in data:
        if key in LIVE_CODE_KEYS or key in contract.PLATFORM_KEYS:
            continue
        if key.lower().startswith(_LIVE_CODE_PREFIXES):
            # 0.8, not difflib's 0.6: the shared prefix alone makes live_code_debug ~ live_code_timeout
            guess = did_you_mean(key, known, cutoff=0.8)
            msg = f"{source}: unknown live-code key {key!r}" + (f"; did you mean {guess!r}?" if guess else "")
            raise ConfigError(msg, hint=f"known live-code keys: {', '.join(known)}")
        guess = did_you_mean(key, known, cutoff=0.8)
        if guess is None:
            continue
        ratio = difflib.SequenceMatcher(None, key.lower(), guess).ratio()
        # 0.8 .. 0.9 also matches real hyper-parameter names (model_config ~ code_config): only warn
        if ratio >= 0.9:
            raise ConfigError(
                f"{source}: unknown key {key!r}; did you mean {guess!r}?",
                hint=f"rename it to {guess}, or give the hyper-parameter another name",
            )
        logger.warning("%s: key %r is taken as a hyper-parameter; did you mean %r?", source, key, guess)


def _shown(key: str, value: Any) -> Any:
    """The value to show in an error: never for keys that hold URLs (they may carry credentials)."""
    return None if key in _URL_KEYS else value


def _string(data: Mapping[str, Any], key: str, source: str, spelled: Mapping[str, str]) -> str | None:
    """A ref or path: a string, or None when absent/empty. Any other YAML type is a trap."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    text = spelled.get(key)
    if isinstance(value, (bool, int, float, datetime.date)):
        shown = text if text is not None and text != str(value) else "this"
        msg = f"{source}: {key}: YAML read {shown} as {_describe(value)}, not as text"
        if isinstance(value, float):
            msg += " (YAML drops trailing zeros: 1.10 becomes 1.1)"
        elif isinstance(value, int) and text is not None and text.startswith("0") and text != "0":
            msg += " (YAML 1.1 reads a leading 0 as octal)"
        example = text if text is not None else ("1.10" if isinstance(value, float) else str(value))
        msg += f'; write it in quotes exactly as git names it, e.g. {key}: "{example}"'
        raise ConfigError(msg, value=value)
    raise ConfigError(
        f"{source}: {key} must be a string, not {_describe(value)}",
        value=_shown(key, value),
        hint=f'write one value in quotes, e.g. {key}: "..."',
    )


def _source_pin(data: Mapping[str, Any], source: str, spelled: Mapping[str, str]) -> SourcePin | None:
    url = _string(data, "git_url", source, spelled)
    commit, tag, branch = (_string(data, key, source, spelled) for key in PIN_KEYS)
    if commit is not None and not _HEX_RE.match(commit):
        raise ConfigError(
            f"{source}: git_commit {commit!r} is not a commit id (4 to 64 hex digits)",
            hint="give a tag as git_tag and a branch as git_branch",
        )
    if url is None:
        if commit or tag or branch:
            given = ", ".join(k for k, v in zip(PIN_KEYS, (commit, tag, branch)) if v)
            raise ConfigError(f"{source}: {given} given without git_url", hint="add git_url: <repository URL>")
        return None
    if not (commit or tag or branch):
        msg = f"{source}: git_url is given without a pin (git_commit, git_tag or git_branch)"
        raise ConfigError(msg, hint='pin the code, e.g. git_commit: "<sha>" or git_tag: "v1.0"')
    kind = PinKind.COMMIT if commit else PinKind.TAG if tag else PinKind.REF
    return SourcePin(url=url, commit=commit, tag=tag, branch=branch, kind=kind)


def _code_config(data: Mapping[str, Any], source: str, spelled: Mapping[str, str]) -> str | None:
    path = _string(data, "code_config", source, spelled)
    if path is None:
        return None
    if posixpath.isabs(path) or path.startswith("~") or ".." in path.replace("\\", "/").split("/"):
        raise ConfigError(
            f"{source}: code_config must be a path inside the repository",
            value=path,
            hint="give it relative to the repository root, e.g. code_config: configs/default.yaml",
        )
    return path


def _package_index(data: Mapping[str, Any], source: str) -> PackageIndex:
    index_url, mirror = (_plain_str(k, data.get(k), source) for k in ("pip_index_url", "pypi_mirror"))
    if index_url and mirror and index_url.rstrip("/") != mirror.rstrip("/"):
        # the URLs are not shown: they may carry credentials
        raise ConfigError(
            f"{source}: pip_index_url and the legacy pypi_mirror are both set and differ",
            hint="keep only pip_index_url",
        )
    return PackageIndex(
        index_url=index_url or mirror,
        extra_index_urls=_str_list("pip_extra_index_urls", data.get("pip_extra_index_urls"), source, spaces=True),
        find_links=_str_list("pip_find_links", data.get("pip_find_links"), source, spaces=True),
        offline=_bool("pip_offline", data.get("pip_offline"), False, source),
    )


def _plain_str(key: str, value: Any, source: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {key} must be a string, not {_describe(value)}", value=_shown(key, value))
    return value.strip() or None


def _bool(key: str, value: Any, default: bool, source: str) -> bool:
    """true/false/yes/no/on/off/1/0 in any case, as YAML or the web form send them."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(
        f"{source}: {key} must be true or false",
        value=value,
        hint=f"write {key}: true or {key}: false (yes/no, on/off and 1/0 also work)",
    )


def _int(key: str, value: Any, default: int, source: str, *, minimum: int = 0) -> int:
    if value is None or value == "":
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        number = int(value)
    if number is None or number < minimum:
        raise ConfigError(
            f"{source}: {key} must be a whole number >= {minimum}", value=value, hint=f"e.g. {key}: {max(minimum, 1)}"
        )
    return number


def _seconds(key: str, value: Any, source: str) -> float | None:
    """Seconds from ``3600``, ``"90m"``, ``"2h"``, ``"1h30m"``; None when absent."""
    if value is None or value == "":
        return None
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        parts = _DURATION_RE.findall(text)
        whole = "".join(n + u for n, u in parts) == text.replace(" ", "")
        if parts and whole and (len(parts) == 1 or all(u for _, u in parts)):  # "1h30m", not "1 30"
            seconds = sum(float(n) * _SECONDS[u] for n, u in parts)
    if seconds is None or not (0 < seconds < float("inf")):
        raise ConfigError(
            f"{source}: {key} must be a positive duration",
            value=value,
            hint=f"e.g. {key}: 2h, 90m or 3600 (seconds); leave it out for no limit",
        )
    return seconds


def _str_list(key: str, value: Any, source: str, *, spaces: bool = False) -> tuple[str, ...]:
    """A list of strings; a single string is one item (or split on commas/spaces when ``spaces``)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = re.split(r"[,\s]+", value) if spaces else [value]
        return tuple(i.strip() for i in items if i.strip())
    if isinstance(value, list):
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise ConfigError(
                f"{source}: {key} must hold strings; YAML read one item as {_describe(bad[0])}",
                value=bad[0],
                hint="put that item in quotes",
            )
        return tuple(v.strip() for v in value if v.strip())
    raise ConfigError(f"{source}: {key} must be a list of strings, not {_describe(value)}", value=_shown(key, value))


def _class_names(value: Any, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        names: tuple[str, ...] = tuple(n.strip() for n in value.split(",") if n.strip())  # the web form
    else:
        names = _str_list("class_names", value, source)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: class_names lists {dupes[0]!r} more than once", value=list(names))
    return names


def _gpu_id(value: Any, source: str) -> str:
    """``''`` (CPU) or container-local ids ``"0,1"``; an int from a hand-written file is accepted."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not re.fullmatch(r"\s*(\d+\s*(,\s*\d+\s*)*)?", value):
        raise ConfigError(
            f"{source}: gpu_id must be '' or comma-separated GPU numbers",
            value=value,
            hint="e.g. gpu_id: \"0,1\", or gpu_id: '' for CPU",
        )
    return ",".join(part.strip() for part in value.split(",") if part.strip())


def _object_type(value: Any, source: str) -> contract.ObjectType:
    number = _int("object_type", value, int(contract.ObjectType.DETECTION), source)
    try:
        return contract.ObjectType(number)
    except ValueError:
        known = ", ".join(f"{t.value} ({t.name.lower()})" for t in contract.ObjectType)
        raise ConfigError(f"{source}: object_type {number} is not one of {known}", value=value) from None


def _export_format(value: Any, source: str) -> str:
    text = _plain_str("export_format", value, source)
    if text is None:
        return contract.DEFAULT_EXPORT_FORMAT
    anno, sep, image = text.lower().partition(":")
    if anno not in contract.EXPORT_FORMATS or sep != ":" or image != "raw":
        known = ", ".join(f"{a}:raw" for a in contract.EXPORT_FORMATS)
        raise ConfigError(
            f"{source}: export_format {text!r} is not <annotations>:raw with annotations one of the platform's formats",
            value=text,
            hint=f"one of {known}",
        )
    return f"{anno}:raw"


def _shm_size(value: Any, source: str) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    if text is None or not _SHM_RE.match(text):
        raise ConfigError(f"{source}: shm_size must be a size such as 16G", value=value)
    return text


def load_task(
    in_dir: str | os.PathLike[str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
) -> Task:
    """Read env.yaml, then the config.yaml it names, into a :class:`Task`.

    ``in_dir``/``out_dir`` are where ``/in`` and ``/out`` are on this machine (None: the container
    paths themselves). ``env_file`` defaults to ``<in>/env.yaml``; ``config_file`` to env.yaml's
    ``input.config_file`` mapped onto this machine.
    """
    path_map = PathMap.from_dirs(in_dir, out_dir)
    env_path = os.fspath(env_file) if env_file is not None else path_map.to_host(contract.ENV_FILE)
    env_data, _ = read_yaml_mapping(env_path, empty_ok=False)
    env = parse_env(env_data, source=env_path)
    config_path = os.fspath(config_file) if config_file is not None else path_map.to_host(env.input.config_file)
    config_data, spelled = read_yaml_mapping(config_path)
    run_config = parse_config(config_data, kinds=env.kinds, source=config_path, spelled=spelled)
    if run_config.task_id is not None and run_config.task_id != env.task_id:
        logger.warning(
            "config.yaml task_id %s differs from env.yaml's %s; using env.yaml's", run_config.task_id, env.task_id
        )
    return Task(env=env, config=run_config, env_file=env_path, config_file=config_path, path_map=path_map)
