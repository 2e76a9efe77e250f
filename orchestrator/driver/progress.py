"""Compact live progress of a search (instead of Ray's raw trial table)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from orchestrator.evaluation.evaluators import EpochReport
from orchestrator.strategy.events import Rejection, SearchProgress
from orchestrator.tracking.tracker import final_label


def _fmt(seconds: float) -> str:
    """Elapsed time as mm:ss (h:mm:ss past an hour)."""
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressView(Callback):
    """One line per event: trials done/running/prescreened/failed, best so far, elapsed, ETA.

    A Ray callback for trial events and a :class:`~orchestrator.strategy.events.SearchListener` of
    the searcher for the prescreening counters."""

    what = "trials"  # what is counted (a view restored from a search made before final training has no own)

    def __init__(self, total: int, objective: str, stream: TextIO | None = None, what: str = "trials") -> None:
        self.total, self.objective, self.what = total, objective, what
        self.stream = stream
        self.start = time.time()
        self.best: tuple[float, str] | None = None
        self.prescreened = 0

    def setup(self, **info: Any) -> None:
        """Ray calls this when the experiment (fresh or resumed) starts running: the clock starts."""
        self.start = time.time()

    def rejected(self, rejection: Rejection) -> None:
        pass  # counted through progressed()

    def progressed(self, progress: SearchProgress) -> None:
        self.prescreened = progress.rejections

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["stream"] = None
        return state

    def _line(self, trials: list, event: str) -> None:
        done = sum(t.status == "TERMINATED" for t in trials)
        failed = sum(t.status == "ERROR" for t in trials)
        running = sum(t.status == "RUNNING" for t in trials)
        finished = done + failed
        elapsed = time.time() - self.start
        eta = elapsed / finished * (self.total - finished) if finished else float("nan")
        best = f"best {self.objective} {self.best[0]:.4f} ({self.best[1]})" if self.best else "best -"
        prescreened = f", {self.prescreened} prescreened" if self.what == "trials" else ""
        line = (f"[{_fmt(elapsed)}] {event:<28} {self.what} {finished}/{self.total} done "
                f"({failed} failed), {running} running{prescreened} | {best} | "
                f"ETA {_fmt(eta) if finished else '?'}")
        print(line, file=self.stream or sys.stdout, flush=True)

    @staticmethod
    def _name(trial: Any) -> str:
        """A search trial's id; a final training is named after the trial it retrains."""
        request = (trial.config or {}).get("request")
        return final_label(request["search_trial"]) if isinstance(request, dict) else trial.trial_id

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, f"start {self._name(trial)}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        score = result.get(self.objective)
        if score is not None and (self.best is None or score > self.best[0]):
            self.best = (float(score), self._name(trial))
        if score is not None:
            self._line(trials, f"scored {self._name(trial)}")
        elif self.what != "trials":  # long final trainings: a line per epoch
            self._line(trials, f"epoch {result.get('epoch', '?')} {self._name(trial)}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        stage = "trained" if EpochReport.from_result(trial.last_result).final else "stopped (ASHA)"
        self._line(trials, f"{stage} {self._name(trial)}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, f"failed {self._name(trial)}")
        reason = _error_file_line(getattr(trial, "error_file", None))
        if reason:  # the one line that says why (the traceback is in the trial's MLflow run, nasseg.error)
            print(f"    {self._name(trial)}: {reason}", flush=True)


def failure_line(text: str, limit: int = 240) -> str | None:
    """The last ``SomethingError: ...`` line of a traceback (else its last line), or None if empty."""
    import re

    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    found = next((ln for ln in reversed(lines) if re.match(r"[A-Za-z_.]*(Error|Exception)\b", ln)), None)
    return (found or (lines[-1] if lines else ""))[:limit] or None


def _error_file_line(path: str | None) -> str | None:
    try:
        with open(path) as f:
            return failure_line(f.read())
    except (OSError, TypeError):
        return None
