import pytest
import torch

from geopre.shards.sources import SourceSpec
from geopre.shards.write import WriteConfig, write_shards
from geopre.synth import kitti
from geopre.train.depth_model import DepthModel, ModelInfo, save_model


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    """An untrained M model saved as `geopre finetune` saves one (128x64 training size)."""
    torch.manual_seed(0)
    info = ModelInfo(mode="M", width=128, height=64)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    save_model(path, DepthModel(info.arch, info.scales, info.mode), info)
    return path


@pytest.fixture(scope="session")
def pretrain_shards(tmp_path_factory):
    """Shards of a synthetic KITTI-style tree at 96x32 (pretraining tests train at 64x32)."""
    root = tmp_path_factory.mktemp("kitti")
    kitti.write_kitti(root, drives=4, test_drives=1, frames=8, width=96, height=32, seed=2, save_depth=False)
    out = tmp_path_factory.mktemp("shards")
    write_shards([SourceSpec("kitti", root)], WriteConfig(out, maxcount=4, val_fraction=0.34, seed=0))
    return out
