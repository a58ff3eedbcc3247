"""Training-step speed: geometric pretraining vs geopre's monodepth2-style M step, same size and
batch, in one run (issue target: a pretrain step costs no more per triplet than an M step).

Both steps are forward + backward + Adam on random triplets already on the device, so the number
is the network's cost, not the loader's. On CUDA the steps run with AMP (bf16/fp16) and
channels_last, as the training commands do.
"""

from __future__ import annotations

import os
import time

import torch

from geopre.model.flow import GeometricPretrainNet
from geopre.model.losses import pretrain_loss
from geopre.train.runtime import Runtime

SIZE = (640, 192)  # paper III-D
BATCH = int(os.environ.get("GEOPRE_BENCH_BATCH", 20))  # paper III-D: 20 triplets at 640x192
STEPS = int(os.environ.get("GEOPRE_BENCH_STEPS", 3))


def _triplets(runtime: Runtime) -> torch.Tensor:
    w, h = SIZE
    return torch.rand(BATCH, 3, 3, h, w, device=runtime.device)


def _time(step, runtime: Runtime) -> float:
    step()  # warm-up: allocator, cuDNN autotuning
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(STEPS):
        step()
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()
    return BATCH * STEPS / (time.perf_counter() - start)


def pretrain_step_rate(runtime: Runtime) -> float:
    model = runtime.prepare(GeometricPretrainNet())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = runtime.grad_scaler()
    images = _triplets(runtime)

    def step():
        prev, ref, nxt = images.unbind(1)
        with runtime.autocast():
            flows = model(torch.cat([ref, ref]), torch.cat([nxt, prev]))
        loss, _ = pretrain_loss({s: f.float() for s, f in flows.items()}, torch.cat([ref, ref]), torch.cat([nxt, prev]))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return _time(step, runtime)


def monodepth2_m_step_rate(runtime: Runtime) -> float | None:
    try:
        from geopre.train.finetune import benchmark_step
    except ImportError:
        return None
    return _time(benchmark_step(runtime, _triplets(runtime)), runtime)


def run(out_dir=None) -> dict:
    runtime = Runtime.create("auto", amp=True)
    torch.manual_seed(0)
    results = {"device": str(runtime.device), "amp": str(runtime.amp_dtype), "size": f"{SIZE[0]}x{SIZE[1]}",
               "batch": BATCH, "threads": torch.get_num_threads()}
    results["pretrain_triplets_per_s"] = round(pretrain_step_rate(runtime), 3)
    m_rate = monodepth2_m_step_rate(runtime)
    if m_rate is not None:
        results["finetune_M_triplets_per_s"] = round(m_rate, 3)
        results["pretrain_over_M_speed"] = round(results["pretrain_triplets_per_s"] / m_rate, 3)
    return results


if __name__ == "__main__":
    print(run())
