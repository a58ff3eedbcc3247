"""Is the synthetic world hard enough to learn from? Measures of how much a test drive can be
answered from training drives without understanding geometry.

* :func:`prior_scores`: the Eigen-protocol errors of a per-pixel prior (the median training depth
  at each pixel) and of a constant. A world whose depth is mostly a function of pixel position lets
  a network score well by memorising that function.
* :func:`patch_reuse`: the fraction of textured test patches that reappear, within a couple of grey
  levels, somewhere in a training image. Exact reuse lets a network match texture to depth.
* :func:`yaw_rates`: the ego car's turning speed from camera-to-world poses.
"""

from __future__ import annotations

import numpy as np

from geopre.train import metrics


def _gt(depth: np.ndarray) -> np.ndarray:
    """Rendered depth (inf = sky) as an evaluation ground truth (0 = no measurement)."""
    return np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)


def prior_scores(train_depths: np.ndarray, test_depths: np.ndarray) -> dict[str, float]:
    """abs_rel of the per-pixel median prior and of a constant on the test depths (Eigen crop, 80 m
    cap), median-scaled per image and metric. Depth arrays are (N, H, W) with inf for sky."""
    capped = np.minimum(train_depths, metrics.MAX_DEPTH)  # sky counts as "far", as a network sees it
    prior = np.median(capped, axis=0)
    valid = (train_depths > metrics.MIN_DEPTH) & (train_depths < metrics.MAX_DEPTH)
    constant = float(np.median(train_depths[valid]))
    scores: dict[str, list[float]] = {}
    for depth in test_depths:
        gt = _gt(depth)
        for name, prediction in (("per_pixel_prior", prior), ("constant", np.full_like(prior, constant))):
            for scaling, median in (("median_scaled", True), ("metric", False)):
                result = metrics.evaluate_depth_pair(gt, 1.0 / prediction, median_scaling=median)
                scores.setdefault(f"{name}_abs_rel_{scaling}", []).append(result.errors["abs_rel"])
    return {key: float(np.mean(values)) for key, values in scores.items()}


def grey(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) to uint8 luma (BT.601)."""
    return np.round(images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)


_BLOCK = 4  # a 16x16 patch is described by its 4x4 grid of 4x4-pixel block means
_BIN = 16  # block means quantised to 16 levels: 16 blocks x 4 bits = one uint64 key


def _block_means(image: np.ndarray) -> np.ndarray:
    """Mean of the 4x4 block whose top-left pixel is (y, x), for every (y, x)."""
    integral = np.pad(image.astype(np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    b = _BLOCK
    sums = integral[b:, b:] - integral[:-b, b:] - integral[b:, :-b] + integral[:-b, :-b]
    return (sums / (b * b)).astype(np.float32)


def _patch_descriptors(image: np.ndarray, patch: int) -> np.ndarray:
    """(H - patch + 1, W - patch + 1, 16) block means of the patch at every offset."""
    means = _block_means(image)
    rows, cols = image.shape[0] - patch + 1, image.shape[1] - patch + 1
    step = patch // 4
    return np.stack([means[i * step:i * step + rows, j * step:j * step + cols]
                     for i in range(4) for j in range(4)], axis=-1)


def _keys(bins: np.ndarray) -> np.ndarray:
    """Pack 16 4-bit bins (last axis) into uint64 keys."""
    shifts = np.arange(16, dtype=np.uint64) * np.uint64(4)
    return np.bitwise_or.reduce(bins.astype(np.uint64) << shifts, axis=-1)


def patch_reuse(train: list[np.ndarray], test: list[np.ndarray], patch: int = 16, tolerance: int = 2,
                samples: int = 3000, min_std: float = 6.0, seed: int = 0, max_probes: int = 4096) -> dict:
    """Fraction of textured ``patch`` x ``patch`` test patches (grey std >= ``min_std``) that match
    some training patch at any offset of any training image within ``tolerance`` grey levels at
    every pixel.

    Every training offset is indexed by a 64-bit key (its 16 block means, quantised to 16 levels).
    A match within ``tolerance`` has every block mean within ``tolerance`` of the query's, so its
    key differs from the query's only in blocks whose mean lies that close to a bin edge: probing
    those neighbour bins finds every candidate, which is then verified pixel by pixel. Images are
    (H, W) uint8 grey.
    """
    if patch % 4:
        raise ValueError(f"patch size must be a multiple of 4, got {patch}")
    rng = np.random.default_rng(seed)
    keys, where = [], []
    for k, image in enumerate(train):
        descriptors = _patch_descriptors(image, patch)
        keys.append(_keys(np.minimum(descriptors // _BIN, 15)).ravel())
        ys, xs = np.divmod(np.arange(descriptors.shape[0] * descriptors.shape[1]), descriptors.shape[1])
        where.append(np.stack([np.full_like(ys, k), ys, xs], axis=1).astype(np.int32))
    keys_all = np.concatenate(keys)
    order = np.argsort(keys_all, kind="stable")
    keys_sorted, where_sorted = keys_all[order], np.concatenate(where)[order]
    del keys_all, keys, where
    stack = np.stack(train)
    offsets = np.arange(patch)

    # Candidate queries: textured patches of the test images, sampled uniformly.
    per_image = 4 * samples // len(test) + 1
    queries = [(k, y, x) for k, image in enumerate(test)
               for y, x in zip(rng.integers(0, image.shape[0] - patch + 1, per_image),
                               rng.integers(0, image.shape[1] - patch + 1, per_image))]
    queries = [queries[i] for i in rng.permutation(len(queries))]
    tested = matched = skipped = 0
    for k, y, x in queries:
        if tested >= samples:
            break
        q = test[k][y:y + patch, x:x + patch].astype(np.int16)
        if q.std() < min_std:
            continue
        tested += 1
        means = q.reshape(4, patch // 4, 4, patch // 4).mean(axis=(1, 3)).ravel()
        base = np.minimum(means // _BIN, 15).astype(np.int64)
        # The neighbour bin a match may fall into, for blocks within ``tolerance`` of an edge.
        low = (means - base * _BIN <= tolerance) & (base > 0)
        high = ((base + 1) * _BIN - means <= tolerance) & (base < 15)
        alternatives = [[b] + ([b - 1] if lo else []) + ([b + 1] if hi else [])
                        for b, lo, hi in zip(base, low, high)]
        if np.prod([len(a) for a in alternatives]) > max_probes:
            skipped += 1
            continue
        probes = np.array(np.meshgrid(*alternatives, indexing="ij")).reshape(16, -1).T
        probe_keys = _keys(probes)
        start = np.searchsorted(keys_sorted, probe_keys, side="left")
        stop = np.searchsorted(keys_sorted, probe_keys, side="right")
        found = [where_sorted[a:b] for a, b in zip(start, stop) if b > a]
        if not found:
            continue
        candidates = np.concatenate(found)
        for chunk in range(0, len(candidates), 4096):
            c = candidates[chunk:chunk + 4096]
            pixels = stack[c[:, 0, None, None], c[:, 1, None, None] + offsets[None, :, None],
                           c[:, 2, None, None] + offsets[None, None, :]].astype(np.int16)
            if (np.abs(pixels - q).max(axis=(1, 2)) <= tolerance).any():
                matched += 1
                break
    return {"fraction": matched / max(tested, 1), "tested": tested, "matched": matched,
            "skipped_ambiguous": skipped}


def yaw_rates(poses: np.ndarray, fps: float) -> np.ndarray:
    """Yaw rate (deg/s, positive = turning right) between consecutive camera-to-world poses
    (N, 4, 4) in the world frame with y down: the heading is the camera z axis in the x-z plane."""
    forward = poses[:, :3, 2]
    heading = np.unwrap(np.arctan2(forward[:, 0], forward[:, 2]))
    return np.rad2deg(np.diff(heading)) * fps
