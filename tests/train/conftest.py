import pytest
import torch

from geopre.train.depth_model import DepthModel, ModelInfo, save_model


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    """An untrained M model saved as `geopre finetune` saves one (128x64 training size)."""
    torch.manual_seed(0)
    info = ModelInfo(mode="M", width=128, height=64)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    save_model(path, DepthModel(info.arch, info.scales, info.mode), info)
    return path
