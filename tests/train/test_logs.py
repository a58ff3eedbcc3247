import csv

from geopre.train.logs import RunLog


def read(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_csv_collects_train_and_val_scalars_per_step(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    for s in range(1, 4):
        log.scalars(s, {"loss": 1.0 / s})
    log.scalars(3, {"val_loss": 0.5})
    log.scalars(4, {"loss": 0.2})
    log.close()
    rows = read(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == ["1.0", "2.0", "3.0", "4.0"]
    assert rows[2]["val_loss"] == "0.5" and rows[0]["val_loss"] == "" and float(rows[3]["loss"]) == 0.2


def test_resume_drops_rows_after_the_checkpoint(tmp_path):
    log = RunLog(tmp_path, tensorboard=True)
    for s in range(1, 8):
        log.scalars(s, {"loss": float(s)})
    log.close()
    log = RunLog(tmp_path, resume_step=5, tensorboard=True)
    log.scalars(6, {"loss": 60.0})
    log.close()
    rows = read(tmp_path / "metrics.csv")
    assert [float(r["loss"]) for r in rows] == [1, 2, 3, 4, 5, 60]
    assert any((tmp_path / "tensorboard").iterdir())


def test_only_the_main_rank_writes(tmp_path):
    log = RunLog(tmp_path / "run", enabled=False)
    log.scalars(1, {"loss": 1.0})
    log.close()
    assert not (tmp_path / "run").exists()
