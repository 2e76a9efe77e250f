"""The multi-node storage check (its Ray probe replaced: one filesystem here cannot be unshared)."""
import pytest
import ray

from orchestrator.config import ConfigError, SearchConfig
from orchestrator.search import check_storage_shared

NODES = [{"Alive": True, "NodeID": "a", "NodeManagerAddress": "10.0.0.1"},
         {"Alive": True, "NodeID": "b", "NodeManagerAddress": "10.0.0.2"}]


def test_a_node_that_cannot_see_the_storage_stops_the_search(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "nodes", lambda: NODES)
    cfg = SearchConfig.from_dict({"storage": str(tmp_path / "runs")})
    seen_markers = []

    def probe(nodes, marker):
        seen_markers.append(marker)
        return [True, False]

    with pytest.raises(ConfigError, match=r"is not shared with node\(s\) 10.0.0.2"):
        check_storage_shared(cfg, probe)
    assert seen_markers and not list((tmp_path / "runs").glob(".nasseg-shared-*"))  # marker cleaned up
    check_storage_shared(cfg, lambda nodes, marker: [True, True])  # all see it: fine
    check_storage_shared(SearchConfig.from_dict({"storage": "s3://bucket/x"}), probe)  # URIs are not probed
