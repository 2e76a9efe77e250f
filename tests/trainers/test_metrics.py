import numpy as np
import torch

from trainers.metrics import SegmentationScores, instances_from_probability
from trainers.train import time_label


def two_disks(h=64, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    lab = np.zeros((h, w), np.int32)
    lab[(yy - 20) ** 2 + (xx - 20) ** 2 <= 64] = 1
    lab[(yy - 44) ** 2 + (xx - 40) ** 2 <= 81] = 2
    return lab


def score(prob, lab):
    s = SegmentationScores()
    s.add(torch.as_tensor(prob, dtype=torch.float32)[None], torch.as_tensor(lab)[None])
    return s.result()


def test_perfect_and_empty_predictions():
    lab = two_disks()
    perfect = score((lab > 0).astype(np.float32), lab)
    assert perfect["dice"] == 1.0 and perfect["iou"] == 1.0 and perfect["f1_inst"] == 1.0
    assert perfect["pq"] > 0.99
    empty = score(np.zeros_like(lab, np.float32), lab)
    assert empty["dice"] == 0.0 and empty["f1_inst"] == 0.0


def test_half_the_nuclei_found():
    lab = two_disks()
    r = score((lab == 1).astype(np.float32), lab)
    assert r["f1_inst"] == 2 * 1 / (2 * 1 + 0 + 1)  # tp=1, fn=1
    fg = (lab > 0).sum()
    assert abs(r["dice"] - 2 * (lab == 1).sum() / ((lab == 1).sum() + fg)) < 1e-6


def test_watershed_splits_touching_nuclei():
    yy, xx = np.mgrid[0:40, 0:60]
    fg = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 100) | ((yy - 20) ** 2 + (xx - 38) ** 2 <= 100)
    assert instances_from_probability(fg.astype(np.float32)).max() == 2


def test_time_labels():
    assert [time_label(t) for t in (1, 3600, 86400, 30 * 86400, 365 * 86400, 2.5)] == ["1s", "1h", "1d", "30d", "1y", "2.5s"]
