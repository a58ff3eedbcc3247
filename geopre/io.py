"""Atomic file writes: a file either exists complete or not at all, so a crash or Ctrl-C never
leaves a half-written output that a rerun would trust."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator


# atomic_path's temporary names: mkstemp's 8 random characters between the target's stem and suffix.
_TEMPORARY_NAME = re.compile(r"\.(?P<stem>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>\.[^.]+)?")


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary name keeps the suffix (tools such as ffmpeg pick the format from it) and lives
    in the same folder, so the final rename is atomic on POSIX filesystems.
    """
    path = Path(path)
    make_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_target(name: str) -> str | None:
    """The file name that :func:`atomic_path`'s temporary ``name`` was to become; None when ``name``
    is no such temporary. A writer killed mid-write leaves its temporary behind: this tells a
    rerun which leftovers are its own to remove."""
    match = _TEMPORARY_NAME.fullmatch(name)
    return match["stem"] + (match["suffix"] or "") if match else None


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` atomically; a file that already holds exactly ``data`` is left untouched, so
    reruns keep modification times and caches keyed on them (shard fingerprints) stay valid."""
    path = Path(path)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except OSError:
        pass
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    """How geopre writes JSON files: indented, keys sorted, a final newline (stable diffs, reruns)."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def atomic_write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, json_text(obj))


def _cannot_write(path: Path, err: OSError):
    from geopre.errors import UserError

    blocker = next((p for p in (path, *path.parents) if p.is_file()), None)
    reason = f"{blocker} is a file, not a folder" if blocker else err.strerror or err
    return UserError(f"cannot write to {path}: {reason}")


def make_dir(path: Path | str) -> Path:
    """``mkdir -p``; a user's impossible output path (under a file, read-only) is a one-line UserError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _cannot_write(path, err) from err
    return path


def ensure_writable_dir(path: Path | str) -> Path:
    """Create ``path`` if needed and prove it is writable, or raise a one-line UserError."""
    path = make_dir(path)
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".geopre-write-test"):
            pass
    except OSError as err:
        raise _cannot_write(path, err) from err
    return path


def save_png(path: Path | str, image) -> None:
    """Write an (H, W[, 3]) uint8/uint16 array as a PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
