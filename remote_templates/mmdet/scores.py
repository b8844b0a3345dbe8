"""ALDD of a dense head, framework-free: mmdet gives the probability maps by feature level, the
SDK's score (``sdk.aldd_score``) wants them by class."""

from __future__ import annotations

from collections.abc import Sequence

from live_code import sdk


def aldd(
    level_maps: Sequence[Sequence[Sequence[Sequence[float]]]], class_weights: Sequence[float], input_size: int
) -> float:
    """ALDD of a dense head: ``level_maps[level][class]`` is the 2D probability map of a class at
    one feature level (already ``sigmoid(cls) * sigmoid(objectness)``); the SDK wants them by class."""
    return sdk.aldd_score(by_class(level_maps), class_weights, input_size=input_size)


def by_class(
    level_maps: Sequence[Sequence[Sequence[Sequence[float]]]],
) -> list[list[Sequence[Sequence[float]]]]:
    """``level_maps[level][class]`` regrouped as ``maps[class][level]``, which ``sdk.aldd_score``
    takes; ValueError for no level or levels with different class counts."""
    if not level_maps:
        raise ValueError("aldd needs at least one feature level")
    classes = len(level_maps[0])
    if any(len(level) != classes for level in level_maps):
        raise ValueError("every feature level needs a map per class")
    return [[level[c] for level in level_maps] for c in range(classes)]
