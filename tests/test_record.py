"""live_code.record: the harness's records behave as the standard library's frozen dataclasses do.

Each test makes the same class twice, with ``dataclasses`` and with ``live_code.record``, and
compares what the two do."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections import namedtuple
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from live_code import record as rec

Pair = namedtuple("Pair", "left right")
NotAClassVar = str


def _point(decorate: Callable[..., Any], field: Callable[..., Any]) -> Any:
    @decorate
    class Point:
        """A point (its docstring)."""

        x: int
        y: str = "y"
        tags: tuple[str, ...] = ()
        notes: list[str] = field(default_factory=list, hash=False)
        secret: str | None = field(default=None, repr=False, compare=False)
        extra: Any = field(default=None, hash=False)

        def doubled(self) -> int:
            return self.x * 2

    return Point


DC = _point(dataclasses.dataclass(frozen=True), dataclasses.field)
REC = _point(rec.record, rec.field)
BOTH = pytest.mark.parametrize("cls", [DC, REC], ids=["dataclasses", "record"])


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "b"), {}), ((), {"x": 2, "tags": ("t",)}), ((3,), {"secret": "s3cr3t", "extra": {"a": 1}})],
)
def test_init_repr_and_fields_are_dataclasses(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    a, b = DC(*args, **kwargs), REC(*args, **kwargs)
    assert repr(b) == repr(a)
    assert "s3cr3t" not in repr(b)
    assert [f.name for f in rec.fields(b)] == [f.name for f in dataclasses.fields(a)]
    assert [getattr(b, f.name) for f in rec.fields(b)] == [getattr(a, f.name) for f in dataclasses.fields(a)]
    assert b.doubled() == a.doubled() and REC.__doc__ == DC.__doc__
    assert REC.__match_args__ == DC.__match_args__


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, "y", (), [], None, None, "one too many"), {}), ((1,), {"x": 1}), ((1,), {"z": 1})],
    ids=["missing", "too many", "twice", "unknown"],
)
@BOTH
def test_bad_arguments_are_a_type_error(cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        cls(*args, **kwargs)


def test_equality_and_hash_are_dataclasses() -> None:
    for cls in (DC, REC):
        one, same, other = cls(1, secret="a"), cls(1, secret="b"), cls(2)
        assert one == same and hash(one) == hash(same)  # compare=False: the secret is not compared
        assert one != other and one != (1, "y", ())
        # hash=False: a field that may hold a dict is compared, not hashed
        assert cls(1, extra={"k": 1}) != cls(1, extra={"k": 2})
        assert hash(cls(1, extra={"k": 1})) == hash(cls(1))
    assert hash(REC(1, "z", ("t",))) == hash(DC(1, "z", ("t",)))
    assert REC(1) != DC(1)  # another class, as between two dataclasses
    nan = float("nan")
    assert REC(1, extra=nan) == REC(1, extra=nan)  # the same object, as tuples compare it


@BOTH
def test_a_frozen_record_refuses_assignment_and_deletion(cls: Any) -> None:
    p = cls(1)
    with pytest.raises(AttributeError):
        p.x = 2
    with pytest.raises(AttributeError):
        del p.x
    assert p.x == 1


def test_the_frozen_error_is_an_attribute_error() -> None:
    with pytest.raises(rec.FrozenInstanceError, match="'x'"):
        REC(1).x = 2


def test_a_default_factory_makes_a_new_value_each_time() -> None:
    a, b = REC(1), REC(1)
    assert a.notes == [] and a.notes is not b.notes
    assert "notes" not in vars(REC)  # a factory's field leaves no class attribute, a default does
    assert REC.y == "y"


def test_replace_and_asdict_are_dataclasses() -> None:
    inner_dc, inner_rec = DC(1, notes=["n"]), REC(1, notes=["n"])
    outer_dc = DC(2, tags=("a",), extra={"in": [inner_dc], "pair": Pair(inner_dc, 3)})
    outer_rec = REC(2, tags=("a",), extra={"in": [inner_rec], "pair": Pair(inner_rec, 3)})
    assert rec.asdict(outer_rec) == dataclasses.asdict(outer_dc)
    assert type(rec.asdict(outer_rec)["extra"]["pair"]) is Pair
    changed = rec.replace(outer_rec, y="z", secret="s")
    assert (changed.x, changed.y, changed.secret, changed.tags) == (2, "z", "s", ("a",))
    assert outer_rec.y == "y"
    with pytest.raises(TypeError):
        rec.replace(outer_rec, nope=1)
    with pytest.raises(TypeError, match="not a record"):
        rec.asdict(outer_dc)


def test_post_init_runs_on_init_and_replace() -> None:
    @rec.record
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError(f"negative: {self.value}")

    assert Checked(1).value == 1
    with pytest.raises(ValueError, match="negative: -1"):
        Checked(-1)
    with pytest.raises(ValueError, match="negative: -2"):
        rec.replace(Checked(1), value=-2)


def test_a_mutable_record_is_assignable_and_unhashable() -> None:
    @rec.record(frozen=False)
    class Tally:
        count: int = 0
        seen: list[str] = rec.field(default_factory=list)

    t = Tally()
    t.count += 1
    t.seen.append("a")
    assert t == Tally(1, ["a"])
    assert repr(t).endswith("Tally(count=1, seen=['a'])")
    with pytest.raises(TypeError):
        hash(t)


def test_definitions_dataclasses_refuse_are_refused() -> None:
    with pytest.raises(ValueError, match="mutable default"):

        @rec.record
        class Shared:
            items: list[int] = []

    with pytest.raises(TypeError, match="non-default argument 'b'"):

        @rec.record
        class Order:
            a: int = 1
            b: int  # type: ignore[misc]  # the mistake under test

    with pytest.raises(ValueError, match="both default and default_factory"):
        rec.field(default=1, default_factory=int)  # type: ignore[call-overload]  # the mistake under test


def test_class_var_is_refused_not_made_a_field() -> None:
    with pytest.raises(TypeError, match="ClassVar"):

        @rec.record
        class Counted:
            total: ClassVar[int] = 0

    @rec.record
    class Named:
        kind: NotAClassVar = "a"  # only the name looks like one

    assert [f.name for f in rec.fields(Named)] == ["kind"]


def test_a_subclass_adds_its_fields_after_its_bases() -> None:
    @rec.record
    class Base:
        a: int

    @rec.record
    class Child(Base):
        b: str = "b"

    assert [f.name for f in rec.fields(Child)] == ["a", "b"]
    assert repr(Child(1)).endswith("Child(a=1, b='b')")


def test_methods_the_class_defines_itself_are_kept() -> None:
    @rec.record
    class Own:
        a: int

        def __repr__(self) -> str:
            return "own"

    assert repr(Own(1)) == "own" and Own(1) == Own(1)


@rec.record
class Stored:
    name: str
    secret: str | None = rec.field(default=None, repr=False, compare=False)
    tags: tuple[str, ...] = ()


def test_pickle_and_copy_keep_a_record() -> None:
    p = Stored("n", "s", ("t",))
    for other in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p)):
        assert other == p and other.secret == "s" and type(other) is Stored
        with pytest.raises(AttributeError):
            other.name = "m"  # type: ignore[misc]  # assigns to a frozen record on purpose


def test_fields_of_anything_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a record"):
        rec.fields(object())
