"""What the searcher tells the rest of the search while it runs (typed events, no Ray objects).

The searcher is the one that knows why a candidate was not trained and how the surrogate is
doing; the MLflow tracker and the progress view listen. They are handed to the searcher when it
is built (``listeners``), so they travel with it through Ray's experiment state and a resumed
search still reaches them, without anyone reaching into Ray's objects to find the searcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Rejection:
    """A candidate that was not trained, and why."""

    candidate_id: str
    for_trial: str
    spec: Any
    reason: str
    predicted: float | None
    cost: dict[str, float]


@dataclass(frozen=True)
class SearchProgress:
    """The searcher's counters after an event (a snapshot: listeners keep the latest)."""

    rejections: int                 # candidates prescreened out (constraints or surrogate)
    duplicates: int                 # re-proposals of trained networks, replaced by random draws
    observations: int               # finished trials the surrogate has learnt from
    kendall_tau: float | None       # surrogate's ranking of trials it had not seen when predicting
    finished_reason: str | None     # why the searcher ended the search early, if it did


class SearchListener(Protocol):
    def rejected(self, rejection: Rejection) -> None:
        """A candidate was prescreened out (called once per rejected candidate, as it happens)."""

    def progressed(self, progress: SearchProgress) -> None:
        """The counters changed: after a rejection, a finished trial, or a restore."""
