"""`geopre ingest`: parse options, build an IngestConfig, call run_ingest, print the summary."""

from __future__ import annotations

from pathlib import Path

import click

from geopre.cliutil import (FRACTION, IMAGE_SIZE, NON_NEGATIVE_FLOAT, NON_NEGATIVE_INT, OUT_DIR, POSITIVE_FLOAT,
                            POSITIVE_INT, choice, deprecated_alias)


@click.command("ingest")
@click.argument("sources", nargs=-1)
@click.option("--out", "-o", required=True, type=OUT_DIR,
              help="Output folder: frames/, manifests/, failures/, ingest_stats.json, ingest_params.json. Reruns resume here.")
@click.option("--batch-file", "-a", "batch_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Text file of URLs or paths, one a line (# comments, blank lines ignored); repeatable.")
@click.option("--fps", default=10.0, show_default=True, type=POSITIVE_FLOAT,
              help="Subsampling rate in frames per second (paper: 10 Hz; 8.5 Hz for Cityscapes).")
@click.option("--size", default="640x192", show_default=True, type=IMAGE_SIZE,
              help="Output frame size WxH: resize to cover, then crop (no stretching).")
@click.option("--crop", default="center", show_default=True, type=choice(["center", "bottom", "top"]),
              help="Which band of the resized frame is kept; `top` cuts a dashcam's bonnet.")
@click.option("--start", type=NON_NEGATIVE_FLOAT, help="Skip the video before this many seconds.")
@click.option("--end", type=POSITIVE_FLOAT, help="Stop at this many seconds into the video.")
@click.option("--min-flow", default=1.0, show_default=True, type=NON_NEGATIVE_FLOAT,
              help="Drop frames whose mean optical flow from the previous frame is below this (px, output size).")
@click.option("--max-gap", default=1, show_default=True, type=POSITIVE_INT,
              help="Triplet neighbours may be at most this many subsampled frames apart (1 = adjacent).")
@click.option("--min-height", type=POSITIVE_INT,
              help="Skip videos whose displayed height (after rotation) is below this many px (recorded as failed).")
@click.option("--flow-scale", default=0.5, show_default=True, type=FRACTION,
              help="Measure flow on a copy scaled by this factor (1 = full size, 4x the flow's CPU); flow is rescaled.")
@click.option("--format", "image_format", default="jpg", show_default=True, type=choice(["jpg", "png"]),
              help="Frame file format.")
@click.option("--jpeg-quality", default=95, show_default=True, type=click.IntRange(1, 100), help="JPEG quality 1-100.")
@click.option("--jobs", "-j", default=1, show_default=True, type=POSITIVE_INT,
              help="Videos processed at once, in parallel processes (downloads run ahead in threads); local only.")
@deprecated_alias("--workers", "jobs", "--jobs", type=POSITIVE_INT)
@click.option("--distributor", default="local", show_default=True, type=choice(["local", "ray"]),
              help="Where videos are downloaded and processed: `local` (this machine) or `ray` (one Ray task "
                   "per video on a Ray cluster; needs `pip install 'geopre[ray]'` and, on a real cluster, "
                   "--out and local paths on a filesystem every node shares).")
@click.option("--ray-address", metavar="auto|HOST:PORT",
              help="Ray cluster to join with --distributor ray: `auto` (the one `ray start` began on this "
                   "machine) or the head's HOST:PORT. Default: a new local Ray instance (or $RAY_ADDRESS).")
@click.option("--max-videos", type=POSITIVE_INT, help="Ingest at most this many videos (counting ones done earlier).")
@click.option("--max-height", default=1080, show_default=True, type=POSITIVE_INT,
              help="Download the best video-only format up to this height.")
@click.option("--retries", default=3, show_default=True, type=NON_NEGATIVE_INT,
              help="Retries per request after a server error (5xx), a timeout or a dropped connection; "
                   "a broken download resumes where it stopped.")
@click.option("--retry-backoff", default=1.0, show_default=True, type=NON_NEGATIVE_FLOAT, metavar="SECONDS",
              help="Wait before the first retry; doubles for each further one, at most 30 s.")
@click.option("--socket-timeout", default=30.0, show_default=True, type=POSITIVE_FLOAT, metavar="SECONDS",
              help="A request that receives nothing for this long fails (and is retried).")
@click.option("--rate-limit", help="Download rate limit in bytes/s, e.g. 500K or 2M.")
@click.option("--cookies", type=click.Path(dir_okay=False, path_type=Path),
              help="Netscape cookies file passed to yt-dlp (for sites that need a login).")
@click.option("--retry-failed", is_flag=True,
              help="Retry only the videos that failed in earlier runs into --out (SOURCE optional).")
@click.option("--keep-downloads", is_flag=True, help="Keep downloaded videos in OUT/downloads after ingesting.")
@click.option("--force", is_flag=True,
              help="Re-ingest everything: remove OUT's earlier frames, manifests, failures and stats first "
                   "(needed to change --fps, --size, --min-flow... for a folder ingested with other values).")
@click.option("--strict", is_flag=True, help="Exit non-zero if any video failed (default: only if all failed).")
@click.pass_context
def ingest(ctx, sources, out, batch_files, fps, size, crop, start, end, min_flow, max_gap, min_height, flow_scale,
           image_format, jpeg_quality, jobs, distributor, ray_address, max_videos, max_height, retries, retry_backoff,
           socket_timeout, rate_limit, cookies, retry_failed, keep_downloads, force, strict):
    """Turn driving videos into moving 10 Hz frames and triplets for pretraining.

    SOURCE is a URL yt-dlp understands (a video, playlist, channel or page with videos), a local
    video file, a folder of videos, a CSV/Parquet file with a `url` column, or a .txt batch file.
    Static frames (mean optical flow < --min-flow px) are dropped; triplets never span a stop.
    Kill and rerun at will: finished videos (with a manifest) are skipped. OUT keeps one setting:
    a rerun with other --fps/--size/--min-flow/... is refused unless --force.
    """
    from geopre.errors import UserError
    from geopre.ingest import pipeline
    from geopre.ingest.config import DownloadConfig, FilterConfig, IngestConfig, SubsampleConfig, validate
    from geopre.ingest.sources import expand_sources

    if not sources and not batch_files and not retry_failed:
        raise UserError("give at least one SOURCE (URL, file, folder, CSV) or --batch-file; see `geopre ingest --help`")
    config = validate(IngestConfig(
        out=out,
        subsample=SubsampleConfig(fps=fps, size=size, crop=crop, start=start, end=end),
        filter=FilterConfig(min_flow=min_flow, max_gap=max_gap, flow_scale=flow_scale, min_height=min_height),
        download=DownloadConfig(max_height=max_height, retries=retries, backoff=retry_backoff,
                                socket_timeout=socket_timeout, rate_limit=rate_limit, cookies=cookies),
        image_format=image_format, jpeg_quality=jpeg_quality, workers=jobs, distributor=distributor,
        ray_address=ray_address, max_videos=max_videos,
        retry_failed=retry_failed, keep_downloads=keep_downloads, force=force))
    stats = pipeline.run_ingest(expand_sources(sources, batch_files), config)
    click.echo(pipeline.summary_table(stats))
    click.echo(f"manifests in {out / 'manifests'}, stats in {out / 'ingest_stats.json'}")
    for line in pipeline.failure_lines(stats, out):
        click.echo(line, err=True)
    if pipeline.all_failed(stats) or (strict and stats["videos"]["failed"]):
        ctx.exit(1)
