"""Detection mAP in pure Python, for jobs whose framework has no evaluator of its own.

Per class, predictions sorted by score are matched greedily to the unmatched ground-truth box of
highest IoU; a match at or above the threshold is a true positive. AP is the area under the
precision envelope at every recall point (the PASCAL VOC 2010+ "all points" rule, as in the VOC
devkit's ``VOCap``); mAP is the mean over the classes that have ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

from live_code.sdk._mining import box_iou


def average_precision(recalls: Sequence[float], precisions: Sequence[float]) -> float:
    """The area under the precision envelope of a ranked list (``recalls`` non-decreasing)."""
    r = [0.0, *recalls, 1.0]
    p = [0.0, *precisions, 0.0]
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    return sum((r[i + 1] - r[i]) * p[i + 1] for i in range(len(r) - 1))


def mean_average_precision(
    predictions: Sequence[Sequence[Sequence[float]]],
    ground_truth: Sequence[Sequence[Sequence[float]]],
    num_classes: int,
    iou_thres: float = 0.5,
) -> tuple[float, list[float | None]]:
    """``(mAP, AP per class or None for a class without ground truth)``.

    ``predictions[i]`` are image i's ``(x1, y1, x2, y2, score, class)``, ``ground_truth[i]`` its
    ``(class, x1, y1, x2, y2)``; both lists have one entry per image, in the same order.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} images of predictions for {len(ground_truth)} of ground truth")
    per_class: list[float | None] = []
    for cls in range(num_classes):
        truth = {i: [g[1:5] for g in gts if int(g[0]) == cls] for i, gts in enumerate(ground_truth)}
        total = sum(len(v) for v in truth.values())
        if total == 0:
            per_class.append(None)
            continue
        used = {i: [False] * len(v) for i, v in truth.items()}
        scored = sorted(
            ((p[4], i, p[:4]) for i, preds in enumerate(predictions) for p in preds if int(p[5]) == cls),
            key=lambda t: -t[0],
        )
        tp = fp = 0
        recalls, precisions = [], []
        for _, i, box in scored:
            best, best_j = 0.0, -1
            for j, gt in enumerate(truth[i]):
                iou = box_iou(box, gt)
                if iou > best:
                    best, best_j = iou, j
            if best >= iou_thres and not used[i][best_j]:
                used[i][best_j] = True
                tp += 1
            else:
                fp += 1
            recalls.append(tp / total)
            precisions.append(tp / (tp + fp))
        per_class.append(average_precision(recalls, precisions))
    known = [ap for ap in per_class if ap is not None]
    return (sum(known) / len(known) if known else 0.0), per_class
