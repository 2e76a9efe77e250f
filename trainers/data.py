"""Nuclei datasets behind one data spec string, checked before any training starts.

- ``dsb2018:PATH``: 2018 Data Science Bowl ``stage1_train`` layout, ``<id>/images/<id>.png`` and
  ``<id>/masks/*.png`` (one binary mask per nucleus).
- ``folder:PATH``: ``images/`` and ``masks/`` (or ``labels/``) matched by file stem, PNG or TIFF;
  masks hold instance labels or are binary (then split into connected components).
- ``synthetic[:N]``: the built-in generator (``trainers.synthetic``), N fluorescence images
  (default 24) with real contrast statistics (dim nuclei); ``synthetic-bright[:N]``: the same
  fields with the bright nuclei the generator made before (about 9x their background);
  ``synthetic-brightfield[:N]``: its H&E-like brightfield variant.

Every sample becomes a :class:`Sample`: a float32 image ``(C, H, W)`` and an int32 instance label
map ``(H, W)``. Bad input raises :class:`DataError` naming the file and the problem.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .synthetic import synthetic_dataset

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
DEFAULT_SYNTHETIC_N = 24
#: data spec kind -> the generator's modality
SYNTHETIC_MODALITY = {"synthetic": "fluorescence", "synthetic-bright": "fluorescence-bright",
                      "synthetic-brightfield": "brightfield"}


class DataError(ValueError):
    """The data cannot be used; the message names the file or folder and the problem."""


@dataclass
class Sample:
    name: str
    image: np.ndarray  # float32 (C, H, W)
    label: np.ndarray  # int32 (H, W), 0 = background, 1..n = nuclei


def parse_data_spec(spec: str) -> tuple[str, str | int]:
    """``"dsb2018:/p"`` -> ("dsb2018", "/p"); ``"synthetic:12"`` -> ("synthetic", 12)."""
    m = re.fullmatch(r"(dsb2018|folder):(.+)", spec)
    if m:
        return m.group(1), m.group(2)
    m = re.fullmatch(r"(synthetic|synthetic-bright|synthetic-brightfield)(?::(\d+))?", spec)
    if m:
        n = int(m.group(2)) if m.group(2) else DEFAULT_SYNTHETIC_N
        if n < 2:
            raise DataError(f"{spec}: synthetic data needs at least 2 images (train and validation)")
        return m.group(1), n
    raise DataError(f"data spec {spec!r}: expected 'dsb2018:PATH', 'folder:PATH', 'synthetic[:N]', "
                    f"'synthetic-bright[:N]' or 'synthetic-brightfield[:N]'")


def check_data_spec(spec: str) -> None:
    """Cheap check (no image decoding) that the spec parses and its folder exists and is not empty."""
    kind, arg = parse_data_spec(spec)
    if not kind.startswith("synthetic"):
        root = Path(str(arg))
        if not root.is_dir():
            raise DataError(f"{root}: data folder does not exist")
        if not any(root.iterdir()):
            raise DataError(f"{root}: data folder is empty")


def load_samples(spec: str, channels: int = 1, seed: int = 0) -> list[Sample]:
    """All samples of a data spec, validated. ``channels``: 1 (grayscale) or 3 (RGB)."""
    if channels not in (1, 3):
        raise DataError(f"channels: must be 1 or 3, got {channels}")
    kind, arg = parse_data_spec(spec)
    if kind.startswith("synthetic"):
        modality = SYNTHETIC_MODALITY[kind]
        samples = [Sample(f"{kind}_{i:04d}", to_channels(img, channels), lab)
                   for i, (img, lab) in enumerate(synthetic_dataset(int(arg), seed=seed, modality=modality))]
    elif kind == "dsb2018":
        samples = _load_dsb2018(Path(str(arg)), channels)
    else:
        samples = _load_folder(Path(str(arg)), channels)
    if len(samples) < 2:
        raise DataError(f"{spec}: found {len(samples)} sample(s); need at least 2 (train and validation)")
    if all(not s.label.any() for s in samples):
        raise DataError(f"{spec}: every mask is empty (no nuclei in any of the {len(samples)} samples); "
                        f"nothing to learn or score")
    return samples


def read_image(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            from skimage.io import imread

            arr = imread(path)
    except Exception as exc:  # decoders raise many types; all mean "unreadable"
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise DataError(f"{path}: unreadable image ({type(exc).__name__}: {first})") from None
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"{path}: expected a 2-D image (optionally with channels), got shape {arr.shape}")
    return arr


def to_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, C) with C in 1..4 -> float32 (channels, H, W); alpha is dropped."""
    arr = arr.astype(np.float32)
    if arr.ndim == 3:
        if arr.shape[-1] == 4:
            arr = arr[..., :3]
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    if arr.ndim == 2:
        return np.repeat(arr[None], channels, axis=0)
    if channels == 1:
        return (arr @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[None]
    return np.moveaxis(arr, -1, 0)


def _as_instances(mask: np.ndarray, path: Path) -> np.ndarray:
    """Instance labels from a mask file: kept if it already holds several labels, else components."""
    from skimage.measure import label as connected_components

    if mask.ndim == 3:
        mask = mask[..., 0]
    values = np.unique(mask)
    if values.size <= 2:  # binary mask (any two values): connected components are the nuclei
        return connected_components(mask > values.min() if values.size == 2 else mask > 0).astype(np.int32)
    if not np.issubdtype(mask.dtype, np.integer):
        raise DataError(f"{path}: mask has {values.size} non-integer values; expected binary or instance labels")
    return mask.astype(np.int32)


def _load_dsb2018(root: Path, channels: int) -> list[Sample]:
    if not root.is_dir():
        raise DataError(f"{root}: data folder does not exist")
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not dirs:
        raise DataError(f"{root}: no sample folders (expected <id>/images/<id>.png and <id>/masks/*.png)")
    samples = []
    for d in dirs:
        images = sorted((d / "images").glob("*.png")) if (d / "images").is_dir() else []
        if not images:
            raise DataError(f"{d}: no image in {d / 'images'}")
        image = read_image(images[0])
        masks = sorted((d / "masks").glob("*.png")) if (d / "masks").is_dir() else []
        if not masks:
            raise DataError(f"{d}: sample without masks (expected {d / 'masks'}/*.png)")
        label = np.zeros(image.shape[:2], dtype=np.int32)
        for i, mpath in enumerate(masks, start=1):
            m = read_image(mpath)
            if m.ndim == 3:
                m = m[..., 0]
            if m.shape != image.shape[:2]:
                raise DataError(f"{mpath}: mask size {m.shape} does not match image size {image.shape[:2]}")
            label[(m > 0) & (label == 0)] = i
        samples.append(Sample(d.name, to_channels(image, channels), label))
    return samples


def _load_folder(root: Path, channels: int) -> list[Sample]:
    if not root.is_dir():
        raise DataError(f"{root}: data folder does not exist")
    img_dir = root / "images"
    mask_dir = next((root / n for n in ("masks", "labels") if (root / n).is_dir()), None)
    if not img_dir.is_dir() or mask_dir is None:
        raise DataError(f"{root}: expected subfolders images/ and masks/ (or labels/)")
    images = {p.stem: p for p in sorted(img_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {p.stem: p for p in sorted(mask_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    if not images:
        raise DataError(f"{img_dir}: no PNG/TIFF images")
    pairs = sorted(set(images) & set(masks))
    if not pairs:
        raise DataError(f"{root}: no image/mask pairs found (stems of images/ and {mask_dir.name}/ do not match)")
    unmatched = sorted((set(images) | set(masks)) - set(pairs))
    if unmatched:
        log.warning("%s: %d file(s) without a partner are skipped: %s", root, len(unmatched), ", ".join(unmatched[:5]))
    samples = []
    for stem in pairs:
        image = read_image(images[stem])
        mask = read_image(masks[stem])
        if mask.shape[:2] != image.shape[:2]:
            raise DataError(f"{masks[stem]}: mask size {mask.shape[:2]} does not match image size {image.shape[:2]}")
        samples.append(Sample(stem, to_channels(image, channels), _as_instances(mask, masks[stem])))
    return samples


def split_by_image(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Reproducible train/validation split by whole image (never by patch)."""
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction: must be in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = min(len(samples) - 1, max(1, int(round(val_fraction * len(samples)))))
    val_idx = set(order[:n_val].tolist())
    train = [s for i, s in enumerate(samples) if i not in val_idx]
    val = [s for i, s in enumerate(samples) if i in val_idx]
    return train, val
