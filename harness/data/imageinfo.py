"""Image size from the file header, and the one full-decode rule every verb applies to an image.

``image_size`` reads the header only (cheap, for listing thousands of images); ``verify_image``
decodes the pixels too and is what ``data check``, ``data convert``, ``detect`` and ``count`` apply
before a native library sees a file (libdarknet ``exit(0)``s on a truncated JPEG; OpenCV's
``imread`` silently returns a grey-filled one).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional

# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG), CC (DAC) are not frames.
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageHeaderError(ValueError):
    """The file is not a JPEG/PNG we can read the size of (truncated, other format, not an image)."""


class ImageDecodeError(ImageHeaderError):
    """The header is fine but the pixels are not (truncated data, or another size than the header says)."""


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of a JPEG or PNG from its header; other formats fall back to OpenCV."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(2)
        if head == b"\xff\xd8":
            return _jpeg_size(fh, path)
        if head + fh.read(6) == _PNG_MAGIC:
            chunk = fh.read(16)
            if len(chunk) < 16 or chunk[4:8] != b"IHDR":
                raise ImageHeaderError(f"{path}: PNG without IHDR chunk")
            width, height = struct.unpack(">II", chunk[8:16])
            return int(width), int(height)
    return _opencv_size(path)


def _jpeg_size(fh, path: Path) -> tuple[int, int]:
    while True:
        byte = fh.read(1)
        while byte and byte != b"\xff":  # skip to the next marker
            byte = fh.read(1)
        while byte == b"\xff":  # fill bytes
            byte = fh.read(1)
        if not byte:
            raise ImageHeaderError(f"{path}: JPEG ends before its frame header (truncated file?)")
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length field
        if marker == 0xD9:
            raise ImageHeaderError(f"{path}: JPEG has no frame header")
        raw_len = fh.read(2)
        if len(raw_len) < 2:
            raise ImageHeaderError(f"{path}: truncated JPEG segment")
        seg_len = struct.unpack(">H", raw_len)[0]
        if marker in _SOF_MARKERS:
            data = fh.read(5)
            if len(data) < 5:
                raise ImageHeaderError(f"{path}: truncated JPEG frame header")
            height, width = struct.unpack(">HH", data[1:5])
            if width == 0 or height == 0:
                raise ImageHeaderError(f"{path}: JPEG frame header says {width}x{height}")
            return int(width), int(height)
        fh.seek(seg_len - 2, 1)


def _opencv_size(path: Path) -> tuple[int, int]:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageHeaderError(f"{path}: not a readable image")
    return int(image.shape[1]), int(image.shape[0])


def decode_image(raw: bytes, width: int, height: int):
    """Decode ``raw`` fully (BGR) and check it has the header's size; raises ImageDecodeError.

    The audit (``data check``) and ``data convert`` use this one check, so a file that check
    passes is one that convert accepts.  OpenCV returns nothing for truncated JPEG data.
    """
    import cv2
    import numpy as np

    decoded = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageDecodeError("image data cannot be decoded (truncated or corrupt file)")
    if decoded.shape[:2] != (height, width):
        raise ImageDecodeError(
            f"decodes to {decoded.shape[1]}x{decoded.shape[0]} but its header says {width}x{height} (EXIF rotation?)"
        )
    return decoded


UNREADABLE = "not a readable image"


def verify_image(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image that decodes fully at its header's size.

    The rule of every verb that reads images (one place): raises ImageHeaderError (or its
    ImageDecodeError) naming the file, or OSError when it cannot be read at all.
    """
    path = Path(path)
    width, height = image_size(path)
    try:
        decode_image(path.read_bytes(), width, height)
    except ImageDecodeError as exc:
        raise ImageDecodeError(f"{path}: {exc}") from None
    return width, height


def checked_size(path: str | Path) -> tuple[Optional[tuple[int, int]], str]:
    """((width, height), "") when :func:`verify_image` accepts ``path``, else (None, why) for the
    skipped lists (images.csv, skipped.csv)."""
    try:
        return verify_image(path), ""
    except (ImageHeaderError, OSError) as exc:
        return None, unreadable_reason(str(exc), path)


def unreadable_reason(message: str, path: str | Path) -> str:
    """``not a readable image: why`` from an error message about ``path`` (its path left out)."""
    why = _without_path(message, Path(path))
    return why if why.startswith(UNREADABLE) else f"{UNREADABLE}: {why}"


def _without_path(message: str, path: Path) -> str:
    return message.split(": ", 1)[1] if message.startswith(str(path)) and ": " in message else message
