"""The study's pure parts (schedules, verdicts, cells) and the tiny preset end to end."""

import json
import re
import subprocess
import sys

import pytest

from geopre.reproduce.layout import Cell, Study
from geopre.reproduce.presets import DEMO, PRESETS, get_preset
from geopre.reproduce.report import claim_verdict, code_commit, command_line, mean_std, summarise, wall_seconds
from geopre.reproduce.study import estimate_seconds, plan, run_study, schedule
from geopre.errors import UserError


def test_schedule_gives_every_fraction_the_same_steps():
    full = schedule(frames=400, fraction=1.0, batch=8, steps=150, validations=5)
    few = schedule(frames=400, fraction=0.05, batch=8, steps=150, validations=5)
    assert full == {"batch_size": 8, "epochs": 3, "decay_epochs": 2, "val_every": 1, "steps": 150}
    # 5 % of 400 = 20 frames = 2 batches an epoch: 75 epochs, validated every 15, decayed after 56
    assert few == {"batch_size": 8, "epochs": 75, "decay_epochs": 56, "val_every": 15, "steps": 150}


def test_schedule_shrinks_the_batch_to_a_tiny_subset():
    assert schedule(frames=40, fraction=0.05, batch=8, steps=10, validations=2)["batch_size"] == 2


def test_claim_verdict_needs_a_gap_beyond_the_seed_noise():
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert claim_verdict([0.30, 0.31, 0.29], [0.20, 0.21, 0.19]) == "held"
    assert claim_verdict([0.20, 0.21, 0.19], [0.30, 0.31, 0.29]) == "reversed"
    assert claim_verdict([0.30, 0.20, 0.40], [0.29, 0.19, 0.39]) == "not shown"
    assert claim_verdict([0.80, 0.81], [0.90, 0.91], lower_is_better=False) == "held"


def test_a_claim_summary_counts_its_comparisons():
    assert summarise(["held", "held"]) == "held (2 of 2 comparisons)"
    assert summarise(["held", "not shown"]) == "held in part (1 of 2 comparisons, the rest within the seeds' spread)"
    assert summarise(["reversed", "not shown", "reversed"]).startswith("did not hold: scratch was better in 2 of 3")
    assert summarise(["held", "reversed"]) == "mixed (1 of 2 comparisons held, 1 reversed)"
    assert summarise(["not shown"]) == "not shown (all 1 comparisons within the seeds' spread)"


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
    out = tmp_path / "study"
    study = Study(get_preset("tiny"), out, jobs=2)
    lines = []
    report = run_study(study, echo=lines.append)
    text = report.read_text()
    state = json.loads((out / "stages.json").read_text())
    assert set(state["stages"]) == {s.name for s in plan(study)}
    for cell in study.cells():
        run = study.run_dir(cell)
        for name in ("summary.json", "best.safetensors", "eval_kitti_eigen.json", "eval_cityscapes_all.json"):
            assert (run / name).is_file(), (cell.name, name)
    for mixture in study.preset.mixtures:
        assert study.encoder(mixture).is_file()
    for figure in ("fewshot", "generalisation", "learning_curves", "depth_grid"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 1000
    # The report states facts of the run, not of the machine it happened to run on.
    assert f"- Command: `{command_line(study)}`" in text and "- Code: " in text and "- Device: " in text
    assert "embedded synthetic world" in text and "A constant depth at each test image's true median" in text
    for remark in ("this machine", "no internet", "is lent", "downloaded here", sys.executable):
        assert remark not in text, remark
    for claim in ("Claim 1, accuracy", "Claim 2, few-shot", "Claim 3, generalisation"):
        assert re.search(rf"\*\*{claim} \(V-[ABC]\): (held|held in part|mixed|not shown|did not hold)", text), claim
    # Table II style rows: one per init for S and M, with mean ± std over both seeds
    for init in ("random (scratch)", "geometric (d)", "geometric (kcd)"):
        assert len(re.findall(rf"^\| {re.escape(init)} \| 2 \| \d", text, re.M)) == 3  # S, M, Cityscapes S
        cell = r"\d+\.\d{3} ± \d+\.\d{3}"
        fewshot_row = rf"^\| {re.escape(init)} \| {cell} \| {cell} \|$"  # one cell per fraction (20 %, 100 %)
        assert len(re.findall(fewshot_row, text, re.M)) == 2  # KITTI and Cityscapes few-shot tables
    assert "| pretrain + export kcd | pretrain |" in text
    # every number in the tables came from a run folder: the scratch S 100 % mean is the mean of its evals
    values = [json.loads((study.run_dir(Cell("S", 1.0, "scratch", s)) / "eval_kitti_eigen.json").read_text())
              ["metrics"]["abs_rel"] for s in study.preset.seeds]
    assert f"| random (scratch) | 2 | {sum(values) / 2:.3f} ± " in text
    # a rerun finds everything done
    again = []
    run_study(study, echo=again.append)
    assert any(f"{len(plan(study))} already done" in line for line in again)
