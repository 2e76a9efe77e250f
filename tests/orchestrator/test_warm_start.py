"""--warm-start: the surrogate is fitted on an earlier search's trials read back from MLflow."""
import pytest
from mlflow.tracking import MlflowClient

from orchestrator.config import ConfigError, SearchConfig
from orchestrator.surrogate import Surrogate
from orchestrator.tracking import Tracker
from orchestrator.warm_start import warm_start_surrogate
from tests.orchestrator.test_surrogate import score, specs


def test_warm_start_reads_trained_trials_of_an_earlier_search(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    old = SearchConfig.from_dict({"name": "old", "tracking_uri": uri, "storage": str(tmp_path / "runs")})
    tracker = Tracker(old)
    for i, spec in enumerate(specs(6, seed=2)):
        rid = tracker.trial_run(f"t{i}", spec, {}, "running")
        tracker.log_metrics(rid, {"dice_1d": score(spec)})
        tracker.finish(rid, "trained" if i < 5 else "stopped")  # the stopped one has no use
    new = SearchConfig.from_dict({"name": "new", "tracking_uri": uri, "warm_start": "old"})
    surrogate = Surrogate("dice_1d", min_observations=4)
    assert warm_start_surrogate(surrogate, new, MlflowClient(uri)) == 5
    assert surrogate.ready and sorted(surrogate.scores) == sorted(score(s) for s in specs(6, seed=2)[:5])
    with pytest.raises(ConfigError, match="no MLflow experiment named 'nope'"):
        warm_start_surrogate(Surrogate("dice_1d"), new.with_overrides(warm_start="nope"), MlflowClient(uri))
