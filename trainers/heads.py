"""What the network's output means, and how it becomes nuclei (instances).

Three heads, chosen by ``train.head`` (compared in ``benchmarks/bench_heads.py``):

- ``binary``: one logit per pixel, foreground. Nuclei are split by a watershed on the distance
  transform of the thresholded foreground, seeded at its peaks (``seed`` = minimum peak distance
  in pixels). Touching nuclei with no neck between them merge.
- ``contour``: three classes per pixel, background / nucleus interior / nucleus boundary (the
  family of the 2018 Data Science Bowl's winning entries). Seeds are the connected interior
  regions (interior probability > ``seed``); they grow by watershed over the foreground
  (1 - background probability > ``threshold``). The boundary class is what separates touching
  nuclei, so it is learnt, not guessed from the shape. The targets are derived from the instance
  labels on the fly (a pixel is boundary when a 3x3 neighbour has another label).
- ``distance``: two maps, foreground and each nucleus's distance to its own border, normalised to
  1 at its centre (close to StarDist's idea, without polygons). Seeds are the connected regions
  where the predicted distance exceeds ``seed``; touching nuclei are apart there, because the
  distance falls to 0 where they meet. Smooth targets suit a network whose finest features are
  coarser than a one-pixel boundary.

Both are one 1x1 convolution at the end of the decoder (analog like the rest), 1 or 3 output
channels; the cost model counts them (``out_channels``). The post-processing parameters are tuned
on the validation split after training (:func:`tune`), stored with the model and used by
``nasseg predict``. Why hand-written: MONAI offers the losses and metrics but no instance
post-processing for these outputs (its HoVerNet post-processing needs HoVerNet's three branches).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.measure import label as connected_components
from skimage.morphology import remove_small_objects
from skimage.segmentation import relabel_sequential, watershed

from trainers.settings import HEAD_CHANNELS, head_channels


@dataclass(frozen=True)
class PostProcess:
    """Turning probability maps into nuclei. ``threshold``: foreground probability; ``seed``:
    binary head, minimum distance between watershed seeds (pixels); contour head, interior
    probability a seed needs; ``min_size``: smaller objects are dropped (pixels)."""

    threshold: float = 0.5
    seed: float = 3.0
    min_size: int = 8

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PostProcess:
        return cls(float(data["threshold"]), float(data["seed"]), int(data["min_size"]))


def _foreground(fg_prob: np.ndarray, pp: PostProcess) -> np.ndarray:
    fg = fg_prob > pp.threshold
    return remove_small_objects(fg, max_size=pp.min_size - 1) if pp.min_size > 1 else fg


def _distance_watershed(fg: np.ndarray, min_distance: int) -> np.ndarray:
    dist = ndi.gaussian_filter(ndi.distance_transform_edt(fg), 1.0)
    peaks = peak_local_max(dist, min_distance=max(1, int(min_distance)), labels=connected_components(fg),
                           exclude_border=False)
    markers = np.zeros(fg.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-dist, markers, mask=fg).astype(np.int32)


@dataclass(frozen=True)
class Head:
    name: str
    channels: int                   # output channels of the network
    grid: tuple[PostProcess, ...]   # the post-processing candidates tuned on validation

    # -- training ---------------------------------------------------------------------------
    def target(self, label: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) instance labels -> the loss target: binary (B, 1, H, W) foreground;
        contour (B, 1, H, W) class indices 0 background, 1 interior, 2 boundary; distance
        (B, 2, H, W) foreground and normalised distance to the nucleus's own border."""
        fg = label > 0
        if self.name == "binary":
            return fg.float()
        if self.name == "distance":
            dist = torch.as_tensor(np.stack([normalised_distance(x[0]) for x in label.cpu().numpy()]))[:, None]
            return torch.cat([fg.float(), dist.to(label.device)], dim=1)
        lab = label.float()
        # a foreground pixel is boundary when a 3x3 neighbour has another label (background included)
        hi, lo = F.max_pool2d(lab, 3, stride=1, padding=1), -F.max_pool2d(-lab, 3, stride=1, padding=1)
        boundary = fg & ((hi != lab) | (lo != lab))
        return (fg.long() + boundary.long()).float()

    def loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if self.name == "binary":
            return DiceCELoss(sigmoid=True)
        if self.name == "distance":
            return _ForegroundAndDistanceLoss()
        return DiceCELoss(softmax=True, to_onehot_y=True)

    # -- inference --------------------------------------------------------------------------
    def maps(self, logits: torch.Tensor) -> torch.Tensor:
        """(C, H, W) logits of one image -> (K, H, W) maps: channel 0 is always the foreground
        probability; the contour head adds the interior probability, the distance head the
        predicted normalised distance."""
        if self.name in ("binary", "distance"):
            return torch.sigmoid(logits)
        p = torch.softmax(logits, dim=0)
        return torch.stack([1.0 - p[0], p[1]])

    def instances(self, maps: np.ndarray, pp: PostProcess) -> np.ndarray:
        """Instance label map (int32, H x W) from :meth:`maps` (as numpy)."""
        fg = _foreground(maps[0], pp)
        if not fg.any():
            return np.zeros(fg.shape, dtype=np.int32)
        if self.name == "binary":
            return _distance_watershed(fg, int(pp.seed))
        seed_mask = (maps[1] > pp.seed) & fg
        if pp.min_size > 2:  # specks of interior are not nuclei
            seed_mask = remove_small_objects(seed_mask, max_size=pp.min_size // 2 - 1)
        seeds = connected_components(seed_mask)
        # foreground that no seed reaches (a nucleus whose interior is below the seed level) keeps
        # its own component rather than vanishing
        orphan = connected_components(fg & ~ndi.binary_dilation(seeds > 0, iterations=0, mask=fg))
        markers = seeds.astype(np.int32)
        grown = watershed(-maps[1], markers, mask=fg) if markers.any() else np.zeros(fg.shape, np.int32)
        rest = (grown == 0) & (orphan > 0)
        grown[rest] = orphan[rest] + grown.max()
        return relabel_sequential(grown)[0].astype(np.int32)


class _ForegroundAndDistanceLoss(torch.nn.Module):
    """Dice + BCE on the foreground logit, mean squared error of the sigmoid distance map."""

    def __init__(self) -> None:
        super().__init__()
        self.fg = DiceCELoss(sigmoid=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fg(logits[:, :1], target[:, :1]) + 5.0 * F.mse_loss(torch.sigmoid(logits[:, 1:]), target[:, 1:])


def normalised_distance(labels: np.ndarray) -> np.ndarray:
    """Each nucleus's Euclidean distance to its own border (touching nuclei count as border),
    divided by its maximum: 1 at the centre of every nucleus, whatever its size (float32)."""
    labels = labels.astype(np.int32)
    out = np.zeros(labels.shape, np.float32)
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        own = labels[box] == i
        dist = ndi.distance_transform_edt(own)
        out[box][own] = dist[own] / dist.max()
    return out


_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
BINARY = Head("binary", HEAD_CHANNELS["binary"], tuple(PostProcess(t, d) for t, d in itertools.product(_THRESHOLDS, (1, 2, 3, 5, 7))))
# a short training leaves the interior of touching nuclei joined at middling probabilities: the
# seeds that separate them are the most confident pixels (measured: 0.95 beat 0.7 by 0.14 mAP)
CONTOUR = Head("contour", HEAD_CHANNELS["contour"], tuple(PostProcess(t, s) for t, s in
                                   itertools.product(_THRESHOLDS, (0.5, 0.7, 0.8, 0.9, 0.95, 0.98))))
DISTANCE = Head("distance", HEAD_CHANNELS["distance"], tuple(PostProcess(t, s) for t, s in
                                     itertools.product(_THRESHOLDS, (0.2, 0.3, 0.4, 0.5, 0.6, 0.7))))


_BY_NAME = {h.name: h for h in (BINARY, CONTOUR, DISTANCE)}
HEADS = tuple(_BY_NAME)


def head(name: str) -> Head:
    head_channels(name)  # ValueError naming train.head and the choices
    return _BY_NAME[name]


def tune(hd: Head, maps: Sequence[np.ndarray], labels: Sequence[np.ndarray],
         score: Callable[[Sequence[np.ndarray], Sequence[np.ndarray]], float]) -> tuple[PostProcess, float]:
    """The post-processing of ``hd.grid`` with the best ``score(pred_labels, true_labels)`` on the
    validation images (ties: the first in grid order). Returns it and its score."""
    best: tuple[PostProcess, float] | None = None
    for pp in hd.grid:
        value = score([hd.instances(m, pp) for m in maps], labels)
        if best is None or value > best[1]:
            best = (pp, value)
    assert best is not None
    return best
