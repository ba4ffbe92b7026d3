"""Whether a box is present: the one rule for "the target is in this frame".

Annotations and results write a frame without a target as ``0,0,0,0`` (or ``nan``), as pytracking treats boxes of
zero size as invalid: a box is present when its four values are finite and its width and height are positive.
"""
import numpy as np


def box_present(boxes):
    """Mask over the leading dimensions of ``[..., 4]`` ``x, y, w, h`` boxes: finite, with positive width and height.

    ``boxes`` is anything numpy reads (the mask is a numpy array), or a torch tensor, on any device (the mask is a
    tensor on that device)."""
    if hasattr(boxes, 'isfinite'):                   # a torch tensor: computed where it lies, no host copy
        return boxes.isfinite().all(dim=-1) & (boxes[..., 2] > 0) & (boxes[..., 3] > 0)
    boxes = np.asarray(boxes, dtype=np.float64)
    with np.errstate(invalid='ignore'):
        return np.all(np.isfinite(boxes), axis=-1) & (boxes[..., 2] > 0) & (boxes[..., 3] > 0)
