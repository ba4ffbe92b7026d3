"""The LaTOT dataset on disk: official splits, folder layout, annotation files and object categories.

The released dataset's layout (and :mod:`ltr_plugins.synthetic`'s): ``<root>/<sequence>/img/<frame>.jpg`` (file
names sort in frame order), ``<root>/<sequence>/<sequence>.txt`` (one ``x,y,w,h`` box per frame, comma or whitespace
separated; ``0,0,0,0`` or ``nan`` for an absent target), optionally the attribute flags
(:mod:`ltr_plugins.latot_attributes`) and absent-target flags, one 0 / 1 per frame, in ``<root>/absent/<sequence>.txt``
(the LaSOT toolkit's layout) or ``<root>/<sequence>/absent.txt``.

Both pytracking's evaluation dataset and ltr's training dataset read LaTOT through this module, so every format
rule and every error message lives here once.
"""
import io
import os
import re
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ltr_plugins.common.file_names import displayable

SPLITS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'settings', 'latot')
SPLIT_NAMES = ('all', 'test', 'train')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')

_TRAILING_NUMBER = re.compile(r'\d+$')
_FRAME_NUMBER = re.compile(r'(\d+)')


class LaTOTFormatError(ValueError):
    """A LaTOT file or folder that does not follow the documented layout; the message names it."""


def split_sequence_names(split: str = 'test') -> List[str]:
    """Sequence names of an official split ('test': 165, 'train': 269, 'all': both, 434), in the lists' order."""
    if split not in SPLIT_NAMES:
        raise ValueError("Unknown LaTOT split '{}': choose one of {}".format(split, ', '.join(SPLIT_NAMES)))
    if split == 'all':
        return split_sequence_names('test') + split_sequence_names('train')
    return read_name_list(os.path.join(SPLITS_DIR, '{}.txt'.format(split)))


def read_name_list(path: str) -> List[str]:
    """Sequence names from a list file like the official splits: one per line, a ``.txt`` suffix stripped, blank
    lines and ``#`` comments skipped."""
    names = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#'):
                names.append(line[:-len('.txt')] if line.endswith('.txt') else line)
    return names


def sequence_category(name: str) -> str:
    """Object category of a sequence: the name without its '-suffix' and trailing number.

    ``kite15`` -> ``kite``, ``car33-2`` -> ``car``, ``car24-deleted`` -> ``car``, ``electric_bicycle-x`` ->
    ``electric_bicycle``, ``poker_box`` -> ``poker_box``.
    """
    stem = name.split('-', 1)[0]
    return _TRAILING_NUMBER.sub('', stem) or stem


def annotation_path(root: str, name: str) -> str:
    return os.path.join(root, name, '{}.txt'.format(name))


def frames_dir(root: str, name: str) -> str:
    return os.path.join(root, name, 'img')


def _frame_sort_key(file_name: str):
    # Natural order: 'frame10.jpg' after 'frame9.jpg', whatever the zero padding.
    return [int(part) if part.isdigit() else part for part in _FRAME_NUMBER.split(file_name)]


def list_frames(root: str, name: str) -> List[str]:
    """Paths of a sequence's image files in frame order (other files in img/ are ignored)."""
    folder = frames_dir(root, name)
    if not os.path.isdir(folder):
        raise LaTOTFormatError('LaTOT sequence {}: no frame folder {}'.format(name, folder))
    files = [f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS)]
    if not files:
        raise LaTOTFormatError('LaTOT sequence {}: no image files in {}'.format(name, folder))
    undecodable = [f for f in files if displayable(f) != f]
    if undecodable:
        raise LaTOTFormatError('LaTOT sequence {}: {} frame file name(s) in {} are not UTF-8 (such as {}): a frame '
                               'is named by its number; rename them'.format(
                                   name, len(undecodable), folder, ascii(os.fsencode(undecodable[0]))))
    files.sort(key=_frame_sort_key)
    _check_consecutive_frame_numbers(files, folder, name)
    return [os.path.join(folder, f) for f in files]


def _check_consecutive_frame_numbers(files: List[str], folder: str, name: str) -> None:
    """Frames numbered in their names (``000001.jpg``) must be consecutive: a missing frame would shift every later
    box onto the wrong image, unnoticed when the annotation has as many boxes as there are files."""
    numbers = [_FRAME_NUMBER.findall(os.path.splitext(f)[0]) for f in files]
    if not all(numbers) or len({tuple(_FRAME_NUMBER.sub('#', os.path.splitext(f)[0]) for f in files)}) != 1:
        return   # names without a frame number, or of several patterns: their order is all there is
    values = [int(n[-1]) for n in numbers]
    for index in range(1, len(values)):
        if values[index] != values[index - 1] + 1:
            raise LaTOTFormatError(
                'LaTOT sequence {}: frame numbers in {} jump from {} to {}: frame files are missing (each box of '
                'the annotation belongs to one frame, in order); restore them or renumber the frames.'.format(
                    name, folder, files[index - 1], files[index]))


_TO_SPACES = str.maketrans({',': ' ', '\t': ' '})
# A number as written in box files: decimal digits with an optional fraction and exponent, or nan / inf. Python's
# float() also takes '1_0' (as 10) and other digits than 0-9, which no box file means.
_NUMBER = re.compile(r'[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)', re.IGNORECASE)
_EMPTY_FIELD = re.compile(r'(^[ \t]*,)|(,[ \t]*,)', re.MULTILINE)   # a trailing comma is tolerated


def parse_boxes(text: str, path: str) -> np.ndarray:
    """Parses one x,y,w,h box per line (commas, tabs or spaces) as float64 [N, 4]; ``path`` names the errors.

    Empty lines are skipped; a line that is not four numbers (an empty field, as in ``1,,2,3,4``, included) raises
    :class:`LaTOTFormatError` naming the file and the line. 'nan' is accepted (absent target) and kept.
    """
    # numpy's C parser reads a 4,600-line file in a fraction of a millisecond: the analysis reads whole benchmarks
    # (25 trackers x 217K lines) this way. Whatever it rejects is read again line by line, for an exact message.
    if _EMPTY_FIELD.search(text):   # '1,,2,3,4': the fast parser would read four numbers
        return _parse_boxes_by_line(text, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            boxes = np.loadtxt(io.StringIO(text.translate(_TO_SPACES)), dtype=np.float64, ndmin=2, comments=None)
        if boxes.shape[1] == 4 and len(boxes):
            return boxes
    except (ValueError, UserWarning):
        pass
    return _parse_boxes_by_line(text, path)


def _parse_boxes_by_line(text: str, path: str) -> np.ndarray:
    boxes = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        comma_fields = (stripped[:-1] if stripped.endswith(',') else stripped).split(',')
        fields = [v for field in comma_fields for v in field.split()]
        numbers = all(f.strip() for f in comma_fields) and all(_NUMBER.fullmatch(v) for v in fields)
        values = [float(v) for v in fields] if numbers else []
        if len(values) != 4:
            raise LaTOTFormatError('{}, line {}: expected four numbers x,y,w,h, got {!r}'.format(
                path, line_number, stripped))
        boxes.append(values)
    if not boxes:
        raise LaTOTFormatError('{}: no boxes in the file'.format(path))
    return np.asarray(boxes, dtype=np.float64)


def empty_lines_note(text: str) -> str:
    """'; line 5 is empty' for the empty lines between boxes (which the parser skips), to say why a box count is off;
    '' when there are none."""
    lines = text.splitlines()
    filled = [number for number, line in enumerate(lines, start=1) if line.strip()]
    if not filled:
        return ''
    empty = [number for number in range(filled[0], filled[-1]) if not lines[number - 1].strip()]
    if not empty:
        return ''
    shown = ', '.join(str(n) for n in empty[:5]) + (' and {} more'.format(len(empty) - 5) if len(empty) > 5 else '')
    return '; line{} {} {} empty'.format('s' if len(empty) > 1 else '', shown, 'are' if len(empty) > 1 else 'is')


def read_boxes(path: str) -> np.ndarray:
    """Reads one x,y,w,h box per line (commas, tabs or spaces) as float64 [N, 4]; see :func:`parse_boxes`."""
    with open(path) as f:
        return parse_boxes(f.read(), path)


def read_sequence_annotation(root: str, name: str, num_frames: Optional[int] = None) -> np.ndarray:
    """The ground-truth boxes of a sequence; with ``num_frames``, checks there is exactly one box per frame."""
    path = annotation_path(root, name)
    if not os.path.isfile(path):
        raise LaTOTFormatError('LaTOT sequence {}: no annotation file {}'.format(name, path))
    with open(path) as f:
        text = f.read()
    boxes = parse_boxes(text, path)
    if num_frames is not None and len(boxes) != num_frames:
        raise LaTOTFormatError('LaTOT sequence {}: {} has {} boxes but {} has {} frames{}'.format(
            name, path, len(boxes), frames_dir(root, name), num_frames, empty_lines_note(text)))
    return boxes


def first_box_line(path: str) -> int:
    """The line number of the first box of an annotation file (its first non-blank line)."""
    with open(path) as f:
        for line_number, line in enumerate(f, start=1):
            if line.strip():
                return line_number
    return 1


def check_initial_box(boxes: np.ndarray, path: str) -> None:
    """The first frame's box starts a tracker: it must be finite with positive width and height; otherwise an error
    naming the annotation file and line, before anything is tracked."""
    box = boxes[0]
    if np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0:
        return
    raise LaTOTFormatError(
        '{}, line {}: the first frame\'s box {} cannot start a tracker (it needs a finite box with positive width '
        'and height, the target present in the first frame); fix the annotation.'.format(
            path, first_box_line(path), ','.join('{:g}'.format(v) for v in box)))


def check_root(root: str, setting: str) -> str:
    """The dataset root, or an error that says which setting to fix."""
    if not root:
        raise LaTOTFormatError('The LaTOT root is not set: set {}'.format(setting))
    if not os.path.isdir(root):
        raise LaTOTFormatError('The LaTOT root {} does not exist: fix {}'.format(root, setting))
    return root


def missing_sequences(root: str, names: Sequence[str]) -> List[str]:
    return [name for name in names if not os.path.isdir(os.path.join(root, name))]


def select_existing(root: str, names: Sequence[str], allow_missing: bool, setting: str) -> List[str]:
    """The names whose folders exist; all of them, or one error that lists the missing ones and where it looked."""
    missing = missing_sequences(root, names)
    if missing and not allow_missing:
        shown = ', '.join(missing[:20]) + (' and {} more'.format(len(missing) - 20) if len(missing) > 20 else '')
        raise LaTOTFormatError(
            '{} of {} LaTOT sequences are missing in {} ({}): {}. Fix {}, or evaluate only the sequences present '
            'with allow_missing=True.'.format(len(missing), len(names), root, setting, shown, setting))
    missing_set = set(missing)
    return [name for name in names if name not in missing_set]


def categories(names: Sequence[str]) -> Dict[str, List[str]]:
    """Sequence names grouped by object category, both in first-seen order."""
    groups: Dict[str, List[str]] = {}
    for name in names:
        groups.setdefault(sequence_category(name), []).append(name)
    return groups


def image_size(frame_path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image, from its header only (LaTOT's frames all share their sequence's size)."""
    from PIL import Image
    try:
        with Image.open(frame_path) as image:
            return image.size
    except OSError as error:
        raise LaTOTFormatError('Cannot read the image size of {}: {}'.format(frame_path, error)) from None


ABSENT_DIR = 'absent'
ABSENT_FILE_NAME = 'absent.txt'


def absent_flag_paths(root: str, name: str) -> List[str]:
    """Where a sequence's absent flags may be: ``<root>/absent/<seq>.txt`` (the toolkit's), ``<root>/<seq>/absent.txt``."""
    return [os.path.join(root, ABSENT_DIR, '{}.txt'.format(name)), os.path.join(root, name, ABSENT_FILE_NAME)]


def read_absent_flags(root: str, name: str, num_frames: int) -> Optional[np.ndarray]:
    """A sequence's absent-target flags ([num_frames] bool, True: absent), or None when it has no flag file.

    One ``0`` or ``1`` per frame, separated by newlines, commas or spaces. Both files may exist only if they agree.
    """
    flags = None
    for path in absent_flag_paths(root, name):
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            values = [v for v in re.split(r'[,\s]+', f.read()) if v]
        wrong = next((v for v in values if v not in ('0', '1')), None)
        if wrong is not None:
            raise LaTOTFormatError('{}: absent flags must be 0 or 1, got {!r}'.format(path, wrong))
        if len(values) != num_frames:
            raise LaTOTFormatError('{}: {} absent flags, but {} has {} boxes (one flag per frame is needed)'.format(
                path, len(values), annotation_path(root, name), num_frames))
        read = np.asarray([v == '1' for v in values], dtype=bool)
        if flags is not None and not np.array_equal(flags, read):
            raise LaTOTFormatError('LaTOT sequence {}: the absent flags of {} and {} differ; keep one'.format(
                name, *absent_flag_paths(root, name)))
        flags = read
    return flags
