"""The typed hyper-parameter schema a ``live-code.yaml`` declares (its ``hyperparameters:``
section): each parameter's type, default, choices and bounds, and a user's value read as its type
(the web form sends numbers and booleans as text)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from live_code.contract import TaskKind
from live_code.errors import ConfigError
from live_code.record import record
from live_code.task import config, values

TYPES: Mapping[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "str": (str,),
    "list": (list,),
}
_PARAM_KEYS = ("type", "default", "choices", "help", "min", "max")
_SCOPES = ("common", *(k.value for k in TaskKind))


@record
class Param:
    """One hyper-parameter of the schema."""

    name: str
    type: str
    default: Any
    choices: tuple[Any, ...] = ()
    help: str = ""
    min: float | None = None
    max: float | None = None


def parse_schema(value: Any, source: str) -> dict[TaskKind, Mapping[str, Param]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: hyperparameters must be a mapping of task kind -> parameters", value=value)
    scopes: dict[str, dict[str, Param]] = {}
    for scope, params in value.items():
        if scope not in _SCOPES:
            guess = config.did_you_mean(str(scope), _SCOPES)
            raise ConfigError(
                f"{source}: unknown hyperparameters section {scope!r}",
                hint=f"did you mean {guess!r}?" if guess else f"use one of {', '.join(_SCOPES)}",
            )
        if not isinstance(params, Mapping):
            raise ConfigError(f"{source}: hyperparameters.{scope} must be a mapping", value=params)
        scopes[scope] = {
            name: _param(f"hyperparameters.{scope}.{name}", name, spec, source) for name, spec in params.items()
        }
    common = scopes.get("common", {})
    return {k: MappingProxyType({**common, **scopes.get(k.value, {})}) for k in TaskKind}


def _param(where: str, name: str, spec: Any, source: str) -> Param:
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{source}: {where} must be a mapping with type and default",
            value=spec,
            hint="e.g. `epochs: {type: int, default: 10}`",
        )
    for key in spec:
        if key not in _PARAM_KEYS:
            guess = config.did_you_mean(str(key), _PARAM_KEYS)
            raise ConfigError(
                f"{source}: {where}: unknown field {key!r}",
                hint=f"did you mean {guess!r}?" if guess else f"fields: {', '.join(_PARAM_KEYS)}",
            )
    type_name: Any = spec.get("type")  # one of TYPES once checked, next
    if type_name not in TYPES:
        raise ConfigError(f"{source}: {where}.type must be one of {', '.join(TYPES)}", value=type_name)
    choices = spec.get("choices") or ()
    if not isinstance(choices, (list, tuple)):
        raise ConfigError(f"{source}: {where}.choices must be a list", value=choices)
    param = Param(
        name=name,
        type=type_name,
        default=spec.get("default"),
        choices=tuple(choices),
        help=str(spec.get("help") or ""),
        min=spec.get("min"),
        max=spec.get("max"),
    )
    for choice in param.choices:
        if _convert(type_name, choice) is _INVALID:
            raise ConfigError(f"{source}: {where}.choices holds {choice!r}, which is not of type {type_name}")
    if param.default is not None:
        try:
            coerce(param, param.default, "")
        except ConfigError as e:
            raise ConfigError(
                f"{source}: the default of {where} is invalid: {e.message}", value=param.default, hint=e.hint
            ) from None
    return param


def coerce(param: Param, value: Any, source: str) -> Any:
    """``value`` as the param's type. The web form sends numbers and booleans as text: ``"10"`` is
    an int 10, ``"true"`` a bool; anything else of the wrong type is refused naming key and value."""
    where = f"{source}: " if source else ""
    out = _convert(param.type, value)
    if out is _INVALID:
        msg = f"{where}hyper-parameter {param.name!r} must be of type {param.type}"
        raise ConfigError(msg, value=value, hint=f"set {param.name} to a value of type {param.type}" + _help(param))
    if param.choices and out not in param.choices:
        allowed = ", ".join(repr(c) for c in param.choices)
        raise ConfigError(
            f"{where}hyper-parameter {param.name!r} must be one of {allowed}",
            value=value,
            hint=f"pick one of the allowed values{_help(param)}",
        )
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        if (param.min is not None and out < param.min) or (param.max is not None and out > param.max):
            bounds = (
                f"{param.min if param.min is not None else '-inf'}..{param.max if param.max is not None else 'inf'}"
            )
            raise ConfigError(f"{where}hyper-parameter {param.name!r} must be within {bounds}", value=value)
    return out


_INVALID = object()


def _convert(type_name: str, value: Any) -> Any:
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)) and str(value).strip().lower() in values.TRUE | values.FALSE:
            return str(value).strip().lower() in values.TRUE
        return _INVALID
    if isinstance(value, bool):
        return _INVALID  # True is an int to Python, never to a user
    if type_name == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) else _parsed(value, int)
    if type_name == "float":
        return float(value) if isinstance(value, (int, float)) else _parsed(value, float)
    if type_name == "str":
        return value if isinstance(value, str) else (str(value) if isinstance(value, (int, float)) else _INVALID)
    if type_name == "list":
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [x.strip() for x in value.strip().strip("[]").split(",") if x.strip()]
        return _INVALID
    return _INVALID


def _parsed(value: Any, parse: Callable[[str], Any]) -> Any:
    """``parse`` of a text ``value`` (the spaces around it dropped); _INVALID for other values and
    for text ``parse`` refuses."""
    if not isinstance(value, str):
        return _INVALID
    try:
        return parse(value.strip())
    except ValueError:
        return _INVALID


def _help(param: Param) -> str:
    return f" ({param.help})" if param.help else ""
