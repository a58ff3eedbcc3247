"""Where shard sets live: a local folder, a ``file://`` URL, or object storage through fsspec
(``s3://``, ``gs://``, ...).

Credentials and endpoints come from fsspec's usual places (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``~/.aws``, ``FSSPEC_S3_*`` variables, fsspec config files) or from
explicit ``storage_options`` (passed to the filesystem, e.g. ``{"endpoint_url": ...}``). A protocol
whose fsspec package is not installed is a one-line error naming the package to install.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from geopre.errors import UserError


def scheme(url: str | Path) -> str:
    """The URL scheme, ``""`` for a local path (a one-letter scheme is a Windows drive)."""
    found = urlparse(str(url)).scheme
    return "" if len(found) == 1 else found


def is_local(url: str | Path) -> bool:
    """A local path or a ``file://`` URL."""
    return scheme(url) in ("", "file")


def local_path(url: str | Path) -> Path:
    """The path of a local path or ``file://`` URL."""
    return Path(unquote(urlparse(str(url)).path)) if scheme(url) == "file" else Path(url)


def filesystem(url: str, storage_options: dict | None = None):
    """``(fsspec filesystem, path inside it)`` for an fsspec URL."""
    import fsspec

    require_protocol(url)
    return fsspec.core.url_to_fs(url, **(storage_options or {}))


def require_protocol(url: str) -> None:
    """A one-line error, raised before any worker tries, when ``url``'s fsspec package is missing."""
    import fsspec
    from fsspec.registry import known_implementations

    protocol = scheme(url)
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError as err:  # fsspec's "Install s3fs to access S3" and the like
        package = known_implementations[protocol]["class"].split(".")[0]
        raise UserError(f"{url}: {protocol}:// needs the {package} package: pip install {package}") from err
    except ValueError as err:  # a protocol fsspec does not know
        raise UserError(f"{url}: {err}") from err


def open_remote(url: str, storage_options: dict | None = None):
    """A readable binary stream of an fsspec URL (read ahead in blocks, as tar streaming wants)."""
    fs, path = filesystem(url, storage_options)
    return fs.open(path, "rb")

