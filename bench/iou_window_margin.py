"""Benchmark: the first margin of the CPU refinement window, on trained networks: how often the window grows, the
tracking time, and the boxes against the stock refinement, for each margin.

    .venv/bin/python bench/iou_window_margin.py [--tracker NAME PARAMETER] [--dataset latot_test | --demo FOLDER]
                                                [--sequences 8] [--margins 0.05 0 0.25] [--threads N]

The margin (``params.iou_window_margin``) changes the speed, never the boxes: each margin and the stock refinement
(margin None) track the same sequences through ``Tracker.run_sequence``, seeded alike, and the bench prints per
margin the refinements, window growths, whole-map refinements, the tracking's CPU time and the largest box
difference to the stock refinement. Random weights barely move the boxes: choose the margin with trained networks.
"""
import argparse
import contextlib
import os
import random
import sys
import time
from typing import List, Optional

import numpy as np
import torch

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if PROJECT_ROOT not in sys.path:
    sys.path.insert(0, PROJECT_ROOT)

from pytracking.evaluation import Tracker, get_dataset  # noqa: E402
from pytracking.tracker.mkdnet import MKDNet  # noqa: E402   (MKDNet's class as pytracking loads it, by its link)

from ltr_plugins.latot_data import LaTOTFormatError  # noqa: E402

COUNTERS = ('refinements', 'growths', 'redone')


class MarginTracker(Tracker):
    """A pytracking tracker run with one ``iou_window_margin`` on the CPU, keeping the tracker instances it creates
    (their window counters)."""

    def __init__(self, name: str, parameter_name: str, margin: Optional[float]):
        super().__init__(name, parameter_name)
        self.margin = margin
        self.instances: List[MKDNet] = []

    def get_parameters(self):
        params = super().get_parameters()
        params.use_gpu = False
        params.net.use_gpu = False
        params.iou_window_margin = self.margin
        return params

    def create_tracker(self, params):
        tracker = super().create_tracker(params)
        if not isinstance(tracker, MKDNet):
            raise SystemExit('{} {} runs {}, not MKDNet\'s tracker: it has no refinement window'.format(
                self.name, self.parameter_name, type(tracker).__name__))
        self.instances.append(tracker)
        return tracker


def track(tracker: MarginTracker, sequences, seed: int):
    """Boxes of every sequence (one array), and the process CPU seconds the tracking took."""
    boxes, cpu = [], 0.0
    for sequence in sequences:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        start = time.process_time()
        with open(os.devnull, 'w') as devnull, contextlib.redirect_stdout(devnull):
            output = tracker.run_sequence(sequence)
        cpu += time.process_time() - start
        boxes.append(np.asarray(output['target_bbox'], dtype=float))
    return np.concatenate(boxes), cpu


def parse_margin(text: str) -> float:
    """A first margin: a number >= 0 (box sizes)."""
    try:
        margin = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('{!r} is not a number'.format(text))
    if not 0 <= margin < float('inf'):
        raise argparse.ArgumentTypeError('a margin is a number >= 0 (box sizes), got {}'.format(text))
    return margin


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tracker', nargs=2, metavar=('NAME', 'PARAMETER'),
                        help='pytracking tracker and parameter names (default: mkdnet mkdnet, or mkdnet demo_mkdnet '
                             'with --demo)')
    parser.add_argument('--dataset', default=None, help="pytracking dataset name (default latot_test)")
    parser.add_argument('--sequences', type=int, default=8, help='the first N sequences of the dataset (default 8)')
    parser.add_argument('--margins', type=parse_margin, nargs='+', default=[0.05, 0.0, 0.25],
                        help='first margins (>= 0) to compare with the stock refinement (default 0.05 0 0.25)')
    parser.add_argument('--demo', metavar='FOLDER', help="the networks and test split of `mkdnet-demo --folder FOLDER`")
    parser.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.demo and args.dataset:
        parser.error('--demo tracks the demo\'s test split: leave out --dataset')
    if args.sequences < 1:
        parser.error('--sequences must be >= 1')
    if args.threads:
        torch.set_num_threads(args.threads)
    name, parameter = args.tracker or ('mkdnet', 'demo_mkdnet' if args.demo else 'mkdnet')

    if args.demo:
        from pytracking_plugins.demo.pipeline import Paths, point_pytracking_at, test_dataset
        paths = Paths(args.demo)
        if not os.path.isdir(paths.networks):
            parser.error('--demo {}: no networks folder; run `mkdnet-demo --folder {}` first'.format(
                args.demo, args.demo))
        point_pytracking_at(paths)
        sequences = test_dataset(paths).get_sequence_list()[:args.sequences]
    else:
        try:
            sequences = get_dataset(args.dataset or 'latot_test')[:args.sequences]
        except LaTOTFormatError as error:
            parser.error(str(error))

    track(MarginTracker(name, parameter, None), sequences[:1], args.seed)   # warm-up, untimed
    stock_boxes, stock_cpu = track(MarginTracker(name, parameter, None), sequences, args.seed)
    print('IoU refinement window of {} {} on {} sequences ({} frames) of {}, CPU, {} torch thread(s)'.format(
        name, parameter, len(sequences), len(stock_boxes), 'the demo in ' + args.demo if args.demo else args.dataset,
        torch.get_num_threads()))
    print('{:>8}  {:>11}  {:>7}  {:>6}  {:>12}  {:>24}'.format(
        'margin', 'refinements', 'growths', 'redone', 'CPU time (s)', 'largest box difference'))
    print('{:>8}  {:>11}  {:>7}  {:>6}  {:>12.1f}  {:>24}'.format('None', '-', '-', '-', stock_cpu,
                                                                  '(stock refinement)'))
    for margin in args.margins:
        tracker = MarginTracker(name, parameter, margin)
        boxes, cpu = track(tracker, sequences, args.seed)
        counts = [sum(getattr(instance, 'iou_window_' + counter) for instance in tracker.instances)
                  for counter in COUNTERS]
        print('{:>8}  {:>11}  {:>7}  {:>6}  {:>12.1f}  {:>21.1e} px'.format(
            margin, *counts, cpu, float(np.abs(boxes - stock_boxes).max())))
    print('growths: a map\'s window grew (once per map and step that outgrew it); redone: refinements run on the '
          'whole map because a box was not finite. The margin changes the time, never the boxes (the differences are '
          'float rounding).')
    return 0


if __name__ == '__main__':
    sys.exit(main())
