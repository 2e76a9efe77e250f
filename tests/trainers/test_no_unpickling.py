"""Files other people can write are read as data: a crafted pickle fails the load, runs nothing."""
import pickle

import pytest
import torch

from orchestrator.tracking.registry import ModelError, read_bundle, write_bundle
from search_spaces import ArchSpec, build
from tests.crafted import plant_pickle
from trainers.analog import HWAConfig, tensor_state_dict, to_analog
from trainers.data import load_samples, split_by_image
from trainers.tensor_files import UnsafeFileError
from trainers.train import TrainConfig, Trainer

SPEC = ArchSpec.from_params(dict(out_channel0=8, k0=3, M=1, R1=1, B1=1, convblock1=1, widenfact1=0.5, up1="resize"))


def test_the_crafted_payload_does_run_when_unpickled_unsafely(tmp_path):
    # so that the tests below, which assert it did NOT run, can fail
    path, marker = plant_pickle(tmp_path / "x.pkl", tmp_path)
    pickle.loads(path.read_bytes())
    assert marker.exists()
    marker.rmdir()
    path, marker = plant_pickle(tmp_path / "x.pt", tmp_path, as_torch=True)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_crafted_trainer_checkpoint_is_refused(tmp_path):
    train, val = split_by_image(load_samples("synthetic:4", seed=0), 0.5, seed=0)
    trainer = Trainer(SPEC, train, val, TrainConfig(mode="analog", epochs=1, steps_per_epoch=1, batch_size=2, patch_size=32))
    path, marker = plant_pickle(tmp_path / "trainer.pt", tmp_path, as_torch=True)
    with pytest.raises(UnsafeFileError, match="trainer.pt: not a valid nasseg trainer checkpoint: refused to unpickle"):
        trainer.load(path)
    assert not marker.exists()
    # a real checkpoint is plain data and loads with weights_only=True
    trainer.save(tmp_path / "real.pt")
    assert torch.load(tmp_path / "real.pt", weights_only=True)["epoch"] == 0
    trainer.load(tmp_path / "real.pt")


def test_a_model_bundle_is_rebuilt_from_data_and_a_crafted_weights_file_is_refused(tmp_path):
    net = to_analog(build(SPEC, in_channels=1, out_channels=1), HWAConfig())
    meta = {"channels": 1, "patch_size": 32, "threshold": 0.5, "mode": "analog", "hwa": HWAConfig().as_dict()}
    folder = write_bundle(tmp_path / "good", SPEC, meta, tensor_state_dict(net))
    bundle = read_bundle(folder, "models:/x/1")
    x = torch.rand(1, 1, 32, 32)
    # the digital network holds the analog tiles' weights
    assert sum(p.numel() for p in bundle.digital.parameters()) > 0
    assert torch.allclose(bundle.analog().state_dict()["stem.0.analog_module.tile.weight"],
                          net.state_dict()["stem.0.analog_module.tile.weight"])
    assert bundle.digital(x).shape == (1, 1, 32, 32)
    bad = write_bundle(tmp_path / "bad", SPEC, meta, tensor_state_dict(net))
    _, marker = plant_pickle(bad / "weights.pt", tmp_path, as_torch=True)
    with pytest.raises(ModelError, match=r"^models:/x/2: .*weights.pt: not a valid nasseg model weights file: refused"):
        read_bundle(bad, "models:/x/2")
    assert not marker.exists()
    (bad / "arch.json").unlink()
    with pytest.raises(ModelError, match="not a nasseg model \\(missing arch.json\\)"):
        read_bundle(bad, "models:/x/3")
