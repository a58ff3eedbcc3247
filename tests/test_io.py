import os

import pytest

from geopre.errors import UserError
from geopre.io import atomic_path, atomic_target, atomic_write_json, ensure_writable_dir


def test_atomic_write_leaves_nothing_on_failure_and_normal_permissions_on_success(tmp_path):
    target = tmp_path / "out" / "video.mp4"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".mp4" and tmp.parent == target.parent
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert list(target.parent.iterdir()) == []
    atomic_write_json(target.with_suffix(".json"), {"a": 1})
    mode = target.with_suffix(".json").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_unwritable_folder_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write to"):
        ensure_writable_dir(blocker / "sub")


def test_rewriting_identical_content_keeps_the_file_untouched(tmp_path):
    from geopre.io import atomic_write_text

    path = tmp_path / "calib.txt"
    atomic_write_text(path, "P_rect_02: 1 2 3\n")
    os.utime(path, ns=(1, 1))
    atomic_write_text(path, "P_rect_02: 1 2 3\n")
    assert path.stat().st_mtime_ns == 1
    atomic_write_text(path, "P_rect_02: 1 2 4\n")
    assert path.read_text() == "P_rect_02: 1 2 4\n" and path.stat().st_mtime_ns != 1


def test_atomic_target_recognises_only_atomic_path_temporaries(tmp_path):
    with atomic_path(tmp_path / "train-000001.tar") as tmp:
        assert atomic_target(tmp.name) == "train-000001.tar"
    with atomic_path(tmp_path / "index.json") as tmp:
        assert atomic_target(tmp.name) == "index.json"
    for name in ("train-000001.tar", ".train-000001.tmp.tar", "x.abcdefgh.tmp.tar", ".x.ABCDEFGH.tmp.tar"):
        assert atomic_target(name) is None, name
