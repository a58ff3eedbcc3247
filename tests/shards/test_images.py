"""Frame decoding: simplejpeg gives torchvision's pixels, decodes into a given slot, reads sizes
from headers; PNG (8 and 16 bit), grey and CMYK JPEG, and broken data."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from geopre.shards.images import decode_image, image_size


def encode(image: np.ndarray | Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photograph (scikit-image's stereo pair, left view), cut to an odd size."""
    from skimage.data import stereo_motorcycle

    return stereo_motorcycle()[0][100:291, 200:517]


def test_jpeg_decodes_to_torchvisions_pixels_and_into_a_batch_slot(photo):
    data = encode(photo, "JPEG", quality=90)
    reference = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    decoded = decode_image(data)
    assert decoded.shape == photo.shape and np.array_equal(decoded, reference.permute(1, 2, 0).numpy())
    assert np.abs(decoded.astype(int) - photo).mean() < 6  # and it is the photograph (4:2:0 chroma)
    batch = np.zeros((2, 3, *photo.shape), dtype=np.uint8)
    into = decode_image(data, out=batch[1, 2])
    assert np.shares_memory(into, batch) and np.array_equal(batch[1, 2], decoded)
    assert not batch[1, :2].any() and not batch[0].any()  # nothing else written
    with pytest.raises(ValueError, match="slot"):
        decode_image(data, out=batch[0, 0, :-1])


def test_sizes_come_from_the_headers(photo):
    for fmt in ("JPEG", "PNG"):
        assert image_size(encode(photo, fmt)) == (photo.shape[1], photo.shape[0])
    with pytest.raises(ValueError, match="not a JPEG or PNG"):
        image_size(b"GIF89a" + bytes(40))


def test_png_grey_and_cmyk_frames_decode_to_rgb(photo):
    png = encode(photo, "PNG")
    slot = np.empty_like(photo)
    assert np.array_equal(decode_image(png), photo) and np.array_equal(decode_image(png, out=slot), photo)
    deep = (photo[..., 0].astype(np.uint16) * 257)  # 16-bit grey PNG: scaled back to 8 bits
    deep_png = encode(Image.frombytes("I;16", (photo.shape[1], photo.shape[0]), deep.tobytes()), "PNG")
    assert np.array_equal(decode_image(deep_png), np.repeat(photo[..., :1], 3, axis=2))
    grey = decode_image(encode(photo[..., 1], "JPEG", quality=95))
    assert grey.shape == photo.shape and np.array_equal(grey[..., 0], grey[..., 2])
    assert np.abs(grey[..., 0].astype(int) - photo[..., 1]).mean() < 3
    cmyk = decode_image(encode(Image.fromarray(photo).convert("CMYK"), "JPEG", quality=95))
    assert cmyk.shape == photo.shape and np.abs(cmyk.astype(int) - photo).mean() < 12


def test_broken_frames_are_value_errors(photo):
    data = encode(photo, "JPEG")
    scan = data.index(b"\xff\xda")
    for broken in (b"not an image", data[:scan + 40], data[:20], encode(photo, "PNG")[:60]):
        with pytest.raises(ValueError, match="not a decodable"):
            decode_image(broken)
