import re

import pytest

from geopre.errors import UserError
from geopre.ingest.sources import Source, expand_sources, url_key, video_id


def test_batch_file_csv_folder_and_url_expand_in_order(tmp_path):
    (tmp_path / "vids").mkdir()
    for name in ("b.mp4", "a.mkv", "notes.txt"):
        (tmp_path / "vids" / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# my drives\n\nhttps://example.com/1.mp4\n  https://example.com/2.mp4 \n")
    (tmp_path / "table.csv").write_text("title,url\none,https://example.com/3.mp4\nempty,\n")
    sources = expand_sources(["https://example.com/1.mp4", str(tmp_path / "vids"), str(tmp_path / "table.csv")],
                             [tmp_path / "list.txt"])
    assert [s.url.rsplit("/", 1)[-1] for s in sources] == ["1.mp4", "2.mp4", "a.mkv", "b.mp4", "3.mp4"]
    assert [s.local for s in sources] == [False, False, True, True, False]


def test_csv_without_url_column_is_a_one_line_error(tmp_path):
    (tmp_path / "t.csv").write_text("link\nhttps://example.com/a.mp4\n")
    with pytest.raises(UserError, match="no 'url' column .*link"):
        expand_sources([str(tmp_path / "t.csv")])


def test_parquet_needs_pyarrow_or_pandas(tmp_path):
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="needs pyarrow"):
            expand_sources([str(tmp_path / "t.parquet")])
        return
    pytest.skip("pyarrow is installed: the missing-library message cannot be shown")


def test_missing_source_and_empty_folder_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="neither a URL"):
        expand_sources([str(tmp_path / "nope.mp4")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no video files"):
        expand_sources([str(tmp_path / "empty")])


def test_keys_are_stable_and_ids_are_safe_names():
    assert url_key("https://www.youtube.com/watch?v=abcdefghijk") == url_key("https://youtu.be/abcdefghijk")
    # Same file name on two hosts: two videos (yt-dlp's archive would call them one).
    assert video_id(url_key("http://a.example/clip.mp4")) != video_id(url_key("http://b.example/clip.mp4"))
    assert re.fullmatch(r"[0-9a-f]{16}", video_id("../../etc/passwd; rm -rf"))
    assert Source("x") == Source("x", local=False)


EXCEL = b"\xef\xbb\xbf"  # the UTF-8 byte-order mark Excel and Notepad write first


def test_batch_file_and_csv_saved_by_excel_on_windows(tmp_path):
    # UTF-8 with BOM and CRLF line endings, a quoted header and a quoted cell holding a comma.
    (tmp_path / "list.txt").write_bytes(EXCEL + b"https://example.com/1.mp4\r\n# note\r\n\r\n"
                                        b"\"https://example.com/a,b.mp4\"\r\n")
    (tmp_path / "table.csv").write_bytes(EXCEL + b"\"URL\",title\r\nhttps://example.com/2.mp4,\"Drive, day 1\"\r\n"
                                         b"\"https://example.com/3.mp4\",\"say \"\"hi\"\"\"\r\n")
    # Excel where the comma is the decimal point separates with semicolons.
    (tmp_path / "semicolons.csv").write_bytes(EXCEL + b"title;url\r\nDrive;https://example.com/4.mp4\r\n")
    sources = expand_sources([str(tmp_path / "table.csv"), str(tmp_path / "semicolons.csv")], [tmp_path / "list.txt"])
    assert [s.url for s in sources] == ["https://example.com/1.mp4", "https://example.com/a,b.mp4",
                                        "https://example.com/2.mp4", "https://example.com/3.mp4",
                                        "https://example.com/4.mp4"]


def test_utf16_batch_file_and_unreadable_encoding(tmp_path):
    (tmp_path / "unicode.txt").write_bytes("https://example.com/1.mp4\r\n".encode("utf-16"))  # Excel's "Unicode text"
    assert [s.url for s in expand_sources([str(tmp_path / "unicode.txt")])] == ["https://example.com/1.mp4"]
    (tmp_path / "latin1.csv").write_bytes("url,title\nhttps://example.com/1.mp4,Stra\xdfe\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"cannot read CSV .*latin1.csv: not UTF-8-SIG text .*save it as UTF-8"):
        expand_sources([str(tmp_path / "latin1.csv")])
