"""From records to verdicts: whether a model learned (beat the per-pixel prior), the paired
comparison of a pretrained init with its comparator (:func:`compare`: paired t-test, bootstrap
interval; the tests themselves are in :mod:`geopre.reproduce.statistics`), Holm over a claim's
comparisons (:func:`judge`), and the claims' paragraphs and the rules they follow (:func:`claims`,
:data:`RULES`). A model that does not beat the per-pixel prior "did not learn" and supports no claim.
"""

from __future__ import annotations

import numpy as np

from geopre.reproduce import statistics
from geopre.reproduce.collect import metric_values
from geopre.reproduce.layout import init_label
from geopre.train.metrics import METRIC_NAMES


def best_prior(baselines: dict, dataset: str, mode: str) -> dict[str, float] | None:
    """Per metric, the better of the per-pixel median and mean priors: the bar a model must clear."""
    rows = baselines.get(dataset, {}).get("M" if dataset == "kitti" and mode == "M" else "S")
    if not rows:
        return None
    priors = [rows[name] for name in ("per-pixel median", "per-pixel mean")]
    return {m: (max if m in ("a1", "a2", "a3") else min)(p[m] for p in priors) for m in METRIC_NAMES}


def learned(records, baselines, mode, fraction, init, dataset) -> bool | None:
    """Did the cells' mean beat the per-pixel prior on abs_rel and rmse? None: nothing to judge."""
    prior = best_prior(baselines, dataset, mode)
    abs_rel = metric_values(records, mode, fraction, init, dataset, "abs_rel")
    if prior is None or not abs_rel:
        return None
    rmse = metric_values(records, mode, fraction, init, dataset, "rmse")
    return statistics.beats_prior({"abs_rel": float(np.mean(abs_rel)), "rmse": float(np.mean(rmse))}, prior)


def compare(records, baselines, mode, fraction, dataset, init, base_init) -> dict | None:
    """The seeds both inits ran, paired: per-seed abs_rel gap (t-test) and the seeds x frames interval."""
    def by_seed(which):
        return {r["cell"].seed: r for r in records if r[dataset] is not None and r["cell"].mode == mode
                and r["cell"].fraction == fraction and r["cell"].init == which}

    base, cand = by_seed(base_init), by_seed(init)
    seeds = sorted(set(base) & set(cand))
    if len(seeds) < 2:
        return None
    b = [base[s][dataset]["abs_rel"] for s in seeds]
    c = [cand[s][dataset]["abs_rel"] for s in seeds]
    test = statistics.paired_t_test(b, c)
    frames = f"{dataset}_frames"
    interval = None
    if all(base[s][frames] and cand[s][frames] for s in seeds):
        interval = statistics.bootstrap_gap_interval(np.array([base[s][frames]["abs_rel"] for s in seeds]),
                                                     np.array([cand[s][frames]["abs_rel"] for s in seeds]))
    learnt = [learned(records, baselines, mode, fraction, i, dataset) for i in (base_init, init)]
    return {"mode": mode, "fraction": fraction, "dataset": dataset, "init": init, "base": base_init,
            "seeds": seeds, "base_mean": float(np.mean(b)), "cand_mean": float(np.mean(c)), "test": test,
            "interval": interval, "learned": all(x is not False for x in learnt)}


def judge(comparisons: list[dict]) -> list[dict]:
    """Holm over one claim's comparisons, then each verdict: "did not learn" when either side is not
    below the per-pixel prior, else :func:`statistics.comparison_verdict`."""
    adjusted = statistics.holm([c["test"].p for c in comparisons])
    for c, p in zip(comparisons, adjusted):
        c["adjusted_p"] = p
        if not c["learned"]:
            c["verdict"] = "did not learn"
        elif c["interval"] is None:
            c["verdict"] = "not shown"
        else:
            c["verdict"] = statistics.comparison_verdict(p, c["interval"])
    return comparisons


def summarise(verdicts: list[str]) -> str:
    """One claim's verdict from its comparisons' (see :func:`judge`), with the counts."""
    n, held, reversed_ = len(verdicts), verdicts.count("held"), verdicts.count("reversed")
    untrained = verdicts.count("did not learn")
    rest = "" if held + reversed_ == n else ", the rest not shown or untrained"
    if untrained == n:
        return f"not measured: no comparison had two models that learned (all {n} did not learn)"
    if held == n:
        return f"held ({n} of {n} comparisons)"
    if held and reversed_:
        return f"mixed ({held} of {n} comparisons held, {reversed_} reversed{rest})"
    if held:
        return f"held in part ({held} of {n} comparisons{rest})"
    if reversed_:
        return f"did not hold: the comparator was better in {reversed_} of {n} comparisons{rest}"
    extra = f"; {untrained} of them did not learn" if untrained else ""
    return f"not shown (none of {n} comparisons held{extra})"


def claims(records, study, baselines) -> list[str]:
    """One paragraph per claim: its comparisons (each pretrained init against what its encoder
    started from), Holm-adjusted within the claim, and the verdict that follows from them."""
    geo = [i for i in study.inits if i.startswith("geo-")]
    few = [f for f in sorted(study.preset.fractions) if f < 1]

    def paragraph(title, comparisons, context):
        found = judge([c for c in comparisons if c is not None])
        if not found:
            return f"**{title}: not measured.**"
        parts = []
        for c in found:
            interval = ("no per-frame errors" if c["interval"] is None
                        else "95 % CI of the gap [{:+.3f}, {:+.3f}]".format(*c["interval"]))
            parts.append(f"{c['mode']} {c['fraction']:.0%}: {init_label(c['init'])} {c['cand_mean']:.3f} vs "
                         f"{init_label(c['base'])} {c['base_mean']:.3f} (gap {c['test'].mean_gap:+.3f}, paired t "
                         f"{c['test'].t:.2f}, p {c['test'].p:.3f}, Holm-adjusted {c['adjusted_p']:.3f}, {interval}, "
                         f"{len(c['seeds'])} seeds: **{c['verdict']}**)")
        return f"**{title}: {summarise([c['verdict'] for c in found])}.** {context} " + "; ".join(parts) + "."

    def comparisons(groups, dataset):
        return [compare(records, baselines, mode, fraction, dataset, init, study.comparator(init))
                for mode, fraction in groups for init in geo]

    return [
        paragraph("Claim 1, accuracy (V-A)", comparisons([("S", 1.0)] + ([("M", 1.0)] if study.preset.mono else []),
                                                         "kitti"),
                  "KITTI-style Eigen test abs_rel (mean over seeds) at 100 % of the split:"),
        paragraph("Claim 2, few-shot (V-B)", comparisons([("S", f) for f in few], "kitti"),
                  "KITTI-style Eigen test abs_rel with " + " and ".join(f"{f:.0%}" for f in few)
                  + " of the split (S mode):"),
        paragraph("Claim 3, generalisation (V-C)",
                  comparisons([("S", f) for f in sorted(study.preset.fractions)], "city"),
                  "The S models, trained on the KITTI-style tree, scored on the Cityscapes-style test set "
                  "(a separate tree nothing was trained on; median scaling, worst 5 % dropped), abs_rel:"),
    ]


RULES = (
    "**How verdicts are reached.** A comparison pairs each seed of a pretrained init with the same seed "
    "of what its encoder started from (scratch, or ImageNet for the paper's ImageNet -> geometric "
    "encoders): same few-shot subset, decoder start and data order, only the encoder weights differ. "
    "It is *held* only when a paired t-test over seeds, Holm-corrected over the claim's comparisons, "
    "gives p < 0.05 **and** the 95 % bootstrap interval of the abs_rel gap (seeds and test frames "
    "resampled) excludes 0 on the pretrained side; *reversed* for the same evidence the other way; "
    "*not shown* otherwise. A model that is not below the per-pixel prior (the better of the median "
    "and mean of the training ground truth at each pixel) on abs_rel **and** rmse *did not learn*, and "
    "a comparison with such a model supports no claim. A cell *converged* when the last quarter of "
    "its training improved val abs_rel by less than 2 % (relative) over the last validation before "
    "it; the gain along training *persists* when its last value is at least 75 % of its peak, "
    "*shrinks* at 25-75 %, *vanishes* below.")

