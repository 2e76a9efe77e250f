import numpy as np
import torch

from trainers.heads import BINARY, PostProcess
from trainers.metrics import SegmentationScores, average_precision, instance_scores, iou_matrix
from trainers.train import time_label


def two_disks(h=64, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    lab = np.zeros((h, w), np.int32)
    lab[(yy - 20) ** 2 + (xx - 20) ** 2 <= 64] = 1
    lab[(yy - 44) ** 2 + (xx - 40) ** 2 <= 81] = 2
    return lab


def score(pred, lab):
    s = SegmentationScores()
    s.add(pred, torch.as_tensor(lab)[None])
    return s.result()


def test_perfect_and_empty_predictions():
    lab = two_disks()
    perfect = score(lab, lab)
    assert perfect["dice"] == 1.0 and perfect["iou"] == 1.0 and perfect["f1_inst"] == 1.0
    assert perfect["pq"] > 0.99 and perfect["ap50"] == 1.0 and perfect["map_dsb"] == 1.0
    empty = score(np.zeros_like(lab), lab)
    assert empty["dice"] == 0.0 and empty["f1_inst"] == 0.0 and empty["ap50"] == 0.0 and empty["map_dsb"] == 0.0
    both = average_precision(np.zeros((8, 8), np.int32), np.zeros((8, 8), np.int32))
    assert list(both) == [1.0] * 10  # nothing to find, nothing found


def test_half_the_nuclei_found():
    lab = two_disks()
    r = score(np.where(lab == 1, 1, 0), lab)
    assert r["f1_inst"] == 2 * 1 / (2 * 1 + 0 + 1)  # tp=1, fn=1
    assert r["ap50"] == 0.5 and r["map_dsb"] == 0.5  # tp / (tp + fp + fn) = 1/2 at every threshold
    fg = (lab > 0).sum()
    assert abs(r["dice"] - 2 * (lab == 1).sum() / ((lab == 1).sum() + fg)) < 1e-6


def rect(shape, y0, y1, x0, x1, value=1, into=None):
    out = np.zeros(shape, np.int32) if into is None else into
    out[y0:y1, x0:x1] = value
    return out


def test_one_nucleus_split_in_two():
    true = rect((30, 40), 5, 15, 5, 30)                                  # 10 x 25 = 250 px
    pred = rect((30, 40), 5, 15, 23, 30, 2, rect((30, 40), 5, 15, 5, 23))  # 180 px (IoU 0.72) + 70 px
    ap = average_precision(true, pred)
    # IoU 0.72 matches at 0.50 ... 0.70 (tp 1, fp 1, fn 0 -> 1/2), not from 0.75 on (0 / 3)
    assert list(ap) == [0.5] * 5 + [0.0] * 5
    assert instance_scores([true], [pred]) == {"ap50": 0.5, "map_dsb": 0.25}
    assert abs(score(pred, true)["f1_inst"] - 2 / 3) < 1e-9


def test_two_nuclei_merged_into_one():
    true = rect((30, 40), 5, 15, 21, 25, 2, rect((30, 40), 5, 15, 5, 21))  # 160 px + 40 px, touching
    pred = rect((30, 40), 5, 15, 5, 25)                                  # one 200 px object
    ap = average_precision(true, pred)
    # IoU 0.8 with the big one: tp 1, fp 0, fn 1 -> 1/2 up to 0.75; at 0.8 and above 0 / 3
    assert list(ap) == [0.5] * 6 + [0.0] * 4
    assert instance_scores([true], [pred])["map_dsb"] == 0.3


def test_a_shifted_nucleus_at_a_known_iou():
    true = rect((30, 30), 5, 15, 5, 15)
    pred = rect((30, 30), 5, 15, 7, 17)  # overlap 80, union 120: IoU 2/3
    assert abs(iou_matrix(true, pred)[0, 0] - 2 / 3) < 1e-12
    assert list(average_precision(true, pred)) == [1.0] * 4 + [0.0] * 6
    # scores are averaged over images (the Bowl's convention), not pooled
    assert instance_scores([true, true], [pred, true]) == {"ap50": 1.0, "map_dsb": 0.7}


def test_iou_matrix_against_brute_force():
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 5, (20, 20)), rng.integers(0, 4, (20, 20)) * 3  # labels with gaps
    m = iou_matrix(true, pred)
    for i, a in enumerate(range(1, 5)):
        for j, b in enumerate((3, 6, 9)):
            inter = ((true == a) & (pred == b)).sum()
            assert abs(m[i, j] - inter / ((true == a) | (pred == b)).sum()) < 1e-12


def test_watershed_splits_touching_nuclei():
    yy, xx = np.mgrid[0:40, 0:60]
    fg = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 100) | ((yy - 20) ** 2 + (xx - 38) ** 2 <= 100)
    assert BINARY.instances(fg.astype(np.float32)[None], PostProcess()).max() == 2


def test_time_labels():
    assert [time_label(t) for t in (1, 3600, 86400, 30 * 86400, 365 * 86400, 2.5)] == ["1s", "1h", "1d", "30d", "1y", "2.5s"]


def test_average_precision_agrees_with_stardist():
    """stardist.matching (StarDist's own metric code) on label maps like real predictions: the
    synthetic nuclei against eroded, dilated, shifted, merged and split versions of themselves.
    StarDist counts a match at IoU >= t, the Bowl (and we) at IoU > t: pixel-count IoUs that tie
    a threshold exactly (an eroded nucleus of exactly half its area) are compared at t + 1e-7
    (StarDist's IoUs are float32, whose step near 0.5 is 6e-8; no other ratio of these nuclei's
    pixel counts is that close to a threshold)."""
    from scipy import ndimage as ndi
    from skimage.segmentation import expand_labels
    from stardist.matching import matching

    from trainers.synthetic import synthetic_sample

    for seed in range(4):
        _, true = synthetic_sample(seed)
        rng = np.random.default_rng(seed)
        shifted = np.roll(true, (int(rng.integers(1, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
        eroded = np.where(ndi.binary_erosion(true > 0, iterations=2), true, 0)
        merged = np.where(true % 3 == 2, true - 1, true)         # every third nucleus merged into the previous one
        split = np.where((true > 0) & (np.arange(true.shape[1]) % 17 == 0), 0, true)
        split = ndi.label(split > 0)[0]                          # foreground cut by lines: split nuclei
        for pred in (shifted, eroded, expand_labels(true, 2), merged, split):
            ours = average_precision(true, pred)
            for t, value in zip((0.5, 0.7, 0.9), ours[[0, 4, 8]], strict=True):
                assert abs(matching(true, pred, thresh=t + 1e-7).accuracy - value) < 1e-12, (seed, t)


def test_instances_are_matched_once_per_image(monkeypatch):
    """Panoptic quality and instance F1 come from one matching of each image (it was run twice)."""
    import monai.metrics.panoptic_quality as pq_module

    calls = []
    original = pq_module.compute_panoptic_quality
    monkeypatch.setattr(pq_module, "compute_panoptic_quality", lambda *a, **k: calls.append(1) or original(*a, **k))
    lab = two_disks()
    r = score(np.where(lab == 1, 1, 0), lab)
    assert len(calls) == 1
    # one of two disks found exactly: tp 1, fn 1, IoU 1 -> PQ = 1 / (1 + 0.5) and F1 = 2/3
    assert abs(r["pq"] - 1 / 1.5) < 1e-5 and abs(r["f1_inst"] - 2 / 3) < 1e-9
