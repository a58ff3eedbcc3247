"""Frame bytes as stored in the shards (JPEG from ingest, PNG from KITTI/Cityscapes) -> uint8 RGB.

JPEG goes through simplejpeg (libjpeg-turbo), which can decode straight into a given array: the
loader decodes each frame into its slot of the batch, with no copy after the decode, and reads the
frame size from the header first to know whether it can. Same pixels as torchvision's decoder
(both are libjpeg-turbo with its default, accurate DCT), and ~5 % faster here (bench/shards.py).
PNG and the JPEG colour spaces libjpeg-turbo cannot turn into RGB itself go through torchvision.
"""

from __future__ import annotations

import struct

import numpy as np
import torch

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGB_READY = ("YCbCr", "Gray")  # JPEG colour spaces libjpeg-turbo converts to RGB itself


def _jpeg_header(data: bytes) -> tuple[int, int, str] | None:
    """(width, height, colour space) of a JPEG, None when ``data`` is not one."""
    import simplejpeg

    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        height, width, colourspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as err:
        raise ValueError(f"not a decodable JPEG image ({err})") from err
    return width, height, colourspace


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a JPEG or PNG from its header, without decoding it."""
    header = _jpeg_header(data)
    if header is not None:
        return header[:2]
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    raise ValueError("not a JPEG or PNG image")


def decode_image(data: bytes, out: np.ndarray | None = None) -> np.ndarray:
    """JPEG or PNG bytes -> uint8 RGB (H, W, 3), written into ``out`` when given (a C-contiguous
    (H, W, 3) uint8 array of the image's size, e.g. a slot of a batch); returns the image."""
    header = _jpeg_header(data)
    if header is not None and header[2] in _RGB_READY:
        import simplejpeg

        if out is not None and out.shape != (header[1], header[0], 3):
            raise ValueError(f"image is {header[0]}x{header[1]}, its slot {out.shape[1]}x{out.shape[0]}")
        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out)
        except ValueError as err:  # truncated or corrupt data (strict: libjpeg's warnings too)
            raise ValueError(f"not a decodable JPEG image ({err})") from err
    image = _decode_torchvision(data)
    if out is None:
        return image
    out[...] = image
    return out


def _decode_torchvision(data: bytes) -> np.ndarray:
    """torchvision (libpng / libjpeg-turbo). torchvision deprecates its decoders for TorchCodec's
    from 0.29 on; it is pinned, so move when unpinning."""
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as torchvision_decode

    try:  # the decoder only reads the buffer; bytearray gives torch a writable one
        image = torchvision_decode(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"not a decodable JPEG/PNG image ({str(err).splitlines()[0][:120]})") from err
    if image.dtype != torch.uint8:  # a 16-bit PNG
        image = (image.float() * (255 / 65535)).round().to(torch.uint8)
    return image.permute(1, 2, 0).numpy()  # torchvision's CHW is a view of the decoder's HWC: no copy
