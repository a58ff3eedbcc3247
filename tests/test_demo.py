from geopre.demo import DemoConfig, run_demo


def test_demo_runs_every_stage_and_reports_it(tmp_path):
    lines = []
    config = DemoConfig(out=tmp_path, videos=2, seconds=1.5, video_sizes=((192, 108),), kitti_drives=2,
                        kitti_frames=4, kitti_size=(96, 32), city_sequences=3, city_size=(64, 32))
    result = run_demo(config, echo=lines.append)
    assert len(result["playlist"]) == 2
    assert (tmp_path / "videos" / "index.html").exists()
    assert (tmp_path / "kitti" / "splits" / "eigen" / "test_files.txt").exists()
    assert (tmp_path / "cityscapes" / "synth.json").exists()
    text = "\n".join(lines)
    assert "yt-dlp found 2 videos" in text and "stage timings" in text
    # A rerun reuses the cached renders instead of making them again.
    made = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.suffix in (".mp4", ".png", ".bin")}
    run_demo(config, echo=lambda _: None)
    assert made and all(p.stat().st_mtime_ns == t for p, t in made.items())
