"""Train one NASSegNet from its ArchSpec, digitally or hardware-aware, and judge it under drift.

The single entry point is :class:`Trainer`: ``fit(on_epoch)`` trains for the configured budget and
calls ``on_epoch(metrics, trainer)`` after every epoch (the caller reports and checkpoints with
``trainer.save``); ``drift_evaluation()`` programs the analog weights onto simulated PCM and scores
the network at each drift time. Knows nothing of Ray or MLflow.

Exact resume: every epoch re-seeds torch, the data sampler and the MONAI transforms from
``(seed, epoch)``, so a checkpoint needs only model, optimizer and epoch to continue bit for bit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from monai.data import Dataset
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from search_spaces import ArchSpec, build

from .analog import (
    analog_optimizer,
    drift_to,
    load_tensor_state_dict,
    programmed_copy,
    tensor_state_dict,
    to_analog,
    to_digital,
)
from .data import Sample
from .device import limit_threads, select_device
from .heads import PostProcess, head, tune
from .inference import predict_maps
from .metrics import SegmentationScores, instance_scores
from .settings import (  # noqa: F401 (re-exported: they lived here)
    DRIFT_TIMES,
    LR_SCHEDULES,
    MODES,
    SCORES,
    WORST_FROM_S,
    TrainConfig,
    score_time_problem,
    split_objective,
    time_label,
    worst_times,
)
from .tensor_files import load_tensors
from .transforms import train_transforms, val_transforms

log = logging.getLogger(__name__)

class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss); the trial should be recorded as failed."""


def _as_items(samples: list[Sample]) -> list[dict[str, np.ndarray]]:
    return [{"image": s.image, "label": s.label[None].astype(np.float32)} for s in samples]


class Trainer:
    """Trains and evaluates the network of one spec (see module docstring)."""

    def __init__(self, spec: ArchSpec | None, train: list[Sample], val: list[Sample], cfg: TrainConfig,
                 network: nn.Module | None = None) -> None:
        """Trains ``build(spec)``; or, with ``spec=None``, ``network``: a digital network built
        elsewhere with ``cfg.channels`` inputs and the head's outputs (the hand-designed baseline
        of benchmarks/nassegnet_bench, MONAI's ``BasicUNet``), made analog and trained the same way."""
        limit_threads(cfg.num_threads)
        if (spec is None) == (network is None):
            raise ValueError("Trainer: give a spec or a network, not both")
        self.spec, self.cfg = spec, cfg
        self.device = select_device(cfg.device)
        self.head = head(cfg.head)
        self.postprocess = PostProcess(threshold=cfg.threshold)  # until tune_postprocess()
        net = network if spec is None else build(spec, in_channels=cfg.channels, out_channels=self.head.channels,
                                                 seed=cfg.seed)
        self.model: nn.Module = (to_analog(net, cfg.hwa) if cfg.mode == "analog" else net).to(self.device)
        self.optimizer = (analog_optimizer(self.model, cfg.lr, cfg.weight_decay) if cfg.mode == "analog"
                          else torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay))
        self.loss_fn = self.head.loss_fn()
        self.train_tf = train_transforms(cfg.patch_size)
        self.train_ds = Dataset(_as_items(train), transform=self.train_tf)
        vt = val_transforms()
        self.val_items = [vt(item) for item in _as_items(val)]
        self.epoch = 0
        self.history: list[dict[str, float]] = []

    # -- training ---------------------------------------------------------------------------
    def _epoch_seed(self) -> int:
        return self.cfg.seed * 100_003 + self.epoch

    def train_epoch(self) -> float:
        """One epoch of ``steps_per_epoch`` random patches; returns the mean loss."""
        seed = self._epoch_seed()
        torch.manual_seed(seed)
        self.train_tf.set_random_state(seed=seed % 2**32)
        sampler = RandomSampler(self.train_ds, replacement=True,
                                num_samples=self.cfg.steps_per_epoch * self.cfg.batch_size,
                                generator=torch.Generator().manual_seed(seed))
        loader = DataLoader(self.train_ds, batch_size=self.cfg.batch_size, sampler=sampler, num_workers=0)
        self.model.train()
        losses = []
        for step, batch in enumerate(loader, start=self.epoch * self.cfg.steps_per_epoch):
            self._set_lr(step)
            image = batch["image"].to(self.device)
            target = self.head.target(batch["label"].to(self.device))
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(image), target)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss {loss.item()} at epoch {self.epoch + 1}")
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        self.epoch += 1
        return float(np.mean(losses))

    def _set_lr(self, step: int) -> None:
        """The learning rate of global ``step``: a function of the step alone, so a checkpoint
        needs no scheduler state and a resume stays exact."""
        if self.cfg.lr_schedule == "constant":
            return
        total = self.cfg.epochs * self.cfg.steps_per_epoch
        lr = 0.5 * self.cfg.lr * (1.0 + math.cos(math.pi * min(step, total) / total))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def fit(self, on_epoch: Callable[[dict[str, float], Trainer], None] | None = None,
            epochs: int | None = None) -> list[dict[str, float]]:
        """Train up to ``epochs`` (default: the config's) and score on validation after each."""
        target = self.cfg.epochs if epochs is None else epochs
        while self.epoch < target:
            loss = self.train_epoch()
            metrics = {"epoch": self.epoch, "loss": loss,
                       **{f"val_{k}": v for k, v in self.evaluate().items()}}
            if self.cfg.epoch_objective:
                metrics[f"val_{self.cfg.epoch_objective}"] = self.epoch_objective_value()
            self.history.append(metrics)
            log.info("epoch %d: loss %.4f val dice %.4f", self.epoch, loss, metrics["val_dice"])
            if on_epoch is not None:
                on_epoch(metrics, self)
        return self.history

    # -- evaluation -------------------------------------------------------------------------
    def _val_maps(self, model: nn.Module) -> list[np.ndarray]:
        return [predict_maps(model, item["image"], self.cfg.patch_size, self.head) for item in self.val_items]

    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        """Dice, IoU, PQ, instance F1, AP@0.5 and DSB mAP of ``model`` (default: the one being
        trained) on whole validation images, with the current post-processing. An analog model
        runs with its read/output noise, no drift."""
        model = self.model if model is None else model
        scores = SegmentationScores()
        for item, maps in zip(self.val_items, self._val_maps(model), strict=True):
            scores.add(self.head.instances(maps, self.postprocess), item["label"])
        return scores.result()

    def tune_postprocess(self) -> dict[str, float]:
        """Choose the post-processing (threshold, seed) with the best DSB mAP on the validation
        images of the trained model (analog: with its read noise, before programming); it is then
        used by every later evaluation and stored with the model. Returns it as ``pp_*`` values."""
        maps = self._val_maps(self.model)
        labels = [item["label"][0].cpu().numpy().astype(np.int32) for item in self.val_items]
        self.postprocess, best = tune(self.head, maps, labels, lambda p, t: instance_scores(t, p)["map_dsb"])
        return {"pp_threshold": self.postprocess.threshold, "pp_seed": self.postprocess.seed, "pp_val_map_dsb": best}

    def _analog(self) -> nn.Module:
        """The analog network (a digitally trained model is converted: the baseline)."""
        return self.model if self.cfg.mode == "analog" else to_analog(self.model, self.cfg.hwa).to(self.device)

    def programmed_scores(self, analog: nn.Module, times: tuple[float, ...], seed: int) -> list[dict[str, float]]:
        """Program ``analog`` once (programming noise seeded by ``seed``), drift it to each of
        ``times`` (increasing) and score it there; torch's RNG is left as it was."""
        rng_state = torch.get_rng_state()
        try:
            torch.manual_seed(seed)
            programmed = programmed_copy(analog)
            scores = []
            for t in times:
                drift_to(programmed, t)
                scores.append(self.evaluate(programmed))
            return scores
        finally:
            torch.set_rng_state(rng_state)

    def epoch_objective_value(self) -> float:
        """``cfg.epoch_objective`` on the validation images now: after one programming draw
        (seeded by seed and epoch) and the drift, the lowest over the ``_worst`` times, or on the
        digital reference. The per-epoch signal ASHA prunes on when it is the search's objective."""
        metric, label = split_objective(self.cfg.epoch_objective)
        if label == "digital":
            return self.evaluate(to_digital(self._analog()) if self.cfg.mode == "analog" else self.model)[metric]
        times = worst_times(self.cfg.drift_times) if label == "worst" else \
            tuple(t for t in self.cfg.drift_times if time_label(t) == label)
        scores = self.programmed_scores(self._analog(), times, seed=self.cfg.seed * 7919 + 104_729 + self.epoch)
        return min(s[metric] for s in scores)

    def drift_evaluation(self) -> dict[str, float]:
        """Scores of the digital reference and of the network after PCM programming + drift.

        For each of ``drift_reps`` programming draws (seeded), the weights are programmed once
        and drifted to every time in ``drift_times``. Returns ``{metric}_digital`` (the digital
        reference: ``trainers.analog.digital``) and, per time label, ``{metric}_{t}`` (mean),
        ``{metric}_{t}_std`` (std over draws), ``{metric}_{t}_sem`` (standard error of the
        mean), ``dice_drop_{t}`` (digital minus analog Dice); and ``{metric}_worst``, the lowest
        mean over the times >= 1 h (with its ``_sem``). A digitally trained model is converted to
        analog first (the baseline).
        """
        analog = self._analog()
        digital = to_digital(analog) if self.cfg.mode == "analog" else self.model
        out = {f"{k}_digital": v for k, v in self.evaluate(digital).items()}
        labels = [time_label(t) for t in self.cfg.drift_times]
        runs = [self.programmed_scores(analog, self.cfg.drift_times, seed=self.cfg.seed * 7919 + rep)
                for rep in range(self.cfg.drift_reps)]
        for i, label in enumerate(labels):
            for metric in runs[0][i]:
                values = np.array([run[i][metric] for run in runs])
                out[f"{metric}_{label}"] = float(values.mean())
                out[f"{metric}_{label}_std"] = float(values.std())
                out[f"{metric}_{label}_sem"] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
            out[f"dice_drop_{label}"] = out["dice_digital"] - out[f"dice_{label}"]
        worst = [time_label(t) for t in worst_times(self.cfg.drift_times)]
        if worst:
            for metric in runs[0][0]:
                at = min(worst, key=lambda lab: out[f"{metric}_{lab}"])
                out[f"{metric}_worst"] = out[f"{metric}_{at}"]
                out[f"{metric}_worst_sem"] = out[f"{metric}_{at}_sem"]
        return out

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write model (incl. analog tile state), optimizer, epoch and history to ``path``: plain
        tensors and numbers only, so :meth:`load` never unpickles objects."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"epoch": self.epoch, "model": tensor_state_dict(self.model), "optimizer": self.optimizer.state_dict(),
                    "history": self.history, "spec": self.spec.to_json() if self.spec else "",
                    "config": self.cfg.as_dict(),
                    "postprocess": self.postprocess.as_dict()}, path)
        return path

    def load(self, path: str | Path) -> None:
        """Continue from a checkpoint written by :meth:`save` for the same spec."""
        state = load_tensors(path, "trainer checkpoint", map_location=self.device)
        if (ArchSpec.from_json(state["spec"]) if state["spec"] else None) != self.spec:
            raise ValueError(f"{path}: checkpoint is for another architecture")
        load_tensor_state_dict(self.model, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        if "postprocess" in state:
            self.postprocess = PostProcess.from_dict(state["postprocess"])

