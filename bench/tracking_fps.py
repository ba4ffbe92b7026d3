"""MKDNet's tracking speed against stock Super-DiMP and against the backbone-bound rate, measured in one run.

    .venv/bin/python bench/tracking_fps.py [--frames 60] [--repeats 3] [--threads N] [--device cpu|cuda]

pytracking's ``dimp super_dimp`` and ``mkdnet mkdnet`` track one synthetic tiny-object sequence with the same random
Super-DiMP weights, in lockstep (frame by frame, alternating, a backbone forward timed after each frame) so that a
slow spell hits all alike; each frame's minimum over ``--repeats`` identical runs ("best") gives the ratios. Printed:
MKDNet / Super-DiMP FPS, MKDNet / the backbone-bound rate (one backbone forward on a 352-px crop per frame), and
where a frame's time goes (``torch.profiler`` runs). Every frame is made 'normal' (random weights would lose the
target), so each runs the regular path; ``--stock-thresholds`` keeps Super-DiMP's thresholds.
"""
import argparse
import bisect
import contextlib
import functools
import inspect
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections import OrderedDict, defaultdict
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if PROJECT_ROOT not in sys.path:
    sys.path.insert(0, PROJECT_ROOT)

from pytracking_plugins.environment import use_local_settings  # noqa: E402

SEQUENCE_NAME = 'bench1'
IMAGE_SIZE = (640, 360)
CROP_SIZE = 352
TRACKERS = (('Super-DiMP', 'dimp', 'super_dimp'), ('MKDNet', 'mkdnet', 'mkdnet'))
FPS_RATIO_TARGET = 0.95
BACKBONE_RATIO_TARGET = 0.6


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=60, help='frames of the synthetic sequence (default 60)')
    parser.add_argument('--repeats', type=int, default=3, help='timed lockstep runs (default 3)')
    parser.add_argument('--warmup-frames', type=int, default=8, help='frames of the untimed warm-up run')
    parser.add_argument('--init-repeats', type=int, default=1,
                        help='further initialisations of each tracker after each repeat, for the first frame\'s '
                             '"best" time (default 1)')
    parser.add_argument('--breakdown-runs', type=int, default=2,
                        help='profiled runs for the per-stage breakdown (default 2; 0 skips it)')
    parser.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--stock-thresholds', action='store_true',
                        help="keep Super-DiMP's localisation thresholds (with random weights most frames are then "
                             "'not found' and skip the refinement and the update)")
    parser.add_argument('--min-ratio', type=float, default=None,
                        help='exit status 1 when MKDNet FPS / Super-DiMP FPS is below this (bench/gpu_check.sh)')
    args = parser.parse_args(argv)
    if args.frames < 2 or args.repeats < 1 or args.warmup_frames < 2:
        parser.error('--frames and --warmup-frames must be >= 2, --repeats >= 1')
    return args


# ----------------------------------------------------------------------------------------------------- set-up
def local_settings(folder: str) -> dict:
    """pytracking's local settings for this bench: networks and results in ``folder``."""
    return {'network_path': os.path.join(folder, 'networks'),
            'results_path': os.path.join(folder, 'tracking_results'),
            'segmentation_path': os.path.join(folder, 'segmentation_results'),
            'result_plot_path': os.path.join(folder, 'result_plots')}


def make_sequence(folder: str, num_frames: int, seed: int):
    from pytracking.evaluation.data import Sequence
    from ltr_plugins import latot_data, synthetic
    root = os.path.join(folder, 'latot')
    synthetic.write_dataset(root, names=[SEQUENCE_NAME], num_frames=num_frames, image_size=IMAGE_SIZE, seed=seed)
    frames = latot_data.list_frames(root, SEQUENCE_NAME)
    boxes = latot_data.read_sequence_annotation(root, SEQUENCE_NAME, num_frames=len(frames))
    return Sequence(SEQUENCE_NAME, frames, 'latot', boxes)


def write_networks(folder: str, seed: int) -> None:
    """The same random Super-DiMP weights as ``super_dimp.pth.tar`` and ``mkdnet.pth.tar``."""
    from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network
    torch.manual_seed(seed)
    net = build_super_dimp(backbone_pretrained=False)
    for file_name in ('super_dimp.pth.tar', 'mkdnet.pth.tar'):
        save_tracking_network(net, os.path.join(folder, 'networks', file_name))


class BenchTracker:
    """A pytracking ``Tracker`` (tracker name, parameter file) and the bench's changes to its parameters: the
    device timed here and ``overrides``, set on the result of the parameter file's ``parameters()``."""

    def __init__(self, name: str, parameter_name: str, device: str, overrides: dict):
        from pytracking.evaluation import Tracker
        self.tracker = Tracker(name, parameter_name)
        self.device = device
        self.overrides = dict(overrides)

    def parameters(self):
        """The parameter file's ``parameters()`` (through pytracking's ``Tracker.get_parameters``), changed."""
        params = self.tracker.get_parameters()
        params.use_gpu = self.device == 'cuda'
        # Stock parameter files build their network wrapper with use_gpu=True before pytracking's CPU fallback
        # changes params.use_gpu: keep the wrapper on the device timed here.
        params.net.use_gpu = params.use_gpu
        for key, value in self.overrides.items():
            setattr(params, key, value)
        return params

    def create(self):
        """A new tracker instance on fresh parameters, as ``Tracker.run_sequence`` creates one (printing silenced)."""
        with open(os.devnull, 'w') as devnull, contextlib.redirect_stdout(devnull):
            return self.tracker.create_tracker(self.parameters())

    def read_image(self, path: str):
        return self.tracker._read_image(path)


# ------------------------------------------------------------------------------------------------- measuring
class Run:
    """One run's per-frame times (the first is the initialisation) and boxes."""

    def __init__(self, times, boxes):
        self.times = [float(t) for t in times]
        self.boxes = np.asarray(boxes, dtype=float)
        self.window_counts = (0, 0, 0)   # MKDNet: refinements in a window, window growths, refinements redone

    @property
    def fps(self):
        return len(self.times) / sum(self.times)

    @property
    def tracking_fps(self):
        return (len(self.times) - 1) / sum(self.times[1:])

    @property
    def init_time(self):
        return self.times[0]


def best_of(runs, init_times=()) -> Run:
    """The per-frame minimum of runs that did identical work: each frame's cost without other processes' share
    (for the first frame, also over ``init_times``, further initialisations)."""
    times = np.min(np.array([r.times for r in runs]), axis=0)
    times[0] = min([times[0], *init_times])
    return Run(times, runs[0].boxes)


class RandomStream:
    """A tracker's own torch random-number stream, swapped in around each of its calls."""

    def __init__(self, seed: int, device: str):
        self.device = device
        saved = self._get()
        torch.manual_seed(seed)
        self.state = self._get()
        self._set(saved)

    def _get(self):
        return (torch.get_rng_state(), torch.cuda.get_rng_state() if self.device == 'cuda' else None)

    def _set(self, state):
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1])

    @contextlib.contextmanager
    def active(self):
        saved = self._get()
        self._set(self.state)
        try:
            yield
        finally:
            self.state = self._get()
            self._set(saved)


def initialise(trackers, sequence, seed: int, device: str, flip: bool = False):
    """Creates and initialises each tracker on the first frame (in reverse order if ``flip``), each with its own
    random-number stream: (trackers, streams, initialisation times, outputs), by label.

    The time is the one the tracker reports, as pytracking's ``Tracker.run_sequence`` takes it: the network's
    loading (on the first initialisation) is not in it.
    """
    labels = list(trackers)
    image = trackers[labels[0]].read_image(sequence.frames[0])
    init_info = sequence.init_info()
    instances, streams, times, outputs = {}, {}, {}, {}
    for label in (labels[::-1] if flip else labels):
        instances[label] = trackers[label].create()
        streams[label] = RandomStream(seed, device)
        with streams[label].active():
            start = time.perf_counter()
            out = instances[label].initialize(image, init_info) or {}
        times[label] = out.get('time', time.perf_counter() - start)
        outputs[label] = OrderedDict(out)
    return instances, streams, times, outputs


def track_frame(instance, stream: RandomStream, image, info: dict, device: str):
    """One ``track`` call in the tracker's own random-number stream: (its wall time, as ``Tracker.run_sequence``
    takes it, on CUDA up to the end of its GPU work; its output)."""
    with stream.active():
        start = time.perf_counter()
        out = instance.track(image, info)
        if device == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - start, out


def lockstep(trackers, sequence, seed: int, backbone: Timer, device: str, flip: bool = False):
    """Runs the trackers frame by frame in alternating order (``flip`` swaps the order of every frame, the first
    included) and times one backbone forward after every frame.

    Times as pytracking's ``Tracker.run_sequence`` takes them: the initialisation time the tracker reports (its
    network loading excluded), then the wall time of each ``track`` call. Each call is made once (a tracker's state
    changes with every frame), so torch.utils.benchmark's Timer, which repeats its statement, times only the
    backbone. Returns ({label: Run}, backbone times).
    """
    labels = list(trackers)
    reader = trackers[labels[0]]
    init_info = sequence.init_info()
    instances, streams, init_times, previous = initialise(trackers, sequence, seed, device, flip)
    times = {label: [init_times[label]] for label in labels}
    boxes = {label: [init_info['init_bbox']] for label in labels}
    backbone_times = []
    for frame_num, frame_path in enumerate(sequence.frames[1:], start=1):
        image = reader.read_image(frame_path)
        for label in (labels if (frame_num % 2 == 0) == flip else labels[::-1]):
            info = sequence.frame_info(frame_num)
            info['previous_output'] = previous[label]
            seconds, out = track_frame(instances[label], streams[label], image, info, device)
            times[label].append(seconds)
            boxes[label].append(out['target_bbox'])
            previous[label] = OrderedDict(out)
        backbone_times.append(backbone.timeit(1).times[0])   # after the Timer's own warm-up runs
    runs = OrderedDict((label, Run(times[label], boxes[label])) for label in labels)
    for label, run in runs.items():
        run.window_counts = tuple(getattr(instances[label], 'iou_window_' + count, 0)
                                  for count in ('refinements', 'growths', 'redone'))
    return runs, backbone_times


def backbone_timer(network) -> Timer:
    """torch.utils.benchmark's Timer of ``network.extract_backbone`` (normalisation + ResNet-50 to layer3) on one
    352x352 crop, in torch's current number of threads (the Timer's own default is one)."""
    crop = torch.rand(1, 3, CROP_SIZE, CROP_SIZE) * 255
    return Timer('with torch.no_grad(): network.extract_backbone(crop.clone())',
                 globals={'torch': torch, 'network': network, 'crop': crop}, num_threads=torch.get_num_threads())


def conv_work(net) -> OrderedDict:
    """Multiply-accumulates (GMAC) of the convolutions the tracker runs on every frame's 352x352 crop, as
    ``torch.utils.flop_counter`` counts them (two FLOPs a multiply-accumulate)."""
    def gmac(function, *args):
        with FlopCounterMode(display=False) as counter:
            result = function(*args)
        flops = counter.get_flop_counts().get('Global', {})
        return result, sum(count for op, count in flops.items() if 'convolution' in str(op)) / 2e9

    work = OrderedDict()
    with torch.no_grad():
        crop = torch.zeros(1, 3, CROP_SIZE, CROP_SIZE, device=next(net.parameters()).device)
        features, work['backbone'] = gmac(net.extract_backbone_features, crop)
        _, work['classification features'] = gmac(net.extract_classification_feat, features)
        _, work['IoU features'] = gmac(net.bb_regressor.get_iou_feat, net.get_backbone_bbreg_feat(features))
    return work


# ------------------------------------------------------------------------------------------- stage breakdown
STAGES = OrderedDict([
    ('track', 'whole track() call'),
    ('crop', '  crop sampling (sample_patch_multiscale)'),
    ('backbone', '  backbone (ResNet-50 to layer3)'),
    ('clf_feat', '  classification features'),
    ('classify', '  classification (target filter)'),
    ('localize', '  localisation (advanced)'),
    ('refine', '  IoU-net refinement (refine_target_box)'),
    ('iou_feat', '    IoU features (MKDNet: in the boxes\' window)'),
    ('optimize', '    box optimisation: 10 steps x 10 boxes'),
    ('predict_iou', '      predict_iou forward'),
    ('prroi', '        of which PrRoIPool forward'),
    ('backward', '      backward (IoU gradient wrt the boxes)'),
    ('update', '  model update (update_classifier)'),
    ('memory', '    sample memory'),
    ('filter_opt', '    target model optimisation (every 20 frames)'),
])
TOP_LEVEL_STAGES = ('crop', 'backbone', 'clf_feat', 'classify', 'localize', 'refine', 'update')
FRAME_RANGE = 'tracking_fps: track'   # the record_function range the bench puts around each profiled track() call
PYTHON_EVENT = re.compile(r'(.+)\((\d+)\): (.+)')   # the profiler's name of a Python call: file(first line): name


def stage_functions() -> OrderedDict:
    """The functions whose calls make up each stage but 'track' (a stage may be computed by either of several)."""
    import ltr.models.target_classifier.optimizer as clf_optimizer
    from ltr.models.bbreg.atom_iou_net import AtomIoUNet
    from ltr_plugins.prroi_pool import PrRoIPool2D
    from pytracking.features.net_wrappers import NetWithBackbone
    from pytracking.features.preprocessing import sample_patch_multiscale
    from pytracking.tracker.dimp import DiMP
    from pytracking_plugins.iou_window import WindowedIoUFeatures, WindowedIoUNet
    return OrderedDict([
        ('crop', (sample_patch_multiscale,)),
        ('backbone', (NetWithBackbone.extract_backbone,)),
        ('clf_feat', (DiMP.get_classification_features,)),
        ('classify', (DiMP.classify_target,)),
        ('localize', (DiMP.localize_target,)),
        ('refine', (DiMP.refine_target_box,)),
        ('iou_feat', (DiMP.get_iou_features, WindowedIoUNet.iou_features)),   # MKDNet's: in a window
        ('optimize', (DiMP.optimize_boxes_relative, DiMP.optimize_boxes_default)),
        ('predict_iou', (AtomIoUNet.predict_iou, WindowedIoUFeatures.predict_iou)),
        ('prroi', (PrRoIPool2D.forward,)),
        ('backward', (torch.Tensor.backward,)),
        ('update', (DiMP.update_classifier,)),
        ('memory', (DiMP.update_memory,)),
        ('filter_opt', (clf_optimizer.DiMPSteepestDescentGN.forward,)),
    ])


def stage_matcher(functions: Dict[str, Sequence[Callable]]) -> Callable[[str], Optional[str]]:
    """A map from the name of a profiler event to its stage, or None. The profiler names a Python call by its
    code, ``file(first line): name`` with the file relative to an import root: matched to the functions' code."""
    codes = defaultdict(list)
    for label, candidates in functions.items():
        for function in candidates:
            code = inspect.unwrap(function).__code__
            codes[code.co_firstlineno, code.co_name].append((code.co_filename.replace(os.sep, '/'), label))

    @functools.lru_cache(maxsize=None)
    def stage(name: str) -> Optional[str]:
        match = PYTHON_EVENT.fullmatch(name)
        if match is None:
            return None
        path, line, function_name = match.groups()
        for file_name, label in codes.get((int(line), function_name), ()):
            if file_name == path or file_name.endswith('/' + path):
                return label
        return None

    return stage


def gpu_aware_end(events, device: str) -> Callable:
    """An event's end in microseconds; on CUDA, extended to the end of the last GPU kernel launched within it, the
    time a synchronisation after the call would measure (the profiler links kernels to the operators that
    launched them)."""
    if device != 'cuda':
        return lambda event: event.time_range.end
    from torch.autograd import DeviceType
    op_start = {e.id: e.time_range.start for e in events
                if e.device_type == DeviceType.CPU and not e.is_python_function and e.id > 0}
    launches = sorted((op_start[e.linked_correlation_id], e.time_range.end) for e in events
                      if e.device_type == DeviceType.CUDA and e.linked_correlation_id in op_start)
    starts = [start for start, _ in launches]

    def end(event) -> float:
        inside = launches[bisect.bisect_left(starts, event.time_range.start):
                          bisect.bisect_right(starts, event.time_range.end)]
        return max([event.time_range.end] + [kernel_end for _, kernel_end in inside])

    return end


def frame_stage_seconds(events, stage_of: Callable[[str], Optional[str]], device: str) -> list:
    """Per tracked frame (a FRAME_RANGE range), {stage: inclusive seconds}: the durations of the stage's calls
    within the frame, a call inside another call of the same stage not counted again."""
    end = gpu_aware_end(events, device)
    frames = sorted((e for e in events if e.name == FRAME_RANGE), key=lambda e: e.time_range.start)
    frame_index = {id(e): index for index, e in enumerate(frames)}
    seconds = [defaultdict(float, track=(end(e) - e.time_range.start) / 1e6) for e in frames]
    for event in events:
        label = stage_of(event.name) if event.is_python_function else None
        if label is None:
            continue
        parent = event.cpu_parent
        while parent is not None and id(parent) not in frame_index and stage_of(parent.name) != label:
            parent = parent.cpu_parent
        if parent is not None and id(parent) in frame_index:
            seconds[frame_index[id(parent)]][label] += (end(event) - event.time_range.start) / 1e6
    return seconds


def profiled_run(tracker: BenchTracker, sequence, seed: int, device: str, stage_of: Callable[[str], Optional[str]]):
    """One run of the tracker, each ``track`` call under a torch.profiler of its own with Python call events
    (``with_stack``), in a FRAME_RANGE range (one frame's events in memory at a time): ({stage: seconds} per tracked
    frame, {localisation flag: frames})."""
    instances, streams, _, previous = initialise({'run': tracker}, sequence, seed, device)
    instance, stream, previous = instances['run'], streams['run'], previous['run']
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
    frames, flags = [], defaultdict(int)
    for frame_num, frame_path in enumerate(sequence.frames[1:], start=1):
        info = sequence.frame_info(frame_num)
        info['previous_output'] = previous
        image = tracker.read_image(frame_path)
        with profile(activities=activities, with_stack=True) as profiler, record_function(FRAME_RANGE):
            _, out = track_frame(instance, stream, image, info, device)
        frames += frame_stage_seconds(profiler.events(), stage_of, device)
        flags[instance.debug_info['flag' + instance.id_str]] += 1
        previous = OrderedDict(out)
    return frames, flags


def stage_breakdown(tracker: BenchTracker, sequence, device: str, seed: int, runs: int):
    """Seconds per tracked frame and stage: for each frame and stage the minimum over ``runs`` identical runs."""
    stage_of = stage_matcher(stage_functions())
    per_run, flags = [], defaultdict(int)
    for _ in range(runs):
        frames, run_flags = profiled_run(tracker, sequence, seed, device, stage_of)
        per_run.append(frames)
        for flag, count in run_flags.items():
            flags[flag] += count
    num_frames = len(per_run[0])
    labels = set().union(*(frame.keys() for frames in per_run for frame in frames))
    per_frame = {label: sum(min(frames[i].get(label, 0.0) for frames in per_run) for i in range(num_frames))
                 / num_frames for label in labels}
    return per_frame, num_frames, {flag: count // runs for flag, count in flags.items()}


# -------------------------------------------------------------------------------------------------- reporting
def verdict(value: float, target: float) -> str:
    return 'meets the target' if value >= target else 'BELOW the target'


def report(args, overrides, runs, extra_init, backbone_times, work, breakdown, loads) -> float:
    """Prints the results; returns MKDNet FPS / Super-DiMP FPS."""
    best = {label: best_of(rs, extra_init.get(label, ())) for label, rs in runs.items()}
    median = {label: (statistics.median(r.fps for r in rs), statistics.median(r.tracking_fps for r in rs))
              for label, rs in runs.items()}
    # One backbone forward per frame and repeat: per-frame minimum over the repeats, then the mean over the frames.
    backbone_best = float(np.mean(np.min(np.array(backbone_times), axis=0)))
    backbone_median = statistics.median(t for repeat in backbone_times for t in repeat)
    repeatable = all(np.array_equal(rs[0].boxes, r.boxes) for rs in runs.values() for r in rs)
    box_difference = max(float(np.abs(a.boxes - b.boxes).max()) for a, b in zip(runs['Super-DiMP'], runs['MKDNet']))
    device = 'CUDA ({})'.format(torch.cuda.get_device_name()) if args.device == 'cuda' else 'CPU'
    busy = loads[0] > 0.5 * os.cpu_count()

    print('MKDNet tracking speed (bench/tracking_fps.py), one run')
    print('  weights: RANDOM (the same random Super-DiMP weights for both trackers; speed does not depend on them)')
    print('  device: {}, {} torch thread(s), {} CPU(s); torch {}; 1-min load average {:.1f} before, {:.1f} after '
          '(this bench included){}'
          .format(device, torch.get_num_threads(), os.cpu_count(), torch.__version__, loads[0], loads[1],
                  ' (OTHER PROCESSES WERE BUSY: trust "best", not the medians)' if busy else ''))
    print('  sequence: synthetic, {} frames of {}x{}; both trackers in lockstep, {} timed repeats after a warm-up'
          .format(args.frames, IMAGE_SIZE[0], IMAGE_SIZE[1], args.repeats))
    if overrides:
        print("  every frame 'normal' for both trackers (thresholds overridden): the regular path of a trained network "
              "that follows its target (refinement every frame, target model update every 20 frames)")
    else:
        print("  Super-DiMP's own thresholds (random weights: most frames 'not found' or 'uncertain', so refinement "
              "and update are mostly skipped)")
    print('  best = per-frame minimum over the identical repeats (robust to other load; the first frame also over {} '
          'further initialisations); median = the median repeat'.format(args.init_repeats * args.repeats))
    print()
    print('  {:<12} {:>22} {:>22} {:>10} {:>12}'.format('', 'pytracking FPS', 'tracking FPS', 'init (s)',
                                                       'ms / frame'))
    print('  {:<12} {:>22} {:>22} {:>10} {:>12}'.format('tracker', 'best (median)', 'best (median)', 'best', 'best'))
    for label in runs:
        print('  {:<12} {:>13.2f} ({:>6.2f}) {:>13.2f} ({:>6.2f}) {:>10.2f} {:>12.1f}'.format(
            label, best[label].fps, median[label][0], best[label].tracking_fps, median[label][1],
            best[label].init_time, 1000 / best[label].tracking_fps))
    print("  pytracking FPS = frames / total time, the first frame's initialisation included (what run_tracker "
          "prints); tracking FPS = frames 2..N")
    print('  each repeat (pytracking FPS): {}'.format('; '.join(
        '{} {}'.format(label, ' '.join('{:.2f}'.format(r.fps) for r in rs)) for label, rs in runs.items())))
    print('  every repeat of a tracker gave identical boxes: {}'.format('yes' if repeatable else 'NO'))
    print("  MKDNet's boxes against Super-DiMP's (the same weights; MKDNet's refinement computed in a window, to float "
          'rounding the same): largest difference {:.2g} px'.format(box_difference))
    refinements, growths, redone = (sum(r.window_counts[i] for r in runs['MKDNet']) for i in (0, 1, 2))
    print("  MKDNet's IoU features in a window around the refined boxes: {} of {} refinements; a window grew {} times "
          "(a box reached beyond it); {} redone on the whole map (a box not finite)".format(
              refinements, sum(len(r.times) - 1 for r in runs['MKDNet']), growths, redone))
    print()
    print('  backbone forward on one 1x3x{0}x{0} crop (ResNet-50 to layer3, as the tracker calls it), timed after '
          'every frame: best {1:.1f} ms, median {2:.1f} ms -> backbone-bound rate {3:.2f} FPS (median {4:.2f})'.format(
              CROP_SIZE, 1000 * backbone_best, 1000 * backbone_median, 1 / backbone_best, 1 / backbone_median))
    print()
    ratio = best['MKDNet'].fps / best['Super-DiMP'].fps
    bound_ratio = best['MKDNet'].tracking_fps * backbone_best
    print('  MKDNet FPS / Super-DiMP FPS      = {:.3f}  ({:.2f} / {:.2f} pytracking FPS; per tracked frame {:.3f}; '
          'medians {:.3f})   target >= {}: {}'.format(
              ratio, best['MKDNet'].fps, best['Super-DiMP'].fps,
              best['MKDNet'].tracking_fps / best['Super-DiMP'].tracking_fps,
              median['MKDNet'][0] / median['Super-DiMP'][0], FPS_RATIO_TARGET, verdict(ratio, FPS_RATIO_TARGET)))
    print('  MKDNet FPS / backbone-bound rate = {:.3f}  ({:.2f} tracking FPS / {:.2f}; with pytracking FPS {:.3f}; '
          'medians {:.3f})   target >= {}: {}'.format(
              bound_ratio, best['MKDNet'].tracking_fps, 1 / backbone_best, best['MKDNet'].fps * backbone_best,
              median['MKDNet'][1] * backbone_median, BACKBONE_RATIO_TARGET,
              verdict(bound_ratio, BACKBONE_RATIO_TARGET)))

    print()
    print('  convolution work per tracked frame: {} = {:.2f} GMAC'.format(
        ', '.join('{} {:.2f}'.format(k, v) for k, v in work.items()), sum(work.values())))
    if breakdown is not None:
        report_breakdown(*breakdown, runs=args.breakdown_runs)
    return ratio


def report_breakdown(per_frame: dict, frames: int, flags: dict, runs: int) -> None:
    """The per-stage lines of the report, from :func:`stage_breakdown`."""
    total = per_frame['track']
    print("  where MKDNet's time per tracked frame goes ({} frames, best of {} profiled runs; inclusive times; "
          'localisation flags: {}):'.format(frames, runs, ', '.join('{} {}'.format(k, v) for k, v in flags.items())))
    for key, label in STAGES.items():
        if key in per_frame:
            print('    {:<48} {:>8.1f} ms  {:>5.1f} %'.format(label, 1000 * per_frame[key],
                                                               100 * per_frame[key] / total))
    other = total - sum(per_frame.get(k, 0.0) for k in TOP_LEVEL_STAGES)
    print('    {:<48} {:>8.1f} ms  {:>5.1f} %'.format('  other (state updates, bookkeeping)', 1000 * other,
                                                       100 * other / total))
    convolutions = sum(per_frame.get(k, 0.0) for k in ('backbone', 'clf_feat', 'iou_feat'))
    print('  bound: were everything but the three convolution stacks free, MKDNet FPS / backbone-bound rate would be '
          '{:.3f} ({:.1f} ms of backbone in {:.1f} ms of convolutions)'.format(
              per_frame['backbone'] / convolutions, 1000 * per_frame['backbone'], 1000 * convolutions))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('--device cuda: no CUDA device on this machine', file=sys.stderr)
        return 2
    overrides = {} if args.stock_thresholds else {'target_not_found_threshold': -math.inf,
                                                  'distractor_threshold': math.inf,
                                                  'hard_negative_threshold': math.inf}

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix='tracking_fps_') as folder:
        use_local_settings(pytracking=local_settings(folder))
        sequence = make_sequence(folder, args.frames, args.seed)
        write_networks(folder, args.seed)
        trackers = OrderedDict((label, BenchTracker(name, parameter, args.device, overrides))
                               for label, name, parameter in TRACKERS)

        # The backbone-bound rate, timed with MKDNet's own network wrapper: the tracker's exact call.
        backbone_network = trackers['MKDNet'].parameters().net
        backbone_network.initialize()
        work = conv_work(backbone_network.net)
        backbone = backbone_timer(backbone_network)

        warmup_sequence = type(sequence)(sequence.name, sequence.frames[:args.warmup_frames], sequence.dataset,
                                         sequence.ground_truth_rect[:args.warmup_frames])
        lockstep(trackers, warmup_sequence, args.seed, backbone, args.device)
        runs = OrderedDict((label, []) for label in trackers)
        backbone_times = []
        extra_init = defaultdict(list)
        for index in range(args.repeats):
            repeat, repeat_backbone = lockstep(trackers, sequence, args.seed, backbone, args.device,
                                               flip=index % 2 == 1)
            for label, run in repeat.items():
                runs[label].append(run)
            backbone_times.append(repeat_backbone)
            # The initialisation is one long measurement per run: repeat it alone, in the other order.
            for _ in range(args.init_repeats):
                for label, seconds in initialise(trackers, sequence, args.seed, args.device, index % 2 == 0)[2].items():
                    extra_init[label].append(seconds)

        breakdown = None
        if args.breakdown_runs > 0:
            breakdown = stage_breakdown(trackers['MKDNet'], sequence, args.device, args.seed, args.breakdown_runs)
    ratio = report(args, overrides, runs, extra_init, backbone_times, work, breakdown,
                   (load_before, os.getloadavg()[0]))
    if args.min_ratio is not None and ratio < args.min_ratio:
        print('FAIL: MKDNet FPS / Super-DiMP FPS {:.3f} below --min-ratio {}'.format(ratio, args.min_ratio))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
