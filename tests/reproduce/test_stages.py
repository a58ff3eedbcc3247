"""The stage runner: records, skips done stages, reruns interrupted ones, runs parallel stages."""

import json
import re
from functools import partial
from pathlib import Path

import pytest

from geopre.reproduce.stages import Stage, StageRunner, format_minutes


def touch(path: Path, log: Path) -> None:
    path.write_text("done")
    with open(log, "a") as handle:
        handle.write(path.name + "\n")


def fail(path: Path) -> None:
    raise RuntimeError(f"interrupted before {path.name}")


def stages(tmp_path: Path, parallel: bool = False, broken: str | None = None) -> list[Stage]:
    log = tmp_path / "log.txt"
    out = []
    for name in ("a", "b", "c"):
        run = partial(fail, tmp_path / name) if name == broken else partial(touch, tmp_path / name, log)
        out.append(Stage(name, "kind", 2, tmp_path / name, run, parallel=parallel and name != "a"))
    return out


def test_second_run_skips_finished_stages(tmp_path):
    lines = []
    StageRunner(tmp_path, {}, lines.append).run(stages(tmp_path))
    assert (tmp_path / "log.txt").read_text().split() == ["a", "b", "c"]
    state = json.loads((tmp_path / "stages.json").read_text())
    assert set(state["stages"]) == {"a", "b", "c"} and state["runs"][0]["finished"]
    StageRunner(tmp_path, {}, lines.append).run(stages(tmp_path))
    assert (tmp_path / "log.txt").read_text().split() == ["a", "b", "c"]  # nothing ran again
    assert any("3 already done" in line for line in lines)


def test_interrupted_stage_runs_again_and_finished_ones_do_not(tmp_path):
    with pytest.raises(RuntimeError):
        StageRunner(tmp_path, {}, lambda _: None).run(stages(tmp_path, broken="b"))
    state = json.loads((tmp_path / "stages.json").read_text())
    assert state["stages"].keys() == {"a"}
    assert state["runs"][0]["stopped_by"] == "RuntimeError" and state["runs"][0]["finished"]
    StageRunner(tmp_path, {}, lambda _: None).run(stages(tmp_path))
    assert (tmp_path / "log.txt").read_text().split() == ["a", "b", "c"]


def test_a_recorded_stage_whose_output_is_gone_runs_again(tmp_path):
    StageRunner(tmp_path, {}, lambda _: None).run(stages(tmp_path))
    (tmp_path / "b").unlink()
    StageRunner(tmp_path, {}, lambda _: None).run(stages(tmp_path))
    assert (tmp_path / "log.txt").read_text().split() == ["a", "b", "c", "b"]


def test_parallel_stages_run_in_other_processes_and_are_recorded(tmp_path):
    lines = []
    StageRunner(tmp_path, {}, lines.append, jobs=2).run(stages(tmp_path, parallel=True))
    assert sorted((tmp_path / "log.txt").read_text().split()) == ["a", "b", "c"]
    state = json.loads((tmp_path / "stages.json").read_text())
    assert state["stages"]["b"]["parallel"] and not state["stages"]["a"]["parallel"]
    assert sum(bool(re.fullmatch(r"\[reproduce \d/3\] [bc]: .* left", line)) for line in lines) == 2


def test_estimate_uses_prior_rates_then_measured_ones(tmp_path):
    runner = StageRunner(tmp_path, {"kind": 10.0}, lambda _: None)
    assert runner.estimate(stages(tmp_path)) == pytest.approx(60.0)  # 3 stages x 2 units x 10 s
    runner.state["stages"]["x"] = {"kind": "kind", "units": 4, "seconds": 2.0}
    assert runner.rate("kind") == pytest.approx(0.5)
    jobs2 = StageRunner(tmp_path, {"kind": 10.0}, lambda _: None, jobs=2)
    assert jobs2.estimate(stages(tmp_path, parallel=True)) == pytest.approx(20 + 20 / 2 + 20 / 2)


def test_format_minutes():
    assert format_minutes(42) == "42 s"
    assert format_minutes(600) == "10.0 min"
    assert format_minutes(7200) == "2.0 h"


def test_a_resumed_stage_records_the_time_of_every_attempt(tmp_path):
    with pytest.raises(RuntimeError):
        StageRunner(tmp_path, {}, lambda _: None).run(stages(tmp_path, broken="b"))
    first = json.loads((tmp_path / "stages.json").read_text())["attempts"]["b"]
    assert first["attempts"] == 1 and not first["open"] and first["seconds"] > 0
    StageRunner(tmp_path, {}, lambda _: None).run(stages(tmp_path))
    state = json.loads((tmp_path / "stages.json").read_text())
    b = state["stages"]["b"]
    assert b["attempts"] == 2 and b["resumed"] and b["untimed_attempts"] == 0 and b["seconds"] >= round(first["seconds"], 2)
    assert not state["stages"]["c"]["resumed"] and state["attempts"] == {}


def test_an_attempt_killed_without_a_word_is_marked_and_kept_out_of_the_rates(tmp_path):
    runner = StageRunner(tmp_path, {"kind": 10.0}, lambda _: None)
    runner._started(stages(tmp_path)[1])  # then SIGKILL: nothing closes the attempt
    StageRunner(tmp_path, {"kind": 10.0}, lambda _: None).run(stages(tmp_path))
    state = StageRunner(tmp_path, {"kind": 10.0}, lambda _: None)
    assert state.state["stages"]["b"]["untimed_attempts"] == 1 and state.state["stages"]["b"]["resumed"]
    state.state["stages"] = {"b": state.state["stages"]["b"]}
    assert state.rate("kind") == 10.0  # only the untimed record is left: the prior rate stands


def wait_for_other(path: Path, other: Path) -> None:
    """Finish when ``other`` has started or after 3 s; say which (the overlap the barrier forbids)."""
    import time

    for _ in range(30):
        if other.exists():
            path.write_text("overlap")
            return
        time.sleep(0.1)
    path.write_text("alone")


def test_a_stage_after_previous_waits_for_the_parallel_group_before_it(tmp_path):
    first = Stage("pretrain", "kind", 1, tmp_path / "first", partial(wait_for_other, tmp_path / "first",
                                                                       tmp_path / "second"), parallel=True)
    second = Stage("finetune", "kind", 1, tmp_path / "second", partial(touch, tmp_path / "second", tmp_path / "log"),
                   parallel=True, after_previous=True)
    StageRunner(tmp_path, {}, lambda _: None, jobs=2).run([first, second])
    assert (tmp_path / "first").read_text() == "alone"
