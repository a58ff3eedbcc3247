"""Frame triplets (I_{t-1}, I_t, I_{t+1}) for monocular pretraining, cut after the static filter.

The rule: every kept frame ``t`` is the centre of a triplet when the nearest kept frame before it,
``p``, and the nearest kept frame after it, ``n``, are both at most ``max_gap`` subsampled frames
away (``t - p <= max_gap`` and ``n - t <= max_gap``). With the default ``max_gap = 1`` a triplet is
three adjacent subsampled frames, all kept: any dropped (static) frame breaks the chain, so no
triplet spans a stop. A larger ``max_gap = g`` bridges runs of up to ``g - 1`` dropped frames
(a jittery flow estimate), never a stop of ``g`` or more frames.
"""

from __future__ import annotations


def make_triplets(kept: list[bool], max_gap: int = 1) -> list[tuple[int, int, int]]:
    """Triplets ``(previous, centre, next)`` of subsampled-frame indices, in stream order."""
    if max_gap < 1:
        raise ValueError(f"max_gap must be at least 1, got {max_gap}")
    indices = [i for i, keep in enumerate(kept) if keep]
    return [(p, t, n) for p, t, n in zip(indices, indices[1:], indices[2:]) if t - p <= max_gap and n - t <= max_gap]
