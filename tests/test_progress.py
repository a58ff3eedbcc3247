"""Progress off a terminal is periodic plain lines; on one, a bar. No test waits on the wall clock:
the interval is injected (0, or a clock the test advances)."""

import io
import os

import pytest
from tqdm import tqdm

from geopre.errors import UserError
from geopre.progress import LineProgress, format_duration, interval_from_env, progress, progress_line


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_line_has_count_total_rate_time_left_and_postfix():
    line = progress_line("finetune", 30, 100, "step", 20, 10.0, {"loss": "0.1234"})
    assert line == "finetune: 30/100 steps (30%), 2 steps/s, 35s left, loss 0.1234"
    assert progress_line("shards", 500, None, "sample", 500, 2.0, {}) == "shards: 500 samples, 250 samples/s"
    assert progress_line("frames", 7, None, "frame", 0, 0.0, {}) == "frames: 7 frames"


def test_durations_read_as_minutes_and_hours():
    assert [format_duration(s) for s in (12, 75, 3725)] == ["12s", "1m15s", "1h02m"]


def test_lines_come_at_most_every_interval_and_a_last_one_on_close():
    clock, out = Clock(), io.StringIO()
    with LineProgress(total=5, desc="pretrain", unit="step", interval=10, stream=out, clock=clock) as bar:
        for at in (4, 10, 15, 21, 23):  # lines due at 10 (10 s after the start) and 21 (11 s after that)
            clock.now = at
            bar.update(1)
            bar.set_postfix(loss=f"{at / 100:.2f}")
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["pretrain: 2/5 steps (40%)", "pretrain: 4/5 steps (80%)",
                                                       "pretrain: 5/5 steps (100%)"]
    assert lines[0] == "pretrain: 2/5 steps (40%), 0.2 steps/s, 15s left, loss 0.04"


def test_interval_zero_prints_every_update_and_nothing_is_printed_before_the_first_interval():
    out = io.StringIO()
    with LineProgress(total=3, desc="predict", unit="frame", interval=0, stream=out) as bar:
        bar.update(1)
        bar.update(2)
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == [
        "predict: 1/3 frames (33%)", "predict: 3/3 frames (100%)"]
    quiet = io.StringIO()
    with LineProgress(total=3, interval=60, stream=quiet, clock=Clock()) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""  # a short run stays silent


def test_a_resumed_run_rates_only_the_steps_done_now():
    clock, out = Clock(), io.StringIO()
    bar = LineProgress(total=100, desc="pretrain", unit="step", initial=50, interval=0, stream=out, clock=clock)
    clock.now = 10
    bar.update(10)
    assert out.getvalue().startswith("pretrain: 60/100 steps (60%), 1 steps/s, 40s left")


def test_progress_is_lines_off_a_terminal_and_a_bar_on_one(monkeypatch):
    monkeypatch.setenv("GEOPRE_PROGRESS_SECONDS", "0")
    out = io.StringIO()
    with progress(total=2, desc="shards", unit="sample", stream=out) as bar:
        bar.update(2)
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == ["shards: 2/2 samples (100%)"]
    leader, follower = os.openpty()  # a real terminal
    with open(follower, "w") as terminal:
        bar = progress(total=2, desc="shards", unit="sample", stream=terminal)
        assert isinstance(bar, tqdm)
        bar.close()
    os.close(leader)


@pytest.mark.parametrize("value,expected", [("", 30.0), ("0", 0.0), ("2.5", 2.5), ("off", None)])
def test_interval_comes_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("GEOPRE_PROGRESS_SECONDS", value)
    assert interval_from_env() == expected


@pytest.mark.parametrize("value", ["soon", "-1", "inf"])
def test_a_bad_interval_is_a_user_error(monkeypatch, value):
    monkeypatch.setenv("GEOPRE_PROGRESS_SECONDS", value)
    with pytest.raises(UserError, match="GEOPRE_PROGRESS_SECONDS"):
        interval_from_env()
