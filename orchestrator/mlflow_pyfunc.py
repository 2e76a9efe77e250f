"""MLflow pyfunc loader for nasseg models (``loader_module`` of every logged model).

Lives in the installed package, so ``mlflow.pyfunc.load_model`` runs this code, not code stored
with the model; it reads the bundle as data (see ``model_export``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class NassegPyfunc:
    """``predict(images)``: raw images as an array (N, C, H, W) or (N, H, W), normalised as
    ``nasseg predict`` does; returns foreground probabilities (N, H, W) of the digital network."""

    def __init__(self, data_path: str) -> None:
        from orchestrator.tracking.registry import read_bundle

        self.bundle = read_bundle(Path(data_path), data_path)

    def predict(self, model_input, params=None) -> np.ndarray:
        import torch

        from trainers.inference import predict_maps
        from trainers.transforms import val_transforms

        images = np.asarray(model_input, dtype=np.float32)
        if images.ndim == 3:
            images = images[:, None]
        vt = val_transforms()
        out = []
        for img in images:
            item = vt({"image": img, "label": np.zeros((1, *img.shape[1:]), np.float32)})
            out.append(predict_maps(self.bundle.digital, torch.as_tensor(item["image"]),
                                    self.bundle.meta["patch_size"], self.bundle.head)[0])
        return np.stack(out)


def _load_pyfunc(data_path: str) -> NassegPyfunc:
    return NassegPyfunc(data_path)
