"""Dataset statistics: the columns of the paper's Table I and its tiny-object criterion (section III-A).

Per sequence, over the frames where the target is present (finite box, positive width and height): average absolute
size ``A = mean(sqrt(w * h))`` px (so "below 22x22" reads ``A < 22``) and average relative size
``R = mean(w * h / (W * H))`` (the frame size from the first frame's header). A sequence is tiny when ``A < 22`` and
``R < 1 %`` (both strict); one without a present frame is not. Table I's columns (videos, classes, frame rate,
min / max / average frames, average duration, total frames) are given for all sequences and for the tiny ones::

    python -m pytracking_plugins.analysis.stats --dataset latot [--dataset otb ...] [--per-sequence] [--json FILE]
"""
import argparse
import json
import os
import sys
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ltr_plugins import latot_data
from ltr_plugins.common.atomic_files import write_text
from ltr_plugins.common.file_names import tolerate_undecodable_output
from ltr_plugins.common.boxes import box_present
from pytracking_plugins.analysis.text_table import format_table

TINY_ABSOLUTE_SIZE = 22.0       # px: "average absolute size below 22x22"
TINY_RELATIVE_SIZE = 0.01       # "average relative size below 1%"
DEFAULT_FRAME_RATE = 30.0


class SequenceStats(NamedTuple):
    name: str
    object_class: Optional[str]
    num_frames: int
    image_size: Tuple[int, int]
    present_frames: int
    mean_absolute_size: float     # px, mean of sqrt(w*h) over present frames (NaN when none)
    mean_relative_size: float     # mean of w*h / (W*H) over present frames (NaN when none)
    tiny: bool


class Summary(NamedTuple):
    videos: int
    classes: Optional[int]        # None when the dataset gives no classes
    frame_rate: float
    min_frames: int
    max_frames: int
    avg_frames: float
    avg_duration: float           # seconds
    total_frames: int


def is_tiny(mean_absolute_size: float, mean_relative_size: float) -> bool:
    return bool(mean_absolute_size < TINY_ABSOLUTE_SIZE and mean_relative_size < TINY_RELATIVE_SIZE)


def size_stats(boxes: np.ndarray, image_size: Tuple[int, int]) -> Tuple[int, float, float]:
    """(present frames, mean sqrt(w*h), mean relative area) of ``x, y, w, h`` boxes in a ``(W, H)`` frame."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    present = box_present(boxes)
    area = boxes[present, 2] * boxes[present, 3]
    if not len(area):
        return 0, float('nan'), float('nan')
    width, height = image_size
    return int(present.sum()), float(np.sqrt(area).mean()), float((area / (width * height)).mean())


def sequence_stats(sequence, image_size: Optional[Tuple[int, int]] = None) -> SequenceStats:
    """Statistics of a pytracking Sequence (image size from its first frame unless given)."""
    boxes = np.asarray(sequence.ground_truth_rect, dtype=np.float64).reshape(-1, 4)
    if image_size is None:
        if not sequence.frames:
            raise ValueError('Sequence {} has no frames to read the image size from'.format(sequence.name))
        image_size = latot_data.image_size(sequence.frames[0])
    present, absolute, relative = size_stats(boxes, image_size)
    object_class = sequence.object_class
    return SequenceStats(sequence.name, object_class, len(boxes), tuple(image_size), present, absolute, relative,
                         present > 0 and is_tiny(absolute, relative))


def summarise(stats: Sequence[SequenceStats], frame_rate: float = DEFAULT_FRAME_RATE) -> Summary:
    """Table I's columns for a set of sequences (zeros for an empty set, as the paper writes them)."""
    frames = np.asarray([s.num_frames for s in stats], dtype=np.int64)
    classes = None
    if stats and all(s.object_class is not None for s in stats):
        classes = len({s.object_class for s in stats})
    elif not stats:
        classes = 0
    if not len(frames):
        return Summary(0, classes, frame_rate, 0, 0, 0.0, 0.0, 0)
    average = float(frames.mean())
    return Summary(len(frames), classes, frame_rate, int(frames.min()), int(frames.max()), average,
                   average / frame_rate, int(frames.sum()))


class DatasetStats(NamedTuple):
    name: str
    sequences: List[SequenceStats]
    all: Summary
    tiny: Summary

    def to_dict(self) -> Dict[str, Any]:
        def clean(value):
            return None if isinstance(value, float) and np.isnan(value) else value
        return {'dataset': self.name,
                'criterion': {'mean_absolute_size_below_px': TINY_ABSOLUTE_SIZE,
                              'mean_relative_size_below': TINY_RELATIVE_SIZE,
                              'absolute_size': 'mean over present frames of sqrt(w*h)',
                              'relative_size': 'mean over present frames of w*h / (image width * height)'},
                'all': self.all._asdict(), 'tiny': self.tiny._asdict(),
                'sequences': [{k: clean(v) for k, v in s._asdict().items()} for s in self.sequences]}


def dataset_stats(dataset: Union[str, Iterable], frame_rate: float = DEFAULT_FRAME_RATE,
                  name: Optional[str] = None, **dataset_kwargs) -> DatasetStats:
    """Statistics of a pytracking dataset (by name, e.g. 'latot', 'otb', or a list of Sequences)."""
    if isinstance(dataset, str):
        from pytracking.evaluation.datasets import load_dataset
        name = name or dataset
        sequences = load_dataset(dataset, **dataset_kwargs).get_sequence_list()
    else:
        sequences = list(dataset)
        name = name or (sequences[0].dataset if sequences else 'dataset')
    stats = [sequence_stats(s) for s in sequences]
    tiny = [s for s in stats if s.tiny]
    return DatasetStats(name, stats, summarise(stats, frame_rate), summarise(tiny, frame_rate))


# Printing ---------------------------------------------------------------------------------------------------------

def _thousands(total: int) -> str:
    """Total frames as the paper writes them: 217.7K (exact below 1000)."""
    return '{:.1f}K'.format(total / 1000.0) if total >= 1000 else str(total)


def table_one(datasets: Sequence[DatasetStats]) -> str:
    """Table I: per dataset its tiny sequences (the paper's rows) and, for reference, all its sequences."""
    header = ['Benchmark', 'Video', 'Class', 'Frame rate', 'Min frames', 'Max frames', 'Avg frames',
              'Avg duration (s)', 'Total frames']
    rows = []
    for stats in datasets:
        for which, summary in (('tiny', stats.tiny), ('all', stats.all)):
            rows.append(['{} ({})'.format(stats.name, which), str(summary.videos),
                         '—' if summary.classes is None else str(summary.classes), '{:g}'.format(summary.frame_rate),
                         '{:,}'.format(summary.min_frames), '{:,}'.format(summary.max_frames),
                         '{:,.0f}'.format(summary.avg_frames), '{:.1f}'.format(summary.avg_duration),
                         _thousands(summary.total_frames)])
    return format_table(header, rows)


def sequence_table(stats: DatasetStats) -> str:
    header = ['Sequence', 'Class', 'Frames', 'Image', 'Present', 'Abs. size (px)', 'Rel. size (%)', 'Tiny']
    rows = [[s.name, s.object_class or '—', str(s.num_frames), '{}x{}'.format(*s.image_size), str(s.present_frames),
             '—' if np.isnan(s.mean_absolute_size) else '{:.2f}'.format(s.mean_absolute_size),
             '—' if np.isnan(s.mean_relative_size) else '{:.4f}'.format(100 * s.mean_relative_size),
             'yes' if s.tiny else 'no'] for s in stats.sequences]
    return format_table(header, rows)


def criterion_text(stats: DatasetStats) -> str:
    sizes = np.asarray([s.mean_absolute_size for s in stats.sequences], dtype=np.float64)
    relative = np.asarray([s.mean_relative_size for s in stats.sequences], dtype=np.float64)
    known = ~np.isnan(sizes)
    text = '{}: {} of {} sequences are tiny (mean sqrt(w*h) < {:g} px and mean relative area < {:g} %)'.format(
        stats.name, stats.tiny.videos, stats.all.videos, TINY_ABSOLUTE_SIZE, 100 * TINY_RELATIVE_SIZE)
    if known.any():
        text += '; over all sequences: mean absolute size {:.2f} px, mean relative size {:.4f} %'.format(
            float(sizes[known].mean()), 100 * float(relative[known].mean()))
        text += ' -> the dataset as a whole {} the criterion'.format(
            'meets' if is_tiny(float(sizes[known].mean()), float(relative[known].mean())) else 'does not meet')
    unknown = int((~known).sum())
    if unknown:
        text += '; {} sequence(s) without any present target'.format(unknown)
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m pytracking_plugins.analysis.stats',
        description="Table I statistics (videos, classes, min / max / average frames, average duration, total "
                    "frames) and the paper's tiny-object criterion per sequence and overall, for LaTOT or any "
                    "pytracking dataset.")
    parser.add_argument('--dataset', action='append', metavar='NAME',
                        help='pytracking dataset name (repeatable); default: latot')
    parser.add_argument('--frame-rate', type=float, default=DEFAULT_FRAME_RATE,
                        help='frames per second for the average duration (default 30, as LaTOT)')
    parser.add_argument('--latot-path', metavar='FOLDER', help="LaTOT root instead of settings.latot_path")
    parser.add_argument('--allow-missing-sequences', action='store_true',
                        help='LaTOT: use the sequences present on disk')
    parser.add_argument('--per-sequence', action='store_true', help='print every sequence and its criterion')
    parser.add_argument('--json', metavar='FILE', help='write every number (per sequence too) as JSON')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command; returns its exit status (0; 1 when the JSON could not be written; 2 for bad input)."""
    tolerate_undecodable_output()          # paths that are not UTF-8 print as their bytes
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.frame_rate <= 0:
        print('error: --frame-rate must be positive', file=sys.stderr)
        return 2
    json_folder = os.path.dirname(os.path.abspath(args.json)) if args.json else None
    if json_folder is not None and not os.path.isdir(json_folder):
        parser.error('argument --json: the folder {} does not exist; create it first'.format(json_folder))
    results = []
    try:
        for name in args.dataset or ['latot']:
            kwargs = {}
            if name.lower().startswith('latot'):
                if args.latot_path:
                    kwargs['root'] = args.latot_path
                if args.allow_missing_sequences:
                    kwargs['allow_missing'] = True
            results.append(dataset_stats(name, args.frame_rate, **kwargs))
    except (ValueError, OSError) as error:
        print('error: {}'.format(error), file=sys.stderr)
        return 2
    print(table_one(results))
    print()
    for stats in results:
        print(criterion_text(stats))
        if args.per_sequence:
            print()
            print(sequence_table(stats))
            print()
    if args.json:
        try:
            write_text(args.json, json.dumps([s.to_dict() for s in results], indent=1) + '\n')
        except OSError as error:
            print('error: cannot write {} into {}: {} (the statistics above are complete)'.format(
                os.path.basename(args.json), json_folder, error.strerror or error), file=sys.stderr)
            return 1
        print('\nWrote {}'.format(args.json))
    return 0


if __name__ == '__main__':
    sys.exit(main())
