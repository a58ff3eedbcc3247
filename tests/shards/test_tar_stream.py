"""The fast tar reader gives what tarfile's stream mode gives (through webdataset's iterator, which
the loader used before): the same files of real shards, pax, GNU and compressed tars, and the same
files then the same error for every truncation and for corrupt headers; where tarfile ends quietly
at a damaged or cut header, losing the rest unnoticed, the fast reader raises ReadError instead."""

import gzip
import io
import tarfile

import pytest
from webdataset.tariterators import tar_file_iterator

from geopre.shards.tar_stream import BLOCK, header_number, tar_members
from geopre.shards.write import write_tar


def by_tarfile(data: bytes):
    """(files, error type or None) as webdataset's tarfile-based iterator reads ``data``."""
    return _outcome(lambda stream: ((e["fname"], e["data"]) for e in tar_file_iterator(stream)), data)


def by_fast_reader(data: bytes, chunk: int | None = None):
    stream = io.BytesIO(data) if chunk is None else TrickleStream(data, chunk)
    return _outcome(tar_members, data, stream)


def _outcome(read, data, stream=None):
    files = []
    try:
        for name, content in read(stream or io.BytesIO(data)):
            files.append((name, content))
    except Exception as err:
        return files, type(err)
    return files, None


class TrickleStream(io.RawIOBase):
    """At most ``chunk`` bytes per read, as a pipe or socket may return."""

    def __init__(self, data: bytes, chunk: int):
        self.data, self.chunk, self.position = data, chunk, 0

    def read(self, size=-1):
        size = self.chunk if size < 0 else min(size, self.chunk)
        part = self.data[self.position:self.position + size]
        self.position += len(part)
        return part


def written_tar(tmp_path, members) -> bytes:
    """A tar as the shard writer writes it (pax format: a pax header before long or non-ASCII names)."""
    write_tar(tmp_path / "t.tar", members)
    return (tmp_path / "t.tar").read_bytes()


def tarfile_tar(members, format) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


SAMPLE = [("k1.prev.jpg", b"p" * 700), ("k1.ref.jpg", b"r" * 512), ("k1.json", b"{}"), ("k2.prev.jpg", b"")]
LONG = "x" * 120 + ".prev.jpg"


def test_real_shards_read_the_same(shard_dir):
    for path in sorted(shard_dir.glob("*.tar")):
        data = path.read_bytes()
        files, error = by_fast_reader(data)
        assert error is None and len(files) % 4 == 0 and files
        assert (files, error) == by_tarfile(data) == by_fast_reader(data, chunk=100)


def test_pax_headers_from_the_writer_read_the_same(tmp_path):
    for members in ([("k1.prev.jpg", b"a" * 10), (LONG, b"b" * 600), ("k3.json", b"{}")],  # long name
                    [("k1.json", b"{}"), ("vidéo_1.json", b"{}"), ("k2.json", b"[]")],  # non-ASCII name
                    [("__key__", b"meta"), ("k1.json", b"{}"), ("__meta__/x", b"m")]):  # webdataset metadata
        data = written_tar(tmp_path, members)
        expected = [(name, content) for name, content in members if not name.startswith("__")]
        assert by_fast_reader(data) == by_tarfile(data) == (expected, None)
    assert b" path=" + LONG.encode() in written_tar(tmp_path, [(LONG, b"")])  # the writer made a pax header


@pytest.mark.parametrize("format", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT])
def test_ustar_prefixes_and_gnu_long_names_read_the_same(format):
    members = [("k1.json", b"{}"), ("d" * 60 + "/" + "y" * 60 + ".json", b"{}"), ("k2.json", b"")]
    data = tarfile_tar(members, format)  # ustar splits the long name into prefix + name; GNU adds an 'L' member
    assert by_fast_reader(data) == by_tarfile(data) == (members, None)


def test_directories_links_and_compressed_tars_go_to_tarfile():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("k1.json"), io.BytesIO(b""))
        for name, kind in (("dir", tarfile.DIRTYPE), ("link", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            tar.addfile(info)
        info = tarfile.TarInfo("k2.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    data = buffer.getvalue()
    assert by_fast_reader(data) == by_tarfile(data) == ([("k1.json", b""), ("k2.json", b"{}")], None)
    assert by_fast_reader(gzip.compress(data)) == by_tarfile(data)


def test_every_truncation_ends_or_fails_as_with_tarfile_or_louder(tmp_path):
    complete = SAMPLE + [("k2.json", b"{}")]
    data = written_tar(tmp_path, complete)
    for length in range(0, len(data) + 1, 7):
        files, error = by_tarfile(data[:length])
        if error is None and files != complete and length % BLOCK:
            error = tarfile.ReadError  # cut inside a header: tarfile ends quietly, the loss is reported here
        assert by_fast_reader(data[:length]) == (files, error), length
    assert by_tarfile(data[:BLOCK + 100])[1] is tarfile.ReadError  # cut inside a file: counted as now
    assert by_fast_reader(data[:-1024]) == (SAMPLE + [("k2.json", b"{}")], None)  # cut end-of-archive blocks


def test_corrupt_headers_fail_as_with_tarfile_or_louder(tmp_path):
    data = written_tar(tmp_path, SAMPLE)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        headers = [member.offset for member in tar.getmembers()][:3]  # the first three members' header blocks
    assert headers[1] > BLOCK
    loud = 0
    for header in headers:
        for offset in (0, 100, 124, 148, 156, 345, 511):
            corrupt = bytearray(data)
            corrupt[header + offset] ^= 0x5A
            files, error = by_tarfile(bytes(corrupt))
            if error is None and len(files) < len(SAMPLE):
                error, loud = tarfile.ReadError, loud + 1  # tarfile stops quietly: the rest is lost unnoticed
            assert by_fast_reader(bytes(corrupt)) == (files, error), (header, offset)
    assert loud > 0
    assert by_fast_reader(b"this is not a tar file" * 100)[1] is tarfile.ReadError
    assert by_fast_reader(b"") == by_tarfile(b"")


def test_header_numbers_octal_and_base256_as_tarfile():
    for field in (b"0000644\0", b"00000001750\0", b" 17 \0\0\0\0", b"\0" * 8,
                  b"\x80" + (9 << 33).to_bytes(11, "big"), b"\xff" * 12):
        assert header_number(field) == tarfile.nti(field)
    with pytest.raises(ValueError):
        header_number(b"12x45678")
