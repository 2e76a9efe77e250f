"""Log the best trial's network to MLflow, register it, and load it back without unpickling.

A registered nasseg model is data only: ``arch.json`` (the spec), ``nasseg_model.json`` (what
inference needs: channels, patch size, output head and its tuned post-processing, training
mode, HWA preset), ``weights.pt`` (the analog network's state as plain tensors,
``trainers.analog.tensor_state_dict``) and ``digital.pt`` (its digital reference: the same
function with an ideal periphery, input clips kept, ``trainers.analog.digital``; what ``nasseg
predict`` serves without ``--drift``, runnable without aihwkit). Loading
rebuilds the network from our own code (spec + preset) and reads the weights with
``weights_only=True``: a file planted in the artifact store can fail the load, never run code.
(MLflow's pytorch flavour pickles the whole module object, so it is not used.)

For other MLflow tools the model is also a pyfunc whose ``loader_module`` is
``orchestrator.mlflow_pyfunc`` from the installed nasseg package (no code is stored with the model):
``mlflow.pyfunc.load_model(uri).predict(images)`` gives foreground probabilities.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from orchestrator.config import SearchConfig
from orchestrator.tracking.tracker import TRIAL_ID, Tracker
from search_spaces import ArchSpec, SpecError, build
from trainers.analog import HWAConfig, load_tensor_state_dict, to_analog, to_digital
from trainers.analog.digital import load_digital_reference
from trainers.heads import Head, PostProcess, head
from trainers.tensor_files import UnsafeFileError, load_tensors
from trainers.typed import from_mapping

BUNDLE_FILES = ("arch.json", "nasseg_model.json", "weights.pt")
DIGITAL_FILE = "digital.pt"   # bundles written before the digital reference existed lack it
#: the bundle's folder name (MLflow stores the pyfunc's ``data_path`` as ``data/<name>``)
BUNDLE_DIR = "nasseg"
PYFUNC_LOADER = "orchestrator.mlflow_pyfunc"


class ModelError(ValueError):
    """A model URI that is not a loadable nasseg model (one line for the user)."""


def model_name(cfg: SearchConfig) -> str:
    return f"nasseg-{cfg.name}"


def write_bundle(folder: Path, spec: ArchSpec, meta: dict[str, Any], weights: dict[str, Any]) -> Path:
    """The bundle's files, ``digital.pt`` included (computed here from the analog weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "arch.json").write_text(spec.to_json())
    (folder / "nasseg_model.json").write_text(json.dumps(meta, indent=1))
    torch.save(weights, folder / "weights.pt")
    digital = ModelBundle(spec=spec, meta=meta, weights=weights).digital
    torch.save({k: v.detach().cpu() for k, v in digital.state_dict().items()}, folder / DIGITAL_FILE)
    return folder


def log_best_model(cfg: SearchConfig, tracker: Tracker, trial_id: str, checkpoint: Any,
                   run_id: str | None = None) -> str:
    """Log + register the model of ``trial_id`` (a search trial, or ``final-<trial>`` with the
    final run's ``run_id``) once; returns ``models:/nasseg-<name>/<version>``."""
    import mlflow.pyfunc
    from mlflow.entities import LoggedModelStatus
    from mlflow.exceptions import MlflowException

    from orchestrator.evaluation.evaluators import CHECKPOINT_FILE

    name = model_name(cfg)
    client = tracker.client
    for mv in _versions(client, name):
        if mv.tags.get(TRIAL_ID) == trial_id:
            return f"models:/{name}/{mv.version}"
    with checkpoint.as_directory() as d:
        state = load_tensors(Path(d) / CHECKPOINT_FILE, "trainer checkpoint")
    spec = ArchSpec.from_json(state["spec"])
    train = state["config"]
    meta = {"channels": train["channels"], "patch_size": train["patch_size"], "threshold": train["threshold"],
            "head": train["head"], "postprocess": state["postprocess"],
            "mode": train["mode"], "hwa": train["hwa"], "trial_id": trial_id, "search": cfg.name}
    run_id = run_id or tracker.trial_run(trial_id, spec, {}, "trained")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = write_bundle(Path(tmp) / BUNDLE_DIR, spec, meta, state["model"])
        # the pyfunc model written locally, then logged and registered with this search's client:
        # no process-wide tracking URI and no active run (what mlflow.pyfunc.log_model would need)
        local = Path(tmp) / "model"
        mlflow.pyfunc.save_model(str(local), loader_module=PYFUNC_LOADER, data_path=str(bundle),
                                 pip_requirements=["nas-segnet"])
        logged = client.create_logged_model(tracker.experiment_id, name="model", source_run_id=run_id)
        client.log_model_artifacts(logged.model_id, str(local))
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    if not _versions(client, name):
        try:
            client.create_registered_model(name)
        except MlflowException as exc:  # registered meanwhile by another process
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    version = client.create_model_version(name, source=f"models:/{logged.model_id}", run_id=run_id,
                                          model_id=logged.model_id, await_creation_for=60).version
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
    weights: dict[str, Any]
    digital_weights: dict[str, Any] | None = None   # digital.pt; None: derived from the analog weights

    def __post_init__(self) -> None:
        self.digital = self._digital().eval()

    @property
    def hwa(self) -> HWAConfig:
        return from_mapping(HWAConfig, self.meta["hwa"], "nasseg_model.json hwa")

    @property
    def head(self) -> Head:
        return head(self.meta.get("head", "binary"))  # models from before heads existed: binary

    @property
    def postprocess(self) -> PostProcess:
        """Tuned on the validation split after training (models from before: the threshold)."""
        if "postprocess" in self.meta:
            return PostProcess.from_dict(self.meta["postprocess"])
        return PostProcess(threshold=float(self.meta["threshold"]))

    def _network(self) -> nn.Module:
        return build(self.spec, in_channels=self.meta["channels"], out_channels=self.head.channels)

    def analog(self) -> nn.Module:
        """The analog network (aihwkit tiles) with the trained tile state."""
        if self.meta["mode"] != "analog":  # digitally trained: its weights go onto the tiles
            return to_analog(self.digital, self.hwa).eval()
        model = to_analog(self._network(), self.hwa)
        load_tensor_state_dict(model, self.weights)
        return model.eval()

    def _digital(self) -> nn.Module:
        """The digital reference (see the module docstring); a digitally trained model as it is."""
        if self.meta["mode"] == "analog" and self.digital_weights is not None:
            return load_digital_reference(self._network(), self.digital_weights)
        if self.meta["mode"] == "analog":
            return to_digital(self.analog())
        net = self._network()
        net.load_state_dict(self.weights)
        return net


def read_bundle(folder: Path, source: str) -> ModelBundle:
    """A bundle from a local folder; ``ModelError`` (one line) for anything that is not one."""
    missing = [f for f in BUNDLE_FILES if not (folder / f).is_file()]
    if missing:
        raise ModelError(f"{source}: not a nasseg model (missing {', '.join(missing)})")
    try:
        spec = ArchSpec.from_json((folder / "arch.json").read_text())
        meta = json.loads((folder / "nasseg_model.json").read_text())
        weights = load_tensors(folder / "weights.pt", "model weights file")
        digital = (load_tensors(folder / DIGITAL_FILE, "digital reference file")
                   if (folder / DIGITAL_FILE).is_file() else None)
        return ModelBundle(spec=spec, meta=meta, weights=weights, digital_weights=digital)
    except UnsafeFileError as exc:
        raise ModelError(f"{source}: {exc}") from None
    except (SpecError, ValueError, KeyError, TypeError, RuntimeError) as exc:  # edited or mismatched files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{source}: not a loadable nasseg model ({first[:200]})") from None


def load_bundle(model_uri: str, tracking_uri: str) -> ModelBundle:
    """Download the model's bundle (data only) and rebuild the network with nasseg's own code."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=_model_files(model_uri, tracking_uri),
                                                         tracking_uri=tracking_uri)).resolve()
        data = Model.load(str(local / "MLmodel")).flavors.get("python_function", {}).get("data")  # YAML, safe_load
    except (MlflowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{model_uri}: cannot be loaded from {tracking_uri} ({first[:200]})") from None
    folder = (local / str(data)).resolve() if data else local
    if not folder.is_relative_to(local):
        raise ModelError(f"{model_uri}: not a nasseg model (its data path {data!r} leaves the model folder)")
    return read_bundle(folder, model_uri)


def _model_files(model_uri: str, tracking_uri: str) -> str:
    """Where the files of a ``models:/`` URI lie, asked of the store at ``tracking_uri``.

    Written here because MLflow's own resolution of ``models:/`` (``ModelsArtifactRepository``)
    asks the process-wide registry and tracking URIs, not the ones it is given (its source says
    so in a TODO): ``nasseg predict --tracking-uri X`` run from another folder looked for the model
    in ``./mlflow.db`` (and created that file). Other URIs are returned as they are."""
    if not model_uri.startswith("models:"):
        return model_uri
    from mlflow import MlflowClient
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = get_model_name_and_version(client, model_uri)  # version, alias, "latest" or a model id
    uri = client.get_model_version_download_uri(*found) if len(found) == 2 else f"models:/{found[0]}"
    if uri.startswith("models:/"):  # an MLflow 3 logged model: models:/<model id>
        uri = client.get_logged_model(uri.removeprefix("models:/").split("/")[0]).artifact_location
    return uri
