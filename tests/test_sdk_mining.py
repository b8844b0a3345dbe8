"""live_code.sdk mining scores: random, entropy, ALDD, CALD and the class weights, against hand-computed values."""

from __future__ import annotations

import math
import random

import pytest

from live_code import sdk


def _h(p: float) -> float:
    """Binary entropy in nats, as ALDD uses it."""
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


# -- random ---------------------------------------------------------------------------------------


def test_random_score_is_fixed_per_key_and_seed() -> None:
    assert sdk.random_score("/in/assets/a.png") == sdk.random_score("/in/assets/a.png")
    assert sdk.random_score("/in/assets/a.png") != sdk.random_score("/in/assets/b.png")
    assert sdk.random_score("/in/assets/a.png", seed=1) != sdk.random_score("/in/assets/a.png", seed=2)


def test_random_score_is_uniform_in_the_unit_interval() -> None:
    scores = [sdk.random_score(f"img{i}.png") for i in range(2000)]
    assert all(0.0 <= s < 1.0 for s in scores)
    assert 0.45 < sum(scores) / len(scores) < 0.55
    assert sum(s < 0.25 for s in scores) / len(scores) == pytest.approx(0.25, abs=0.04)


# -- entropy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidences", "expected"),
    [
        ([0.5, 0.5], 1.0),  # 2 * (-0.5 * log2 0.5)
        ([0.25], 0.5),  # -0.25 * log2 0.25
        ([0.125, 0.5], 0.375 + 0.5),  # 0.125 * 3 + 0.5 * 1
        ([1.0, 0.0], 0.0),  # sure predictions carry no entropy
    ],
)
def test_entropy_score_sums_minus_p_log2_p(confidences: list[float], expected: float) -> None:
    assert sdk.entropy_score(confidences) == pytest.approx(expected)


def test_entropy_score_of_no_prediction_is_minus_ten() -> None:
    assert sdk.entropy_score([]) == -10.0 == sdk.ENTROPY_EMPTY_SCORE


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), "0.5"])
def test_entropy_score_refuses_values_outside_zero_one(bad: object) -> None:
    with pytest.raises(ValueError, match="confidence"):
        sdk.entropy_score([0.5, bad])  # type: ignore[list-item]  # a wrong type on purpose


# -- aldd -----------------------------------------------------------------------------------------


def _grid(h: int, w: int, value: float) -> list[list[float]]:
    return [[value] * w for _ in range(h)]


@pytest.mark.parametrize("value", [0.0, 0.01, 0.5, 0.99])
def test_aldd_score_of_a_constant_map_is_zero(value: float) -> None:
    # ALDD measures disagreement between neighbours: a uniform map, sure or unsure, has none
    assert sdk.aldd_score([[_grid(8, 8, value)]], input_size=64) == pytest.approx(0.0, abs=1e-12)


def test_aldd_score_of_one_row_is_entropy_of_mean_minus_mean_entropy() -> None:
    # a 1x3 map: every 9x9 window covers the whole map, so the local mean is 0.4 everywhere and the
    # mean entropy (H(0.2) + H(0.2) + H(0.8)) / 3 = H(0.2); the max-pool (1x1) keeps each cell
    score = sdk.aldd_score([[[[0.2, 0.2, 0.8]]]])
    assert score == pytest.approx(_h(0.4) - _h(0.2))
    assert score == pytest.approx(0.172610, abs=1e-6)


def test_aldd_score_of_a_checkerboard_reaches_log_two() -> None:
    # 0/1 checkerboard, 8x8: cells 3 and 4 of a row see the whole map (mean 0.5, entropy ln 2),
    # every single cell has entropy 0; the 8x8 max-pool keeps that maximum
    board = [[float((x + y) % 2) for x in range(8)] for y in range(8)]
    assert sdk.aldd_score([[board]]) == pytest.approx(math.log(2))


def test_aldd_score_ranks_flickering_maps_above_smooth_ones() -> None:
    rng = random.Random(0)
    flicker = [[rng.choice((0.05, 0.95)) for _ in range(16)] for _ in range(16)]
    smooth = [[0.95 if 5 <= x < 11 and 5 <= y < 11 else 0.05 for x in range(16)] for y in range(16)]
    unsure = _grid(16, 16, 0.5)
    scores = [sdk.aldd_score([[m]], input_size=128) for m in (flicker, smooth, unsure)]
    assert scores[0] > scores[1] > scores[2] == pytest.approx(0.0)


def test_aldd_score_sums_scales_and_weights_classes() -> None:
    row = [[0.2, 0.2, 0.8]]
    one = sdk.aldd_score([[row]])
    assert sdk.aldd_score([[row, row]]) == pytest.approx(2 * one)
    assert sdk.aldd_score([[row], [row]]) == pytest.approx(2 * one)
    assert sdk.aldd_score([[row], [row]], [2.0, 0.0]) == pytest.approx(2 * one)
    assert sdk.aldd_score([[row], [_grid(1, 3, 0.5)]], [1.0, 5.0]) == pytest.approx(one)


def test_aldd_score_resizes_smaller_scales_to_the_largest() -> None:
    board = [[float((x + y) % 2) for x in range(8)] for y in range(8)]
    coarse = [[0.5, 0.5], [0.5, 0.5]]  # nearest-resized to 8x8: constant, adds nothing
    assert sdk.aldd_score([[board, coarse]]) == pytest.approx(sdk.aldd_score([[board]]))
    assert sdk.aldd_score([[[[0.3]]]], input_size=64) == 0.0  # a 1x1 map works


def test_aldd_score_refuses_bad_maps() -> None:
    with pytest.raises(ValueError, match="rectangle"):
        sdk.aldd_score([[[[0.1, 0.2], [0.3]]]])
    with pytest.raises(ValueError, match="within 0..1"):
        sdk.aldd_score([[[[1.2]]]])
    with pytest.raises(ValueError, match="class weights"):
        sdk.aldd_score([[[[0.1]]]], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        sdk.aldd_score([])
    with pytest.raises(ValueError, match="input_size"):
        sdk.aldd_score([[[[0.1]]]], input_size=0)


# -- cald -----------------------------------------------------------------------------------------

BOX = (0.0, 0.0, 10.0, 10.0, 0.9)


def test_cald_score_of_no_base_box_is_minus_beta() -> None:
    assert sdk.cald_score([], [[BOX]] * 4) == -1.3 == -sdk.CALD_BETA


def test_cald_score_of_identical_predictions_is_zero() -> None:
    assert sdk.cald_score([BOX], [[BOX]] * 4) == pytest.approx(0.0)


def test_cald_score_of_shifted_boxes_is_one_minus_iou() -> None:
    shifted = (5.0, 0.0, 15.0, 10.0, 0.9)  # overlap 50, union 150: IoU 1/3
    assert sdk.cald_score([BOX], [[shifted]] * 4) == pytest.approx(2 / 3)
    assert sdk.cald_score([BOX], [[BOX]] * 4) < sdk.cald_score([BOX], [[shifted]] * 4)


def test_cald_score_weighs_confidence_disagreement_by_js_divergence() -> None:
    # JS([.9, .1], [.5, .5]) with m = [.7, .3]:
    # KL(p|m) = .9 log2(.9/.7) + .1 log2(.1/.3) = 0.167817; KL(q|m) = .5 log2(.5/.7) + .5 log2(.5/.3) = 0.125769
    unsure = (0.0, 0.0, 10.0, 10.0, 0.5)
    assert sdk.cald_score([BOX], [[unsure]] * 4) == pytest.approx((0.167817 + 0.125769) / 2, abs=1e-6)


def test_cald_score_takes_the_worst_box_per_augmentation_and_averages_augmentations() -> None:
    other = (50.0, 50.0, 60.0, 60.0, 0.9)
    other_shifted = (55.0, 50.0, 65.0, 60.0, 0.9)
    per_aug = [BOX, other_shifted]  # BOX consistent, the other at IoU 1/3
    assert sdk.cald_score([BOX, other], [per_aug] * 4) == pytest.approx(2 / 3)
    # one augmentation without predictions has consistency 0: (1 + 1 + 1 + 0) / 4 consistent
    assert sdk.cald_score([BOX], [[BOX], [BOX], [], [BOX]]) == pytest.approx(0.25)


def test_cald_score_sees_a_different_class_as_inconsistent() -> None:
    assert sdk.cald_score([(*BOX, 0)], [[(*BOX, 1)]] * 4) == pytest.approx(1.0)
    assert sdk.cald_score([(*BOX, 0)], [[(*BOX, 0)]] * 4) == pytest.approx(0.0)


def test_cald_score_refuses_bad_boxes() -> None:
    with pytest.raises(ValueError, match="4 to 6"):
        sdk.cald_score([(1.0, 2.0, 3.0)], [[BOX]])
    with pytest.raises(ValueError, match="within 0..1"):
        sdk.cald_score([(0.0, 0.0, 1.0, 1.0, 2.0)], [[BOX]])
    with pytest.raises(ValueError, match="at least one augmentation"):
        sdk.cald_score([BOX], [])


def test_box_iou() -> None:
    assert sdk.box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert sdk.box_iou((0, 0, 10, 10), (5, 5, 15, 15)) == pytest.approx(25 / 175)
    assert sdk.box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0


@pytest.mark.parametrize("kind", sdk.CALD_AUGMENTATIONS)
def test_unaugment_box_inverts_augment_box_and_keeps_extra_items(kind: str) -> None:
    box = (12.0, 30.0, 40.0, 52.0, 0.7, 2)
    moved = sdk.augment_box(kind, box, 128, 96)
    back = sdk.unaugment_box(kind, moved, 128, 96)
    assert back[4:] == (0.7, 2)
    assert back[:4] == pytest.approx(box[:4])


def test_augment_box_geometry() -> None:
    assert sdk.augment_box("flip", (0, 0, 10, 20), 100, 50) == (90.0, 0.0, 100.0, 20.0)
    assert sdk.augment_box("resize", (10, 20, 30, 40), 100, 50) == pytest.approx((8, 16, 24, 32))
    assert sdk.augment_box("cutout", (1, 2, 3, 4), 100, 50) == (1.0, 2.0, 3.0, 4.0)
    # a box right of the centre turns upwards (counter-clockwise on screen) and keeps its size
    x1, y1, x2, y2 = sdk.augment_box("rotate", (80, 45, 90, 55), 100, 100)
    assert (x2 - x1, y2 - y1) == pytest.approx((10, 10))
    angle = math.radians(sdk.CALD_ROTATE_DEGREES)
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((50 + 35 * math.cos(angle), 50 - 35 * math.sin(angle)))
    with pytest.raises(ValueError, match="unknown CALD augmentation"):
        sdk.augment_box("mosaic", (0, 0, 1, 1), 10, 10)


# -- class weights --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", [1.0, 1.0, 1.0]),
        (None, [1.0, 1.0, 1.0]),
        ("0.5, 2", [0.5, 2.0, 1.0]),  # padded with 1.0
        ("[1, 2, 3, 4]", [1.0, 2.0, 3.0]),  # cut to the classes
        ([0, 1, 2], [0.0, 1.0, 2.0]),
        (3, [3.0, 1.0, 1.0]),
    ],
)
def test_class_weights_from_config(value: object, expected: list[float]) -> None:
    assert sdk.class_weights_from_config(value, ["cat", "dog", "person"]) == expected


@pytest.mark.parametrize("value", ["a,b", "1,-2", "inf"])
def test_class_weights_from_config_refuses_non_numbers(value: str) -> None:
    with pytest.raises(sdk.ConfigValueError, match="class_distribution_scores"):
        sdk.class_weights_from_config(value, ["cat", "dog"])
