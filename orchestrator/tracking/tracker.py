"""MLflow records of a search: one parent run, one child run per trial and per prescreened candidate.

Logging is idempotent per (search, trial): runs are found again by their tags
(``nasseg.search``, ``nasseg.role``, ``nasseg.trial_id``) before any is created, so a resumed
search reuses its parent and child runs. We use ``MlflowClient`` directly (not Ray's
``MLflowLoggerCallback``), because that callback opens a second run for every trial that was
running when the driver died (measured with Ray 2.60: a killed and resumed search got two MLflow
runs for each trial that was running at the kill).

The contract users filter on (README "MLflow records"): tags ``nasseg.role`` = search | trial,
``nasseg.trial_id``, ``nasseg.stage`` = trained | stopped | failed | prescreened | running;
params ``arch.*`` (the spec), ``train.*``; metrics per epoch and the final drift scores.
"""

from __future__ import annotations

import math
import time
from typing import Any

from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from orchestrator.config import SearchConfig
from orchestrator.strategy.events import Rejection, SearchProgress
from orchestrator.tracking.store import open_store
from search_spaces import ArchSpec

ROLE, SEARCH, TRIAL_ID, STAGE = "nasseg.role", "nasseg.search", "nasseg.trial_id", "nasseg.stage"
SEARCH_TRIAL = "nasseg.search_trial"  # on a final run: the search trial whose network it retrains
STORAGE_TAG = "nasseg.storage"  # where the search keeps its state (resolved), on the parent run
TRAIN_PARAMS = ("mode", "head", "epochs", "steps_per_epoch", "batch_size", "patch_size", "lr", "lr_schedule", "seed")


def role_filter(search: str, role: str, tags: dict[str, str] | None = None) -> str:
    """MLflow's filter string for the runs of ``search`` in ``role`` (search | trial | final |
    lost), and with ``tags`` (name -> value) when given."""
    terms = {SEARCH: search, ROLE: role, **(tags or {})}
    return " and ".join(f"tags.`{name}` = '{value}'" for name, value in terms.items())


def is_epoch_metric(name: str) -> bool:
    """Logged with the epoch as its step: the loss and every ``val_*`` score (the undrifted
    ``val_dice``, ``val_map_dsb``, ... and the search's per-epoch objective, e.g. ``val_dice_1d``)."""
    return name == "loss" or name.startswith("val_")


def final_label(search_trial: str) -> str:
    """The name of a final training: its MLflow run, its progress lines, its model version tag."""
    return f"final-{search_trial}"


def run_params(spec: ArchSpec, train: Any) -> dict[str, Any]:
    """The params of a trial, candidate or final run: ``arch.*`` (the spec) and ``train.*``."""
    params = {f"arch.{k}": v for k, v in spec.to_params().items()}
    params.update({f"train.{k}": getattr(train, k) for k in TRAIN_PARAMS})
    return params


class Tracker:
    """MLflow bookkeeping of one search (plain client calls, no global active run). Ray's trial
    events reach it through :class:`MLflowTracking`, the searcher's through ``rejected`` and
    ``progressed`` (it is one of the searcher's listeners)."""

    def __init__(self, cfg: SearchConfig) -> None:
        self.cfg = cfg
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._parent_id: str | None = None
        self._runs: dict[str, str] = {}
        self._trial_index: dict[str, str] | None = None   # trial id -> run id, read once
        self._logged_observations: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks and the searcher with the experiment state: keep only the config,
        # ids are looked up again (by tags) after a restore.
        return {"cfg": self.cfg}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["cfg"])

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = open_store(self.cfg.resolved_tracking_uri())
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self._experiment()
        return self._experiment_id

    @property
    def parent_id(self) -> str:
        if self._parent_id is None:
            self._parent_id = self._parent()
        return self._parent_id

    # -- lookup / creation ------------------------------------------------------------------
    def _experiment(self) -> str:
        exp = self.client.get_experiment_by_name(self.cfg.name)
        if exp is not None:
            return exp.experiment_id
        location = None
        if self.cfg.resolved_tracking_uri().startswith("sqlite:"):
            location = (self.cfg.storage_path / "mlartifacts" / self.cfg.name).as_uri()
        return self.client.create_experiment(self.cfg.name, artifact_location=location)

    def existing_parent(self):
        """The parent run of this search if MLflow already has one (without creating anything)."""
        exp = self.client.get_experiment_by_name(self.cfg.name)
        if exp is None:
            return None
        runs = self.client.search_runs([exp.experiment_id], filter_string=role_filter(self.cfg.name, "search"),
                                       max_results=1)
        return runs[0] if runs else None

    def attach(self, parent_run_id: str) -> None:
        """Work on an existing search's records as they are (``report``, ``final``,
        ``export-table``): its parent run is used without being reopened."""
        self._parent_id = parent_run_id

    def _parent(self) -> str:
        run = self.existing_parent()
        if run is not None:  # a resumed search: its parent run is running again
            found = run.info.run_id
            if "nasseg.failure" in run.data.tags:
                self.client.delete_tag(found, "nasseg.failure")
            if run.info.status != "RUNNING":
                self.client.update_run(found, status="RUNNING")
            return found
        run = self.client.create_run(self.experiment_id, run_name=f"search-{self.cfg.name}",
                                     tags={ROLE: "search", SEARCH: self.cfg.name, STORAGE_TAG: self.cfg.storage_uri})
        params = [Param(k, v[:6000]) for k, v in self.cfg.flat_params().items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(run.info.run_id, params=params[i:i + 100])
        self.client.log_text(run.info.run_id, self.cfg.to_json(), "search_config.json")
        return run.info.run_id

    def trial_run(self, trial_id: str, spec: ArchSpec, extra_params: dict[str, Any], stage: str,
                  live_ids: set[str] | None = None) -> str:
        """The child run of ``trial_id``, created with its params and arch.json if new.

        With ``live_ids`` (the trials Ray knows), a still-``running`` run of the same architecture
        whose trial Ray no longer knows is adopted instead of creating a new one: after a kill -9,
        a trial started after Ray's last experiment snapshot is re-created by the restored
        searcher under a new id, and its MLflow run must not be duplicated."""
        if trial_id in self._runs:
            return self._runs[trial_id]
        found = self._trial_runs().get(trial_id) or (self._adopt(trial_id, spec, live_ids) if live_ids else None)
        if found:
            self._runs[trial_id] = found
            return found
        run = self.client.create_run(self.experiment_id, tags={
            MLFLOW_PARENT_RUN_ID: self.parent_id, ROLE: "trial", SEARCH: self.cfg.name, TRIAL_ID: trial_id,
            STAGE: stage, MLFLOW_RUN_NAME: trial_id})
        self._runs[trial_id] = self._describe(run.info.run_id, spec, {**run_params(spec, self.cfg.train),
                                                                       **extra_params})
        return self._runs[trial_id]

    def _trial_runs(self) -> dict[str, str]:
        """The search's ``trial``-role runs by trial id, read from MLflow once (on the first trial
        of this process: after a resume, the runs the killed driver left). This process then
        creates every new trial run itself (``trial_run`` keeps them in ``_runs``), so one query
        replaces a query per trial, whose cost grows with the store (11 % of the driver's CPU in
        a replayed 100-trial search, py-spy)."""
        if self._trial_index is None:
            runs = self.client.search_runs([self.experiment_id], filter_string=role_filter(self.cfg.name, "trial"),
                                           max_results=50000)
            self._trial_index = {r.data.tags[TRIAL_ID]: r.info.run_id for r in runs if TRIAL_ID in r.data.tags}
        return self._trial_index

    def _describe(self, run_id: str, spec: ArchSpec, params: dict[str, Any]) -> str:
        """Log a new run's params and its ``arch.json``; returns the run id."""
        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        self.client.log_text(run_id, spec.to_json(), "arch.json")
        return run_id

    def final_run(self, search_trial: str, spec: ArchSpec, train: Any) -> str:
        """The ``nasseg.role=final`` child run that retrains ``search_trial``'s network, created
        with its params (``train.*`` = the final budget) and arch.json if new. Keyed by the search
        trial, so a resumed final training (even a trial Ray re-created) finds its run again."""
        key = final_label(search_trial)
        if key in self._runs:
            return self._runs[key]
        flt = role_filter(self.cfg.name, "final", {SEARCH_TRIAL: search_trial})
        found = self.client.search_runs([self.experiment_id], filter_string=flt, max_results=1)
        if found:
            self._runs[key] = found[0].info.run_id
            return self._runs[key]
        run = self.client.create_run(self.experiment_id, tags={
            MLFLOW_PARENT_RUN_ID: self.parent_id, ROLE: "final", SEARCH: self.cfg.name, TRIAL_ID: key,
            SEARCH_TRIAL: search_trial, STAGE: "running", MLFLOW_RUN_NAME: key})
        self._runs[key] = self._describe(run.info.run_id, spec, run_params(spec, train))
        return self._runs[key]

    def _orphans(self) -> list:
        flt = role_filter(self.cfg.name, "trial", {STAGE: "running"})
        return self.client.search_runs([self.experiment_id], filter_string=flt, max_results=1000)

    def _adopt(self, trial_id: str, spec: ArchSpec, live_ids: set[str]) -> str | None:
        for run in self._orphans():
            old = run.data.tags.get(TRIAL_ID)
            if old in live_ids or ArchSpec.from_params(run.data.params, prefix="arch.") != spec:
                continue
            rid = run.info.run_id
            self.client.set_tag(rid, "nasseg.previous_trial_id", old)
            self.client.set_tag(rid, TRIAL_ID, trial_id)
            self.client.set_tag(rid, MLFLOW_RUN_NAME, trial_id)
            return rid
        return None

    def close_lost_runs(self, rejected_ids: set[str], trial_ids: set[str]) -> int:
        """At the end of a search, runs of work that a killed driver did after the last snapshot
        of the experiment and of the searcher, and that the resumed search redid under new ids:
        a trial run still ``running`` (not re-created), a finished trial run whose trial the
        searcher does not know (``trial_ids``; it finished after the snapshot, and its network
        was proposed and trained again), a ``prescreened`` run whose candidate the searcher does
        not know (``rejected_ids``). All are kept (nothing recorded is deleted) but moved out of
        the trial role: ``nasseg.role=lost``, ``nasseg.stage=lost`` (the old stage in
        ``nasseg.lost_stage``), status KILLED for the running ones. The ``trial`` role then holds
        exactly the search's trials and the candidates its searcher rejected."""
        runs = self.client.search_runs([self.experiment_id], filter_string=role_filter(self.cfg.name, "trial"),
                                       max_results=50000)
        lost = [run for run in runs if (
            run.data.tags.get(STAGE) == "running"
            or (run.data.tags.get(STAGE) == "prescreened" and run.data.tags.get(TRIAL_ID) not in rejected_ids)
            or (run.data.tags.get(STAGE) in ("trained", "stopped", "failed") and run.data.tags.get(TRIAL_ID) not in trial_ids))]
        for run in lost:
            self.client.set_tag(run.info.run_id, ROLE, "lost")
            if run.info.status == RunStatus.to_string(RunStatus.RUNNING):
                self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
            self.client.set_tag(run.info.run_id, "nasseg.lost_stage", run.data.tags.get(STAGE, ""))
            self.client.set_tag(run.info.run_id, STAGE, "lost")
        return len(lost)

    # -- the searcher's events (Tracker is a search_events.SearchListener) --------------------
    def progressed(self, p: SearchProgress) -> None:
        """Parent-run metrics, stepped by the surrogate's observations: re-proposals replaced by
        random draws and the surrogate's Kendall tau. Written when a trial finishes (not on each
        of the hundreds of rejections) and at the end of the search."""
        if self._logged_observations == p.observations:
            return
        self._logged_observations = p.observations
        self.log_progress(p)

    def log_progress(self, p: SearchProgress) -> None:
        metrics = {"duplicate_proposals": float(p.duplicates), "prescreened": float(p.rejections)}
        if p.kendall_tau is not None:
            metrics["surrogate_kendall_tau"] = p.kendall_tau
        self.log_metrics(self.parent_id, metrics, step=p.observations)

    def rejected(self, r: Rejection) -> None:
        """One finished ``prescreened`` child run: params (spec), reason, cost, prediction. Written
        in three calls (no lookup: a candidate id is new), since a search logs hundreds of these."""
        run = self.client.create_run(self.experiment_id, tags={
            MLFLOW_PARENT_RUN_ID: self.parent_id, ROLE: "trial", SEARCH: self.cfg.name, TRIAL_ID: r.candidate_id,
            STAGE: "prescreened", MLFLOW_RUN_NAME: r.candidate_id, "nasseg.reason": r.reason[:5000]})
        params = {**run_params(r.spec, self.cfg.train), "candidate_for": r.for_trial}
        metrics = dict(r.cost)
        if r.predicted is not None:
            metrics["surrogate_predicted"] = r.predicted
        now = int(time.time() * 1000)
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()],
                              metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()
                                       if v is not None and math.isfinite(float(v))])
        self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))

    def log_metrics(self, run_id: str, metrics: dict[str, Any], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))]
        for i in range(0, len(batch), 500):
            self.client.log_batch(run_id, metrics=batch[i:i + 500])

    def finish(self, run_id: str, stage: str, failed: bool = False, note: str | None = None) -> None:
        self.client.set_tag(run_id, STAGE, stage)
        if note:
            self.client.set_tag(run_id, "nasseg.error", note[:5000])
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED))

    def finish_search(self) -> None:
        self.client.set_terminated(self.parent_id, RunStatus.to_string(RunStatus.FINISHED))

    def fail_search(self, reason: str) -> None:
        """End the parent run as FAILED with ``reason`` as the ``nasseg.failure`` tag."""
        self.client.set_tag(self.parent_id, "nasseg.failure", reason[:5000])
        self.client.set_terminated(self.parent_id, RunStatus.to_string(RunStatus.FAILED))


