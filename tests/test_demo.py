from dataclasses import replace

from geopre.demo import run_demo
from geopre.reproduce.layout import Study
from geopre.reproduce.presets import DEMO
from geopre.reproduce.study import plan

# The demo's stages at the smallest sizes that still run every one of them (6 s videos: the world may start a
# drive waiting at lights for up to 4.5 s, and a clip needs moving frames).
TINY = replace(DEMO, videos=2, video_seconds=6.0, video_sizes=((320, 180),), video_render_scale=1.0,
               ingest_size=(192, 64), kitti_frames=6, kitti_size=(96, 32), city_size=(64, 32),
               pretrain_size=(64, 32), pretrain_batch=2, pretrain_steps=2, train_size=(64, 32), finetune_batch=2,
               stereo_steps=2)


def test_demo_runs_the_studys_stages_and_reports_against_a_constant_baseline(tmp_path):
    lines = []
    result = run_demo(TINY, tmp_path, echo=lines.append)
    study = Study(TINY, tmp_path)
    # The study's own plan, so a stage added to `geopre reproduce` is in the demo too.
    stages = plan(study)
    assert all(stage.output.exists() for stage in stages)
    assert [s.name for s in stages][-1] == "finetune + evaluate S_100pct_geo-kcd_seed0"
    assert result["videos_listed"] == 2
    text = "\n".join(lines)
    assert "yt-dlp listed 2 videos on the served page" in text and "stage timings" in text
    assert f"abs_rel {result['metrics']['abs_rel']:.3f}" in text
    assert f"baseline    abs_rel {result['constant_baseline']['abs_rel']:.3f}" in text
    assert 0 < result["constant_baseline"]["abs_rel"] < 1
    assert result["picture"].stat().st_size > 1000 and str(result["picture"]) in text
    assert "input | geometric kcd (no ImageNet) | true depth (renderer)" in text
    # A rerun reuses every cached stage instead of making it again.
    made = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")
            if p.suffix in (".mp4", ".png", ".bin", ".tar", ".pth", ".safetensors") and "visuals" not in p.parts}
    again = []
    run_demo(TINY, tmp_path, echo=again.append)
    assert any(f"{len(stages)} already done" in line for line in again)
    assert made and all(p.stat().st_mtime_ns == t for p, t in made.items())
