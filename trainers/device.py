"""Device and thread selection for one training process."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)
NO_CUDA_ONCE = "nasseg-cuda-requested-but-absent"  # Ray's log_once key (reset_log_once in tests)


def select_device(prefer: str = "auto") -> torch.device:
    """CUDA when present (``auto``), else CPU; asking for ``cuda`` on a CPU node warns once per
    process (a reused Ray worker trains many trials)."""
    from ray.util import log_once

    if prefer not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected auto, cpu or cuda, got {prefer!r}")
    if prefer == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if prefer == "cuda" and log_once(NO_CUDA_ONCE):
        log.warning("CUDA requested but not available on this node: training on CPU")
    return torch.device("cpu")


def limit_threads(n: int) -> None:
    """Cap torch's intra-op threads so a trial on a 1-CPU share does not spawn one per core."""
    if n < 1:
        raise ValueError(f"num_threads: must be >= 1, got {n}")
    torch.set_num_threads(n)
