import random

import numpy as np
import pytest
import torch

from geopre.train.checkpoint import Checkpointer, TrainingDiverged, check_finite


def make():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    return model, torch.optim.Adam(model.parameters(), lr=1e-2)


def step(model, opt):
    x = torch.randn(16, 4)
    noise = np.random.randn() + random.random()  # every RNG stream feeds the "data"
    loss = ((model(x) - x.sum(1, keepdim=True) - noise) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def test_resume_continues_the_loss_curve_exactly(tmp_path):
    model, opt = make()
    straight = [step(model, opt) for _ in range(10)]

    model, opt = make()
    ckpt = Checkpointer(tmp_path)
    first = [step(model, opt) for _ in range(5)]
    ckpt.save(5, 0, model, opt)
    [step(model, opt) for _ in range(2)]  # work lost in the "crash"

    model, opt = make()
    resumed = ckpt.load(model, opt)
    assert resumed.step == 5
    rest = [step(model, opt) for _ in range(5)]
    np.testing.assert_allclose(first + rest, straight, rtol=0, atol=0)


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path):
    model, opt = make()
    ckpt = Checkpointer(tmp_path, keep=2)
    good = ckpt.save(1, 0, model, opt)
    # A save killed half-way leaves only a temporary folder behind.
    (tmp_path / "checkpoints" / ".tmp-step_00000002").mkdir()
    assert ckpt.latest() == good
    for s in (2, 3, 4):
        ckpt.save(s, 0, model, opt)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert kept == ["step_00000003", "step_00000004"]
    assert ckpt.latest().name == "step_00000004"


def test_weights_file_is_plain_safetensors(tmp_path):
    from safetensors.torch import load_file

    model, opt = make()
    path = Checkpointer(tmp_path).save(7, 1, model, opt)
    weights = load_file(str(path / "model.safetensors"))
    assert set(weights) == set(model.state_dict())


def test_non_finite_loss_stops_with_a_message_naming_the_last_checkpoint(tmp_path):
    check_finite(torch.tensor(1.0), 3, None)
    with pytest.raises(TrainingDiverged, match="last good checkpoint: .*step_00000002"):
        check_finite(torch.tensor(float("nan")), 3, tmp_path / "step_00000002")
    with pytest.raises(TrainingDiverged, match="inf"):
        check_finite(torch.tensor(float("inf")), 3, None)


def test_resume_without_checkpoint_is_a_user_error(tmp_path):
    from geopre.errors import UserError

    model, opt = make()
    with pytest.raises(UserError, match="no checkpoint to resume"):
        Checkpointer(tmp_path).load(model, opt)
