"""Writer side of the output contract: where things go in DIR, and the JSON records.

    DIR/frames/<video_id>/<index:06d>.jpg   kept frames of the subsampled stream
    DIR/manifests/<video_id>.json           written atomically LAST: its presence = video done
    DIR/failures/<video_id>.json            one per failed video (url, one-line reason)
    DIR/ingest_stats.json                   the run's summary
    DIR/ingest_params.json                  the output-changing options, written at the start of a run
    DIR/downloads/                          yt-dlp's files while a video is in flight

One file per video (not one shared log) so parallel workers never write the same file and a
killed run leaves every record either whole or absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from geopre.errors import UserError
from geopre.io import atomic_target, atomic_write_json

MANIFEST_VERSION = 1
PARAMS_NAME = "ingest_params.json"


def frames_dir(out: Path, vid: str) -> Path:
    return Path(out) / "frames" / vid


def partial_frames_dir(out: Path, vid: str) -> Path:
    """Frames are written here first and renamed to :func:`frames_dir` when the video is done."""
    return Path(out) / "frames" / f".{vid}.partial"


def manifest_path(out: Path, vid: str) -> Path:
    return Path(out) / "manifests" / f"{vid}.json"


def failure_path(out: Path, vid: str) -> Path:
    return Path(out) / "failures" / f"{vid}.json"


def downloads_dir(out: Path) -> Path:
    return Path(out) / "downloads"


def frame_name(index: int, image_format: str) -> str:
    return f"{index:06d}.{image_format}"


def is_done(out: Path, vid: str) -> bool:
    return manifest_path(out, vid).is_file()


def load_manifest(out: Path, vid: str) -> dict:
    return json.loads(manifest_path(out, vid).read_text())


def make_manifest(vid: str, source: dict, params: dict, fps: float, times: list[float], mean_flows: list[float],
                  kept: list[bool], triplets: list[tuple[int, int, int]], image_format: str,
                  warnings: list[str]) -> dict:
    """``params`` are the run's options (the same for every video of DIR); ``fps`` is this video's
    frame rate, below ``params["fps"]`` only for a source slower than that (see ``warnings``)."""
    frames = [{"index": i, "time": t, "mean_flow": round(float(flow), 4), "kept": bool(keep),
               "file": f"frames/{vid}/{frame_name(i, image_format)}" if keep else None}
              for i, (t, flow, keep) in enumerate(zip(times, mean_flows, kept))]
    return {"version": MANIFEST_VERSION, "video_id": vid, "source": source, "params": params, "fps": fps,
            "warnings": warnings, "frames": frames, "triplets": [list(t) for t in triplets],
            "mean_flow_rule": "frame i: mean |DIS flow| in px from frame i-1 to frame i at the output size; "
                              "frame 0: the flow from frame 0 to frame 1"}


def publish(out: Path, vid: str, manifest: dict) -> None:
    """Move the finished frames into place, then write the manifest (the proof) last."""
    final, partial = frames_dir(out, vid), partial_frames_dir(out, vid)
    if final.exists():  # left by a run killed between this rename and the manifest write
        shutil.rmtree(final)
    partial.rename(final)
    atomic_write_json(manifest_path(out, vid), manifest)
    failure_path(out, vid).unlink(missing_ok=True)


def discard_unfinished(out: Path, vid: str) -> None:
    """Remove frames of a video without a manifest (a killed or failed run), so a retry starts clean."""
    for folder in (partial_frames_dir(out, vid), frames_dir(out, vid)):
        if folder.exists() and not is_done(out, vid):
            shutil.rmtree(folder)


def record_failure(out: Path, vid: str, url: str, local: bool, reason: str, source: str | None = None) -> dict:
    record = {"video_id": vid, "url": url, "local": local, "reason": reason, "source": source or url}
    atomic_write_json(failure_path(out, vid), record)
    return record


def load_failures(out: Path) -> list[dict]:
    folder = Path(out) / "failures"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def load_failure(out: Path, vid: str) -> dict | None:
    path = failure_path(out, vid)
    return json.loads(path.read_text()) if path.is_file() else None


# --- the run's options: one setting per output folder ---------------------------------------------

def params_path(out: Path) -> Path:
    return Path(out) / PARAMS_NAME


def option_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def show_value(key: str, value) -> str:
    return f"{value[0]}x{value[1]}" if key == "size" and isinstance(value, list) else str(value)


def differing_params(old: dict, new: dict) -> list[str]:
    """``--fps 5.0 (folder: 10.0)`` for each option both record with different values."""
    return [f"{option_name(k)} {show_value(k, new[k])} (folder: {show_value(k, old[k])})"
            for k in new if k in old and old[k] != new[k]]


def recorded_params(out: Path) -> dict | None:
    """The options DIR was ingested with: its params file or, for a folder from before that file
    existed, the options its manifests agree on (None for a fresh folder). A folder whose manifests
    already disagree is a UserError."""
    path = params_path(out)
    if path.is_file():
        return json.loads(path.read_text())
    seen: dict[str, list] = {}
    for manifest in sorted((Path(out) / "manifests").glob("*.json")):
        for key, value in (json.loads(manifest.read_text()).get("params") or {}).items():
            if value not in seen.setdefault(key, []):
                seen[key].append(value)
    mixed = [f"{option_name(k)} {' and '.join(show_value(k, v) for v in values)}"
             for k, values in seen.items() if len(values) > 1]
    if mixed:
        raise UserError(f"{out} already mixes settings across its manifests ({'; '.join(mixed)}): "
                        "re-ingest with --force, or use another --out")
    return {key: values[0] for key, values in seen.items()} or None


def remove_temporaries(out: Path) -> None:
    """JSON records half-written by a killed run (atomic_path's temporaries, nobody else's files):
    the rerun writes those records anew and would otherwise leave the temporaries there for good."""
    for folder in (Path(out), Path(out) / "manifests", Path(out) / "failures"):
        if folder.is_dir():
            for path in folder.iterdir():
                target = atomic_target(path.name)
                if target is not None and target.endswith(".json") and path.is_file():
                    path.unlink(missing_ok=True)


def claim_output(out: Path, params: dict, force: bool) -> None:
    """Make DIR hold this run's ``params``: refuse (one line naming the options) when earlier
    outputs there were made with other values; with ``force``, remove those outputs first.
    Temporaries of a killed run are removed either way."""
    remove_temporaries(out)
    if force:
        clear_outputs(out)
    else:
        old = recorded_params(out)
        differing = differing_params(old, params) if old else []
        if differing:
            raise UserError(f"{out} was ingested with other settings: {'; '.join(differing)}. Rerun with the "
                            "folder's options, use another --out, or add --force to re-ingest everything")
    atomic_write_json(params_path(out), params)


def clear_outputs(out: Path) -> None:
    """Remove what an earlier run wrote into DIR (manifests first: without its manifest a video is
    not done, so a kill midway leaves a folder that resumes cleanly); nothing else in DIR is touched.
    Downloads stay: they are source media, not outputs of the options."""
    out = Path(out)
    for name in ("manifests", "frames", "failures"):
        if (out / name).exists():
            shutil.rmtree(out / name)
    for name in ("ingest_stats.json", PARAMS_NAME):
        (out / name).unlink(missing_ok=True)
