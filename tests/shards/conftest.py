"""A hand-made ingest output folder (the ingest stage's contract) and shard sets written from it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from geopre.shards.sources import SourceSpec
from geopre.shards.write import WriteConfig, write_shards

VIDEOS = ("alpha", "bravo", "charlie", "delta")
FRAMES = 5  # per video: triplets (0,1,2), (1,2,3), (2,3,4)
SIZE = (48, 32)


def make_ingest_folder(root, videos=VIDEOS, frames=FRAMES, size=SIZE):
    """Frames as JPEG with a per-frame colour ramp (pixels identify the frame) and manifests as
    ingest writes them."""
    rng = np.random.default_rng(0)
    for v, video in enumerate(videos):
        entries = []
        for i in range(frames):
            image = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
            rel = f"frames/{video}/{i:06d}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / rel, quality=90)
            entries.append({"index": i, "time": i * 0.1, "mean_flow": 2.0 + i, "kept": True, "file": rel})
        manifest = {
            "version": 1, "video_id": video,
            "source": {"url": f"http://127.0.0.1:1/videos/{video}.mp4", "webpage_url": f"http://127.0.0.1:1/{video}",
                       "title": video, "uploader": "test", "duration": frames / 10, "fps": 30.0,
                       "width": size[0], "height": size[1], "extractor": "generic", "extractor_id": video},
            "params": {"fps": 10.0, "size": list(size), "crop": None, "min_flow": 1.0, "max_gap": 1,
                       "format": "jpg", "start": None, "end": None},
            "frames": entries,
            "triplets": [[i - 1, i, i + 1] for i in range(1, frames - 1)],
        }
        (root / "manifests").mkdir(exist_ok=True)
        (root / "manifests" / f"{video}.json").write_text(json.dumps(manifest))
    (root / "ingest_stats.json").write_text(json.dumps({"videos": len(videos)}))
    return root


@pytest.fixture(scope="session")
def ingest_dir(tmp_path_factory):
    return make_ingest_folder(tmp_path_factory.mktemp("ingest"))


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory, ingest_dir):
    """Ingest triplets in shards of at most 2 samples; 1 video of 4 is val (3 samples)."""
    out = tmp_path_factory.mktemp("shards")
    write_shards([SourceSpec("ingest", ingest_dir)], WriteConfig(out, maxcount=2, val_fraction=0.25, seed=1))
    return out
