"""Fine-tuning speed: samples/s of one monodepth2 M training step (paper IV).

One step = depth network on the target, pose network on both temporal pairs, the multi-scale
depth loss with auto-masking, backward and an Adam update, on random 640x192 triplets (data
loading excluded: it overlaps with compute in workers). Measured at monodepth2's batch of 12 and
at batch 2, on the CPU with all its threads, and on CUDA (float32 and mixed precision) when present.
"""

from __future__ import annotations

import time

import torch

from geopre.train.depth_model import DepthModel
from geopre.train.finetune import FinetuneConfig, compute_loss
from geopre.train.runtime import Runtime

WIDTH, HEIGHT = 640, 192


def _batch(batch_size: int, device: torch.device) -> dict:
    generator = torch.Generator().manual_seed(0)
    images = {key: torch.rand(batch_size, 3, HEIGHT, WIDTH, generator=generator).to(device)
              for key in ("0", "-1", "1")}
    K = torch.tensor([[0.58 * WIDTH, 0, WIDTH / 2], [0, 1.92 * HEIGHT, HEIGHT / 2], [0, 0, 1]]).repeat(batch_size, 1, 1)
    return {"images": images, "inputs": images, "K": K.to(device),
            "stereo_tx": torch.full((batch_size,), 0.1, device=device)}


def samples_per_s(batch_size: int, device: str, steps: int, amp: bool = False) -> float:
    torch.manual_seed(0)
    runtime = Runtime.create(device, amp)
    device = runtime.device
    config = FinetuneConfig(data_root=".", run_dir=".", width=WIDTH, height=HEIGHT, batch_size=batch_size)
    model = runtime.prepare(DepthModel(config.arch, config.scales, "M")).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    batch = runtime.to_device(_batch(batch_size, device))
    scaler = runtime.grad_scaler()

    def step():
        loss, _ = compute_loss(model, batch, config, runtime)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    step()  # warm-up: allocator, kernels selection
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch_size * steps / (time.perf_counter() - start)


def cuda_results() -> dict:
    return {"finetune_M_step_640x192_batch12_cuda_fp32_samples_per_s": samples_per_s(12, "cuda", 20),
            "finetune_M_step_640x192_batch12_cuda_amp_samples_per_s": samples_per_s(12, "cuda", 20, amp=True)}


def run(out_dir=None) -> dict:
    results = {
        "finetune_M_step_640x192_batch2_cpu_samples_per_s": samples_per_s(2, "cpu", steps=3),
        "finetune_M_step_640x192_batch12_cpu_samples_per_s": samples_per_s(12, "cpu", steps=2),
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        results.update(cuda_results())
    return {k: round(float(v), 3) for k, v in results.items()}


if __name__ == "__main__":
    print(run())
