"""Where and how a training run executes: device, mixed precision, and torchrun/DDP ranks.

Shared by ``geopre pretrain`` and ``geopre finetune`` so both behave the same on a laptop CPU,
one GPU, or many GPUs on many machines: CUDA with automatic mixed precision (bf16 where the GPU
supports it, else fp16 with a gradient scaler) and channels_last; plain fp32 on the CPU; DDP
when launched by torchrun (or by :func:`launch`, torchrun's launcher for one machine), with only
rank 0 writing files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import torch

from geopre.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a ``--device`` value (``auto``: CUDA when PyTorch sees a GPU). A
    device that is not there is a one-line UserError, not CUDA's initialisation traceback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: PyTorch sees {torch.cuda.device_count()} GPU(s), "
                            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


@dataclass
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None  # None: full precision
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    channels_last: bool = False

    @classmethod
    def create(cls, device: str = "auto", amp: bool = True) -> "Runtime":
        """Pick the device (``auto``: CUDA when present) and join the torchrun group if any."""
        rank = int(os.environ.get("RANK", 0))
        world_size = int(os.environ.get("WORLD_SIZE", 1))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        dev = resolve_device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
        amp_dtype = None
        if amp and dev.type == "cuda":
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if world_size > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if dev.type == "cuda" else "gloo"
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            torch.distributed.init_process_group(backend=backend)
        return cls(dev, amp_dtype, rank, world_size, local_rank, channels_last=dev.type == "cuda")

    @property
    def is_main(self) -> bool:
        """Only rank 0 logs and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        # Only fp16 needs loss scaling; bf16 has fp32's exponent range.
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def prepare(self, model: torch.nn.Module, compile_model: bool = False) -> torch.nn.Module:
        """Move to the device, channels_last on GPU, optionally torch.compile, wrap in DDP."""
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if compile_model:
            model = torch.compile(model)
        if self.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        return model

    def to_device(self, batch):
        """Move a tensor, or a dict/list of tensors, to the device (non-blocking from pinned memory)."""
        if isinstance(batch, torch.Tensor):
            moved = batch.to(self.device, non_blocking=True)
            if self.channels_last and moved.dim() == 4:
                moved = moved.contiguous(memory_format=torch.channels_last)
            return moved
        if isinstance(batch, dict):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch

    @staticmethod
    def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        """Backward and update through the grad scaler (a no-op scaler outside fp16 AMP)."""
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def sum_across_ranks(self, *values: float) -> list[float]:
        """Each value summed over all ranks (every rank must call this, with as many values)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, device=self.device, dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def mean_across_ranks(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over all ranks (every rank must call this, with the same keys): what
        the logs show under DDP, rather than rank 0's own batch."""
        sums = self.sum_across_ranks(*values.values())
        return {key: total / self.world_size for key, total in zip(values, sums)}

    def close(self) -> None:
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP and/or torch.compile wrappers (for saving weights)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


class _RankUserError(Exception):
    """A UserError raised in a launched process, marked so the launcher can print it as one."""


def _run_rank(function: Callable, *args) -> Any:
    try:
        return function(*args)
    except UserError as err:  # re-raised (not returned) so the launcher stops the other ranks
        raise _RankUserError(str(err)) from None


def launch(function: Callable, nproc: int, *args) -> Any:
    """Run ``function(*args)`` in ``nproc`` processes on this machine as one DDP group, as
    ``torchrun --standalone --nproc-per-node N`` would (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR
    and a free MASTER_PORT set in each); returns rank 0's result. ``function`` must be importable
    by name (the processes are spawned). A UserError in any process stops all of them and is
    raised here as one UserError."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if "WORLD_SIZE" in os.environ:
        raise UserError("already running under torchrun: leave out --nproc (torchrun sets the processes)")
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"geopre-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, start_method="spawn",
                          monitor_interval=0.1)
    # The launcher logs a failed process's traceback; the error raised below carries it already.
    previous, logging.root.manager.disable = logging.root.manager.disable, logging.ERROR
    try:
        return elastic_launch(config, _run_rank)(function, *args)[0]
    except ChildFailedError as err:
        prefix = f"{_RankUserError.__name__}: "
        for failure in err.failures.values():
            message = failure.message.get("message", "") if isinstance(failure.message, dict) else str(failure.message)
            if message.startswith(prefix):
                raise UserError(message[len(prefix):]) from None
        raise
    finally:
        logging.disable(previous)
