"""MKDNet's tracking speed with the onnxruntime backend against the PyTorch backend, measured in one run, at
Super-DiMP's crop size (352 px) and at the demo's (96 px).

    .venv/bin/python bench/onnx_backend.py [--frames 40] [--repeats 3] [--threads N] [--sizes 352 96]

Per size, a Super-DiMP network with random weights is exported with ``mkdnet-export --onnx`` and tracked with the
parameter files ``mkdnet`` and ``mkdnet_onnx`` on one synthetic sequence, in ``bench/tracking_fps.py``'s lockstep
(every frame 'normal'; each frame's minimum over ``--repeats`` is its "best"). Printed per size: both FPS, the first
frame's time, the ratio onnxruntime / PyTorch of "best" (target :data:`RATIO_TARGET` at 352 px), the largest box
difference and the load average.
"""
import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from collections import OrderedDict

import numpy as np
import torch
from torch.utils.benchmark import Timer

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (PROJECT_ROOT, os.path.dirname(os.path.abspath(__file__))):
    if path not in sys.path:
        sys.path.insert(0, path)

from tracking_fps import BenchTracker, best_of, lockstep, make_sequence  # noqa: E402

BACKENDS = (('PyTorch', 'mkdnet'), ('onnxruntime', 'mkdnet_onnx'))
BACKBONES = {352: 'resnet50', 96: 'resnet18'}
RATIO_TARGET = 1.3          # onnxruntime / PyTorch FPS at 352 px on a 2-core CPU
EVERY_FRAME_NORMAL = {'target_not_found_threshold': -float('inf'), 'distractor_threshold': float('inf'),
                      'hard_negative_threshold': float('inf')}


# lockstep() times one backbone forward after every frame; this bench compares the two backends only.
NOTHING_TIMED = Timer('pass')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=40, help='frames of the synthetic sequence (default 40)')
    parser.add_argument('--repeats', type=int, default=3, help='timed lockstep runs per size (default 3)')
    parser.add_argument('--warmup-frames', type=int, default=6, help='frames of the untimed warm-up run')
    parser.add_argument('--threads', type=int, default=None, help="torch's and onnxruntime's threads")
    parser.add_argument('--sizes', type=int, nargs='+', default=[352, 96], choices=sorted(BACKBONES),
                        help='crop sizes (default 352 96)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.frames < 2 or args.repeats < 1 or args.warmup_frames < 2:
        parser.error('--frames and --warmup-frames must be >= 2, --repeats >= 1')
    return args


def prepare_network(folder: str, crop: int, seed: int) -> None:
    """A random Super-DiMP for ``crop``-px crops as ``folder/mkdnet.pth.tar``, exported to ``folder/mkdnet_onnx``;
    pytracking pointed at ``folder``."""
    from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network
    from pytracking_plugins.deploy.onnx_export import export_onnx
    from pytracking_plugins.environment import use_local_settings
    torch.manual_seed(seed)
    frozen = {} if BACKBONES[crop] == 'resnet50' else {'frozen_backbone_layers': ()}
    net = build_super_dimp(backbone_pretrained=False, backbone=BACKBONES[crop], feature_sz=crop // 16, **frozen)
    network = save_tracking_network(net, os.path.join(folder, 'mkdnet.pth.tar'))
    export_onnx(network, os.path.join(folder, 'mkdnet_onnx'), (crop, crop), log=lambda line: None)
    use_local_settings(pytracking=dict(network_path=folder, results_path=os.path.join(folder, 'results')))


def measure(args, sequence, crop: int):
    """Lockstep runs of both backends at ``crop``: {label: [Run per repeat]}, first-frame times."""
    overrides = dict(EVERY_FRAME_NORMAL, image_sample_size=crop)
    trackers = OrderedDict((label, BenchTracker('mkdnet', parameter, 'cpu', overrides))
                           for label, parameter in BACKENDS)
    warmup = type(sequence)(sequence.name, sequence.frames[:args.warmup_frames], sequence.dataset,
                            sequence.ground_truth_rect[:args.warmup_frames])
    lockstep(trackers, warmup, args.seed, NOTHING_TIMED, 'cpu')
    runs = OrderedDict((label, []) for label in trackers)
    for index in range(args.repeats):
        repeat, _ = lockstep(trackers, sequence, args.seed, NOTHING_TIMED, 'cpu', flip=index % 2 == 1)
        for label, run in repeat.items():
            runs[label].append(run)
    return runs


def report(crop: int, runs, loads) -> float:
    """Prints one size's table; returns the FPS ratio onnxruntime / PyTorch (best)."""
    best = {label: best_of(rs) for label, rs in runs.items()}
    median = {label: statistics.median(r.fps for r in rs) for label, rs in runs.items()}
    difference = max(float(np.abs(a.boxes - b.boxes).max()) for a, b in zip(*runs.values()))
    repeatable = all(np.array_equal(rs[0].boxes, r.boxes) for rs in runs.values() for r in rs)
    print('{} px crops ({}), {} frames; 1-min load average {:.1f} before, {:.1f} after{}'.format(
        crop, BACKBONES[crop], len(best['PyTorch'].times), loads[0], loads[1],
        ' (OTHER PROCESSES WERE BUSY: trust "best", not the medians)' if loads[0] > 0.5 * os.cpu_count() else ''))
    print('  {:<12} {:>16} {:>14} {:>13} {:>12}'.format('backend', 'pytracking FPS', 'tracking FPS', 'first frame',
                                                     'FPS median'))
    for label in runs:
        print('  {:<12} {:>16.2f} {:>14.2f} {:>11.2f} s {:>12.2f}'.format(
            label, best[label].fps, best[label].tracking_fps, best[label].init_time, median[label]))
    ratio = best['onnxruntime'].fps / best['PyTorch'].fps
    print('  onnxruntime / PyTorch: {:.3f} (per tracked frame {:.3f}; first frame {:.3f}; medians {:.3f}){}'.format(
        ratio, best['onnxruntime'].tracking_fps / best['PyTorch'].tracking_fps,
        best['PyTorch'].init_time / best['onnxruntime'].init_time, median['onnxruntime'] / median['PyTorch'],
        '   target >= {}: {}'.format(RATIO_TARGET, 'meets the target' if ratio >= RATIO_TARGET else 'BELOW the '
                                     'target') if crop == 352 else ''))
    print('  boxes: largest difference between the backends {:.2g} px; every repeat of a backend identical: {}'.format(
        difference, 'yes' if repeatable else 'NO'))
    return ratio


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import onnxruntime
    print('onnxruntime backend against PyTorch (bench/onnx_backend.py), one run: CPU, {} torch thread(s) (onnxruntime '
          'as many), {} CPU(s); torch {}, onnxruntime {}; weights RANDOM, every frame normal; best = per-frame minimum '
          'over {} identical repeats'.format(torch.get_num_threads(), os.cpu_count(), torch.__version__,
                                             onnxruntime.__version__, args.repeats))
    with tempfile.TemporaryDirectory(prefix='onnx_backend_') as folder:
        sequence = make_sequence(folder, args.frames, args.seed)
        for crop in args.sizes:
            network_folder = os.path.join(folder, str(crop))
            with open(os.devnull, 'w') as devnull, contextlib.redirect_stdout(devnull):
                prepare_network(network_folder, crop, args.seed)
            load_before = os.getloadavg()[0]
            runs = measure(args, sequence, crop)
            print()
            report(crop, runs, (load_before, os.getloadavg()[0]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
