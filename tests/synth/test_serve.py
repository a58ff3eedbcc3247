import urllib.error
import urllib.request

import pytest

from geopre.ingest.config import DownloadConfig
from geopre.ingest.download import resolve
from geopre.ingest.sources import Source
from geopre.errors import UserError
from geopre.synth.serve import make_server, serving


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def test_byte_ranges(tmp_path):
    data = bytes(range(256)) * 4
    (tmp_path / "blob.bin").write_bytes(data)
    with serving(tmp_path) as base:
        status, headers, body = get(base + "blob.bin")
        assert status == 200 and body == data and headers["Accept-Ranges"] == "bytes"
        status, headers, body = get(base + "blob.bin", {"Range": "bytes=10-19"})
        assert status == 206 and body == data[10:20] and headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        status, _, body = get(base + "blob.bin", {"Range": "bytes=1000-"})
        assert status == 206 and body == data[1000:]
        status, _, body = get(base + "blob.bin", {"Range": "bytes=-5"})
        assert status == 206 and body == data[-5:]
        with pytest.raises(urllib.error.HTTPError) as err:
            get(base + "blob.bin", {"Range": "bytes=5000-6000"})
        assert err.value.code == 416
        with pytest.raises(urllib.error.HTTPError) as err:
            get(base + "missing.mp4")
        assert err.value.code == 404


def test_yt_dlp_reads_the_served_page_as_a_playlist(synth_videos_dir):
    with serving(synth_videos_dir) as base:
        entries = [video.url for video in resolve(Source(base + "index.html"), DownloadConfig())]
    names = sorted(p.name for p in (synth_videos_dir / "videos").glob("*.mp4"))
    assert sorted(url.rsplit("/", 1)[1] for url in entries) == names


def test_serving_a_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        make_server(tmp_path / "nope")


def test_a_taken_port_is_an_error_unless_any_port_will_do(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with serving(tmp_path) as first:
        port = int(first.rstrip("/").rsplit(":", 1)[1])
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port}"):
            make_server(tmp_path, port)
        with serving(tmp_path, port=port, any_port_if_taken=True) as second:
            assert second != first
            assert urllib.request.urlopen(second + "a.txt").read() == b"hello"
