from geopre.demo import DemoConfig, run_demo


def test_demo_runs_every_stage_and_reports_it(tmp_path):
    lines = []
    config = DemoConfig(out=tmp_path, videos=2, seconds=4.0, video_sizes=((320, 180),), ingest_size=(192, 64), kitti_drives=3,
                        kitti_frames=6, kitti_size=(96, 32), city_sequences=3, city_size=(64, 32),
                        train_size=(64, 32), pretrain_steps=2, finetune_steps=2, batch_size=2)
    result = run_demo(config, echo=lines.append)
    assert len(result["serve + yt-dlp ingest"]["playlist"]) == 2
    assert (tmp_path / "videos" / "index.html").exists()
    assert (tmp_path / "kitti" / "splits" / "eigen" / "test_files.txt").exists()
    assert (tmp_path / "cityscapes" / "synth.json").exists()
    text = "\n".join(lines)
    assert "yt-dlp found 2 on the served page" in text and "stage timings" in text
    assert (tmp_path / "shards" / "index.json").exists() and (tmp_path / "pretrain" / "encoder.pth").exists()
    assert "abs_rel" in text and (tmp_path / "finetune" / "eval_kitti_eigen.json").exists()
    # A rerun reuses the cached renders instead of making them again.
    made = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.suffix in (".mp4", ".png", ".bin", ".tar")
            and "visuals" not in p.parts}
    run_demo(config, echo=lambda _: None)
    assert made and all(p.stat().st_mtime_ns == t for p, t in made.items())
