"""Shared test settings: small thread counts so the suite behaves on a 2-core machine."""
import os

import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.pop("MLFLOW_TRACKING_URI", None)  # a developer's team server must not leak into tests
torch.set_num_threads(1)
