"""``nasseg predict``: segment new images with a registered model, optionally under simulated drift."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trainers.data import IMAGE_SUFFIXES, DataError, read_image, to_channels


def check_inputs(model_uri: str, input_dir: Path, output_dir: Path, drift_seconds: float | None) -> list[Path]:
    """Everything about a ``predict`` call that can be checked before the model loads: the model
    URI's form, every input image decodes, the output can be a folder, the drift time. Returns
    the images; raises DataError (one line) otherwise, having created nothing."""
    import math
    import re

    if not re.match(r"(models|runs|file|s3|gs|wasbs|https?|dbfs|mlflow-artifacts):", model_uri):
        raise DataError(f"--model {model_uri!r}: expected an MLflow model URI such as models:/nasseg-demo/latest")
    if drift_seconds is not None and not (math.isfinite(drift_seconds) and drift_seconds > 0):
        raise DataError(f"--drift: expected seconds > 0, got {drift_seconds}")
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise DataError(f"{input_dir}: input folder does not exist")
    images = sorted(p for p in input_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"{input_dir}: no PNG/TIFF images")
    for path in images:
        read_image(path)  # DataError naming the file if it does not decode
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise DataError(f"--output {output_dir}: exists and is not a folder")
    parent = next((p for p in [output_dir, *output_dir.parents] if p.exists()), Path("."))
    if not os.access(parent, os.W_OK):
        raise DataError(f"--output {output_dir}: {parent} is not writable")
    return images


def predict_folder(model_uri: str, tracking_uri: str, images: list[Path], output_dir: Path,
                   drift_seconds: float | None = None, seed: int = 0) -> list[Path]:
    """Write ``<stem>_labels.tif`` (instance labels) and ``<stem>_overlay.png`` per image of
    ``images`` (checked by :func:`check_inputs`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tifffile
    import torch
    from skimage.segmentation import find_boundaries

    from orchestrator.tracking.registry import load_bundle
    from trainers.analog import drift_to, programmed_copy
    from trainers.inference import predict_instances
    from trainers.transforms import val_transforms

    bundle = load_bundle(model_uri, tracking_uri)
    model = bundle.digital
    if drift_seconds is not None:
        torch.manual_seed(seed)
        model = programmed_copy(bundle.analog())
        drift_to(model, drift_seconds)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    vt = val_transforms()
    written = []
    for path in images:
        raw = read_image(path)
        image = to_channels(raw, bundle.meta["channels"])
        item = vt({"image": image, "label": np.zeros((1, *image.shape[1:]), np.float32)})
        labels = predict_instances(model, item["image"], bundle.meta["patch_size"], bundle.head, bundle.postprocess)
        out = output_dir / f"{path.stem}_labels.tif"
        tifffile.imwrite(out, labels.astype(np.int32))
        fig, ax = plt.subplots(figsize=(6, 6 * labels.shape[0] / labels.shape[1]))
        ax.imshow(item["image"][0].numpy(), cmap="gray")
        overlay = np.zeros((*labels.shape, 4))
        overlay[find_boundaries(labels)] = (1.0, 0.2, 0.2, 1.0)
        ax.imshow(overlay)
        ax.set_title(f"{path.name}: {labels.max()} nuclei" + (f", {drift_seconds:g} s drift" if drift_seconds else ""))
        ax.axis("off")
        fig.tight_layout()
        fig.savefig(output_dir / f"{path.stem}_overlay.png", dpi=90)
        plt.close(fig)
        written.append(out)
        print(f"  {path.name}: {labels.max()} nuclei -> {out}")
    return written
