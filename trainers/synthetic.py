"""Seeded generator of fluorescence-like nuclei images with exact instance labels (the demo data).

Why hand-written: no library ships a nuclei simulator with instance ground truth, and nothing may
be downloaded at run time. What it models, so that the demo is not "flat disks":
- ellipses of varied size, elongation and orientation, with wobbly (non-convex-ish) outlines;
- clusters: a share of nuclei is placed next to a previous one, so they touch (labels stay exact:
  a later nucleus only takes pixels no earlier nucleus owns);
- per-nucleus brightness, chromatin texture (smoothed noise) and a brighter rim/darker nucleolus;
- optical blur, an illumination gradient and vignetting across the field;
- Poisson shot noise at a random photon budget plus Gaussian read noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def _nucleus_mask(h: int, w: int, cy: float, cx: float, ry: float, rx: float, theta: float,
                  rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(theta), np.sin(theta)
    u, v = c * dx + s * dy, -s * dx + c * dy
    angle = np.arctan2(v / ry, u / rx)
    # outline wobble: a few low-order harmonics of random phase
    wobble = 1.0 + sum(rng.uniform(0, 0.06) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    return (u / rx) ** 2 + (v / ry) ** 2 <= wobble ** 2


def synthetic_sample(seed: int, size: tuple[int, int] = (128, 128)) -> tuple[np.ndarray, np.ndarray]:
    """One image (float32, H x W, arbitrary intensity units) and its instance label map (int32)."""
    rng = np.random.default_rng(seed)
    h, w = size
    labels = np.zeros((h, w), dtype=np.int32)
    signal = np.zeros((h, w), dtype=np.float32)
    n_target = int(rng.integers(6, 16) * (h * w) / (128 * 128))
    base_r = rng.uniform(5.0, 9.0)  # image-level typical radius (magnification varies)
    centers: list[tuple[float, float, float]] = []
    label = 0
    for _ in range(n_target * 3):
        if label >= n_target:
            break
        r = base_r * rng.uniform(0.7, 1.35)
        elong = rng.uniform(1.0, 1.8)
        ry, rx = r / np.sqrt(elong), r * np.sqrt(elong)
        if centers and rng.random() < 0.4:  # cluster: touch a previous nucleus
            py, px, pr = centers[rng.integers(len(centers))]
            a = rng.uniform(0, 2 * np.pi)
            cy, cx = py + np.sin(a) * (pr + r) * 0.85, px + np.cos(a) * (pr + r) * 0.85
        else:
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        mask = _nucleus_mask(h, w, cy, cx, ry, rx, rng.uniform(0, np.pi), rng) & (labels == 0)
        if mask.sum() < 0.5 * np.pi * ry * rx * 0.5:  # mostly hidden or cut off: skip
            continue
        label += 1
        labels[mask] = label
        centers.append((cy, cx, r))
        brightness = rng.uniform(0.35, 1.0)
        texture = ndi.gaussian_filter(rng.normal(0, 1, (h, w)).astype(np.float32), 1.2)
        dist = ndi.distance_transform_edt(mask)
        rim = np.clip(1.0 - dist / max(dist.max(), 1.0), 0, 1)
        signal[mask] += brightness * (1.0 + 0.25 * texture[mask] + 0.25 * rim[mask])
    signal = np.clip(signal, 0, None)
    signal = ndi.gaussian_filter(signal, rng.uniform(0.6, 1.6))  # optics
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gy, gx = rng.normal(0, 1, 2)
    gradient = 1.0 + 0.25 * (gy * (yy / h - 0.5) + gx * (xx / w - 0.5))
    vignette = 1.0 - 0.2 * (((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2) / 0.5)
    background = rng.uniform(0.03, 0.12) * gradient
    photons = rng.uniform(60, 400)
    expected = np.clip((signal * gradient * vignette + background) * photons, 0, None)
    image = rng.poisson(expected).astype(np.float32) + rng.normal(0, rng.uniform(1.0, 4.0), (h, w)).astype(np.float32)
    return image.astype(np.float32), labels


def synthetic_dataset(n: int, seed: int = 0, size: tuple[int, int] = (128, 128)) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` samples; sample ``i`` depends only on (seed, i), so growing ``n`` keeps earlier ones."""
    return [synthetic_sample(seed * 100_003 + i, size) for i in range(n)]
