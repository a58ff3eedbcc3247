"""The study's statistics: paired tests over seeds, a bootstrap interval, Holm's correction, and the
rules that turn them (and learning curves) into the report's words.

Pure functions of numbers, each tested against a textbook value. No scipy: it is not a dependency
of geopre, and Student's t needs only the regularised incomplete beta function.

Why these choices: the cells of an init and its scratch baseline share the seed (same few-shot
subset, same decoder start, same data order; only the encoder weights differ), so the test is a
*paired* t-test over seeds. With 5 pairs an exact Wilcoxon signed-rank test cannot go below
p = 2 / 2^5 = 0.0625, so it could never support a claim at 0.05 and is not used. The interval
resamples both what a rerun changes (seeds) and what a new test set changes (frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
CONVERGED_IMPROVEMENT = 0.02  # the last quarter of training improves val abs_rel by less than 2 % (relative)
LAST_PART = 0.25


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function, for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom: P(|T| >= |t|)."""
    if math.isnan(t):
        return 1.0
    if math.isinf(t):
        return 0.0
    return regularized_beta(df / 2.0, 0.5, df / (df + t * t))


@dataclass(frozen=True)
class PairedTest:
    mean_gap: float  # mean over pairs of (baseline - candidate): positive when the candidate is lower
    t: float
    df: int
    p: float


def paired_t_test(baseline: list[float], candidate: list[float]) -> PairedTest:
    """Paired t-test of ``baseline[i] - candidate[i]`` against 0 (two-sided)."""
    gaps = np.asarray(baseline, dtype=np.float64) - np.asarray(candidate, dtype=np.float64)
    if gaps.ndim != 1 or len(gaps) < 2:
        raise ValueError(f"a paired t-test needs at least 2 pairs of equal length, got {gaps.shape}")
    mean, sd = float(gaps.mean()), float(gaps.std(ddof=1))
    if sd == 0.0:
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(len(gaps)))
    return PairedTest(mean, t, len(gaps) - 1, t_two_sided_p(t, len(gaps) - 1))


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input's order (monotone, capped at 1)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda k: p_values[k])
    adjusted = [0.0] * m
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[k]))
        adjusted[k] = running
    return adjusted


def bootstrap_gap_interval(baseline: np.ndarray, candidate: np.ndarray, resamples: int = 2000,
                           level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean gap ``baseline - candidate`` over seeds and test frames.

    ``baseline`` and ``candidate`` are (seeds, frames) per-frame errors of paired runs. Each resample
    draws seeds with replacement and, independently, frames with replacement (the same frames for
    every seed and both inits, so pairs stay pairs), and takes the mean gap.
    """
    gaps = np.asarray(baseline, dtype=np.float64) - np.asarray(candidate, dtype=np.float64)
    if gaps.ndim != 2 or gaps.size == 0:
        raise ValueError(f"need (seeds, frames) arrays of equal shape, got {gaps.shape}")
    rng = np.random.default_rng(seed)
    seeds, frames = gaps.shape
    means = np.empty(resamples)
    for k in range(resamples):
        rows = rng.integers(0, seeds, seeds)
        cols = rng.integers(0, frames, frames)
        means[k] = gaps[np.ix_(rows, cols)].mean()
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def comparison_verdict(adjusted_p: float, interval: tuple[float, float]) -> str:
    """"held" only for a Holm-adjusted p < 0.05 with the gap's interval above 0 (the candidate
    better); "reversed" for the same evidence the other way; "not shown" otherwise."""
    low, high = interval
    if adjusted_p < ALPHA and low > 0:
        return "held"
    if adjusted_p < ALPHA and high < 0:
        return "reversed"
    return "not shown"


def beats_prior(model: dict[str, float], prior: dict[str, float]) -> bool:
    """A model learned something only when it is below the per-pixel prior on abs_rel *and* rmse."""
    return model["abs_rel"] < prior["abs_rel"] and model["rmse"] < prior["rmse"]


def convergence(steps: list[int], values: list[float], total_steps: int) -> dict:
    """Did the last quarter of training improve val abs_rel by less than 2 % (relative)?

    The reference is the last validation at or before 75 % of ``total_steps``; the improvement is
    from it to the best validation after it. ``converged`` is None when no validation lies on one
    side of that point (too few validations to tell).
    """
    cut = (1.0 - LAST_PART) * total_steps
    before = [v for s, v in zip(steps, values) if s <= cut]
    after = [v for s, v in zip(steps, values) if s > cut]
    if not before or not after:
        return {"converged": None, "improvement": None}
    improvement = (before[-1] - min(after)) / before[-1]
    return {"converged": bool(improvement < CONVERGED_IMPROVEMENT), "improvement": float(improvement)}


def gain_trend(gaps: list[float]) -> str:
    """How the gain (scratch minus pretrained test abs_rel, in step order) ends against its peak:
    "persists" (the last gap is at least 75 % of the largest), "shrinks" (25-75 %), "vanishes" (below
    25 %, or not positive), or "never showed" (no positive gap at any length)."""
    peak = max(gaps)
    if peak <= 0:
        return "never showed"
    last = gaps[-1]
    if last >= 0.75 * peak:
        return "persists"
    if last > 0.25 * peak:
        return "shrinks"
    return "vanishes"
