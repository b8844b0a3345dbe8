"""``/in/env.yaml`` + ``/in/config.yaml`` -> one frozen, typed :class:`Task`.

Pure parsing, thin reading: :func:`parse_env` (in ``task/env.py``) and :func:`parse_config` take
already-loaded YAML data and return frozen records; :func:`read_yaml_mapping` does the I/O with a
strict loader and turns every read or syntax problem into a :class:`ConfigError` naming the file.
:func:`load_task` ties them up. The readers of one value are in ``task/values.py``.

Keys (contract sections 2 and 3): the platform injects ``task_id``, ``class_names``, ``gpu_id``,
``gpu_count``, ``object_type``, ``pretrained_model_params``/``model_params_path`` and reads
``export_format`` and ``shm_size``; the live-code image adds ``git_url``, a pin (``git_commit``,
``git_tag`` or the legacy ``git_branch``), ``code_config``, package-index settings and ``live_code_*``
options. Every other key is a hyper-parameter of the user's code. The web form may send booleans,
numbers and lists as strings and drops empty values, so those are read leniently.
"""

from __future__ import annotations

import copy
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
from live_code.record import field, record
from live_code.task import legacy, values
from live_code.task.env import (
    Env,
    InputPaths,  # noqa: F401 (re-exported: config is where a task is read)
    OutputPaths,  # noqa: F401 (re-exported)
    PathMap,
    parse_env,
    peek_task_id,  # noqa: F401 (re-exported)
)

logger = logging.getLogger(__name__)


PIN_KEYS = ("git_commit", "git_tag", "git_branch")
_STRING_KEYS = ("git_url", *PIN_KEYS, "code_config")  # refs and paths: YAML type traps are refused
PACKAGE_KEYS = ("pip_index_url", "pip_extra_index_urls", "pip_find_links", "pip_offline", "pypi_mirror")
OPTION_KEYS = (
    "live_code_allow_branch",
    "live_code_allow_moved_tag",
    "live_code_strict_pins",
    "live_code_timeout",
    "live_code_ymir_exc",
    *("live_code_lock", "live_code_resolve_as_of"),  # issue 22: see values.lock_options
)
LIVE_CODE_KEYS = frozenset((*_STRING_KEYS, *PACKAGE_KEYS, *OPTION_KEYS))
_LIVE_CODE_PREFIXES = ("git_", "pip_", "pypi_", "live_code_")
#: Platform keys that become typed Task fields (the others of contract.PLATFORM_KEYS, e.g. max_boxes,
#: stay hyper-parameters).
_TYPED_PLATFORM_KEYS = contract.PLATFORM_KEYS - {"openpai_enable", "max_boxes"}
_HEX_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")


# -- records -------------------------------------------------------------------------------------


class PinKind(str, enum.Enum):
    """What decides the commit: ``git_commit`` > ``git_tag`` > the legacy ``git_branch``."""

    COMMIT = "commit"
    TAG = "tag"
    #: legacy ``git_branch``: a commit id, a tag or a branch name, as the original image took it;
    #: the git module tells which (and refuses a branch unless allowed)
    REF = "ref"


@record
class SourcePin:
    """The repository and its pin. When several refs are given, ``kind`` names the strongest and the
    others stay for the git module to check that they agree. ``url`` is not shown in repr: it may
    carry credentials."""

    url: str = field(repr=False)
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


@record
class PackageIndex:
    """Where requirements come from. URLs may carry credentials: kept out of repr."""

    index_url: str | None = field(default=None, repr=False)
    extra_index_urls: tuple[str, ...] = field(default=(), repr=False)
    find_links: tuple[str, ...] = field(default=(), repr=False)
    offline: bool = False


@record
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


@record
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
    hyperparameters: Mapping[str, Any] = field(hash=False)
    #: the whole config.yaml as read (read-only), for the merged file user code reads
    raw: Mapping[str, Any] = field(hash=False, repr=False)

    @property
    def annotation_format(self) -> str:
        """``ark``, ``voc``, ``coco`` or ``none``: what the platform exported for training."""
        return contract.EXPORT_FORMATS[self.export_format.split(":")[0]]


@record
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
        values.string(data, key, source, spelled)  # refuse YAML type traps before anything else
    class_names = values.class_names(data.get("class_names"), source)
    if TaskKind.TRAINING in kinds and not class_names:
        raise ConfigError(
            f"{source}: class_names is empty; training needs at least one class",
            hint="select the labels to train on in the YMIR training form",
        )
    gpu_id = values.gpu_id(data.get("gpu_id"), source)
    gpu_count = values.whole_number("gpu_count", data.get("gpu_count"), len(gpu_id.split(",")) if gpu_id else 0, source)
    object_type = values.object_type(data.get("object_type"), source)
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
        pretrained_model_params=values.str_list("pretrained_model_params", data.get("pretrained_model_params"), source),
        model_params_path=values.str_list("model_params_path", data.get("model_params_path"), source),
        export_format=values.export_format(data.get("export_format"), source),
        shm_size=values.shm_size(data.get("shm_size"), source),
        source=_source_pin(data, source, spelled),
        code_config=_code_config(data, source, spelled),
        package_index=_package_index(data, source),
        options=_options(data, source),
        hyperparameters=types.MappingProxyType(hyper),
        raw=types.MappingProxyType(copy.deepcopy(dict(data))),
    )


def _options(data: Mapping[str, Any], source: str) -> Options:
    """The ``live_code_*`` keys (OPTION_KEYS)."""
    return Options(
        allow_branch=values.boolean("live_code_allow_branch", data.get("live_code_allow_branch"), False, source),
        allow_moved_tag=values.boolean(
            "live_code_allow_moved_tag", data.get("live_code_allow_moved_tag"), False, source
        ),
        strict_pins=values.boolean("live_code_strict_pins", data.get("live_code_strict_pins"), False, source),
        timeout=values.duration("live_code_timeout", data.get("live_code_timeout"), source),
        ymir_exc=legacy.sdk_option(data.get("live_code_ymir_exc"), source),
        **values.lock_options(data, source),
    )


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


def _source_pin(data: Mapping[str, Any], source: str, spelled: Mapping[str, str]) -> SourcePin | None:
    url = values.string(data, "git_url", source, spelled)
    commit, tag, branch = (values.string(data, key, source, spelled) for key in PIN_KEYS)
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
    path = values.string(data, "code_config", source, spelled)
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
    index_url, mirror = (values.plain_str(k, data.get(k), source) for k in ("pip_index_url", "pypi_mirror"))
    if index_url and mirror and index_url.rstrip("/") != mirror.rstrip("/"):
        # the URLs are not shown: they may carry credentials
        raise ConfigError(
            f"{source}: pip_index_url and the legacy pypi_mirror are both set and differ",
            hint="keep only pip_index_url",
        )
    return PackageIndex(
        index_url=index_url or mirror,
        extra_index_urls=values.str_list("pip_extra_index_urls", data.get("pip_extra_index_urls"), source, spaces=True),
        find_links=values.str_list("pip_find_links", data.get("pip_find_links"), source, spaces=True),
        offline=values.boolean("pip_offline", data.get("pip_offline"), False, source),
    )


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
