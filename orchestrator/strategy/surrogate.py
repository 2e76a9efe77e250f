"""Surrogate: predicts a trial's analog score from the spec encoding, to rank candidates.

Model choice: gradient-boosted trees (XGBoost), as AnalogNAS uses. With a few to a few hundred
observations of mixed categorical/integer/log-scaled features, shallow boosted trees are
accurate, need no feature scaling and fit in milliseconds on the driver; only the *ranking* of
candidates matters, and it is what we measure (Kendall tau on trials the model had not seen,
computed before each refit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from search_spaces.interface import NASSegSpace, SearchSpace


@dataclass
class Surrogate:
    """XGBoost regressor on the search space's features (``SearchSpace.encode``), refitted as trials finish."""

    objective: str
    min_observations: int = 4
    specs: list[str] = field(default_factory=list)     # arch JSON of each observation
    scores: list[float] = field(default_factory=list)
    unseen_pairs: list[tuple[float, float]] = field(default_factory=list)  # (predicted, measured)
    space: SearchSpace = field(default_factory=NASSegSpace, repr=False)
    _model: object | None = field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        return self._model is not None

    def observe(self, spec: Any, score: float) -> float | None:
        """Add one finished trial; returns what the surrogate predicted for it before refitting."""
        predicted = float(self.predict([spec])[0]) if self.ready else None
        if predicted is not None:
            self.unseen_pairs.append((predicted, float(score)))
        self.specs.append(self.space.to_json(spec))
        self.scores.append(float(score))
        self.fit()
        return predicted

    def observe_many(self, specs: list[Any], scores: list[float]) -> None:
        """Add results measured elsewhere (a warm start, a table) and refit once; nothing is
        predicted for them first (they are not unseen trials of this search)."""
        if len(specs) != len(scores):
            raise ValueError(f"{len(specs)} specs but {len(scores)} scores")
        self.specs.extend(self.space.to_json(s) for s in specs)
        self.scores.extend(float(v) for v in scores)
        self.fit()

    def fit(self) -> None:
        if len(self.scores) < self.min_observations:
            return
        from xgboost import XGBRegressor

        x = self.space.encode([self.space.from_json(s) for s in self.specs])
        model = XGBRegressor(n_estimators=150, max_depth=3, learning_rate=0.1, subsample=1.0,
                             min_child_weight=1.0, n_jobs=1, random_state=0)
        model.fit(x, np.asarray(self.scores))
        self._model = model

    def predict(self, specs: list[Any]) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("surrogate is not fitted yet")
        return self._model.predict(self.space.encode(specs)).astype(float)

    def kendall_tau(self) -> float | None:
        """Rank agreement of predictions made before each trial was seen (None below 3 pairs)."""
        if len(self.unseen_pairs) < 3:
            return None
        pred, meas = zip(*self.unseen_pairs)
        tau = kendalltau(pred, meas).statistic
        return None if np.isnan(tau) else float(tau)

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"objective": self.objective, "min_observations": self.min_observations, "specs": self.specs,
                "scores": self.scores, "unseen_pairs": self.unseen_pairs}

    @classmethod
    def from_dict(cls, data: dict, space: SearchSpace | None = None) -> Surrogate:
        s = cls(objective=data["objective"], min_observations=data["min_observations"], specs=list(data["specs"]),
                scores=list(data["scores"]), unseen_pairs=[tuple(p) for p in data["unseen_pairs"]],
                space=space or NASSegSpace())
        s.fit()
        return s

    def save(self, path: str | Path) -> Path:
        """JSON of the observations (the model is refitted deterministically on load)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Surrogate:
        return cls.from_dict(json.loads(Path(path).read_text()))
