"""Training-step speed: geometric pretraining vs geopre's monodepth2-style M step, same size and
batch, in one run (issue target: a pretrain step costs no more per triplet than an M step, since
both are two ResNet-18s plus small decoders).

Each step is forward + backward + Adam on random triplets already on the device (loading overlaps
with compute in workers, and is measured by the shards benchmark). On CUDA both steps are timed
in float32 and with the training commands' settings (AMP bf16/fp16, channels_last).
"""

from __future__ import annotations

import os
import time

import torch

from geopre.model.flow import GeometricPretrainNet
from geopre.model.losses import pretrain_loss
from geopre.train.depth_model import DepthModel
from geopre.train.finetune import FinetuneConfig, compute_loss
from geopre.train.runtime import Runtime

WIDTH, HEIGHT = 640, 192  # paper III-D
BATCH = int(os.environ.get("GEOPRE_BENCH_BATCH", 20))  # paper III-D: 20 triplets at 640x192
STEPS = int(os.environ.get("GEOPRE_BENCH_STEPS", 0)) or None  # default: 2 on CPU, 20 on CUDA


def _triplets(runtime: Runtime) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return runtime.to_device(torch.rand(BATCH, 3, 3, HEIGHT, WIDTH, generator=generator))


def pretrain_step(runtime: Runtime):
    model = runtime.prepare(GeometricPretrainNet())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = runtime.grad_scaler()
    prev, ref, nxt = _triplets(runtime).unbind(1)
    target, source = torch.cat([ref, ref]), torch.cat([nxt, prev])

    def step():
        with runtime.autocast():
            flows = model(ref, [nxt, prev])
        loss, _ = pretrain_loss({s: f.float() for s, f in flows.items()}, target, source)
        runtime.optimizer_step(loss, optimizer, scaler)

    return step


def monodepth2_m_step(runtime: Runtime):
    config = FinetuneConfig(data_root=".", run_dir=".", size=(WIDTH, HEIGHT), batch_size=BATCH)
    model = runtime.prepare(DepthModel(config.arch, config.scales, "M")).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scaler = runtime.grad_scaler()
    prev, ref, nxt = _triplets(runtime).unbind(1)
    images = {"0": ref, "-1": prev, "1": nxt}
    K = torch.tensor([[0.58 * WIDTH, 0, WIDTH / 2], [0, 1.92 * HEIGHT, HEIGHT / 2], [0, 0, 1]])
    batch = {"images": images, "inputs": images, "K": runtime.to_device(K.repeat(BATCH, 1, 1)),
             "stereo_tx": runtime.to_device(torch.full((BATCH,), 0.1))}

    def step():
        loss, _ = compute_loss(model, batch, config, runtime)
        runtime.optimizer_step(loss, optimizer, scaler)

    return step


def triplets_per_s(make_step, runtime: Runtime) -> float:
    torch.manual_seed(0)
    step = make_step(runtime)
    steps = STEPS or (20 if runtime.device.type == "cuda" else 2)
    step()  # warm-up: allocator, cuDNN algorithm choice
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()
    return BATCH * steps / (time.perf_counter() - start)


def run(out_dir=None) -> dict:
    results = {"size": f"{WIDTH}x{HEIGHT}", "batch": BATCH, "cpu_threads": torch.get_num_threads()}
    settings = [("cpu", False)] if not torch.cuda.is_available() else [("cuda", False), ("cuda", True)]
    for device, amp in settings:
        runtime = Runtime.create(device, amp)
        label = f"{device}_{'amp_' + str(runtime.amp_dtype).split('.')[-1] if amp else 'fp32'}"
        pretrain = triplets_per_s(pretrain_step, runtime)
        m_step = triplets_per_s(monodepth2_m_step, runtime)
        results[f"pretrain_{label}_triplets_per_s"] = round(pretrain, 3)
        results[f"finetune_M_{label}_triplets_per_s"] = round(m_step, 3)
        results[f"pretrain_over_M_speed_{label}"] = round(pretrain / m_step, 3)
    return results


if __name__ == "__main__":
    print(run())
