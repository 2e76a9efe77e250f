"""Hardware-aware training learns, drift hurts, and resume is exact."""
from dataclasses import replace

import pytest
import torch

from search_spaces import ArchSpec, hardware_cost
from trainers.analog import count_tiles, load_tensor_state_dict
from trainers.data import load_samples, split_by_image
from trainers.train import TrainConfig, Trainer, TrainingError

SPEC = ArchSpec.from_params(dict(out_channel0=12, k0=3, M=2, R1=1, B1=1, convblock1=1, widenfact1=0.7, up1="resize",
                                 R2=1, B2=1, convblock2=1, widenfact2=0.7, up2="resize"))


@pytest.fixture(scope="module")
def data():
    return split_by_image(load_samples("synthetic:16", seed=0), 0.25, seed=0)


@pytest.mark.slow
def test_hardware_aware_training_learns_and_drift_degrades(data):
    train, val = data
    cfg = TrainConfig(mode="analog", epochs=4, steps_per_epoch=15, batch_size=8, patch_size=64, num_threads=2,
                      drift_reps=3, seed=0)
    trainer = Trainer(SPEC, train, val, cfg)
    assert count_tiles(trainer.model) == hardware_cost(SPEC).tiles == 12  # every conv sits on a tile
    untrained = trainer.evaluate()["dice"]
    seen = []
    trainer.fit(on_epoch=lambda m, t: seen.append(m["epoch"]))
    trained = trainer.history[-1]["val_dice"]
    assert seen == [1, 2, 3, 4]
    # measured here: untrained 0.16, trained 0.80 after 4 epochs (~35 s on 2 cores)
    assert untrained < 0.3 and trained > 0.65 and trained > untrained + 0.4
    drift = trainer.drift_evaluation()
    curve = [drift[f"dice_{t}"] for t in ("1s", "1h", "1d", "30d", "1y")]
    assert all(0 < d <= 1 for d in curve)
    # With the default preset (HWA training + global drift compensation) this small network is
    # drift robust: measured 0.793, 0.794, 0.805, 0.802, 0.792 (std <= 0.01). A year of drift must
    # not cost it more than 0.05 Dice ...
    assert curve[-1] > curve[0] - 0.05, curve
    assert drift["dice_drop_1y"] == pytest.approx(drift["dice_digital"] - drift["dice_1y"])
    assert drift["dice_1y_std"] >= 0 and "f1_inst_1d" in drift and "pq_digital" in drift
    # ... while the same weights read out *without* drift compensation do degrade with time
    # (measured 0.80 at 1 s, 0.64 at 1 y): the drift simulation really acts.
    raw = Trainer(SPEC, train, val, replace(cfg, hwa=replace(cfg.hwa, drift_compensation=False)))
    raw.model.load_state_dict(trainer.model.state_dict(), load_rpu_config=False)  # keep GDC off
    raw_drift = raw.drift_evaluation()
    assert raw_drift["dice_1y"] < raw_drift["dice_1s"] - 0.08, raw_drift
    assert raw_drift["dice_1y"] < curve[-1] - 0.05


def _train_in_steps(train, val, cfg, ckpt):
    straight = Trainer(SPEC, train, val, cfg)
    straight.fit()
    first = Trainer(SPEC, train, val, cfg)
    first.fit(epochs=cfg.epochs - 1)
    first.save(ckpt)
    resumed = Trainer(SPEC, train, val, cfg)
    resumed.load(ckpt)
    assert resumed.epoch == cfg.epochs - 1
    resumed.fit()
    return straight, resumed


def _max_weight_diff(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa if torch.is_tensor(sa[k]))


def test_resume_is_exact_in_digital_mode(data, tmp_path):
    train, val = data
    cfg = TrainConfig(mode="digital", epochs=3, steps_per_epoch=2, batch_size=4, patch_size=32, num_threads=2, seed=3)
    straight, resumed = _train_in_steps(train, val[:1], cfg, tmp_path / "ckpt.pt")
    assert _max_weight_diff(straight, resumed) == 0.0
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]


def test_resume_in_analog_mode_matches_to_float_roundoff(data, tmp_path):
    # aihwkit's torch tiles are not bit-reproducible across a state_dict round trip: the first
    # resumed batch is identical, later ones differ in the last float32 bits (measured max weight
    # difference 1.7e-5 after one epoch). Without the optimizer state it is 9e-3.
    train, val = data
    cfg = TrainConfig(mode="analog", epochs=3, steps_per_epoch=2, batch_size=4, patch_size=32, num_threads=2, seed=3)
    straight, resumed = _train_in_steps(train, val[:1], cfg, tmp_path / "ckpt.pt")
    assert _max_weight_diff(straight, resumed) < 1e-4
    assert [h["loss"] for h in straight.history[:2]] == [h["loss"] for h in resumed.history[:2]]
    assert resumed.history[2]["loss"] == pytest.approx(straight.history[2]["loss"], rel=1e-5)
    # and without the optimizer state the same resume is clearly off
    broken = Trainer(SPEC, train, val[:1], cfg)
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    load_tensor_state_dict(broken.model, state["model"])
    broken.epoch = state["epoch"]
    broken.fit()
    assert _max_weight_diff(straight, broken) > 1e-3


def test_digital_mode_is_deterministic_and_drift_evaluation_converts(data):
    train, val = data
    cfg = TrainConfig(mode="digital", epochs=1, steps_per_epoch=3, batch_size=4, patch_size=32, num_threads=2,
                      drift_reps=1, drift_times=(1.0, 86400.0))
    a, b = Trainer(SPEC, train, val[:2], cfg), Trainer(SPEC, train, val[:2], cfg)
    assert count_tiles(a.model) == 0
    assert a.fit()[0]["loss"] == b.fit()[0]["loss"]
    drift = a.drift_evaluation()
    assert set(k for k in drift if k.startswith("dice_") and not k.endswith(("_std", "_sem"))) == \
        {"dice_digital", "dice_1s", "dice_1d", "dice_drop_1s", "dice_drop_1d", "dice_worst"}
    assert drift["dice_1d_sem"] == 0.0          # one draw: no standard error


def test_worst_metrics_come_from_the_drift_table(data, monkeypatch):
    """``<metric>_worst`` is the lowest *mean* over the drift times >= 1 h, with that time's
    standard error; 1 s is left out. The scores per draw are planted, so the numbers are known."""
    train, val = data
    cfg = TrainConfig(mode="analog", epochs=1, steps_per_epoch=1, batch_size=2, patch_size=32, drift_reps=2,
                      drift_times=(1.0, 3600.0, 86400.0, 31536000.0))
    trainer = Trainer(SPEC, train, val[:1], cfg)
    planted = {0: [0.10, 0.80, 0.70, 0.75], 1: [0.10, 0.84, 0.72, 0.60]}   # per draw: dice at 1s, 1h, 1d, 1y

    def scores(analog, times, seed):
        rep = seed - cfg.seed * 7919
        return [{"dice": d, "ap50": 1.0 - d} for d in planted[rep]]

    monkeypatch.setattr(trainer, "programmed_scores", scores)
    drift = trainer.drift_evaluation()
    assert drift["dice_1y"] == pytest.approx(0.675) and drift["dice_1d"] == pytest.approx(0.71)
    assert drift["dice_worst"] == pytest.approx(0.675)                    # 1 year, not 1 s (0.10)
    assert drift["dice_worst_sem"] == pytest.approx(0.075)               # std(ddof=1) 0.106 / sqrt(2)
    assert drift["ap50_worst"] == pytest.approx(1 - 0.82)                 # its own worst time: 1 h


def test_the_objective_is_measured_after_drift_every_epoch(data):
    train, val = data
    cfg = TrainConfig(mode="analog", epochs=2, steps_per_epoch=2, batch_size=4, patch_size=32, num_threads=2,
                      drift_times=(1.0, 3600.0, 86400.0), epoch_objective="dice_worst")
    trainer = Trainer(SPEC, train, val[:2], cfg)
    history = trainer.fit()
    assert [sorted(k for k in h if k.startswith("val_dice")) for h in history] == [["val_dice", "val_dice_worst"]] * 2
    again = Trainer(SPEC, train, val[:2], cfg).fit()
    assert [h["val_dice_worst"] for h in history] == [h["val_dice_worst"] for h in again]   # seeded draw
    with pytest.raises(ValueError, match="train.epoch_objective: 'dice_30d'"):
        TrainConfig(epoch_objective="dice_30d", drift_times=(1.0, 86400.0))


def test_nan_loss_raises_training_error(data):
    train, val = data
    cfg = TrainConfig(mode="digital", epochs=1, steps_per_epoch=1, batch_size=2, patch_size=32, lr=1e-3)
    trainer = Trainer(SPEC, train, val[:1], cfg)
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingError, match="non-finite loss"):
        trainer.fit()


@pytest.mark.parametrize("bad, field", [({"mode": "quantum"}, "train.mode"), ({"patch_size": 30}, "train.patch_size"),
                                        ({"drift_times": []}, "train.drift_times"), ({"epochs": 0}, "train.epochs")])
def test_bad_train_config(bad, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**bad)
    with pytest.raises(ValueError, match="unknown key"):
        TrainConfig.from_dict({"epochz": 3})


@pytest.mark.slow
def test_contour_head_trains_tunes_and_keeps_its_post_processing(data, tmp_path):
    """The 3-class head: 3 output channels on an analog tile, it learns, the post-processing is
    tuned on validation (a grid point, never worse than the untuned one) and saved with the model."""
    train, val = data
    cfg = TrainConfig(mode="analog", head="contour", epochs=4, steps_per_epoch=15, batch_size=8, patch_size=48,
                      num_threads=2, drift_reps=1, drift_times=(86400.0,), seed=0)
    trainer = Trainer(SPEC, train, val, cfg)
    assert count_tiles(trainer.model) == hardware_cost(SPEC, 1, 3).tiles
    untrained = trainer.evaluate()
    trainer.fit()
    trained = trainer.history[-1]
    # measured here: Dice 0.16 -> 0.75, mAP 0.0 -> 0.05 after 60 steps (it learns nothing in 30;
    # the 3-class head starts slower than the binary one)
    assert trained["val_dice"] > untrained["dice"] + 0.3 and trained["val_map_dsb"] > untrained["map_dsb"]
    tuned = trainer.tune_postprocess()
    assert trainer.postprocess in trainer.head.grid and tuned["pp_seed"] == trainer.postprocess.seed
    assert tuned["pp_val_map_dsb"] >= trainer.history[-1]["val_map_dsb"] - 0.05  # (noise: another draw)
    trainer.save(tmp_path / "c.pt")
    again = Trainer(SPEC, train, val, cfg)
    again.load(tmp_path / "c.pt")
    assert again.postprocess == trainer.postprocess
    drift = trainer.drift_evaluation()
    assert {"ap50_1d", "map_dsb_1d", "f1_inst_1d", "map_dsb_digital"} <= set(drift)
    assert 0 <= drift["map_dsb_1d"] <= drift["ap50_1d"] <= 1


def test_cosine_learning_rate_is_a_function_of_the_step(data):
    import math

    train, val = data
    cfg = TrainConfig(mode="analog", epochs=2, steps_per_epoch=3, batch_size=2, patch_size=32, lr=0.01,
                      lr_schedule="cosine")
    trainer = Trainer(SPEC, train, val[:1], cfg)
    trainer.train_epoch()                                    # steps 0, 1, 2 of 6
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.005 * (1 + math.cos(math.pi * 2 / 6)))
    trainer.train_epoch()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.005 * (1 + math.cos(math.pi * 5 / 6)))
    constant = Trainer(SPEC, train, val[:1], replace(cfg, lr_schedule="constant"))
    constant.train_epoch()
    assert constant.optimizer.param_groups[0]["lr"] == 0.01
    with pytest.raises(ValueError, match="train.lr_schedule: expected one of constant, cosine"):
        TrainConfig(lr_schedule="step")


def test_a_network_built_elsewhere_is_made_analog_and_trained_the_same_way(data, tmp_path):
    """The hand-designed baseline of NASSegNet-Bench: MONAI's BasicUNet through the same Trainer."""
    from monai.networks.nets import BasicUNet

    train, val = data
    net = BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=(4, 4, 8, 16, 32, 4))
    cfg = TrainConfig(mode="analog", epochs=2, steps_per_epoch=2, batch_size=4, patch_size=48, drift_reps=1,
                      drift_times=(1.0, 86400.0))
    trainer = Trainer(None, train, val, cfg, network=net)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    assert count_tiles(trainer.model) == convs == 19  # every Conv2d on one tile at these widths
    trainer.fit()
    assert [h["epoch"] for h in trainer.history] == [1, 2]
    assert 0 < trainer.drift_evaluation()["dice_1d"] <= 1
    trainer.save(tmp_path / "ck.pt")
    again = Trainer(None, train, val, cfg, network=net)
    again.load(tmp_path / "ck.pt")
    assert again.epoch == 2
    with pytest.raises(ValueError, match="another architecture"):
        Trainer(SPEC, train, val, cfg).load(tmp_path / "ck.pt")
    with pytest.raises(ValueError, match="a spec or a network"):
        Trainer(SPEC, train, val, cfg, network=net)
