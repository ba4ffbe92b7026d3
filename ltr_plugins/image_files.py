"""Frames read so that a bad file is an error naming it, on both sides (tracking: patch 08; training: the LaTOT
dataset).

OpenCV and libjpeg decode a truncated JPEG (a download or copy cut short) without an error: libjpeg prints "Premature
end of JPEG file", which names no file, and fills the missing rows with grey, so a tracker runs on garbage and the
command succeeds. A JPEG ends with its end-of-image marker; one that does not is refused before it is decoded.
"""
import os

import numpy as np

JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
# Some encoders pad a JPEG after its end marker; the marker is looked for in this many last bytes.
JPEG_TAIL = 4096


class ImageFileError(OSError):
    """A frame that is missing, unreadable, corrupt or truncated; the message names the file."""


def truncated_jpeg(path: str) -> bool:
    """Whether ``path`` is a JPEG (by its first bytes) without its end-of-image marker near its end."""
    with open(path, 'rb') as f:
        if f.read(2) != JPEG_START:
            return False
        size = f.seek(0, os.SEEK_END)
        f.seek(max(2, size - JPEG_TAIL))
        return JPEG_END not in f.read()


def check_image_file(path: str) -> None:
    """Raises :class:`ImageFileError` naming ``path`` when it cannot be opened or is a truncated JPEG."""
    try:
        truncated = truncated_jpeg(path)
    except OSError as error:
        raise ImageFileError('cannot read image {}: {}; replace the file'.format(
            path, error.strerror or error)) from None
    if truncated:
        raise ImageFileError('cannot read image {}: the JPEG file is truncated (it ends before its end-of-image '
                             'marker: an interrupted download or copy?); replace the file'.format(path))


def read_rgb(path: str) -> np.ndarray:
    """The image at ``path`` as an RGB uint8 array [H, W, 3], as pytracking's ``Tracker._read_image`` reads it
    (OpenCV); :class:`ImageFileError` naming the file when it is missing, unreadable, corrupt or truncated."""
    import cv2
    check_image_file(path)
    try:
        path.encode('utf-8')
        image = cv2.imread(path)
    except UnicodeEncodeError:          # a path that is not UTF-8, which OpenCV cannot take: decode its bytes
        with open(path, 'rb') as f:
            image = cv2.imdecode(np.frombuffer(f.read(), dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageFileError('cannot read image {}: missing, unreadable or corrupt; replace the file'.format(path))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
