"""Strict reading of the YAML files a task, a manifest or a code_config brings.

Refused, naming the file and the fix: more than MAX_FILE_BYTES, non-regular files, UTF-16 or
non-UTF-8 text, control characters, YAML errors (problem, line and column, never the line's text,
which could hold a secret), tags, anchors and aliases (billion laughs), duplicate keys, deep
nesting, and a top level that is not a mapping.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from typing import Any

import yaml

from live_code.errors import ConfigError

MAX_FILE_BYTES = 1 << 20  # a task's YAML is a few KiB; anything near 1 MiB is a mistake or an attack
MAX_DEPTH = 64  # nesting of YAML collections; hyper-parameters are flat or nearly so


def describe(value: Any) -> str:
    """How YAML read a value, for messages: ``the number 1.1``, ``the date 2024-01-01``."""
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value.isoformat()}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


class _Refused(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases (billion laughs), explicit tags, deep nesting and
    duplicate keys, instead of accepting them silently."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            raise _Refused(
                problem="uses a YAML anchor or alias (&name / *name); they are not allowed here, write the values out",
                problem_mark=event.start_mark,
            )
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _Refused(
                problem=f"uses the YAML tag {tag!r}; tags are not allowed here, write plain values "
                "(put text in quotes)",
                problem_mark=event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(problem=f"nests deeper than {MAX_DEPTH} levels", problem_mark=event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                first = seen[key].line + 1
                raise _Refused(
                    problem=f"has the key {key!r} twice (first on line {first}); YAML would keep only "
                    "the last one silently, remove one",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


#: libyaml's emitter where PyYAML was built with it (its wheels are): 5 times faster than the
#: Python one (the provenance is written after every job), and the same text but for characters
#: it escapes (outside the BMP, NEL, the line separators), which read back the same
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data: Any, *, sort_keys: bool) -> str:
    """``yaml.safe_dump(data, sort_keys=..., allow_unicode=True)``, by libyaml where it is there."""
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=sort_keys, allow_unicode=True)


def parse_yaml(text: str, *, source: str) -> tuple[Any, dict[str, str]]:
    """``(data, spelled)``: the document and the text of each plain top-level scalar value."""
    loader = None
    try:
        loader = _StrictLoader(text)  # its reader already refuses control characters
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        where = f" (line {e.problem_mark.line + 1}, column {e.problem_mark.column + 1})" if e.problem_mark else ""
        # the problem only: YAML's snippet of the line could show a secret
        if isinstance(e, _Refused):
            raise ConfigError(f"{source} {e.problem}{where}") from None
        problem = f"{e.context}, {e.problem}" if e.context else e.problem
        msg = f"{source} is not valid YAML: {problem}{where}"
        raise ConfigError(msg, hint="check the indentation (spaces, not tabs) and the quotes") from None
    except yaml.reader.ReaderError as e:
        msg = f"{source} is not valid YAML: it contains the character {e.character:#06x} at offset {e.position}"
        raise ConfigError(msg, hint="remove control characters (NUL, escape codes) from the file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{source} nests too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    spelled = {}
    if isinstance(node, yaml.MappingNode):
        spelled = {
            k.value: v.value
            for k, v in node.value
            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode) and v.style is None
        }
    return data, spelled


def read_yaml_mapping(path: str | os.PathLike[str], *, empty_ok: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
    """Read a YAML file whose top level must be a mapping: ``(data, spelled)`` (see :func:`parse_yaml`).

    Refuses, naming the file: a missing or non-regular file, more than MAX_FILE_BYTES, non-UTF-8
    text, YAML errors, tags, anchors/aliases, duplicate keys, and a top level other than a mapping.
    """
    name = os.fspath(path)
    try:
        if not os.path.isfile(name):
            what = "does not exist" if not os.path.lexists(name) else "is not a regular file"
            raise ConfigError(f"{name} {what}", hint="check the path (and the /in mount)")
        with open(name, "rb") as f:  # a regular file: opening cannot block as a FIFO would
            raw = f.read(MAX_FILE_BYTES + 1)  # read past the limit only by one byte
    except OSError as e:
        raise ConfigError(f"cannot read {name}: {e.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{name} is larger than {MAX_FILE_BYTES // 1024} KiB; a task file is a few KiB",
            hint="keep only flat key: value settings in it",
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{name} is UTF-16 text", hint="save it as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{name} is not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start})", hint="save it as UTF-8"
        ) from None
    data, spelled = parse_yaml(text, source=name)
    if data is None:
        if empty_ok:
            return {}, {}
        raise ConfigError(f"{name} is empty", hint="it must be a YAML mapping of key: value lines")
    if not isinstance(data, dict):
        # a whole file read as one string is not shown: it may be a host file behind a symlink
        what = f"a string of {len(data)} characters" if isinstance(data, str) else describe(data)
        raise ConfigError(f"{name} must be a YAML mapping (key: value lines) at the top level, not {what}")
    return data, spelled
