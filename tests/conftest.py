"""Shared fixtures: small renders of the synthetic world, made once per test session.

Every stage tests on these real files (mp4, KITTI-raw tree, Cityscapes tree), never on mocks.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from geopre.synth import cityscapes, kitti, videos


def pytest_configure(config):
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise pytest.UsageError("ffmpeg/ffprobe are needed by the tests: run `make install` first")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tests run torch on one CPU thread: the test machine's two cores are shared, and two
    intra-op threads competing with other processes spin-wait and run several times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def no_progress_lines(monkeypatch):
    """Off a terminal, long steps print a progress line every 30 s: on a loaded test machine that
    would land in some tests' stderr and not others'. Tests of progress set their own interval."""
    monkeypatch.setenv("GEOPRE_PROGRESS_SECONDS", "off")


@pytest.fixture(scope="session")
def synth_videos_dir(tmp_path_factory):
    """Two short "internet" videos (different sizes and frame rates) with their truth files."""
    out = tmp_path_factory.mktemp("videos")
    videos.write_videos(out, count=2, seconds=2.0, seed=5, sizes=((192, 108), (160, 96)), fps_choices=(24.0, 30.0),
                        render_scale=1.0)
    return out


@pytest.fixture(scope="session")
def synth_kitti_root(tmp_path_factory):
    """A KITTI-raw-style tree: 3 drives (2 train, 1 test) of 6 frames at 208x64."""
    out = tmp_path_factory.mktemp("kitti")
    kitti.write_kitti(out, drives=3, test_drives=1, frames=6, width=208, height=64, seed=3)
    return out


@pytest.fixture(scope="session")
def synth_city_root(tmp_path_factory):
    """A Cityscapes-style tree: 3 sequences (train, val, test) at 128x64."""
    out = tmp_path_factory.mktemp("cityscapes")
    cityscapes.write_cityscapes(out, sequences=3, width=128, height=64, seed=4)
    return out
