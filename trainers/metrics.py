"""Segmentation quality: foreground Dice and IoU, and nuclei-level scores.

Dice, IoU and PQ come from MONAI (``DiceMetric``, ``MeanIoU``, ``PanopticQualityMetric``, which
matches instances at IoU 0.5; ``f1_inst`` is 2TP / (2TP + FP + FN) from its counts, pooled over
images). The instance-matching scores people compare nuclei tools on are ours, because MONAI has
none of them: ``ap50``, TP / (TP + FP + FN) at IoU > 0.5 (StarDist's "accuracy"), and
``map_dsb``, its mean over IoU thresholds 0.5, 0.55, ..., 0.95 (the 2018 Data Science Bowl
score); both per image, then averaged over images, as the Bowl did. A match needs IoU *above*
the threshold (the Bowl's rule; StarDist counts IoU equal to it too: the two differ only on exact
ties, and agree otherwise, tests/trainers/test_metrics.py). For thresholds >= 0.5 a true
nucleus can overlap at most one predicted nucleus by more than the threshold, so counting pairs
above it is the optimal matching. How instances are made from the network's output is the head's
business (``trainers.heads``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import DiceMetric, MeanIoU, PanopticQualityMetric

DSB_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))


def iou_matrix(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every true nucleus (rows, labels 1..) with every predicted one (columns), from one
    contingency table of the two label maps (labels need not be consecutive)."""
    t_ids, t = np.unique(true, return_inverse=True)
    p_ids, p = np.unique(pred, return_inverse=True)
    counts = np.bincount(t.ravel() * len(p_ids) + p.ravel(), minlength=len(t_ids) * len(p_ids))
    overlap = counts.reshape(len(t_ids), len(p_ids)).astype(float)
    area_t, area_p = overlap.sum(1, keepdims=True), overlap.sum(0, keepdims=True)
    iou = overlap / np.maximum(area_t + area_p - overlap, 1.0)
    return iou[t_ids != 0][:, p_ids != 0]


def average_precision(true: np.ndarray, pred: np.ndarray, thresholds=DSB_THRESHOLDS) -> np.ndarray:
    """TP / (TP + FP + FN) of one image at each IoU threshold (a match needs IoU > threshold).
    An image with no nucleus in either map scores 1."""
    iou = iou_matrix(true, pred)
    n_true, n_pred = iou.shape
    out = []
    for t in thresholds:
        tp = int((iou > t).sum())  # >= 0.5: at most one match per row and column
        denom = n_true + n_pred - tp
        out.append(tp / denom if denom else 1.0)
    return np.asarray(out)


def instance_scores(true: Sequence[np.ndarray], pred: Sequence[np.ndarray]) -> dict[str, float]:
    """``ap50`` and ``map_dsb``, each the mean over images."""
    ap = np.array([average_precision(t, p) for t, p in zip(true, pred, strict=True)])
    return {"ap50": float(ap[:, 0].mean()), "map_dsb": float(ap.mean())}


class SegmentationScores:
    """Accumulates per-image scores; ``result()`` gives the means over the images seen."""

    def __init__(self) -> None:
        self.dice = DiceMetric(include_background=True, reduction="mean", ignore_empty=False)
        self.iou = MeanIoU(include_background=True, reduction="mean", ignore_empty=False)
        # one matching per image gives [tp, fp, fn, iou_sum]; summed over the images they make both
        # the panoptic quality and the instance F1 (MONAI's PQ formula, pooled over images)
        self.matches = PanopticQualityMetric(num_classes=1, reduction="sum_batch", return_confusion_matrix=True)
        self.ap: list[np.ndarray] = []

    def add(self, pred_inst: np.ndarray, label: torch.Tensor | np.ndarray) -> None:
        """``pred_inst``: (H, W) predicted instance labels; ``label``: (1, H, W) true instance labels.
        Dice and IoU are of the foreground (instances > 0) against ``label > 0``."""
        true_inst = np.asarray(label[0].cpu() if isinstance(label, torch.Tensor) else label[0]).astype(np.int32)
        pred_fg = torch.as_tensor(pred_inst > 0).float()[None, None]
        true_fg = torch.as_tensor(true_inst > 0).float()[None, None]
        self.dice(pred_fg, true_fg)
        self.iou(pred_fg, true_fg)
        self.ap.append(average_precision(true_inst, pred_inst))
        y_pred = torch.as_tensor(np.stack([pred_inst, (pred_inst > 0).astype(np.int32)]))[None]
        y = torch.as_tensor(np.stack([true_inst, (true_inst > 0).astype(np.int32)]))[None]
        self.matches(y_pred, y)

    def result(self) -> dict[str, float]:
        tp, fp, fn, iou_sum = self.matches.aggregate().reshape(-1).tolist()
        denom = 2 * tp + fp + fn
        return {
            "dice": float(self.dice.aggregate().item()),
            "iou": float(self.iou.aggregate().item()),
            "pq": iou_sum / (tp + 0.5 * fp + 0.5 * fn + 1e-6),
            "f1_inst": float(2 * tp / denom) if denom else 1.0,
            "ap50": float(np.mean([a[0] for a in self.ap])),
            "map_dsb": float(np.mean(self.ap)),
        }
