"""The multi-node storage check (its Ray probe replaced: one filesystem here cannot be unshared)."""
import pytest
import ray

from orchestrator.config import ConfigError, SearchConfig
from orchestrator.driver.preflight import check_storage_shared

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


def test_a_uri_storage_keeps_the_config_beside_the_search_so_another_host_checks_it(tmp_path, monkeypatch):
    """With s3:// (here file://) storage the saved config lay in the local ~/.cache: a resume from
    another host skipped the changed-config check and ran the edited config."""
    from orchestrator.config import ConfigError, SearchConfig
    from orchestrator.driver.resume import prepare, read_saved_config, write_saved_config

    cfg = SearchConfig.from_dict({"name": "s", "storage": f"file://{tmp_path}/remote", "trials": 3})
    monkeypatch.setenv("HOME", str(tmp_path / "host1"))
    write_saved_config(cfg)
    (tmp_path / "remote" / "s" / "tuner.pkl").write_bytes(b"")  # Ray's marker of a restorable experiment
    monkeypatch.setenv("HOME", str(tmp_path / "host2"))          # another host: an empty ~/.cache
    assert read_saved_config(cfg).trials == 3
    with pytest.raises(ConfigError, match=r"search 's' exists with another config \(trials: 3 -> 5\)"):
        prepare(cfg.with_overrides(trials=5), resume=False)
    assert not (tmp_path / "host1" / ".cache").exists()  # nothing of it was kept locally


def test_a_search_started_under_another_default_is_told_which_key_to_set_to_resume(tmp_path):
    """A config that leaves prescreen out, saved when the default was 4 candidates, meets today's
    default of 1: the refusal names the key and its saved value, and setting it resumes."""
    from orchestrator.driver.resume import prepare, write_saved_config

    today = SearchConfig.from_dict({"name": "old", "storage": str(tmp_path / "runs")})
    write_saved_config(SearchConfig.from_dict({"name": "old", "storage": str(tmp_path / "runs"),
                                               "prescreen": {"candidates": 4}}))
    (tmp_path / "runs" / "old" / "tuner.pkl").write_bytes(b"")  # Ray's marker of a restorable experiment
    with pytest.raises(ConfigError, match=r"\(prescreen\.candidates: 4 -> 1\); to resume, rerun it with the saved "
                                          r"values \(a key your config leaves out takes this version's default"):
        prepare(today, resume=False)
    fixed = SearchConfig.from_dict({"name": "old", "storage": str(tmp_path / "runs"), "prescreen": {"candidates": 4}})
    cfg, resuming = prepare(fixed, resume=False)
    assert resuming and cfg.prescreen.candidates == 4
