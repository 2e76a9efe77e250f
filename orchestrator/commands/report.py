"""Search report from MLflow: trials.csv and PNG plots, logged to the parent run.

Plots: Pareto front (primary objective vs crossbar tiles), drift curves of the top trials and of
the final networks (solid: analog after programming and drift; dashed: the digital reference),
search score vs final score of the retrained networks, surrogate predicted-vs-measured,
segmentation overlays of the registered model. Tables: trials.csv, final.csv.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from orchestrator.config import SearchConfig  # noqa: E402
from orchestrator.strategy.pareto import pareto_mask  # noqa: E402
from orchestrator.tracking.tracker import SEARCH_TRIAL, STAGE, TRIAL_ID, Tracker, role_filter  # noqa: E402

log = logging.getLogger(__name__)
DRIFT_LABELS = ("1s", "1h", "1d", "30d", "1y")


def trials_table(tracker: Tracker, role: str = "trial") -> pd.DataFrame:
    """One row per child run of ``role`` (``trial``: trials and prescreened candidates; ``final``:
    the final trainings, with ``search_trial``) with tags, params and metrics."""
    runs = tracker.client.search_runs(
        [tracker.experiment_id], max_results=50_000,
        filter_string=role_filter(tracker.cfg.name, role))
    rows = []
    for r in runs:
        row = {"trial_id": r.data.tags.get(TRIAL_ID), "stage": r.data.tags.get(STAGE), "run_id": r.info.run_id,
               "reason": r.data.tags.get("nasseg.reason", ""), "search_trial": r.data.tags.get(SEARCH_TRIAL, "")}
        row.update(r.data.metrics)
        row.update({k: v for k, v in r.data.params.items() if k.startswith("arch.")})
        rows.append(row)
    return pd.DataFrame(rows).sort_values("trial_id").reset_index(drop=True) if rows else pd.DataFrame()


def plot_pareto(df: pd.DataFrame, cfg: SearchConfig, path: Path) -> None:
    obj = cfg.primary_objective
    fig, ax = plt.subplots(figsize=(6, 4.5))
    t = df[(df["stage"] == "trained")] if "stage" in df else df.iloc[0:0]
    if obj in t and "tiles" in t and len(t):
        t = t.dropna(subset=[obj, "tiles"])
        mask = np.array(pareto_mask(t[[obj, "tiles"]].to_numpy().tolist(), ["max", "min"]))
        ax.scatter(t["tiles"][~mask], t[obj][~mask], c="tab:gray", label="trained")
        front = t[mask].sort_values("tiles")
        ax.plot(front["tiles"], front[obj], "o-", c="tab:red", label="Pareto front")
        for _, row in front.iterrows():
            ax.annotate(str(row["trial_id"])[-5:], (row["tiles"], row[obj]), fontsize=7)
    ax.set_xlabel("analog crossbar tiles")
    ax.set_ylabel(obj)
    ax.set_title(f"{cfg.name}: {obj} vs hardware cost")
    _legend_or_note(ax, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _legend_or_note(ax, **legend_kw) -> None:
    """The legend, or a note that nothing was trained (a search whose trials all failed):
    matplotlib's ``legend()`` without artists prints a UserWarning on the user's console."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**legend_kw)
    else:
        ax.text(0.5, 0.5, "no trained trial", ha="center", va="center", transform=ax.transAxes, color="gray")


def plot_drift(df: pd.DataFrame, cfg: SearchConfig, path: Path, top: int = 5, what: str = "top trials") -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    labels = [lab for lab in DRIFT_LABELS if f"dice_{lab}" in df]
    if labels and "stage" in df:
        t = df[df["stage"] == "trained"].dropna(subset=[f"dice_{labels[0]}"])
        t = t.sort_values(cfg.primary_objective if cfg.primary_objective in t else f"dice_{labels[0]}",
                          ascending=False).head(top)
        x = np.arange(len(labels))
        for _, row in t.iterrows():
            y = [row.get(f"dice_{lab}", np.nan) for lab in labels]
            err = [row.get(f"dice_{lab}_std", 0.0) for lab in labels]
            line = ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=str(row["trial_id"])[-8:])
            if "dice_digital" in row and not np.isnan(row["dice_digital"]):
                ax.axhline(row["dice_digital"], ls="--", lw=0.8, c=line[0].get_color())
        ax.set_xticks(x, labels)
    ax.set_xlabel("time after programming (PCM drift)")
    ax.set_ylabel("analog Dice (mean ± std over noise draws); dashed: digital")
    ax.set_title(f"{cfg.name}: drift curves of the {what}")
    _legend_or_note(ax, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compared_metrics(cfg: SearchConfig) -> tuple[str, ...]:
    """What the search and the final score of a retrained network are compared on."""
    return tuple(dict.fromkeys((cfg.primary_objective, "dice_1d", "dice_1y", "ap50_1y")))


def plot_final_vs_search(trials: pd.DataFrame, finals: pd.DataFrame, cfg: SearchConfig, path: Path) -> float | None:
    """Each retrained network: its search score (short run) against its final score (full budget),
    at 1 day and 1 year after programming and for the objective; returns the Spearman of the
    objective's two rankings."""

    obj = cfg.primary_objective
    done = finals[finals["stage"] == "trained"] if "stage" in finals else finals.iloc[0:0]
    merged = done.merge(trials.drop(columns=["search_trial"], errors="ignore"), left_on="search_trial",
                        right_on="trial_id", suffixes=("_final", "_search"))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    rho = None
    metrics = [m for m in compared_metrics(cfg) if f"{m}_final" in merged and f"{m}_search" in merged]
    for metric in metrics:
        ax.scatter(merged[f"{metric}_search"], merged[f"{metric}_final"], label=metric)
    if obj in metrics and len(merged):
        rho = spearman(merged[f"{obj}_search"].tolist(), merged[f"{obj}_final"].tolist())
        for _, row in merged.iterrows():
            ax.annotate(str(row["search_trial"])[-5:], (row[f"{obj}_search"], row[f"{obj}_final"]), fontsize=7)
    lims = [v for m in metrics for col in (f"{m}_search", f"{m}_final") for v in merged[col].dropna()]
    if lims:
        ax.plot([min(lims), max(lims)], [min(lims), max(lims)], "k--", lw=0.8)
    ax.set_xlabel("search trial (short run)")
    ax.set_ylabel("final training (full budget)")
    rho_s = f"{rho:.2f}" if rho is not None else "-"
    ax.set_title(f"{cfg.name}: search vs final, Spearman ({obj}) {rho_s}, n={len(merged)}", fontsize=9)
    if metrics:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return rho


def plot_surrogate(pairs: list[tuple[float, float]], cfg: SearchConfig, path: Path, tau: float | None) -> None:
    """Each point: the surrogate's prediction for a trial made before it saw that trial, and the
    measured score (the same pairs the logged Kendall tau is computed on)."""
    obj = cfg.primary_objective
    fig, ax = plt.subplots(figsize=(5, 4.5))
    if pairs:
        pred, meas = np.array(pairs).T
        ax.scatter(pred, meas)
        lo, hi = float(min(pred.min(), meas.min())), float(max(pred.max(), meas.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("surrogate prediction (before the trial was seen)")
    ax.set_ylabel(f"measured {obj}")
    ax.set_title(f"surrogate ranking, Kendall tau = {tau:.3f} (n={len(pairs)})" if tau is not None
                 else f"surrogate: too few unseen predictions (n={len(pairs)})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_overlays(cfg: SearchConfig, model_uri: str, path: Path, n_images: int = 3) -> None:
    """Best model on validation images: ground truth vs digital and 1-day-drift predictions."""
    import torch
    from skimage.segmentation import find_boundaries

    from orchestrator.tracking.registry import load_bundle
    from trainers.analog import drift_to, programmed_copy
    from trainers.data import load_samples, split_by_image
    from trainers.inference import predict_instances
    from trainers.transforms import val_transforms

    bundle = load_bundle(model_uri, cfg.resolved_tracking_uri())
    _, val = split_by_image(load_samples(cfg.data, channels=bundle.meta["channels"], seed=cfg.seed),
                            cfg.val_fraction, cfg.seed)
    torch.manual_seed(0)
    drifted = programmed_copy(bundle.analog())
    drift_to(drifted, 86400.0)
    vt = val_transforms()
    val = val[:n_images]
    fig, axes = plt.subplots(len(val), 3, figsize=(10, 3.4 * len(val)), squeeze=False)
    for row, sample in zip(axes, val):
        item = vt({"image": sample.image, "label": sample.label[None].astype(np.float32)})
        img = item["image"][0].numpy()

        def segment(model, image=item["image"]):
            return predict_instances(model, image, bundle.meta["patch_size"], bundle.head, bundle.postprocess)
        for ax, (title, labels) in zip(row, [
                ("ground truth", sample.label),
                ("digital", segment(bundle.digital)), ("analog, 1 day after programming", segment(drifted))]):
            ax.imshow(img, cmap="gray")
            overlay = np.zeros((*labels.shape, 4))
            overlay[find_boundaries(labels)] = (1.0, 0.2, 0.2, 1.0)
            ax.imshow(overlay)
            ax.set_title(f"{sample.name}: {title} ({labels.max()} nuclei)", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(cfg: SearchConfig, tracker: Tracker, out_dir: Path | None = None) -> Path:
    """Write trials.csv and the plots to ``out_dir`` (default: the search folder) and log them."""
    out = out_dir or cfg.search_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    df = trials_table(tracker)
    df.to_csv(out / "trials.csv", index=False)
    parent = tracker.client.get_run(tracker.parent_id)
    tau_hist = tracker.client.get_metric_history(tracker.parent_id, "surrogate_kendall_tau")
    tau = tau_hist[-1].value if tau_hist else None
    plot_pareto(df, cfg, out / "pareto_front.png")
    plot_drift(df, cfg, out / "drift_curves.png")
    finals = trials_table(tracker, role="final")
    if len(finals):
        searched = df.set_index("trial_id") if "trial_id" in df else pd.DataFrame()
        for metric in compared_metrics(cfg):
            if metric in searched:  # each final network's score in its search trial, beside its final score
                finals[f"search_{metric}"] = finals["search_trial"].map(searched[metric])
        finals.to_csv(out / "final.csv", index=False)
        plot_drift(finals, cfg, out / "drift_curves_final.png", what="final networks")
        plot_final_vs_search(df, finals, cfg, out / "final_vs_search.png")
    saved = cfg.search_dir / "surrogate.json"
    pairs = [tuple(p) for p in json.loads(saved.read_text())["unseen_pairs"]] if saved.exists() else []
    plot_surrogate(pairs, cfg, out / "surrogate_pred_vs_measured.png", tau)
    model_uri = parent.data.tags.get("nasseg.model_uri")
    if model_uri:
        try:
            plot_overlays(cfg, model_uri, out / "overlays_best_model.png")
        except Exception as exc:  # the report must not die on one plot; say why
            log.warning("overlay plot skipped: %s", exc)
            print(f"nasseg: overlay plot skipped: {exc}")
    tracker.client.log_artifacts(tracker.parent_id, str(out), artifact_path="report")
    return out


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman rank correlation of two score lists (None below 2 networks or without spread)."""
    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:  # no ranking in a constant list
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
