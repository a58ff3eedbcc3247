"""The study's pure parts (schedules, verdicts, cells) and the tiny preset end to end."""

import json
import re
import subprocess
import sys

import pytest

from geopre.reproduce.collect import mean_std
from geopre.reproduce.layout import Cell, Study, init_label
from geopre.reproduce.presets import DEMO, PRESETS, get_preset
from geopre.reproduce.report import code_commit, command_line, wall_seconds
from geopre.reproduce.verdicts import summarise
from geopre.reproduce import statistics
from geopre.reproduce.study import estimate_seconds, plan, run_study, schedule
from geopre.errors import UserError


def test_schedule_gives_every_fraction_the_same_steps():
    full = schedule(frames=400, fraction=1.0, batch=8, steps=150, validations=5)
    few = schedule(frames=400, fraction=0.05, batch=8, steps=150, validations=5)
    assert full == {"batch_size": 8, "epochs": 3, "decay_epochs": 2, "val_every_epochs": 1, "steps": 150}
    # 5 % of 400 = 20 frames = 2 batches an epoch: 75 epochs, validated every 15, decayed after 56
    assert few == {"batch_size": 8, "epochs": 75, "decay_epochs": 56, "val_every_epochs": 15, "steps": 150}


def test_schedule_shrinks_the_batch_to_a_tiny_subset():
    assert schedule(frames=40, fraction=0.05, batch=8, steps=10, validations=2)["batch_size"] == 2


def test_a_claim_summary_counts_its_comparisons():
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert summarise(["held", "held"]) == "held (2 of 2 comparisons)"
    assert summarise(["held", "not shown"]) == "held in part (1 of 2 comparisons, the rest not shown or untrained)"
    assert summarise(["reversed", "not shown", "reversed"]).startswith("did not hold: the comparator was better in 2 of 3")
    assert summarise(["held", "reversed"]) == "mixed (1 of 2 comparisons held, 1 reversed)"
    assert summarise(["not shown", "did not learn"]) == "not shown (none of 2 comparisons held; 1 of them did not learn)"
    assert summarise(["did not learn"]).startswith("not measured")


def test_wall_time_counts_each_run_and_a_dead_run_until_its_last_stage():
    state = {"runs": [{"started": "2026-01-01T10:00:00"},  # died: no record of its end
                      {"started": "2026-01-01T11:00:00", "finished": "2026-01-01T11:10:00"}],
             "stages": {"a": {"finished": "2026-01-01T10:30:00"}, "b": {"finished": "2026-01-01T11:05:00"}}}
    assert wall_seconds(state) == 30 * 60 + 10 * 60


def test_cells_cover_inits_fractions_and_seeds(tmp_path):
    study = Study(PRESETS["small"], tmp_path)
    cells = study.cells()
    assert len(cells) == 2 * 2 * 5 + 2 * 5  # S: inits x fractions x seeds; M: inits x seeds
    assert len({c.name for c in cells}) == len(cells)
    assert Cell("S", 0.05, "geo-d", 2).name == "S_005pct_geo-d_seed2"
    names = [s.name for s in plan(study)]
    assert names[-1] == "finetune + evaluate M_100pct_geo-d_seed4" and len(names) == len(set(names))
    # ImageNet weights add the paper's comparator and the paper's d: ImageNet, then geometric pretraining
    with_imagenet = Study(PRESETS["small"], tmp_path, imagenet_weights=tmp_path / "w.pth")
    assert with_imagenet.inits == ["scratch", "geo-d", "imagenet", "geo-imagenet-d"]
    assert with_imagenet.pretrainings == ["d", "imagenet-d"]
    assert [Study.comparator(i) for i in with_imagenet.inits[1:]] == ["scratch", "scratch", "imagenet"]
    assert "pretrain + export imagenet-d" in [s.name for s in plan(with_imagenet)]


def test_small_fits_two_hours_and_medium_one_night_on_two_cores(tmp_path):
    """Priced with the stage rates measured on a 2-core CPU (PRIOR_RATES), two trainings at a time."""
    small, medium = (estimate_seconds(Study(PRESETS[name], tmp_path, jobs=2)) for name in ("small", "medium"))
    assert small <= 2 * 3600 and medium <= 8 * 3600
    assert len(PRESETS["small"].seeds) >= 5 and len(PRESETS["medium"].seeds) >= 5
    assert PRESETS["small"].kitti_test_drives >= 6


def test_unknown_preset_and_missing_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown preset"):
        get_preset("huge")
    with pytest.raises(UserError, match="--imagenet-weights .*: no such file"):
        run_study(Study(PRESETS["tiny"], tmp_path, imagenet_weights=tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="--bench-results .*: no such file"):
        run_study(Study(PRESETS["tiny"], tmp_path, bench_results=tmp_path / "missing.json"))


def test_demo_preset_is_one_geometric_cell_without_a_generalisation_test(tmp_path):
    study = Study(DEMO, tmp_path)
    assert study.cells() == [Cell("S", 1.0, "geo-kcd", 0)]
    names = [s.name for s in plan(study)]
    assert "render Cityscapes-style test set" not in names and "render Cityscapes-style test set" in [
        s.name for s in plan(Study(PRESETS["small"], tmp_path))]
    assert plan(study)[-1].output.name == "eval_kitti_eigen.json"


def test_command_line_spells_out_every_option_of_the_run(tmp_path):
    study = Study(PRESETS["small"], tmp_path / "my results", device="cpu", jobs=2,
                  bench_results=tmp_path / "gpu.json")
    assert command_line(study) == (f"geopre reproduce --preset small --out '{tmp_path}/my results' --device cpu "
                                   f"--jobs 2 --bench-results {tmp_path}/gpu.json")


def test_code_commit_names_the_commit_and_uncommitted_changes(tmp_path):
    source = tmp_path / "pkg"
    source.mkdir()
    (source / "mod.py").write_text("x = 1\n")
    assert code_commit(source) is None  # not in git: an installed wheel
    git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "mod.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert code_commit(source) == head
    (source / "mod.py").write_text("x = 2\n")
    assert code_commit(source) == head + " with uncommitted changes"


@pytest.mark.slow
def test_tiny_preset_runs_every_stage_and_reports_every_row(tmp_path):
    import numpy as np
    import torch
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "resnet18-standin.pth"  # a stand-in for torchvision's ImageNet file
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    out = tmp_path / "study"
    study = Study(get_preset("tiny"), out, jobs=2, imagenet_weights=weights)
    lines = []
    report = run_study(study, echo=lines.append)
    text = report.read_text()
    state = json.loads((out / "stages.json").read_text())
    assert set(state["stages"]) == {s.name for s in plan(study)}
    for cell in study.cells():
        run = study.run_dir(cell)
        for name in ("summary.json", "best.safetensors", "eval_kitti_eigen.json", "eval_cityscapes_all.json"):
            assert (run / name).is_file(), (cell.name, name)
        evals = json.loads((out / "evals" / f"{cell.name}.json").read_text())
        assert len(evals["kitti"]["per_image"]["abs_rel"]) > 1 and evals["along_training"]
        assert "convergence" in json.loads((out / "curves" / f"{cell.name}.json").read_text())
    for pretraining in ("d", "kcd", "imagenet-d", "imagenet-kcd"):
        assert study.encoder(pretraining).is_file()
    for figure in ("fewshot", "generalisation", "learning_curves", "depth_grid", "gain_vs_steps"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 1000
    # The report states facts of the run, not of the machine it happened to run on.
    assert f"- Command: `{command_line(study)}`" in text and "- Code: " in text and "- Device: " in text
    assert "embedded synthetic world" in text and "| baseline: per-pixel median depth |" in text
    for remark in ("this machine", "no internet", "is lent", "downloaded here", sys.executable):
        assert remark not in text, remark
    for claim in ("Claim 1, accuracy", "Claim 2, few-shot", "Claim 3, generalisation"):
        assert re.search(rf"\*\*{claim} \(V-[ABC]\): (held|held in part|mixed|not shown|not measured|did not hold)",
                         text), claim
    assert "## Gain versus training length" in text and re.search(r"the gain \*\*(persists|shrinks|vanishes|never "
                                                                   r"showed)\*\*", text)
    assert "## Training: convergence, selected and final epoch" in text and " of 2" in text
    # Table II style rows: one per init for S and M, with mean ± std over both seeds and the prior check
    for init in ("scratch (random init)", "geometric d (no ImageNet)", "geometric kcd (no ImageNet)", "ImageNet",
                 "ImageNet -> geometric d (the paper's)"):
        assert len(re.findall(rf"^\| {re.escape(init)} \| 2 \| \d.* \| (yes|\*\*did not learn\*\*) \|$", text, re.M)) == 3
    assert "| pretrain + export imagenet-kcd | pretrain |" in text
    # every number in the tables came from a run folder: the scratch S 100 % mean is the mean of its evals
    evals = {c.name: json.loads((out / "evals" / f"{c.name}.json").read_text()) for c in study.cells()}
    values = [evals[Cell("S", 1.0, "scratch", s).name]["kitti"]["metrics"]["abs_rel"] for s in study.preset.seeds]
    assert f"| scratch (random init) | 2 | {sum(values) / 2:.3f} ± " in text
    # claim 1's verdicts follow the written rule, recomputed here from the committed JSONs alone
    baselines = json.loads((out / "baselines.json").read_text())

    def learned(mode, init):
        rows = baselines["kitti"][mode]
        mean = {m: np.mean([evals[Cell(mode, 1.0, init, s).name]["kitti"]["metrics"][m] for s in (0, 1)])
                for m in ("abs_rel", "rmse")}
        return statistics.beats_prior(mean, {m: min(rows["per-pixel median"][m], rows["per-pixel mean"][m])
                                             for m in ("abs_rel", "rmse")})

    pairs = [(mode, init, Study.comparator(init)) for mode in ("S", "M") for init in study.inits
             if init.startswith("geo-")]
    tests, intervals = [], []
    for mode, init, base in pairs:
        b, c = ([evals[Cell(mode, 1.0, i, s).name]["kitti"] for s in (0, 1)] for i in (base, init))
        tests.append(statistics.paired_t_test([x["metrics"]["abs_rel"] for x in b], [x["metrics"]["abs_rel"] for x in c]))
        intervals.append(statistics.bootstrap_gap_interval(np.array([x["per_image"]["abs_rel"] for x in b]),
                                                           np.array([x["per_image"]["abs_rel"] for x in c])))
    claim1 = text.split("**Claim 1")[1].split("**Claim 2")[0]
    for (mode, init, base), test, interval, p in zip(pairs, tests, intervals, statistics.holm([t.p for t in tests])):
        verdict = (statistics.comparison_verdict(p, interval) if learned(mode, init) and learned(mode, base)
                   else "did not learn")
        assert re.search(rf"{mode} 100%: {re.escape(init_label(init))} [^;]*Holm-adjusted {p:.3f}, [^;]*"
                         rf"\*\*{verdict}\*\*", claim1), (mode, init, verdict)
    assert "ImageNet -> geometric" in claim1 and "(`--imagenet-weights`)" in text
    # a rerun finds everything done
    again = []
    run_study(study, echo=again.append)
    assert any(f"{len(plan(study))} already done" in line for line in again)
