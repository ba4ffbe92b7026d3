"""Attributes measured on generated boxes, with LaTOT's definitions (:mod:`ltr_plugins.latot_attributes`).

SV, FM and OV are those definitions, applied to the generator's unclipped boxes where it has them (clipping at the
border would otherwise look like a scale change); PO and FO come from the occluder's coverage, which only the
generator knows.
"""
from typing import Dict, Optional, Tuple

import numpy as np

from ltr_plugins import latot_attributes
from ltr_plugins.common.boxes import box_present
from ltr_plugins.synthetic.spec import Size

#: Attributes measured on the generated boxes (the others are taken from the spec).
BOX_ATTRIBUTES: Tuple[str, ...] = latot_attributes.DERIVABLE + ('PO', 'FO')

#: A visible frame counts as partly occluded when more than this share of its box is covered.
PARTIAL_OCCLUSION_MIN_COVER = 0.05
#: A box counts as fully occluded when the occluder covers it with this margin (px) on every side.
FULL_OCCLUSION_MARGIN = 1


def occlusion(true_boxes: np.ndarray, rects: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(share of each box under the occluder rectangle x0, y0, x1, y1 (NaN: none), whether it is fully covered)."""
    x, y, w, h = true_boxes.T
    has = np.isfinite(rects[:, 0])
    r = np.where(has[:, None], rects, 0.0)
    ix = np.clip(np.minimum(x + w, r[:, 2]) - np.maximum(x, r[:, 0]), 0, None)
    iy = np.clip(np.minimum(y + h, r[:, 3]) - np.maximum(y, r[:, 1]), 0, None)
    share = np.where(has, ix * iy / (w * h), 0.0)
    margin = FULL_OCCLUSION_MARGIN
    full = has & (r[:, 0] <= x - margin) & (r[:, 1] <= y - margin) & (r[:, 2] >= x + w + margin) \
        & (r[:, 3] >= y + h + margin)
    return share, full


def measure_box_attributes(boxes: np.ndarray, image_size: Optional[Size] = None,
                           true_boxes: Optional[np.ndarray] = None, occluded: Optional[np.ndarray] = None,
                           occluded_full: Optional[np.ndarray] = None) -> Dict[str, bool]:
    """SV, FM, OV (and PO, FO when occlusion is given) measured on boxes with LaTOT's definitions.

    boxes are annotations (absent: not :func:`box_present`).  true_boxes, when given, are the unclipped boxes, used
    for SV, FM and OV (``latot_attributes``' functions with the annotations' presence); without them the
    annotations are used as LaTOT's own are.
      PO / FO: a visible frame partly (over PARTIAL_OCCLUSION_MIN_COVER of the box) / fully covered by the occluder.
    """
    boxes = np.asarray(boxes, dtype=float)
    visible = box_present(boxes)
    if true_boxes is None:
        out: Dict[str, bool] = {'SV': latot_attributes.scale_variation(boxes, present=visible),
                                'FM': latot_attributes.fast_motion(boxes, present=visible),
                                'OV': latot_attributes.out_of_view(boxes, image_size, present=visible)}
    else:
        true_boxes = np.asarray(true_boxes, dtype=float)
        out = {'SV': latot_attributes.scale_variation(true_boxes, present=np.ones(len(true_boxes), bool)),
               'FM': latot_attributes.fast_motion(true_boxes, present=visible),
               'OV': latot_attributes.out_of_view(true_boxes, image_size, present=visible, clipped=False)}
    if occluded is not None:
        full = np.zeros(len(boxes), bool) if occluded_full is None else np.asarray(occluded_full, bool)
        occluded = np.asarray(occluded, float)
        out['PO'] = bool(np.any(visible & ~full & (occluded > PARTIAL_OCCLUSION_MIN_COVER)))
        out['FO'] = bool(np.any(visible & full))
    return out
