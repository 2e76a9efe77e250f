"""Whole-image inference with MONAI's sliding window (any image size, patch-sized windows)."""

from __future__ import annotations

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from torch import nn

from .heads import BINARY, Head, PostProcess


@torch.no_grad()
def predict_maps(model: nn.Module, image: torch.Tensor, patch_size: int, head: Head = BINARY,
                 overlap: float = 0.25) -> np.ndarray:
    """The head's probability maps (K, H, W) of one image (C, H, W), tiled in ``patch_size``
    windows; map 0 is the foreground probability (see ``trainers.heads``)."""
    model.eval()
    device = next(model.parameters()).device
    logits = sliding_window_inference(image[None].to(device), roi_size=(patch_size, patch_size), sw_batch_size=4,
                                      predictor=model, overlap=overlap, mode="gaussian")
    return head.maps(logits[0].float()).cpu().numpy()


def predict_instances(model: nn.Module, image: torch.Tensor, patch_size: int, head: Head,
                      postprocess: PostProcess) -> np.ndarray:
    """Instance labels (H, W) of one image."""
    return head.instances(predict_maps(model, image, patch_size, head), postprocess)
