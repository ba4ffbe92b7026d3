"""The 12 LaTOT challenge attributes (paper, Table II): names, flag files, and the ones the boxes determine.

Every sequence gets one flag per attribute: ``True`` / ``False`` when known, ``None`` when unavailable. The flags
come, first match wins, from ``<root>/<sequence>/attributes.txt`` (:func:`read_flag_file`), from the dataset's table
``<root>/attributes.csv`` (:func:`read_attribute_table`), or from the ground-truth boxes and the image size: only SV,
FM and OV, which Table II defines geometrically (:func:`scale_variation`, :func:`fast_motion`, :func:`out_of_view`);
the other nine need a human look at the images and stay unavailable. These functions are the definitions; the
synthetic data's generator applies them to its unclipped boxes. "Present" means finite with positive width and
height (:func:`~ltr_plugins.common.boxes.box_present`); ``0,0,0,0`` (or ``nan``) is a frame without a box.
"""
import os
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ltr_plugins.common.boxes import box_present

# Table II order; also the column order of the per-sequence flag file.
ATTRIBUTES: Tuple[str, ...] = ('SV', 'FM', 'OV', 'IV', 'CM', 'MB', 'BC', 'SO', 'PO', 'FO', 'AM', 'LI')

LONG_NAMES: Dict[str, str] = {
    'SV': 'Scale Variation', 'FM': 'Fast Motion', 'OV': 'Out-of-View', 'IV': 'Illumination Variation',
    'CM': 'Camera Motion', 'MB': 'Motion Blur', 'BC': 'Background Clutter', 'SO': 'Similar Object',
    'PO': 'Partial Occlusion', 'FO': 'Full Occlusion', 'AM': 'Abrupt Motion', 'LI': 'Low Illumination'}

DESCRIPTIONS: Dict[str, str] = {
    'SV': 'the ratio of bounding box area is outside the range [0.5, 2] after 1s',
    'FM': 'the motion of the ground truth bounding box is larger than the size of the bounding box',
    'OV': 'some portion of the target leaves the camera field of view',
    'IV': 'the illumination of the target changes significantly',
    'CM': 'abrupt motion of the camera',
    'MB': 'the target region is blurred due to the motion of target or camera',
    'BC': 'the background near the target has the similar color or texture as the target',
    'SO': 'there are object of similar shape or same type near the target',
    'PO': 'the target is partially occluded',
    'FO': 'the target is fully occluded',
    'AM': 'abrupt motion of the camera or target',
    'LI': 'the illumination intensity in the target area is low'}

# The attributes a box sequence (plus the image size) determines; the rest need the images.
DERIVABLE: Tuple[str, ...] = ('SV', 'FM', 'OV')

FLAG_FILE_NAME = 'attributes.txt'
TABLE_FILE_NAME = 'attributes.csv'

FRAME_RATE = 30             # LaTOT's frame rate (Table I); SV compares frames one second apart.
SV_RATIO_RANGE = (0.5, 2.0)
BORDER_TOLERANCE = 0.005    # half of the annotations' 0.01 px precision

Flags = Dict[str, Optional[bool]]

_SEPARATORS = re.compile(r'[,\s]+')


class AttributeFormatError(ValueError):
    """An attribute file that does not follow the documented format; the message names the file and line."""


def short_name(name: str) -> str:
    """The short name of an attribute given by its short or long name (any case)."""
    for short in ATTRIBUTES:
        if name.upper() == short or name.lower() == LONG_NAMES[short].lower():
            return short
    raise ValueError("Unknown LaTOT attribute '{}': use one of {} or their long names ({})".format(
        name, ', '.join(ATTRIBUTES), ', '.join(LONG_NAMES[a] for a in ATTRIBUTES)))


def unavailable() -> Flags:
    return {name: None for name in ATTRIBUTES}


def _fields(line: str) -> List[str]:
    return [field for field in _SEPARATORS.split(line.strip()) if field]


def _content_lines(path: str) -> List[Tuple[int, str]]:
    with open(path) as f:
        return [(number, line.strip()) for number, line in enumerate(f, start=1)
                if line.strip() and not line.lstrip().startswith('#')]


def _parse_flag(value: str, path: str, line_number: int, column: str) -> bool:
    if value not in ('0', '1'):
        raise AttributeFormatError('{}, line {}: the flag for {} must be 0 or 1, got {!r}'.format(
            path, line_number, column, value))
    return value == '1'


def _parse_header(names: Sequence[str], path: str, line_number: int) -> List[str]:
    shorts = []
    for name in names:
        try:
            shorts.append(short_name(name))
        except ValueError:
            raise AttributeFormatError('{}, line {}: unknown attribute {!r} in the header (known: {})'.format(
                path, line_number, name, ' '.join(ATTRIBUTES))) from None
    duplicates = sorted({s for s in shorts if shorts.count(s) > 1})
    if duplicates:
        raise AttributeFormatError('{}, line {}: attribute(s) {} named twice in the header'.format(
            path, line_number, ', '.join(duplicates)))
    return shorts


def read_flag_file(path: str) -> Flags:
    """Reads a per-sequence flag file: all 12 attributes, True or False.

    One line of 12 ``0``/``1`` flags, separated by commas or whitespace, in Table II's order
    ``SV FM OV IV CM MB BC SO PO FO AM LI``; optionally a header line of short names first, which then gives the
    order (any order; every one of the 12 exactly once). Empty lines and ``#`` lines are ignored.
    """
    lines = _content_lines(path)
    if not lines:
        raise AttributeFormatError('{}: no flags in the file (expected one line of {} 0/1 flags: {})'.format(
            path, len(ATTRIBUTES), ','.join(ATTRIBUTES)))
    order = list(ATTRIBUTES)
    if re.search('[A-Za-z]', lines[0][1]):
        header_number, header = lines[0]
        order = _parse_header(_fields(header), path, header_number)
        if sorted(order) != sorted(ATTRIBUTES):
            raise AttributeFormatError('{}, line {}: the header must name all {} attributes ({}), missing {}'.format(
                path, header_number, len(ATTRIBUTES), ' '.join(ATTRIBUTES),
                ', '.join(a for a in ATTRIBUTES if a not in order)))
        lines = lines[1:]
    if len(lines) != 1:
        where = lines[1][0] if len(lines) > 1 else 'end'
        raise AttributeFormatError('{}, line {}: expected exactly one line of flags after the optional header'.format(
            path, where))
    line_number, text = lines[0]
    values = _fields(text)
    if len(values) != len(order):
        raise AttributeFormatError('{}, line {}: expected {} flags ({}), got {}: {!r}'.format(
            path, line_number, len(order), ','.join(order), len(values), text))
    return {name: _parse_flag(value, path, line_number, name) for name, value in zip(order, values)}


def read_attribute_table(path: str) -> Dict[str, Flags]:
    """Reads a dataset-wide table: ``{sequence: flags}``; attributes without a column are None.

    A header line ``sequence`` (or ``name``) followed by attribute short names in any order (a subset is allowed),
    then one row ``<sequence>,<flag>,...`` per sequence; commas or whitespace. Unlisted sequences fall through.
    """
    lines = _content_lines(path)
    if not lines:
        raise AttributeFormatError('{}: empty attribute table (expected a header line "sequence,{}")'.format(
            path, ','.join(ATTRIBUTES)))
    header_number, header = lines[0]
    columns = _fields(header)
    if columns[0].lower() not in ('sequence', 'name'):
        raise AttributeFormatError('{}, line {}: the header must start with "sequence" (or "name"), got {!r}'.format(
            path, header_number, header))
    order = _parse_header(columns[1:], path, header_number)
    table: Dict[str, Flags] = {}
    for line_number, text in lines[1:]:
        values = _fields(text)
        if len(values) != len(order) + 1:
            raise AttributeFormatError('{}, line {}: expected a sequence name and {} flags ({}), got {!r}'.format(
                path, line_number, len(order), ','.join(order), text))
        if values[0] in table:
            raise AttributeFormatError('{}, line {}: sequence {} is listed twice'.format(path, line_number, values[0]))
        flags = unavailable()
        for name, value in zip(order, values[1:]):
            flags[name] = _parse_flag(value, path, line_number, name)
        table[values[0]] = flags
    return table


def scale_variation(boxes: np.ndarray, frame_rate: int = FRAME_RATE, present: Optional[np.ndarray] = None) -> bool:
    """SV: two present frames at most one second (``frame_rate`` frames) apart whose areas differ more than x2.

    Table II: "the ratio of bounding box area is outside the range [0.5, 2] after 1 s". "Within" rather than
    "exactly" one second, so that a target that doubles and shrinks back inside a second counts, and sequences
    shorter than a second can have it.
    ``present`` overrides which frames have a box (default: :func:`box_present`), for boxes that are the target's
    full extent even where it is out of view (a generator's unclipped boxes).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    present = box_present(boxes) if present is None else np.asarray(present, dtype=bool)
    area = np.where(present, boxes[:, 2] * boxes[:, 3], 1.0)
    low, high = SV_RATIO_RANGE
    for gap in range(1, min(frame_rate, len(boxes) - 1) + 1):
        ratio = area[gap:] / area[:-gap]
        if np.any(present[gap:] & present[:-gap] & ((ratio < low) | (ratio > high))):
            return True
    return False


def fast_motion(boxes: np.ndarray, present: Optional[np.ndarray] = None) -> bool:
    """FM: two consecutive present frames whose centres move more than the largest side of either box.

    Table II: "the motion of the ground truth bounding box is larger than the size of the bounding box"; the larger
    box is the size, so that a box that grows or shrinks is not taken for motion.
    ``present`` as in :func:`scale_variation`.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if len(boxes) < 2:
        return False
    present = box_present(boxes) if present is None else np.asarray(present, dtype=bool)
    safe = np.where(present[:, None], boxes, 0.0)
    centres = safe[:, :2] + 0.5 * safe[:, 2:]
    motion = np.hypot(*(centres[1:] - centres[:-1]).T)
    side = safe[:, 2:].max(axis=1)
    size = np.maximum(side[1:], side[:-1])
    return bool(np.any(present[1:] & present[:-1] & (motion > size)))


def out_of_view(boxes: np.ndarray, image_size: Optional[Tuple[int, int]] = None,
                present: Optional[np.ndarray] = None, clipped: bool = True) -> bool:
    """OV: a frame without a box, or a present box reaching or crossing the border of a ``(width, height)`` image.

    In LaTOT's annotations an occluded target keeps its box, so a frame without one is a target out of view.
    Touching the border (within :data:`BORDER_TOLERANCE`) counts because the box of a partly visible target is
    clipped to the image, so it sits exactly on the border. Without the image size only the missing boxes count.
    ``clipped=False``: the boxes are the target's full extent, not clipped to the image (as a generator knows them,
    with ``present`` saying where the target is in view): a box crossing the border counts, one touching it not.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    present = box_present(boxes) if present is None else np.asarray(present, dtype=bool)
    if not present.all():
        return True
    if image_size is None:
        return False
    width, height = image_size
    x, y, w, h = boxes.T
    if not clipped:
        return bool(np.any((x < 0) | (y < 0) | (x + w > width) | (y + h > height)))
    tol = BORDER_TOLERANCE
    return bool(np.any((x <= tol) | (y <= tol) | (x + w >= width - tol) | (y + h >= height - tol)))


def derive_attributes(boxes: np.ndarray, image_size: Optional[Tuple[int, int]] = None,
                      frame_rate: int = FRAME_RATE) -> Flags:
    """Flags from the ground-truth boxes: SV and FM; OV when the ``(width, height)`` is known; the rest None.

    Without the image size OV is True when a frame has no box and unknown (None) otherwise.
    """
    flags = unavailable()
    flags['SV'] = scale_variation(boxes, frame_rate)
    flags['FM'] = fast_motion(boxes)
    ov = out_of_view(boxes, image_size)
    flags['OV'] = ov if (ov or image_size is not None) else None
    return flags


def flag_file_path(root: str, name: str) -> str:
    return os.path.join(root, name, FLAG_FILE_NAME)


def table_path(root: str) -> str:
    return os.path.join(root, TABLE_FILE_NAME)


def load_table(root: str) -> Optional[Dict[str, Flags]]:
    path = table_path(root)
    return read_attribute_table(path) if os.path.isfile(path) else None


def sequence_flags(root: str, name: str, boxes: np.ndarray, image_size: Optional[Tuple[int, int]] = None,
                   table: Optional[Mapping[str, Flags]] = None) -> Tuple[Flags, str]:
    """A sequence's flags and where they came from ('file', 'table' or 'derived'); see the module docstring."""
    path = flag_file_path(root, name)
    if os.path.isfile(path):
        return read_flag_file(path), 'file'
    if table is not None and name in table:
        flags = dict(table[name])
        # A table that leaves out a derivable attribute still gets it from the boxes.
        derived = derive_attributes(boxes, image_size)
        for attribute in DERIVABLE:
            if flags[attribute] is None:
                flags[attribute] = derived[attribute]
        return flags, 'table'
    return derive_attributes(boxes, image_size), 'derived'


def availability(flags_by_sequence: Mapping[str, Flags]) -> Dict[str, bool]:
    """An attribute is available for a set of sequences when every one of them has a known flag for it."""
    return {name: bool(flags_by_sequence) and all(f[name] is not None for f in flags_by_sequence.values())
            for name in ATTRIBUTES}


def members(flags_by_sequence: Mapping[str, Flags], attribute: str) -> List[str]:
    """Sequences flagged with ``attribute`` (short or long name), in the mapping's order."""
    attribute = short_name(attribute)
    return [name for name, flags in flags_by_sequence.items() if flags[attribute]]
