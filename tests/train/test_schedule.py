import pytest
import torch

from geopre.train.schedule import epoch_indices, set_lr, step_decay_lr, steps_per_epoch


def test_step_decay_is_monodepth2s_x01_after_15_epochs():
    assert step_decay_lr(1e-4, 14, 15) == 1e-4
    assert step_decay_lr(1e-4, 15, 15) == pytest.approx(1e-5)
    assert step_decay_lr(1e-4, 19, 15) == pytest.approx(1e-5)
    assert step_decay_lr(1e-4, 30, 15) == pytest.approx(1e-6)


def test_epoch_order_is_reproducible_changes_per_epoch_and_splits_ranks_evenly():
    assert epoch_indices(10, 2, seed=0, epoch=3) == epoch_indices(10, 2, seed=0, epoch=3)
    assert epoch_indices(10, 2, seed=0, epoch=3) != epoch_indices(10, 2, seed=0, epoch=4)
    shares = [epoch_indices(11, 2, seed=0, epoch=0, rank=r, world_size=2) for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == 2 * steps_per_epoch(11, 2, 2) == 4
    assert not set(shares[0]) & set(shares[1])


def test_set_lr_scales_a_group_by_its_factor():
    depth, pose = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([{"params": [depth]}, {"params": [pose], "lr_factor": 10.0}], lr=1.0)
    set_lr(optimizer, 1e-4)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([1e-4, 1e-3])
