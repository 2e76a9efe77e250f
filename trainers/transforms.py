"""MONAI dictionary transforms for training patches and whole-image validation.

Keys: ``image`` (C, H, W float) and ``label`` (1, H, W instance labels; the foreground target is
``label > 0``). Intensity scaling is percentile based per image and channel, so brightfield and
fluorescence images of any bit depth land in a comparable range.
"""

from __future__ import annotations

from monai.transforms import (
    Compose,
    EnsureTyped,
    RandFlipd,
    RandGaussianNoised,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSpatialCropd,
    ScaleIntensityRangePercentilesd,
    SpatialPadd,
)

KEYS = ("image", "label")


def scale_intensity() -> ScaleIntensityRangePercentilesd:
    return ScaleIntensityRangePercentilesd(keys="image", lower=1.0, upper=99.8, b_min=0.0, b_max=1.0,
                                           clip=True, channel_wise=True)


def train_transforms(patch_size: int) -> Compose:
    """Scale, pad small images, random patch, flips, 90-degree turns, intensity and noise jitter."""
    return Compose([
        scale_intensity(),
        SpatialPadd(keys=KEYS, spatial_size=(patch_size, patch_size), mode="constant"),
        RandSpatialCropd(keys=KEYS, roi_size=(patch_size, patch_size), random_size=False),
        RandFlipd(keys=KEYS, prob=0.5, spatial_axis=0),
        RandFlipd(keys=KEYS, prob=0.5, spatial_axis=1),
        RandRotate90d(keys=KEYS, prob=0.5, max_k=3),
        RandScaleIntensityd(keys="image", factors=0.2, prob=0.5),
        RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5),
        RandGaussianNoised(keys="image", prob=0.3, std=0.03),
        EnsureTyped(keys=KEYS, track_meta=False),
    ])


def val_transforms() -> Compose:
    """Whole images, only intensity scaling (sliding-window inference handles the size)."""
    return Compose([scale_intensity(), EnsureTyped(keys=KEYS, track_meta=False)])
