"""Segmentation quality: foreground Dice and IoU, and nuclei-level F1 / panoptic quality.

Dice, IoU and PQ come from MONAI (``DiceMetric``, ``MeanIoU``, ``PanopticQualityMetric``, which
matches instances at IoU 0.5). Splitting the predicted foreground into nuclei is ours: MONAI has
no watershed post-processing for a single foreground channel, so we use scikit-image's
distance-transform watershed, the usual baseline for touching nuclei.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import DiceMetric, MeanIoU, PanopticQualityMetric
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.measure import label as connected_components
from skimage.morphology import remove_small_objects
from skimage.segmentation import watershed


def instances_from_probability(prob: np.ndarray, threshold: float = 0.5, min_size: int = 8,
                               min_distance: int = 3) -> np.ndarray:
    """Instance label map from a foreground probability map (H, W): threshold + watershed."""
    fg = remove_small_objects(prob > threshold, max_size=min_size - 1) if min_size > 1 else prob > threshold
    if not fg.any():
        return np.zeros(prob.shape, dtype=np.int32)
    dist = ndi.distance_transform_edt(fg)
    smooth = ndi.gaussian_filter(dist, 1.0)
    peaks = peak_local_max(smooth, min_distance=min_distance, labels=connected_components(fg), exclude_border=False)
    markers = np.zeros(prob.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-smooth, markers, mask=fg).astype(np.int32)


class SegmentationScores:
    """Accumulates per-image scores; ``result()`` gives the means over the images seen."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.dice = DiceMetric(include_background=True, reduction="mean", ignore_empty=False)
        self.iou = MeanIoU(include_background=True, reduction="mean", ignore_empty=False)
        self.pq = PanopticQualityMetric(num_classes=1, metric_name="pq", reduction="mean_batch")
        self.counts = np.zeros(3)  # tp, fp, fn over all images

    def add(self, prob: torch.Tensor, label: torch.Tensor) -> None:
        """``prob``: (1, H, W) foreground probability; ``label``: (1, H, W) instance labels."""
        pred_fg = (prob > self.threshold).float()[None]
        true_fg = (label > 0).float()[None]
        self.dice(pred_fg, true_fg)
        self.iou(pred_fg, true_fg)
        pred_inst = instances_from_probability(prob[0].cpu().numpy(), self.threshold)
        true_inst = label[0].cpu().numpy().astype(np.int32)
        y_pred = torch.as_tensor(np.stack([pred_inst, (pred_inst > 0).astype(np.int32)]))[None]
        y = torch.as_tensor(np.stack([true_inst, (true_inst > 0).astype(np.int32)]))[None]
        self.pq(y_pred, y)
        tp, fp, fn, _ = PanopticQualityMetric(num_classes=1, return_confusion_matrix=True)(y_pred, y)[0, 0].tolist()
        self.counts += (tp, fp, fn)

    def result(self) -> dict[str, float]:
        tp, fp, fn = self.counts
        denom = 2 * tp + fp + fn
        return {
            "dice": float(self.dice.aggregate().item()),
            "iou": float(self.iou.aggregate().item()),
            "pq": float(self.pq.aggregate().mean().item()),
            "f1_inst": float(2 * tp / denom) if denom else 1.0,
        }
