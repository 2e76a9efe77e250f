"""Checks before a search starts, cheapest first, so a mistake costs seconds and writes nothing:
constraints and data, the MLflow store, Ray's resources, shared storage, one search per name."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.config import ConfigError, SearchConfig, sqlite_path
from orchestrator.tracking.store import connect
from orchestrator.tracking.tracker import STORAGE_TAG, Tracker


def check_storage_shared(cfg: SearchConfig, probe=None) -> None:
    """With several nodes, every node must see ``storage`` (checkpoints move between nodes on a
    retry or resume): a marker file written here is looked for by a task on each node.
    ``probe(nodes, marker_path) -> [bool]`` replaces the Ray tasks in unit tests."""
    import uuid

    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) < 2 or cfg.storage_is_uri:
        return  # one node, or a URI (s3://, gs://) that every node reaches by itself
    cfg.storage_path.mkdir(parents=True, exist_ok=True)
    marker = cfg.storage_path / f".nasseg-shared-{uuid.uuid4().hex}"
    marker.write_text("x")
    try:
        seen = (probe or _probe_nodes)(nodes, str(marker))
    finally:
        marker.unlink(missing_ok=True)
    blind = [n["NodeManagerAddress"] for n, ok in zip(nodes, seen) if not ok]
    if blind:
        raise ConfigError(f"storage: {cfg.storage_path} is not shared with node(s) {', '.join(blind)}; "
                          f"use a shared folder (NFS) or s3://... so trials can resume on any node")


def _probe_nodes(nodes: list[dict], marker: str) -> list[bool]:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def sees(path: str) -> bool:
        return Path(path).exists()

    checks = [sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
              .remote(marker) for n in nodes]
    return ray.get(checks, timeout=60)


def check_same_storage(cfg: SearchConfig) -> None:
    """A search name is one search: refuse to start one whose MLflow experiment already holds a
    search that keeps its state under another storage (it would mix two searches' runs)."""
    path = sqlite_path(cfg.resolved_tracking_uri())
    if path is not None and not path.exists():
        return  # a new store (not created before the search really starts)
    existing = Tracker(cfg).existing_parent()
    if existing is None:
        return
    recorded = existing.data.tags.get(STORAGE_TAG)
    if recorded is not None and recorded != cfg.storage_uri:
        raise ConfigError(f"search {cfg.name!r} already exists in MLflow with storage {recorded}; resume it with "
                          f"--storage {recorded}, or start a new search with another --name")


def preflight(cfg: SearchConfig) -> None:
    """Checks that need no service, before anything is written: the constraints admit a network,
    and the whole data set decodes (every image and mask, sizes, mask presence, not all empty).
    With a ``ray://`` address the data lies on the head node, which checks it there."""
    from orchestrator.strategy.searcher import check_constraints_admit_networks
    from trainers.data import load_samples

    check_constraints_admit_networks(cfg)
    if cfg.address is None or not cfg.address.startswith("ray://"):
        load_samples(cfg.data, channels=cfg.train.channels, seed=cfg.seed)


def check_tracking_store(uri: str) -> None:
    """MLflow answers (ConnectionError otherwise). A SQLite store that does not exist yet is only
    checked for a writable folder: it is created when the search really starts, so a refusal
    found later (Ray, resources) leaves no empty database behind."""
    path = sqlite_path(uri)
    if path is not None:
        if not path.exists():
            folder = next((p for p in path.parents if p.exists()), Path("/"))
            if not os.access(folder, os.W_OK):
                raise ConnectionError(f"MLflow tracking store {uri} cannot be created: {folder} is not writable")
            return
    connect(uri)


def check_resources_satisfiable(cfg: SearchConfig) -> None:
    """Ray queues a trial whose request no node can meet forever, silently: refuse it instead.
    (An autoscaling cluster whose nodes are not up yet is refused too; start them first.)"""
    import ray

    need = {"CPU": cfg.resources.cpus_per_trial, "GPU": cfg.resources.gpus_per_trial}
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(all(res.get(k, 0.0) >= v for k, v in need.items() if v > 0) for res in nodes):
        return
    have = ", ".join(f"{r.get('CPU', 0):g} CPU/{r.get('GPU', 0):g} GPU" for r in nodes) or "none"
    raise ConfigError(f"resources: no node of the Ray cluster can run a trial that needs "
                      f"{need['CPU']:g} CPU and {need['GPU']:g} GPU (nodes: {have}); lower "
                      f"resources.cpus_per_trial / resources.gpus_per_trial")
