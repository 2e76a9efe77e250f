"""Whole-image inference with MONAI's sliding window (any image size, patch-sized windows)."""

from __future__ import annotations

import torch
from monai.inferers import sliding_window_inference
from torch import nn


@torch.no_grad()
def predict_probability(model: nn.Module, image: torch.Tensor, patch_size: int, overlap: float = 0.25) -> torch.Tensor:
    """Foreground probability (1, H, W) of one image (C, H, W), tiled in ``patch_size`` windows."""
    model.eval()
    device = next(model.parameters()).device
    logits = sliding_window_inference(image[None].to(device), roi_size=(patch_size, patch_size), sw_batch_size=4,
                                      predictor=model, overlap=overlap, mode="gaussian")
    return torch.sigmoid(logits[0]).cpu()
