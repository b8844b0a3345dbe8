"""The readers of one config.yaml value: each takes the key, the value as YAML read it and the
file's name, and returns the typed value or raises a :class:`ConfigError` naming the key, the value
and the fix. The web form may send booleans, numbers and lists as strings and drops empty values,
so those are read leniently; a ref or path of another YAML type is a trap, refused (:func:`string`)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from live_code import contract
from live_code._yaml import describe as _describe
from live_code.errors import ConfigError

#: keys whose values may carry credentials: never shown in an error
URL_KEYS = frozenset({"git_url", "pip_index_url", "pypi_mirror", "pip_extra_index_urls", "pip_find_links"})
#: how YAML 1.1 and the web form spell booleans (the manifest's schema reads them the same way)
TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_SHM_RE = re.compile(r"^\d+(\.\d+)?\s*[kmgt]?i?b?$", re.IGNORECASE)


def shown(key: str, value: Any) -> Any:
    """The value to show in an error: never for keys that hold URLs (they may carry credentials)."""
    return None if key in URL_KEYS else value


def string(data: Mapping[str, Any], key: str, source: str, spelled: Mapping[str, str]) -> str | None:
    """A ref or path: a string, or None when absent/empty. Any other YAML type is a trap."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    text = spelled.get(key)
    if isinstance(value, (bool, int, float, datetime.date)):
        said = text if text is not None and text != str(value) else "this"
        msg = f"{source}: {key}: YAML read {said} as {_describe(value)}, not as text"
        if isinstance(value, float):
            msg += " (YAML drops trailing zeros: 1.10 becomes 1.1)"
        elif isinstance(value, int) and text is not None and text.startswith("0") and text != "0":
            msg += " (YAML 1.1 reads a leading 0 as octal)"
        example = text if text is not None else ("1.10" if isinstance(value, float) else str(value))
        msg += f'; write it in quotes exactly as git names it, e.g. {key}: "{example}"'
        raise ConfigError(msg, value=value)
    raise ConfigError(
        f"{source}: {key} must be a string, not {_describe(value)}",
        value=shown(key, value),
        hint=f'write one value in quotes, e.g. {key}: "..."',
    )


def plain_str(key: str, value: Any, source: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {key} must be a string, not {_describe(value)}", value=shown(key, value))
    return value.strip() or None


def boolean(key: str, value: Any, default: bool, source: str) -> bool:
    """true/false/yes/no/on/off/1/0 in any case, as YAML or the web form send them."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise ConfigError(
        f"{source}: {key} must be true or false",
        value=value,
        hint=f"write {key}: true or {key}: false (yes/no, on/off and 1/0 also work)",
    )


def whole_number(key: str, value: Any, default: int, source: str, *, minimum: int = 0) -> int:
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


def duration(key: str, value: Any, source: str) -> float | None:
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


def str_list(key: str, value: Any, source: str, *, spaces: bool = False) -> tuple[str, ...]:
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
    raise ConfigError(f"{source}: {key} must be a list of strings, not {_describe(value)}", value=shown(key, value))


def class_names(value: Any, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        names: tuple[str, ...] = tuple(n.strip() for n in value.split(",") if n.strip())  # the web form
    else:
        names = str_list("class_names", value, source)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: class_names lists {dupes[0]!r} more than once", value=list(names))
    return names


def gpu_id(value: Any, source: str) -> str:
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


def object_type(value: Any, source: str) -> contract.ObjectType:
    number = whole_number("object_type", value, int(contract.ObjectType.DETECTION), source)
    try:
        return contract.ObjectType(number)
    except ValueError:
        known = ", ".join(f"{t.value} ({t.name.lower()})" for t in contract.ObjectType)
        raise ConfigError(f"{source}: object_type {number} is not one of {known}", value=value) from None


def export_format(value: Any, source: str) -> str:
    text = plain_str("export_format", value, source)
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


def shm_size(value: Any, source: str) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    if text is None or not _SHM_RE.match(text):
        raise ConfigError(f"{source}: shm_size must be a size such as 16G", value=value)
    return text


def lock_options(data: Mapping[str, Any], source: str) -> dict[str, str | None]:
    """``live_code_lock`` (``model`` or a relative path) and ``live_code_resolve_as_of`` (``commit``
    or an ISO 8601 date or time); not both."""
    lock = plain_str("live_code_lock", data.get("live_code_lock"), source)
    as_of = data.get("live_code_resolve_as_of")
    as_of = as_of.isoformat() if isinstance(as_of, (datetime.date, datetime.datetime)) else as_of  # YAML reads dates
    as_of = plain_str("live_code_resolve_as_of", as_of, source)
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
