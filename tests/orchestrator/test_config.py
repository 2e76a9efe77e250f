import pytest

from orchestrator.config import ConfigError, SearchConfig


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_demo_config_is_valid_and_round_trips():
    cfg = SearchConfig.from_yaml("configs/demo.yaml")
    assert cfg.objectives == ("dice_1d", "tiles") and cfg.modes == ["max", "min"]
    assert cfg.constraints.max_tiles == 40 and cfg.train.epochs == 6
    again = SearchConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert cfg.flat_params()["train.hwa.tile_size"] == "512"


def test_instance_scores_can_be_the_objective(tmp_path):
    cfg = SearchConfig.from_yaml(write(tmp_path, "objectives: [map_dsb_1d, tiles]\ntrain: {head: distance}\n"))
    assert cfg.primary_objective == "map_dsb_1d" and cfg.modes == ["max", "min"] and cfg.train.head == "distance"
    assert SearchConfig.from_yaml(write(tmp_path, "objectives: [ap50_30d]\n")).modes == ["max"]


def test_lifetime_objective_is_measured_every_epoch(tmp_path):
    cfg = SearchConfig.from_yaml(write(tmp_path, "objectives: [map_dsb_worst, tiles]\n"))
    assert cfg.modes == ["max", "min"] and cfg.epoch_signal == "val_map_dsb_worst"
    assert cfg.trial_train.epoch_objective == "map_dsb_worst" and cfg.train.epoch_objective == ""


def test_dsb_config_parses_apart_from_the_data_path(tmp_path):
    (tmp_path / "stage1_train" / "x").mkdir(parents=True)
    cfg = SearchConfig.from_yaml("configs/dsb2018.yaml", {"data": f"dsb2018:{tmp_path / 'stage1_train'}"})
    assert cfg.space == "large" and cfg.resources.gpus_per_trial > 0


@pytest.mark.parametrize("text, message", [
    ("train:\n  epochs: 1\nscheduler:\n  grace_period: 2\n",
     "scheduler.grace_period: 2 is more than train.epochs (1)"),
    ("trials: 3\nepochs: 2\n", "unknown key(s) ['epochs']"),
    ("train:\n  epochz: 2\n", "train: unknown key(s) ['epochz']"),
    ("trials: -1\n", "trials: must be >= 1"),
    ("trials: many\n", "trials: expected an integer, got str 'many'"),
    ("seed: -1\n", "seed: must be >= 0, got -1"),
    ("train:\n  epochs: 1.5\n", "train.epochs: expected an integer, got float 1.5"),
    ("train:\n  epochs: '2'\n", "train.epochs: expected an integer, got str '2'"),
    ("train:\n  epochs: true\n", "train.epochs: expected an integer, got bool True"),
    ("train:\n  lr: .inf\n", "train.lr: expected a finite number, got inf"),
    ("train:\n  lr: .nan\n", "train.lr: expected a finite number, got nan"),
    ("train:\n  seed: -3\n", "train.seed: must be >= 0"),
    ("train:\n  drift_times: [1, day]\n", "train.drift_times[1]: expected a number, got str 'day'"),
    ("train:\n  hwa: {tile_size: 256.5}\n", "train.hwa.tile_size: expected an integer"),
    ("train:\n  hwa: {learn_input_range: 'yes'}\n", "train.hwa.learn_input_range: expected true or false"),
    ("train:\n  hwa: {simulator: numba}\n", "hwa.simulator: expected one of"),
    ("train: 3\n", "train: must be a mapping"),
    ("resources: {cpus_per_trial: .inf}\n", "resources.cpus_per_trial: expected a finite number"),
    ("resources: {max_concurrent_trials: 2.0}\n", "resources.max_concurrent_trials: expected an integer"),
    ("scheduler: {enabled: 1}\n", "scheduler.enabled: expected true or false"),
    ("bounds: {out_channel0: 8}\n", "bounds.out_channel0: expected a list"),
    ("objectives: [dice_1d, 3]\n", "objectives[1]: expected a string"),
    ("val_fraction: .nan\n", "val_fraction: expected a finite number"),
    ("", "the config is empty"),
    ("objectives: [accuracy]\n", "objectives: unknown objective 'accuracy'"),
    ("objectives: [tiles, dice_1d]\n", "first objective must be a quality score"),
    ("objectives: [dice_2d]\n", "needs drift time 2d"),
    ("final: {top_k: -1}\n", "final: top_k, epochs, steps_per_epoch and drift_reps must be >= 0"),
    ("final: {lr_schedule: step}\n", "final.lr_schedule: expected one of constant, cosine"),
    ("final: {topk: 2}\n", "final: unknown key(s) ['topk']"),
    ("objectives: [dice_worst]\ntrain: {drift_times: [1, 60]}\n", "dice_worst is the lowest score over the drift times >= 1h"),
    ("train: {head: stardist}\n", "train.head: expected one of binary, contour, distance"),
    ("space: huge\n", "space: unknown preset 'huge'"),
    ("bounds:\n  M: [1, 9]\n", "bounds.M"),
    ("constraints:\n  max_tiles: lots\n", "constraints.max_tiles: expected an integer, got str 'lots'"),
    ("data: folder:/does/not/exist\n", "data: /does/not/exist: data folder does not exist"),
    ("data: kaggle\n", "data: data spec 'kaggle'"),
    ("address: 'http://x'\n", "address:"),
    ("tracking_uri: mlflow.db\n", "tracking_uri:"),
    ("train:\n  patch_size: 30\n", "train.patch_size"),
    ("name: 'bad name'\n", "name:"),
    ("name: a..b\n", "name: 'a..b' must be 1-64 letters, digits, '_', '.', '-' (no '..')"),  # report would refuse it
    ("sampler: grid\nprescreen: {candidates: 4}\n", "prescreen.candidates: sampler grid trains every network in turn"),
    ("warm_start: 'table:/does/not/exist.jsonl'\n", "warm_start: no results table at /does/not/exist.jsonl"),
    ("- a\n- b\n", "top level must be a mapping"),
    ("a: [\n", "not valid YAML"),
])
def test_bad_configs_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        SearchConfig.from_yaml(write(tmp_path, text))
    assert message in str(err.value)


def test_cli_overrides_win(tmp_path):
    cfg = SearchConfig.from_yaml(write(tmp_path, "trials: 3\n"), {"trials": 7, "name": "x1", "data": "synthetic:5"})
    assert (cfg.trials, cfg.name, cfg.data) == (7, "x1", "synthetic:5")


def test_relative_sqlite_uri_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert SearchConfig().resolved_tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"


def test_the_search_seed_seeds_training_unless_train_sets_its_own():
    assert SearchConfig.from_dict({"seed": 5}).train.seed == 5
    assert SearchConfig.from_dict({"seed": 5}).flat_params()["train.seed"] == "5"
    assert SearchConfig.from_dict({"seed": 5, "train": {"seed": 3}}).train.seed == 3
    cfg = SearchConfig.from_dict({"seed": 7})
    assert SearchConfig.from_dict(cfg.to_dict()) == cfg


def test_grace_period_beyond_the_epochs_is_refused_by_the_cli(tmp_path):
    """Before: ASHA's AssertionError traceback after Ray had started. Now: one line, exit 2."""
    from tests.orchestrator.test_search_e2e import env_for, nasseg

    (tmp_path / "c.yaml").write_text("name: quick\ntrials: 2\ntrain: {epochs: 1}\nscheduler: {grace_period: 2}\n")
    proc = nasseg(["search", "c.yaml"], tmp_path, env_for(tmp_path), timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "scheduler.grace_period: 2 is more than train.epochs (1)" in lines[0]
    assert not (tmp_path / "nasseg_runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_progress_clock_reads_like_a_clock():
    from orchestrator.driver.progress import _fmt

    assert [_fmt(s) for s in (0, 17, 75, 3599, 3725)] == ["00:00", "00:17", "01:15", "59:59", "1:02:05"]


def test_mlflow_tracking_uri_env_var_is_the_default(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert SearchConfig.from_dict({}).tracking_uri == "http://mlflow.internal:5000"
    assert SearchConfig.from_dict({"tracking_uri": "sqlite:///x.db"}).tracking_uri == "sqlite:///x.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert SearchConfig.from_dict({}).tracking_uri == "sqlite:///mlflow.db"


def test_every_field_is_read_from_the_mapping_and_none_is_dropped(tmp_path):
    """The whole mapping is validated at once: a field added to SearchConfig is read like the others
    (a hard-coded key list once accepted a new key and silently dropped its value)."""
    from dataclasses import fields

    table = tmp_path / "t.jsonl"
    table.write_text("{}\n")
    values = {"name": "x", "data": "synthetic:4", "val_fraction": 0.3, "trials": 3, "seed": 5,
              "objectives": ["dice_1y"], "space": "large", "bounds": {"M": [1, 2]}, "constraints": {"max_tiles": 9},
              "train": {"epochs": 3}, "prescreen": {"candidates": 2}, "final": {"top_k": 1},
              "resources": {"retries": 0}, "scheduler": {"enabled": False}, "local_ray": {"num_cpus": 1},
              "address": "auto", "tracking_uri": "sqlite:////tmp/x.db", "storage": "/tmp/s", "warm_start": "exp",
              "evaluator": f"table:{table}", "sampler": "tpe"}
    assert set(values) == {f.name for f in fields(SearchConfig)}, "give the new field a value here"
    cfg, default = SearchConfig.from_dict(values), SearchConfig()
    assert [f.name for f in fields(SearchConfig) if getattr(cfg, f.name) == getattr(default, f.name)] == []
    assert SearchConfig.from_dict(cfg.to_dict()) == cfg
