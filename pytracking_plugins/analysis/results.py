"""Where tracking results come from: pytracking's result folders and external (published, LaSOT-toolkit) folders.

Both hold one ``<sequence>.txt`` per sequence, one ``x, y, w, h`` box per frame, separated by commas, tabs or spaces
(pytracking writes tabs and, patched, two decimals; the paper's authors and LaSOT-toolkit users publish commas).

- pytracking: ``<results_path>/<tracker>/<parameter>[_<run id:03d>]/`` -- exactly the folder pytracking's
  ``Tracker.results_dir`` names (``trackerlist(name, parameter, run_ids)``); ``results_path`` comes from
  pytracking's ``local.py``. pytracking's ``Tracker`` objects are accepted as they are.
- external: any folder; its label is the folder's name unless given.
"""
import errno
import hashlib
import os
import re
import stat
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ltr_plugins import latot_data
from ltr_plugins.common.boxes import box_present
from ltr_plugins.common.file_names import displayable


class ResultsError(ValueError):
    """Tracking results that cannot be evaluated; the message names the files, lines or settings to fix."""


class ResultSource:
    """One tracker's results: a folder of ``<sequence>.txt`` files and how to name it in tables and plots.

    ``kind`` is 'pytracking' (with ``name``, ``parameter_name``, ``run_id``) or 'folder'.
    """

    def __init__(self, directory: str, label: str, kind: str = 'folder', name: Optional[str] = None,
                 parameter_name: Optional[str] = None, run_id: Optional[int] = None,
                 display_name: Optional[str] = None):
        self.directory = directory
        self.label = displayable(label)       # a folder name that is not UTF-8 still labels rows and curves
        self.kind = kind
        self.name = name
        self.parameter_name = parameter_name
        self.run_id = run_id
        self.display_name = display_name

    @property
    def merged_label(self) -> str:
        """The label of the runs of one tracker averaged: the display name, else ``name_param``."""
        if self.kind == 'pytracking':
            return pytracking_display_name(self.name, self.parameter_name, None, self.display_name)
        return self.label

    @property
    def key(self) -> str:
        """Identity in caches: the kind and the absolute folder."""
        return '{}:{}'.format(self.kind, os.path.abspath(self.directory))

    @property
    def group(self) -> Tuple:
        """Runs of one pytracking tracker share a group (what ``merge_runs`` averages); a folder is its own group."""
        if self.kind == 'pytracking':
            return ('pytracking', self.name, self.parameter_name)
        return ('folder', os.path.abspath(self.directory))

    def result_path(self, sequence_name: str) -> str:
        return os.path.join(self.directory, '{}.txt'.format(sequence_name))

    def describe(self) -> Dict:
        info = dict(label=self.label, kind=self.kind, results_dir=os.path.abspath(self.directory))
        if self.kind == 'pytracking':
            info.update(name=self.name, parameter=self.parameter_name, run_id=self.run_id)
        return info

    def __repr__(self) -> str:
        return 'ResultSource({!r}, {})'.format(self.label, self.directory)


def pytracking_display_name(name: str, parameter_name: str, run_id: Optional[int],
                            display_name: Optional[str] = None) -> str:
    """pytracking's ``get_tracker_display_name``: the display name, else ``name_param[_runid:03d]``.

    Unlike pytracking, a display name given to several runs gets the run id appended too, so that every run keeps
    its own row, curve and JSON key (pytracking shows same-named rows).
    """
    if display_name is not None:
        return display_name if run_id is None else '{}_{:03d}'.format(display_name, run_id)
    if run_id is None:
        return '{}_{}'.format(name, parameter_name)
    return '{}_{}_{:03d}'.format(name, parameter_name, run_id)


def from_pytracking_tracker(tracker) -> ResultSource:
    """A source from a pytracking ``Tracker`` (e.g. from ``trackerlist``), using its own ``results_dir``."""
    return ResultSource(tracker.results_dir,
                        pytracking_display_name(tracker.name, tracker.parameter_name, tracker.run_id,
                                                tracker.display_name),
                        kind='pytracking', name=tracker.name, parameter_name=tracker.parameter_name,
                        run_id=tracker.run_id, display_name=tracker.display_name)


def pytracking_results_dir(name: str, parameter_name: str, run_id: Optional[int] = None,
                           results_path: Optional[str] = None) -> str:
    """The folder pytracking's ``Tracker`` writes to (same format string as ``Tracker.__init__``)."""
    if results_path is None:
        from pytracking.evaluation.environment import env_settings
        results_path = env_settings().results_path
    if run_id is None:
        return '{}/{}/{}'.format(results_path, name, parameter_name)
    return '{}/{}/{}_{:03d}'.format(results_path, name, parameter_name, run_id)


def pytracking_sources(name: str, parameter_name: str, run_ids: Union[None, int, Iterable[int]] = None,
                       display_name: Optional[str] = None, results_path: Optional[str] = None) -> List[ResultSource]:
    """Sources for pytracking's ``trackerlist(name, parameter_name, run_ids, display_name)``.

    Built without ``trackerlist`` itself, which imports the tracker's module (its networks and, for DiMP, compiled
    ops) although evaluating results needs only the folder.
    """
    if run_ids is None or isinstance(run_ids, int):
        run_ids = [run_ids]
    return [ResultSource(pytracking_results_dir(name, parameter_name, run_id, results_path),
                         pytracking_display_name(name, parameter_name, run_id, display_name),
                         kind='pytracking', name=name, parameter_name=parameter_name, run_id=run_id,
                         display_name=display_name)
            for run_id in run_ids]


def folder_source(directory: str, label: Optional[str] = None) -> ResultSource:
    """A source for an external results folder; an error naming it when it is not a folder."""
    if not os.path.isdir(directory):
        raise ResultsError('Results folder {} does not exist'.format(directory))
    return ResultSource(directory, label or os.path.basename(os.path.normpath(directory)), kind='folder')


def folder_sources_under(root: str) -> List[ResultSource]:
    """One source per sub-folder of ``root`` (e.g. a LaSOT-toolkit ``tracking_results/`` of many trackers)."""
    if not os.path.isdir(root):
        raise ResultsError('Results root {} does not exist'.format(root))
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not folders:
        raise ResultsError('Results root {} has no tracker folders'.format(root))
    return [folder_source(os.path.join(root, d)) for d in folders]


def _is_pytracking_tracker(tracker) -> bool:
    """Whether ``tracker`` is a pytracking ``Tracker``; its module (which imports torch) is only looked up, since
    one of its Trackers exists only where it was imported."""
    module = sys.modules.get('pytracking.evaluation.tracker')
    return module is not None and isinstance(tracker, module.Tracker)


def as_sources(trackers: Iterable) -> List[ResultSource]:
    """Sources from any mix of ResultSource, pytracking Trackers (``trackerlist``) and folder paths."""
    sources = []
    for tracker in trackers:
        if isinstance(tracker, ResultSource):
            sources.append(tracker)
        elif isinstance(tracker, (str, os.PathLike)):
            sources.append(folder_source(os.fspath(tracker)))
        elif _is_pytracking_tracker(tracker):
            sources.append(from_pytracking_tracker(tracker))
        else:
            raise TypeError('Not a tracker: {!r} (give a ResultSource, a pytracking Tracker or a folder)'.format(
                tracker))
    labels = [s.label for s in sources]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ResultsError('Two trackers share the label(s) {}: give each its own display name / label ({})'.format(
            ', '.join(duplicates), '; '.join('{} -> {}'.format(s.label, s.directory) for s in sources
                                             if s.label in duplicates)))
    return sources


def missing_results(sources: Sequence[ResultSource], sequence_names: Sequence[str]) -> Dict[str, List[str]]:
    """``{label: [sequence, ...]}`` of the result files that do not exist (only labels with any)."""
    missing = {}
    for source in sources:
        absent = [name for name in sequence_names if not os.path.isfile(source.result_path(name))]
        if absent:
            missing[source.label] = absent
    return missing


def missing_results_message(missing: Dict[str, List[str]], sources: Sequence[ResultSource],
                            num_sequences: int) -> str:
    by_label = {s.label: s for s in sources}
    lines = ['Tracking results are missing (a <sequence>.txt per sequence is needed):']
    for label, names in missing.items():
        directory = by_label[label].directory
        if not os.path.isdir(directory):
            lines.append('  {}: the results folder {} does not exist'.format(label, directory))
            continue
        shown = ', '.join(names[:10]) + (' and {} more'.format(len(names) - 10) if len(names) > 10 else '')
        lines.append('  {}: {} of {} sequences missing in {}: {}'.format(
            label, len(names), num_sequences, directory, shown))
    lines.append('Run the trackers on these sequences, or evaluate only the sequences every tracker has with '
                 'skip_missing=True (command line: --skip-missing).')
    return '\n'.join(lines)


def read_result_bytes(path: str) -> bytes:
    """The bytes of a result file; a :class:`ResultsError` naming it when it cannot be read."""
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as error:
        raise ResultsError('{}: cannot read the result file: {}'.format(path, error.strerror or error)) from None


def not_a_result_file(path: str) -> Optional[str]:
    """Why a path that exists is not a readable result file (a folder, a symbolic link loop or to nothing, a device),
    or None when it is a file or does not exist at all (missing, see :func:`missing_results`)."""
    if not os.path.lexists(path):
        return None
    try:
        info = os.stat(path)
    except OSError as error:
        if os.path.islink(path):
            if error.errno == errno.ELOOP:
                return 'a symbolic link loop'
            return 'a symbolic link to {}, which does not exist'.format(os.readlink(path))
        return 'cannot be read ({})'.format(error.strerror or error)
    if stat.S_ISDIR(info.st_mode):
        return 'a folder, not a result file'
    if not stat.S_ISREG(info.st_mode):
        return 'not a regular file'
    return None


def check_result_paths(sources: Sequence[ResultSource], sequence_names: Sequence[str]) -> None:
    """A :class:`ResultsError` naming every result path that exists but is no result file (at most five shown)."""
    problems = ['{}: {}'.format(path, why) for path, why in (
        (source.result_path(name), not_a_result_file(source.result_path(name)))
        for source in sources for name in sequence_names) if why]
    if problems:
        many = len(problems) > 1
        raise ResultsError("{} result path{} exist{} but {} no result file: {}{} (each must be the sequence's "
                           'x,y,w,h text file)'.format(
                               len(problems), 's' if many else '', '' if many else 's', 'are' if many else 'is',
                               '; '.join(problems[:5]),
                               '; and {} more'.format(len(problems) - 5) if len(problems) > 5 else ''))


def parse_result(data: bytes, path: str, num_frames: int) -> np.ndarray:
    """A result file's boxes [num_frames, 4]; errors name the file and line (format, count, NaN, negative size, no
    box on the first frame)."""
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as error:
        raise ResultsError('{}: not a text file ({})'.format(path, error)) from None
    try:
        boxes = latot_data.parse_boxes(text, path)
    except latot_data.LaTOTFormatError as error:
        raise ResultsError(str(error)) from None
    if len(boxes) != num_frames:
        raise ResultsError('{}: {} boxes, but the sequence has {} frames (one x,y,w,h line per frame is '
                           'needed{}; write 0,0,0,0 for a frame without a box)'.format(
                               path, len(boxes), num_frames, latot_data.empty_lines_note(text)))
    bad = ~np.all(np.isfinite(boxes), axis=1) | np.any(boxes[:, 2:] < 0, axis=1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ResultsError('{}, line {}: invalid box {} (NaN, infinite, or negative width/height; write 0,0,0,0 '
                           'for "no box")'.format(path, _line_number(text, index), _format_box(boxes[index])))
    if len(boxes) and not box_present(boxes[0]):
        raise ResultsError('{}, line {}: invalid first-frame box {} (zero width or height: a tracker starts from '
                           'the first frame\'s ground truth, so its first box has a size)'.format(
                               path, _line_number(text, 0), _format_box(boxes[0])))
    return boxes


def parse_result_toolkit(data: bytes, path: str, num_frames: int) -> Tuple[np.ndarray, int]:
    """A result file as the LaSOT toolkit reads it: (its first ``num_frames`` boxes, the number of lines cut).

    Values are not checked (the toolkit protocol repairs them); a file that is not boxes, or has fewer boxes than
    the sequence has frames (the toolkit stops there), is an error naming it.
    """
    try:
        text = data.decode('utf-8')
        boxes = latot_data.parse_boxes(text, path)
    except UnicodeDecodeError as error:
        raise ResultsError('{}: not a text file ({})'.format(path, error)) from None
    except latot_data.LaTOTFormatError as error:
        raise ResultsError(str(error)) from None
    if len(boxes) < num_frames:
        raise ResultsError('{}: {} boxes, but the sequence has {} frames (the toolkit protocol cuts longer files, '
                           'but cannot score shorter ones{})'.format(path, len(boxes), num_frames,
                                                                     latot_data.empty_lines_note(text)))
    return boxes[:num_frames], len(boxes) - num_frames


def _format_box(box: np.ndarray) -> str:
    return ','.join('{:g}'.format(v) for v in box)


def _line_number(text: str, box_index: int) -> int:
    """The 1-based line of the ``box_index``-th non-empty line (empty lines are skipped by the parser)."""
    seen = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            seen += 1
            if seen == box_index:
                return number
    return box_index + 1


def fingerprint(parts: Iterable[bytes]) -> str:
    digest = hashlib.blake2b(digest_size=20)
    for part in parts:
        digest.update(len(part).to_bytes(8, 'little'))
        digest.update(part)
    return digest.hexdigest()


_RUN_IDS = re.compile(r'^\d+(-\d+)?(,\d+(-\d+)?)*$')


def parse_run_ids(text: str) -> List[int]:
    """'3' -> [3], '0-4' -> [0..4], '0,2,5-6' -> [0, 2, 5, 6]."""
    if not _RUN_IDS.match(text):
        raise ValueError("Run ids '{}': give a number, a range 'a-b' or a comma list, e.g. 0-4 or 0,2,5".format(text))
    ids: List[int] = []
    for part in text.split(','):
        low, _, high = part.partition('-')
        ids.extend(range(int(low), int(high or low) + 1))
    return ids
