"""Records: ``@record`` is ``@dataclasses.dataclass(frozen=True)`` made without generating code.

For each class, the standard library's ``dataclass`` writes the source of ``__init__``,
``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__`` and ``__delattr__``, compiles each one,
and its module imports ``inspect`` (with ``ast``, ``dis`` and ``tokenize``): for the 36 records a
run imports before its job starts, 16 ms of creating classes and 3 ms of imports, in a warm start
of 118 ms (issue 24). Here each class gets the same methods as plain functions that read the
class's field table, so making a class costs a loop over its annotations; with them, the median
warm start went from 118 to 104 ms (14 runs of each, alternating on one cache, bench/README.md).

The behaviour is dataclasses' for what the harness uses, and ``tests/test_record.py`` checks it
against a real dataclass of the same fields: positional and keyword ``__init__`` with defaults and
``field(default_factory=...)``, ``__post_init__``, ``repr`` (a ``field(repr=False)`` is left out of
it: secrets), ``==`` and ``hash`` over the fields (less those with ``compare=False``, and for the
hash those with ``hash=False``), assignment refused with :class:`FrozenInstanceError` (an
``AttributeError``), and :func:`replace`, :func:`asdict` and :func:`fields`.
``@record(frozen=False)`` gives a mutable record with no hash, as ``@dataclass`` does. Type
checkers see a dataclass (PEP 681's ``dataclass_transform``).

Not supported, because no record needs them: ``ClassVar`` and ``InitVar`` annotations (a
``ClassVar`` annotation is refused), ordering, ``kw_only``, ``slots``. The SDK keeps the standard
``dataclasses``: it runs in the job and depends on nothing of the harness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: object) -> Callable[[Any], Any]:
        return lambda f: f


__all__ = ["FrozenInstanceError", "Field", "asdict", "field", "fields", "record", "replace"]

_T = TypeVar("_T")
_FIELDS = "__record_fields__"
#: annotations (strings, under ``from __future__ import annotations``) that do not make a field
_UNSUPPORTED = ("ClassVar", "typing.ClassVar", "InitVar", "dataclasses.InitVar")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    """Assigning to, or deleting, a field of a frozen record."""


class Field:
    """One field: its name, its default or default factory, and whether repr and == use it."""

    __slots__ = ("compare", "default", "default_factory", "hash", "name", "repr")

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Any = MISSING,
        repr: bool = True,
        compare: bool = True,
        hash: bool | None = None,
    ) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        #: whether hash() uses it (None: as ``compare`` says)
        self.hash = hash

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r}, default_factory={self.default_factory!r})"


@overload
def field(*, default: _T, repr: bool = True, compare: bool = True, hash: bool | None = None) -> _T: ...
@overload
def field(
    *, default_factory: Callable[[], _T], repr: bool = True, compare: bool = True, hash: bool | None = None
) -> _T: ...
@overload
def field(*, repr: bool = True, compare: bool = True, hash: bool | None = None) -> Any: ...
def field(
    *,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    repr: bool = True,
    compare: bool = True,
    hash: bool | None = None,
) -> Any:
    """A field's options, as ``dataclasses.field`` takes them."""
    return Field(default, default_factory, repr, compare, hash)


@overload
@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(cls: type[_T], /) -> type[_T]: ...
@overload
def record(*, frozen: bool = True) -> Callable[[type[_T]], type[_T]]: ...
def record(cls: type[_T] | None = None, /, *, frozen: bool = True) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """Make ``cls`` a record of its annotated class attributes (frozen unless ``frozen=False``)."""
    if cls is None:
        return lambda c: _make(c, frozen)
    return _make(cls, frozen)


def fields(obj: Any) -> tuple[Field, ...]:
    """The fields of a record or record class, in order."""
    try:
        return tuple(getattr(obj, _FIELDS).values())
    except AttributeError:
        raise TypeError(f"{obj!r} is not a record") from None


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of the record ``obj`` with ``changes`` (its ``__post_init__`` runs again)."""
    for f in fields(obj):
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


def asdict(obj: Any) -> dict[str, Any]:
    """The record ``obj`` as a dict, records, lists, tuples (named ones too) and dicts within it
    converted and copied the way ``dataclasses.asdict`` converts them."""
    fields(obj)  # TypeError for anything else
    result: dict[str, Any] = _as_plain(obj)
    return result


def _as_plain(value: Any) -> Any:
    if hasattr(type(value), _FIELDS):
        return {f.name: _as_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[_as_plain(v) for v in value])
    if isinstance(value, (list, tuple)):
        return type(value)(_as_plain(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_as_plain(k), _as_plain(v)) for k, v in value.items())
    return value


def _make(cls: type[_T], frozen: bool) -> type[_T]:
    table = _field_table(cls)
    order = tuple(table.values())
    compared = tuple(f.name for f in order if f.compare)
    hashed = tuple(f.name for f in order if (f.compare if f.hash is None else f.hash))
    shown = tuple(f.name for f in order if f.repr)
    post_init = hasattr(cls, "__post_init__")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(order):
            raise TypeError(f"{cls.__qualname__}() takes {len(order)} arguments but {len(args)} were given")
        for f, value in zip(order, args):
            if f.name in kwargs:
                raise TypeError(f"{cls.__qualname__}() got multiple values for argument {f.name!r}")
            object.__setattr__(self, f.name, value)
        for f in order[len(args) :]:
            if f.name in kwargs:
                value = kwargs.pop(f.name)
            elif f.default is not MISSING:
                value = f.default
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"{cls.__qualname__}() missing required argument: {f.name!r}")
            object.__setattr__(self, f.name, value)
        if kwargs:
            raise TypeError(f"{cls.__qualname__}() got an unexpected keyword argument {next(iter(kwargs))!r}")
        if post_init:
            self.__post_init__()

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in compared) == tuple(getattr(other, n) for n in compared)

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, name) for name in hashed))

    # as dataclasses do: what the class defines itself stays (an __eq__ of its own sets __hash__ to None)
    own_hash = "__hash__" in cls.__dict__ and not (cls.__dict__["__hash__"] is None and "__eq__" in cls.__dict__)
    made: dict[str, Any] = {"__init__": __init__, "__repr__": __repr__, "__eq__": __eq__}
    for name, method in made.items():
        if name not in cls.__dict__:
            method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)
    if frozen:
        if not own_hash:
            __hash__.__qualname__ = f"{cls.__qualname__}.__hash__"
            cls.__hash__ = __hash__  # type: ignore[method-assign]  # made here, as dataclasses do
        cls.__setattr__ = _refuse_set  # type: ignore[method-assign]  # frozen
        cls.__delattr__ = _refuse_delete  # type: ignore[method-assign]  # frozen
    elif not own_hash:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and comparable: unhashable, as dataclasses
    cls.__match_args__ = tuple(table)  # type: ignore[attr-defined,misc]  # a class attribute of records
    return cls


def _field_table(cls: type) -> dict[str, Field]:
    """The fields of ``cls``: those of its record bases first, then its own annotations in order.
    A default stays on the class (as dataclasses leave it); a ``field()`` without one is removed."""
    table: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        table.update(getattr(base, _FIELDS, {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if str(annotation).startswith(_UNSUPPORTED):
            raise TypeError(f"{cls.__qualname__}.{name}: ClassVar and InitVar are not supported by @record")
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(value)
        if isinstance(f.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
        f.name = name
        if isinstance(value, Field):
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        table[name] = f
    seen_default = False
    for f in table.values():
        if f.default is not MISSING or f.default_factory is not MISSING:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    setattr(cls, _FIELDS, table)
    return table


def _refuse_set(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_delete(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
