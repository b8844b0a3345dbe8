"""The merged hyper-parameters, and getters that tolerate what YMIR's web form sends.

The web form edits numbers as numbers and everything else as free text, so booleans and lists
often arrive as strings (``'true'``, ``'a,b'``, ``'[640, 640]'``); the mining/infer form drops falsy
values, so every key needs an in-code default (contract section 3.1).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import yaml

from live_code import contract
from live_code.sdk._env import Env, read_env
from live_code.sdk._errors import ConfigValueError

T = TypeVar("T")

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0", "none", "null"})


def config_file_path(env: Env | None = None) -> str:
    """``$LIVE_CODE_CONFIG_FILE`` (the merged file the harness writes), else env.yaml's ``input.config_file``."""
    override = os.environ.get(contract.CONFIG_FILE_VAR)
    if override:
        return override
    return (env or read_env()).input.config_file or contract.CONFIG_FILE


def read_config(env: Env | None = None) -> dict[str, Any]:
    """The hyper-parameters as a plain dict (see :func:`config_file_path`). An empty file gives ``{}``."""
    path = config_file_path(env)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigValueError(f"cannot read the config file {path!r}: {e.strerror}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigValueError(f"cannot parse the config file {path!r}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigValueError(f"the config file {path!r} must be a mapping, got {type(data).__name__}")
    return data


def get_bool(config: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """``config[key]`` as a bool: true/yes/on/1 and false/no/off/0 in any case, or real bools/ints.

    A missing, ``None`` or ``''`` value gives ``default``; anything else raises ConfigValueError.
    """
    return _get(config, key, default, _to_bool)


def get_int(config: Mapping[str, Any], key: str, default: int = 0) -> int:
    """``config[key]`` as an int; accepts ``'12'``, ``12.0`` and ``'1e3'``, refuses ``12.5``."""
    return _get(config, key, default, _to_int)


def get_float(config: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    """``config[key]`` as a float; accepts ints and numeric strings such as ``'1e-3'``."""
    return _get(config, key, default, _to_float)


def get_list(
    config: Mapping[str, Any],
    key: str,
    default: list[Any] | None = None,
    *,
    item_type: type | None = None,
) -> list[Any]:
    """``config[key]`` as a list: a YAML list, ``'a,b'``, ``'[a, b]'`` or one scalar.

    ``item_type`` (``str``, ``int``, ``float`` or ``bool``) converts each item with the same
    tolerance as the single-value getters. Missing/``None``/``''`` gives a copy of ``default``
    (``[]`` when None).
    """
    convert = _CONVERTERS.get(item_type) if item_type is not None else None
    if item_type is not None and convert is None:
        raise TypeError(f"item_type must be one of str, int, float, bool, got {item_type!r}")
    value = config.get(key)
    if value is None or value == "":
        return list(default or [])
    items = _to_list(value, key)
    if convert is None:
        return items
    try:
        return [convert(item) for item in items]
    except ValueError as e:
        raise ConfigValueError(f"config key {key!r}: {e}") from None


def _get(config: Mapping[str, Any], key: str, default: T, convert: Callable[[Any], T]) -> T:
    value = config.get(key)
    if value is None or value == "":
        return default
    try:
        return convert(value)
    except ValueError as e:
        raise ConfigValueError(f"config key {key!r}: {e}") from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _to_float(value)
    if not (math.isfinite(number) and number.is_integer()):
        raise ValueError(f"{value!r} is not an integer")
    return int(number)


def _to_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


_CONVERTERS: dict[type, Callable[[Any], Any]] = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def _to_list(value: Any, key: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if not isinstance(value, str):
        return [value]
    text = value.strip()
    if text.startswith("["):
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigValueError(f"config key {key!r}: {value!r} is not a valid list") from None
        if not isinstance(loaded, list):
            raise ConfigValueError(f"config key {key!r}: {value!r} is not a valid list")
        return loaded
    return [part.strip() for part in text.split(",") if part.strip()]
