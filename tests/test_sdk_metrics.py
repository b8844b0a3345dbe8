"""sdk.mean_average_precision: VOC "all points" AP with greedy matching, checked on cases small
enough to work out by hand."""

from __future__ import annotations

import pytest

from live_code import sdk

CAT, DOG = 0, 1


def test_perfect_predictions_score_one() -> None:
    truth = [[(CAT, 0, 0, 10, 10)], [(DOG, 5, 5, 20, 20)]]
    preds = [[(0, 0, 10, 10, 0.9, CAT)], [(5, 5, 20, 20, 0.8, DOG)]]
    assert sdk.mean_average_precision(preds, truth, 2) == (1.0, [1.0, 1.0])


def test_ap_is_the_area_under_the_precision_envelope() -> None:
    # ranked: hit (r .5, p 1), miss (r .5, p .5), hit (r 1, p 2/3): 0.5 * 1 + 0.5 * 2/3
    truth = [[(CAT, 0, 0, 10, 10), (CAT, 50, 50, 60, 60)]]
    preds = [[(0, 0, 10, 10, 0.9, CAT), (100, 100, 110, 110, 0.8, CAT), (50, 50, 60, 60, 0.7, CAT)]]
    mean, per_class = sdk.mean_average_precision(preds, truth, 1)
    assert mean == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert sdk.average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(mean)


def test_a_second_detection_of_the_same_box_is_a_false_positive() -> None:
    truth = [[(CAT, 0, 0, 10, 10)]]
    once = sdk.mean_average_precision([[(0, 0, 10, 10, 0.9, CAT)]], truth, 1)[0]
    twice = sdk.mean_average_precision([[(0, 0, 10, 10, 0.7, CAT), (0, 0, 10, 10, 0.9, CAT)]], truth, 1)[0]
    assert once == twice == 1.0  # the duplicate ranks after the hit: recall is already 1
    truth2 = [[(CAT, 0, 0, 10, 10), (CAT, 50, 50, 60, 60)]]
    dup_first = [[(0, 0, 10, 10, 0.9, CAT), (0, 0, 10, 10, 0.8, CAT), (50, 50, 60, 60, 0.7, CAT)]]
    # the duplicate ranks before the second hit: a false positive there costs precision
    assert sdk.mean_average_precision(dup_first, truth2, 1)[0] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_overlap_below_the_threshold_is_a_miss_and_the_threshold_is_a_parameter() -> None:
    truth = [[(CAT, 0, 0, 10, 10)]]
    preds = [[(0, 0, 10, 4, 0.9, CAT)]]  # IoU 0.4
    assert sdk.mean_average_precision(preds, truth, 1)[0] == 0.0
    assert sdk.mean_average_precision(preds, truth, 1, iou_thres=0.3)[0] == 1.0


def test_a_class_without_ground_truth_is_none_and_left_out_of_the_mean() -> None:
    truth = [[(CAT, 0, 0, 10, 10)]]
    preds = [[(0, 0, 10, 10, 0.9, CAT), (30, 30, 40, 40, 0.95, DOG)]]
    assert sdk.mean_average_precision(preds, truth, 2) == (1.0, [1.0, None])
    assert sdk.mean_average_precision([[]], [[]], 2) == (0.0, [None, None])


def test_predictions_and_ground_truth_must_cover_the_same_images() -> None:
    with pytest.raises(ValueError, match="2 images of predictions for 1"):
        sdk.mean_average_precision([[], []], [[]], 1)
