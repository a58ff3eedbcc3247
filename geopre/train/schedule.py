"""Epoch bookkeeping shared by the training loops: learning-rate schedule and sample order.

Both are pure functions of (config, epoch), so a resumed run recomputes exactly what the
interrupted one would have used, with no scheduler or sampler state to save.
"""

from __future__ import annotations

import numpy as np
import torch


def step_decay_lr(base_lr: float, epoch: int, decay_epochs: int, factor: float = 0.1) -> float:
    """``base_lr`` times ``factor`` once per completed ``decay_epochs`` epochs (PyTorch's StepLR).

    monodepth2 uses 1e-4 decayed x0.1 after 15 of 20 epochs.
    """
    if decay_epochs <= 0:
        return base_lr
    return base_lr * factor ** (epoch // decay_epochs)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every parameter group's rate: ``lr`` times the group's ``lr_factor`` (1 when it has none)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_factor", 1.0)


def epoch_indices(count: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """This rank's shuffled sample indices for ``epoch``, whole batches only.

    The permutation depends only on (seed, epoch); every rank takes an interleaved share of the
    same permutation, truncated so all ranks run the same number of full batches (DDP needs equal
    step counts). Skip ``k * batch_size`` leading entries to resume after ``k`` steps.
    """
    order = np.random.default_rng([seed, epoch]).permutation(count)
    per_rank_batches = count // (batch_size * world_size)
    share = order[: per_rank_batches * batch_size * world_size][rank::world_size]
    return share.tolist()


def steps_per_epoch(count: int, batch_size: int, world_size: int = 1) -> int:
    return count // (batch_size * world_size)
