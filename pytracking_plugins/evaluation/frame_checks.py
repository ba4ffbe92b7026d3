"""A sequence that cannot be tracked as given is refused while it is tracked, naming the file (patch 13, in
pytracking's ``Tracker._track_sequence``), instead of producing garbage boxes with exit status 0:

- a first box that lies wholly outside the first frame (no tracker can start there): the annotation file and line
  for LaTOT (``Sequence.annotation_file``, set by the LaTOT dataset), the frame and its size for any dataset;
- a frame whose size differs from the first frame's (a tracker's state is in the first frame's pixels): the frame
  and both sizes.

The error ends the sequence; ``run_tracker.py`` lists it among the failed sequences and exits with status 1
(patch 07), and no result file is written for it.
"""
from typing import Iterable, Optional, Tuple

import numpy as np

from ltr_plugins import latot_data


class MalformedSequence(ValueError):
    """A sequence whose first box or frame sizes no tracker can work with; the message names the file."""


def _boxes(init_info: dict) -> Iterable[Tuple[Optional[str], list]]:
    box = init_info.get('init_bbox')
    if box is None:
        return []
    if isinstance(box, dict):          # multi-object sequences: {object id: box}
        return list(box.items())
    return [(None, box)]


def _where(seq) -> str:
    path = getattr(seq, 'annotation_file', None)
    if path:
        return '{}, line {}'.format(path, latot_data.first_box_line(path))
    return 'sequence {}'.format(seq.name)


def check_first_frame(seq, image: np.ndarray, init_info: dict) -> Tuple[int, ...]:
    """Refuses a first box that does not overlap the first frame; returns the frame's shape for :func:`check_frame`."""
    height, width = image.shape[:2]
    for object_id, box in _boxes(init_info):
        x, y, w, h = (float(v) for v in box[:4])
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise MalformedSequence(
                "{}: the first frame's box{} {} lies outside the first frame {} ({}x{} px), so no tracker can start "
                'from it; fix the box (x, y, w, h in pixels of that frame)'.format(
                    _where(seq), '' if object_id is None else ' of object {}'.format(object_id),
                    ','.join('{:g}'.format(float(v)) for v in box[:4]), seq.frames[0], width, height))
    return tuple(image.shape)


def check_frame(seq, frame_number: int, image: np.ndarray, first_shape: Tuple[int, ...]) -> None:
    """Refuses a frame whose size (or number of channels) differs from the first frame's."""
    if tuple(image.shape) != tuple(first_shape):
        raise MalformedSequence(
            'sequence {}: frame {} ({}) is {}x{} px but the first frame ({}) is {}x{} px; every frame of a sequence '
            'must have the first frame\'s size: replace or resize that frame'.format(
                seq.name, frame_number + 1, seq.frames[frame_number], image.shape[1], image.shape[0],
                seq.frames[0], first_shape[1], first_shape[0]))
