"""Draw docs/synthetic_examples.png: the built-in data kinds, as the networks see them (after the
percentile scaling of ``trainers.transforms``), with the instance outlines on the first row.

    .venv/bin/python docs/make_synthetic_examples.py
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainers.data import load_samples  # noqa: E402
from trainers.transforms import val_transforms  # noqa: E402

KINDS = [("synthetic:5", "synthetic (default): dim, real contrast", True),
         ("synthetic:5", "synthetic", False),
         ("synthetic-bright:5", "synthetic-bright (before)", False),
         ("synthetic-brightfield:5", "synthetic-brightfield", False)]

vt = val_transforms()
fig, axes = plt.subplots(len(KINDS), 5, figsize=(12, 2.6 * len(KINDS)))
for row, (spec, title, outline) in zip(axes, KINDS):
    for ax, sample in zip(row, load_samples(spec, seed=0)):
        image = vt({"image": sample.image, "label": sample.label[None].astype(np.float32)})["image"][0].numpy()
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        if outline:
            overlay = np.zeros((*sample.label.shape, 4))
            overlay[find_boundaries(sample.label)] = (1.0, 0.2, 0.2, 1.0)
            ax.imshow(overlay)
        ax.set_title(f"{title}: {sample.label.max()} nuclei", fontsize=7)
        ax.axis("off")
fig.suptitle("nasseg's built-in nuclei (seed 0), scaled to the 1-99.8 percentiles as the networks see them", fontsize=9)
fig.tight_layout()
fig.savefig(ROOT / "docs" / "synthetic_examples.png", dpi=72)
