"""The fast path of the infer-result.json check: a file with no problem at all, proved in C.

msgspec decodes the file into typed structs that hold every rule of a well-formed box: integer
coordinates (x, y >= 0; w, h > 0), a known (or, with no class list, non-blank) class name, a
finite score, no key but the ones YMIR reads; invalid JSON, NaN, Infinity and numbers out of range
fail the decode. What the types cannot say is checked on the decoded values: basenames unique and
among the candidates, and no duplicate key, since a JSON object's repeated key keeps only its last
value in every parser. Keys are counted instead of hooked: every ``:`` of a JSON text outside a
string follows a key, so a file whose ``:`` count equals the number of keys decoded (plus the
colons inside its strings) has no key twice.

A file over 64 MiB is decoded in batches of images from raw slices of it, so memory holds the
file, one raw slice per image and one batch of structs, never the whole tree of boxes; a smaller
file is decoded whole, which is faster.

``check`` returns True only when the file has no problem; anything else (a problem, a shape it
does not model) returns False, and the full check (``infer``) runs to name each problem.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Annotated, Any, Literal, NamedTuple, Union

import msgspec

from live_code import contract

#: a file larger than this is decoded in batches of images
BATCH_ABOVE = 64 << 20
#: images decoded at once in a large file: bounds the structs alive at a time
BATCH = 20_000


class _Top(msgspec.Struct, forbid_unknown_fields=True):
    detection: dict[str, msgspec.Raw]


class _Decoders(NamedTuple):
    whole: msgspec.json.Decoder[Any]
    batch: msgspec.json.Decoder[Any]
    listed: Callable[[Any], list[Any]]


@functools.lru_cache(maxsize=8)
def _decoders(ymir_1_1: bool, names: frozenset[str] | None) -> _Decoders | None:
    """Decoders of a whole file and of a batch of images, for one protocol family and class list
    (None: no list); None when no box can be valid."""
    if names is not None:
        usable = tuple(sorted(n for n in names if n.strip()))
        if not usable:
            return None
        class_name: Any = Literal[usable]
    else:
        class_name = Annotated[str, msgspec.Meta(pattern=r"\S")]
    coord = Annotated[int, msgspec.Meta(ge=0)]
    size = Annotated[int, msgspec.Meta(gt=0)]
    rect_fields: list[Any] = [("x", coord), ("y", coord), ("w", size), ("h", size)]
    if not ymir_1_1:
        rect_fields.append(("rotate_angle", Union[float, msgspec.UnsetType], msgspec.UNSET))
    options: dict[str, Any] = {"forbid_unknown_fields": True, "gc": False}
    rect = msgspec.defstruct("Rect", rect_fields, **options)
    box = msgspec.defstruct("Box", [("box", rect), ("class_name", class_name), ("score", float)], **options)
    key = "annotations" if ymir_1_1 else "boxes"
    image = msgspec.defstruct("Image", [(key, list[box])], **options)  # type: ignore[valid-type]  # a type made at run time
    top = msgspec.defstruct("Top", [("detection", dict[str, image])], **options)  # type: ignore[valid-type]  # a type made at run time
    return _Decoders(msgspec.json.Decoder(top), msgspec.json.Decoder(list[image]), attrgetter(key))  # type: ignore[valid-type]  # a type made at run time


def check(
    data: bytes,
    protocol: str,
    class_names: Iterable[str] | None,
    candidates: Iterable[str] | None,
    *,
    batch_above: int = BATCH_ABOVE,
) -> bool:
    """True when ``data`` (the file's bytes) is an infer-result.json with no problem, error or
    warning. A file larger than ``batch_above`` bytes is decoded image batch by image batch."""
    ymir_1_1 = not contract.allows_rotate_angle(protocol)
    decoders = _decoders(ymir_1_1, frozenset(class_names) if class_names is not None else None)
    if decoders is None:
        return False
    with_angles = not ymir_1_1 and b"rotate_angle" in data
    try:
        if len(data) > batch_above:
            keys, counts = _decode_in_batches(data, decoders, with_angles)
        else:
            detection = decoders.whole.decode(data).detection
            keys, counts = list(detection), _count(list(map(decoders.listed, detection.values())), with_angles)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False
    if not _images_ok(keys, candidates):
        return False
    # keys decoded: 'detection', each image's name and its list, each box's 3 keys and the rect's 4
    boxes, angles = counts
    decoded = 1 + 2 * len(keys) + 7 * boxes + angles
    return _no_duplicate_keys(data, decoded, keys, class_names)


def _decode_in_batches(data: bytes, decoders: _Decoders, with_angles: bool) -> tuple[list[str], tuple[int, int]]:
    """The image names, and the boxes and angles counted, decoding BATCH images at a time."""
    detection = msgspec.json.decode(data, type=_Top).detection
    keys, raws = list(detection), list(detection.values())
    del detection
    boxes = angles = 0
    for start in range(0, len(raws), BATCH):
        images = decoders.batch.decode(b"[" + b",".join(raws[start : start + BATCH]) + b"]")
        more_boxes, more_angles = _count(list(map(decoders.listed, images)), with_angles)
        boxes, angles = boxes + more_boxes, angles + more_angles
    return keys, (boxes, angles)


def _count(lists: list[list[Any]], angles: bool) -> tuple[int, int]:
    """How many boxes the lists hold, and (``angles``: the file may hold some) how many of them
    have a rotate_angle."""
    boxes = sum(map(len, lists))
    if not angles:
        return boxes, 0
    return boxes, sum(b.box.rotate_angle is not msgspec.UNSET for one in lists for b in one)


def _images_ok(keys: list[str], candidates: Iterable[str] | None) -> bool:
    """Basenames unique (YMIR keys results by basename) and, with a candidate list, all candidates'."""
    bases = [k.rpartition("/")[2] for k in keys] if any("/" in k for k in keys) else keys
    unique = set(bases)
    if len(unique) != len(bases):
        return False
    return candidates is None or unique.issubset({c.rpartition("/")[2] for c in candidates})


def _no_duplicate_keys(data: bytes, decoded: int, keys: list[str], class_names: Iterable[str] | None) -> bool:
    """Whether the file's keys are all distinct: its ``:`` count is the keys decoded (a key decoded
    once but written twice adds a ``:``) plus the colons inside strings."""
    colons = data.count(b":")
    if colons == decoded:
        return True
    if b"\\" in data or class_names is None or any(":" in n for n in class_names):
        return False  # an escape may write a colon as \u003a, and an unlisted class name may hold one
    return colons == decoded + sum(k.count(":") for k in keys)
