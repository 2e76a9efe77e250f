"""Output heads: their targets from instance labels, their instances, post-processing tuning."""
import numpy as np
import torch

from trainers.heads import BINARY, CONTOUR, PostProcess, tune
from trainers.metrics import instance_scores


def touching_squares():
    lab = np.zeros((1, 1, 12, 20), np.int64)
    lab[0, 0, 2:8, 2:8] = 1    # 6 x 6
    lab[0, 0, 2:8, 8:14] = 2   # 6 x 6, touching the first along a column
    return torch.as_tensor(lab)


def test_contour_target_marks_where_nuclei_meet_as_boundary():
    target = CONTOUR.target(touching_squares())[0, 0].long().numpy()
    assert target.shape == (12, 20) and (target[:, 14:] == 0).all() and (target[:2] == 0).all()
    # the outer ring of each square and the two columns where they meet are boundary (2)
    assert (target[2:8, 7] == 2).all() and (target[2:8, 8] == 2).all()
    assert (target[3:7, 3:7] == 1).all() and (target[3:7, 9:13] == 1).all()  # interiors: 4 x 4 each
    assert (target == 1).sum() == 2 * 16 and (target == 2).sum() == 2 * (36 - 16)
    assert BINARY.target(touching_squares()).sum() == 72


def test_contour_instances_split_a_clump_at_its_boundary():
    labels = touching_squares()[0, 0].numpy()
    fg = (labels > 0).astype(np.float32)
    interior = (CONTOUR.target(touching_squares())[0, 0] == 1).float().numpy()
    maps = np.stack([fg, interior])
    pred = CONTOUR.instances(maps, PostProcess(0.5, 0.5, min_size=4))
    assert pred.max() == 2 and instance_scores([labels], [pred]) == {"ap50": 1.0, "map_dsb": 1.0}
    # a separate nucleus whose interior never passes the seed level is still found (its own
    # component); one touching a seeded nucleus is flooded from that seed (the watershed's limit)
    apart = np.zeros_like(maps)
    apart[:, 2:8, 2:8] = maps[:, 2:8, 2:8]     # the first square, as before
    apart[0, 2:8, 12:18] = 1.0                 # a second one 4 pixels away, interior at 0.2 only
    apart[1, 2:8, 12:18] = 0.2
    pred = CONTOUR.instances(apart, PostProcess(0.5, 0.5, min_size=4))
    assert pred.max() == 2 and (pred[2:8, 12:18] > 0).all() and len(np.unique(pred[2:8, 12:18])) == 1


def test_tuning_picks_the_post_processing_that_scores_best():
    yy, xx = np.mgrid[0:40, 0:60]
    labels = np.zeros((40, 60), np.int32)
    labels[(yy - 20) ** 2 + (xx - 18) ** 2 <= 81] = 1
    labels[(yy - 20) ** 2 + (xx - 40) ** 2 <= 81] = 2
    prob = np.where(labels > 0, 0.35, 0.05).astype(np.float32)[None]  # an under-confident network
    pp, best = tune(BINARY, [prob], [labels], lambda p, t: instance_scores(t, p)["map_dsb"])
    assert pp.threshold == 0.3 and best == 1.0
    assert BINARY.instances(prob, PostProcess()).max() == 0  # the untuned threshold finds nothing


def test_distance_target_is_one_at_each_centre_and_low_where_nuclei_meet():
    from trainers.heads import DISTANCE, normalised_distance

    target = DISTANCE.target(touching_squares())[0].numpy()
    fg, dist = target
    assert fg.sum() == 72 and dist.max() == 1.0
    # each 6 x 6 square peaks (1.0) in its own middle; the columns where they meet are borders
    assert dist[4:6, 4:6].max() == 1.0 and dist[4:6, 10:12].max() == 1.0
    assert dist[2:8, 7].max() < 0.5 and dist[2:8, 8].max() < 0.5 and (dist[fg == 0] == 0).all()
    # normalised per nucleus: a small and a large one both reach 1
    lab = np.zeros((40, 40), np.int32)
    lab[2:6, 2:6], lab[10:30, 10:30] = 1, 2
    d = normalised_distance(lab)
    assert d[lab == 1].max() == 1.0 and d[lab == 2].max() == 1.0


def test_distance_instances_separate_touching_nuclei_by_their_cores():
    from trainers.heads import DISTANCE

    target = DISTANCE.target(touching_squares())[0].numpy()  # a perfect prediction
    pred = DISTANCE.instances(target, PostProcess(0.5, 0.5, min_size=4))
    labels = touching_squares()[0, 0].numpy()
    assert pred.max() == 2 and instance_scores([labels], [pred]) == {"ap50": 1.0, "map_dsb": 1.0}
