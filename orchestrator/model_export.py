"""Log the best trial's network to MLflow as a PyTorch model, register it, and load it back.

The logged model is the digital (plain torch) network with the trained weights, so it loads
anywhere with ``mlflow.pytorch.load_model``. Beside it, in the model's ``extra_files``:
``arch.json`` (the spec), ``nasseg_model.json`` (what inference needs: channels, patch size,
threshold, mode, HWA preset) and ``analog_state.pt`` (the analog tiles' state), so ``predict``
can also rebuild the analog network and simulate conductance drift.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from search_spaces import ArchSpec, build
from trainers.analog import HWAConfig, to_analog, to_digital

from .config import SearchConfig
from .tracking import TRIAL_ID, Tracker

BUNDLE_FILES = ("arch.json", "nasseg_model.json", "analog_state.pt")


def model_name(cfg: SearchConfig) -> str:
    return f"nasseg-{cfg.name}"


def log_best_model(cfg: SearchConfig, tracker: Tracker, trial_id: str, checkpoint: Any) -> str:
    """Log + register the model of ``trial_id`` once; returns ``models:/nasseg-<name>/<version>``."""
    import mlflow

    name = model_name(cfg)
    client = tracker.client
    for mv in _versions(client, name):
        if mv.tags.get(TRIAL_ID) == trial_id:
            return f"models:/{name}/{mv.version}"
    with checkpoint.as_directory() as d:
        state = torch.load(Path(d) / "trainer.pt", map_location="cpu", weights_only=False)
    spec = ArchSpec.from_json(state["spec"])
    train = state["config"]
    net = build(spec, in_channels=train["channels"], out_channels=1)
    if train["mode"] == "analog":
        analog = to_analog(net, HWAConfig(**train["hwa"]))
        analog.load_state_dict(state["model"])
        digital = to_digital(analog).eval()
    else:
        net.load_state_dict(state["model"])
        digital = net.eval()
    meta = {"channels": train["channels"], "patch_size": train["patch_size"], "threshold": train["threshold"],
            "mode": train["mode"], "hwa": train["hwa"], "trial_id": trial_id, "search": cfg.name}
    run_id = tracker.trial_run(trial_id, spec, {}, "trained")
    mlflow.set_tracking_uri(cfg.resolved_tracking_uri())
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "arch.json").write_text(spec.to_json())
        (tmp_path / "nasseg_model.json").write_text(json.dumps(meta, indent=1))
        torch.save(state["model"], tmp_path / "analog_state.pt")
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pytorch.log_model(
                digital, name="model", registered_model_name=name,
                extra_files=[str(tmp_path / f) for f in BUNDLE_FILES],
                pip_requirements=["torch==2.13.0", "nas-segnet"], serialization_format="pickle",
                await_registration_for=60)
    version = info.registered_model_version
    client.set_model_version_tag(name, str(version), TRIAL_ID, trial_id)
    client.set_tag(run_id, "nasseg.best", "true")
    client.set_tag(tracker.parent_id, "nasseg.best_trial", trial_id)
    client.set_tag(tracker.parent_id, "nasseg.model_uri", f"models:/{name}/{version}")
    return f"models:/{name}/{version}"


def _versions(client, name: str) -> list:
    try:
        return list(client.search_model_versions(f"name = '{name}'"))
    except Exception:  # no such registered model yet
        return []


@dataclass
class ModelBundle:
    """A registered nasseg model, loaded back."""

    spec: ArchSpec
    meta: dict[str, Any]
    digital: nn.Module
    analog_state: dict[str, Any]

    def analog(self) -> nn.Module:
        """The analog network (aihwkit tiles) with the trained tile state."""
        hwa = HWAConfig(**self.meta["hwa"])
        if self.meta["mode"] != "analog":  # digitally trained: its weights go onto the tiles
            return to_analog(self.digital, hwa).eval()
        model = to_analog(build(self.spec, in_channels=self.meta["channels"], out_channels=1), hwa)
        model.load_state_dict(self.analog_state)
        return model.eval()


def load_bundle(model_uri: str, tracking_uri: str) -> ModelBundle:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    extra = local / "extra_files"
    missing = [f for f in BUNDLE_FILES if not (extra / f).exists()]
    if missing:
        raise FileNotFoundError(f"{model_uri}: not a nasseg model (missing {', '.join(missing)})")
    digital = mlflow.pytorch.load_model(model_uri, map_location="cpu").eval()
    return ModelBundle(spec=ArchSpec.from_json((extra / "arch.json").read_text()),
                       meta=json.loads((extra / "nasseg_model.json").read_text()), digital=digital,
                       analog_state=torch.load(extra / "analog_state.pt", map_location="cpu", weights_only=False))
