"""CLI for the synthetic world: `geopre synth videos|kitti|cityscapes` and `geopre serve`."""

from __future__ import annotations

from pathlib import Path

import click

from geopre.cliutil import (FRACTION, IMAGE_SIZE, OUT_DIR, OUTPUT_FILE, PORT, POSITIVE_FLOAT, POSITIVE_INT, SEED,
                            deprecated_alias, out_dir_or_positional)
from geopre.errors import UserError


def _out(function):
    """``--out DIR``, plus the positional OUT of earlier releases (deprecated, warns)."""
    function = click.option("--out", "-o", type=OUT_DIR, help="Folder to render into (reruns resume there).")(function)
    return click.argument("out_positional", metavar="", required=False, type=OUT_DIR)(function)


PREVIEW_OPTION = click.option(
    "--preview", type=OUTPUT_FILE,
    help="Only render a contact sheet (PNG) of a few frames and their depth for these settings, "
         "to look at the world before rendering it all; --out is not written.")


def _preview_or_out(preview: Path | None, out: Path | None, render_views) -> bool:
    """Write the preview when asked (return True: the command is done), else insist on --out."""
    if preview is None:
        if out is None:
            raise UserError("missing --out DIR: the folder to render into (or pass --preview FILE.png)")
        return False
    from geopre.synth import preview as sheet

    views = render_views(sheet.PREVIEW_FRAMES)
    width, height = sheet.write_preview(preview, views)
    click.echo(f"preview {preview} ({width}x{height}): {len(views)} frames and their depth"
               + (f"; {out} not written" if out is not None else ""))
    return True


@click.group()
def synth() -> None:
    """Render the embedded synthetic driving world in real data formats.

    Offline stand-ins for YouTube (mp4 + playlist page), KITTI raw and Cityscapes, with exact
    ground truth (depth, poses, stop segments) kept beside them for tests and benchmarks.
    """


@synth.command("videos")
@_out
@click.option("--count", default=4, show_default=True, type=POSITIVE_INT, help="Number of videos to render.")
@click.option("--seconds", default=10.0, show_default=True, type=POSITIVE_FLOAT, help="Length of each video in seconds.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed: the same seed gives the same videos.")
@click.option("--size", "sizes", multiple=True, type=IMAGE_SIZE,
              help="Video size to draw from, e.g. 1280x720; repeat for several. [default: 1280x720, 960x540, 854x480]")
@click.option("--fps", "fps_choices", multiple=True, type=POSITIVE_FLOAT,
              help="Frame rate to draw from; repeat for several. [default: 24, 25, 30]")
@click.option("--render-scale", default=0.5, show_default=True, type=FRACTION,
              help="Render at this fraction of the video size, then upscale in ffmpeg (faster, softer).")
@click.option("--base-url", default="http://127.0.0.1:8765/", show_default=True,
              help="Where `geopre serve` will serve OUT; used for the URLs in OUT/urls.txt.")
@click.option("--jobs", "-j", default=1, show_default=True, type=POSITIVE_INT,
              help="Videos rendered at once, in parallel processes.")
@deprecated_alias("--workers", "jobs", "--jobs", type=POSITIVE_INT)
@click.option("--save-depth", is_flag=True, help="Also save every frame's exact depth (float16 .npy per video).")
@PREVIEW_OPTION
def synth_videos(out_positional, out, count, seconds, seed, sizes, fps_choices, render_scale, base_url, jobs,
                 save_depth, preview):
    """Render "internet" driving videos into --out.

    Writes OUT/videos/*.mp4 (H.264; random size, fps and unrecorded focal length), OUT/index.html
    (a page embedding them: yt-dlp reads it as a playlist), OUT/urls.txt (a batch file) and
    OUT/truth/*.json (intrinsics, poses, speeds and stop flags per frame). Reruns resume.
    """
    from geopre.synth import videos

    out = out_dir_or_positional(out, out_positional, "OUT", required=False)
    sizes, fps_choices = sizes or videos.DEFAULT_SIZES, fps_choices or videos.DEFAULT_FPS
    if _preview_or_out(preview, out, lambda shown: videos.preview_views(
            count, seconds, seed, sizes, fps_choices, render_scale, shown)):
        return
    summary = videos.write_videos(out, count, seconds, seed, sizes, fps_choices, render_scale, base_url, jobs,
                                  save_depth)
    frames = sum(v["frames"] for v in summary["videos"])
    click.echo(f"{len(summary['videos'])} videos, {frames} frames in {out}")
    click.echo(f"serve them with: geopre serve {out}   (playlist: {summary['base_url']}index.html)")


@synth.command("kitti")
@_out
@click.option("--drives", default=4, show_default=True, type=click.IntRange(min=3),
              help="Number of drives (train + val + test).")
@click.option("--test-drives", default=1, show_default=True, type=POSITIVE_INT, help="Drives kept for the Eigen test split.")
@click.option("--val-drives", type=POSITIVE_INT,
              help="Drives kept for the val_files.txt of eigen_zhou/eigen_full. [default: 1 per 10 drives, at least 1]")
@click.option("--frames", default=40, show_default=True, type=POSITIVE_INT, help="Frames per drive (10 Hz).")
@click.option("--size", default="416x128", show_default=True, type=IMAGE_SIZE, help="Image size WxH.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed: the same seed gives the same tree.")
@click.option("--jobs", "-j", default=1, show_default=True, type=POSITIVE_INT,
              help="Drives rendered at once, in parallel processes.")
@deprecated_alias("--workers", "jobs", "--jobs", type=POSITIVE_INT)
@click.option("--depth/--no-depth", default=True, show_default=True,
              help="Save exact depth of image_02 under <drive>/geopre_truth/depth_02.")
@click.option("--grey/--no-grey", default=True, show_default=True,
              help="Also render the grey stereo cameras image_00/image_01 (about 1.5x the render time).")
@PREVIEW_OPTION
def synth_kitti(out_positional, out, drives, test_drives, val_drives, frames, size, seed, jobs, depth, grey, preview):
    """Render a KITTI-raw-style tree into --out.

    Stereo colour and grey images (image_02/03 and image_00/01, baselines 0.54 m), 64-beam LiDAR
    sweeps (velodyne_points/*.bin), OXTS GPS/IMU packets (oxts/), timestamps, calib_cam_to_cam.txt /
    calib_velo_to_cam.txt / calib_imu_to_velo.txt per date, and monodepth2 split files (eigen_zhou,
    eigen_full, eigen test) whose train, val and test frames come from disjoint drives.
    """
    from geopre.synth import kitti

    out = out_dir_or_positional(out, out_positional, "OUT", required=False)
    if _preview_or_out(preview, out, lambda shown: kitti.preview_views(
            drives, frames, size[0], size[1], seed, shown)):
        return
    summary = kitti.write_kitti(out, drives, test_drives, frames, size[0], size[1], seed, jobs, depth,
                                val_drives=val_drives, grey_cameras=grey)
    splits = summary["splits"]
    click.echo(f"{drives} drives x {frames} frames in {out}: eigen_zhou train {splits['eigen_zhou_train']} "
               f"val {splits['eigen_zhou_val']}, eigen_full train {splits['eigen_full_train']} "
               f"val {splits['eigen_full_val']}, eigen test {splits['eigen_test']}")


@synth.command("cityscapes")
@_out
@click.option("--sequences", default=6, show_default=True, type=click.IntRange(min=3), help="Number of 30-frame sequences.")
@click.option("--size", default="512x256", show_default=True, type=IMAGE_SIZE, help="Image size WxH.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed: the same seed gives the same tree.")
@PREVIEW_OPTION
def synth_cityscapes(out_positional, out, sequences, size, seed, preview):
    """Render a Cityscapes-style tree into --out.

    leftImg8bit_sequence frames at 17 Hz in a denser city style, and for each sequence's annotated
    frame a camera JSON and a uint16 disparity PNG (d = (p - 1) / 256, 0 invalid).
    """
    from geopre.synth import cityscapes

    out = out_dir_or_positional(out, out_positional, "OUT", required=False)
    if _preview_or_out(preview, out, lambda shown: cityscapes.preview_views(sequences, size[0], size[1], seed, shown)):
        return
    summary = cityscapes.write_cityscapes(out, sequences, size[0], size[1], seed)
    click.echo(f"{len(summary['sequences'])} sequences x {cityscapes.SEQUENCE_LENGTH} frames in {out}")


@click.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--port", default=8765, show_default=True, type=PORT, help="TCP port (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def serve(root, port, host):
    """Serve the folder ROOT over HTTP (threaded, byte ranges) until Ctrl-C.

    Point `geopre ingest` or yt-dlp at http://HOST:PORT/index.html to download synthetic videos.
    """
    from geopre.synth.serve import make_server

    server = make_server(root, port, host)
    click.echo(f"serving {root} at http://{host}:{server.server_address[1]}/  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()
