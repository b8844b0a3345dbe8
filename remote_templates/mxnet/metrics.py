"""mAP at IoU 0.5, pure Python: per class, predictions sorted by score are matched greedily to
unmatched ground truth; AP is the area under the precision envelope (PASCAL VOC 2010+ "all points");
mAP is the mean over classes that have ground truth."""
from __future__ import annotations

from collections.abc import Sequence

Box = Sequence[float]


def _iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def average_precision(recalls: list[float], precisions: list[float]) -> float:
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
    """(mAP, AP per class or None for a class without ground truth).

    ``predictions[i]`` are image i's ``(x1, y1, x2, y2, score, class)``, ``ground_truth[i]`` its
    ``(class, x1, y1, x2, y2)``.
    """
    per_class: list[float | None] = []
    for cls in range(num_classes):
        truth = {i: [g[1:5] for g in gts if int(g[0]) == cls] for i, gts in enumerate(ground_truth)}
        total = sum(len(v) for v in truth.values())
        if total == 0:
            per_class.append(None)
            continue
        used = {i: [False] * len(v) for i, v in truth.items()}
        scored = sorted(((p[4], i, p[:4]) for i, preds in enumerate(predictions) for p in preds if int(p[5]) == cls),
                        key=lambda t: -t[0])
        tp = fp = 0
        recalls, precisions = [], []
        for _, i, box in scored:
            best, best_j = 0.0, -1
            for j, gt in enumerate(truth[i]):
                iou = _iou(box, gt)
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
