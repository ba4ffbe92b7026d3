"""The demo: trains a small Super-DiMP teacher, MKDNet and its baseline on synthetic tiny objects, tracks, scores.

    python -m pytracking_plugins.demo [--preset cpu|gpu|test] [--set NAME=VALUE ...] [--folder workspace/demo]

Steps (each reused on the next run when nothing it depends on changed):

1. synthetic train and test sequences in the LaTOT layout (``ltr_plugins.synthetic``);
2. the teacher, MKDNet and the baseline, each through pytracking's ``run_training`` with the train settings
   ``mkdnet/demo_teacher``, ``demo_mkdnet``, ``demo_baseline``, then exported as tracking networks;
3. tracking of the test split with pytracking's ``Tracker`` / ``run_dataset`` (what ``run_tracker.py`` runs) and the
   parameter files ``mkdnet/demo_*``, plus the reference row "initial box" (the first frame's box held still);
4. the LaTOT protocol (``pytracking_plugins.analysis.latot``): table, plots, attributes, per sequence, report;
5. one test sequence rendered as an animated GIF and a PNG strip, linked from the report.

Everything goes under the demo folder (default ``workspace/demo``): pytracking's and ltr's environment settings are
pointed there for this process only, so your local.py files, networks and results are never touched.
"""
import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import sys
import time
from typing import TYPE_CHECKING, Callable, Dict, Optional, Sequence

from ltr_plugins.common.atomic_files import write_text
from pytracking_plugins.demo import presets
from pytracking_plugins.demo.presets import Preset

if TYPE_CHECKING:   # imported where used: pytracking must see the demo's environment settings first
    from pytracking_plugins.analysis.latot import Evaluation
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = ('teacher', 'mkdnet', 'baseline')
LABELS = {'teacher': 'Teacher (Super-DiMP-18)', 'mkdnet': 'MKDNet', 'baseline': 'Baseline (no distillation)'}
INITIAL_BOX_LABEL = 'Initial box'
TEST_SEED_OFFSET = 1000         # the test sequences come from other seeds than the training sequences


class Paths:
    """Where the demo writes, all under one folder."""

    def __init__(self, folder: str):
        self.folder = os.path.abspath(folder)
        self.steps = os.path.join(self.folder, 'steps')
        self.train_data = os.path.join(self.folder, 'data', 'train')
        self.test_data = os.path.join(self.folder, 'data', 'test')
        self.networks = os.path.join(self.folder, 'networks')
        self.results = os.path.join(self.folder, 'tracking_results')
        self.initial_box = os.path.join(self.results, 'initial_box')
        self.report = os.path.join(self.folder, 'report')

    def training(self, role: str) -> str:
        return os.path.join(self.folder, 'training', role)

    def tracker_results(self, role: str) -> str:
        return os.path.join(self.results, 'mkdnet', 'demo_' + role)


def step_key(name: str, config: Dict, dependencies: Sequence[str] = ()) -> str:
    """A hash of a step's settings and of the keys of the steps it uses."""
    text = json.dumps({'step': name, 'config': config, 'uses': list(dependencies)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (the data writers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Progress:
    """Prints each step with the elapsed time and the steps that remain."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.start = time.time()
        self.cpu_start = cpu_seconds()
        self.done = 0
        self.step_cpu = 0.0

    @staticmethod
    def clock(seconds: float) -> str:
        return '{:d}:{:02d}'.format(int(seconds) // 60, int(seconds) % 60)

    def begin(self, name: str, reused: bool) -> None:
        remaining = self.names[self.done + 1:]
        self.step_cpu = cpu_seconds()
        print('\n[{}/{}] {}{}  (elapsed {}; then: {})'.format(
            self.done + 1, len(self.names), name, ' -- reused' if reused else '', self.clock(time.time() - self.start),
            ', '.join(remaining) if remaining else 'nothing'), flush=True)

    def end(self, seconds: float) -> None:
        self.done += 1
        print('      done in {} (CPU time: {})'.format(
            self.clock(seconds), self.clock(cpu_seconds() - self.step_cpu)), flush=True)


class Steps:
    """Runs a step unless its record in ``<folder>/steps/`` holds the same key (then it is reused)."""

    def __init__(self, paths: Paths, progress: Progress):
        self.paths = paths
        self.progress = progress
        os.makedirs(paths.steps, exist_ok=True)

    def _record(self, name: str) -> str:
        return os.path.join(self.paths.steps, name.replace(' ', '_') + '.json')

    def _read(self, name: str) -> Optional[Dict]:
        path = self._record(name)
        if not os.path.isfile(path):
            return None
        with open(path) as handle:
            return json.load(handle)

    def run(self, name: str, key: str, action: Callable[[], None], outputs: Sequence[str] = ()) -> None:
        """Runs ``action`` unless a run with the same key finished. An unfinished run with the same key is resumed
        (``action`` continues from what is there: ltr resumes from its latest checkpoint, pytracking skips finished
        sequences); otherwise ``outputs`` are removed first."""
        record = self._read(name)
        reused = record is not None and record.get('key') == key and record.get('done', False)
        self.progress.begin(name, reused)
        start = time.time()
        if not reused:
            if record is None or record.get('key') != key:
                for output in outputs:
                    if os.path.isdir(output):
                        shutil.rmtree(output)
                    elif os.path.exists(output):
                        os.remove(output)
            _write_json(self._record(name), {'key': key, 'done': False})
            action()
            _write_json(self._record(name), {'key': key, 'done': True, 'seconds': round(time.time() - start, 1)})
        self.progress.end(time.time() - start)


def _write_json(path: str, data: Dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_text(path, json.dumps(data, indent=1, sort_keys=True))


def point_pytracking_at(paths: Paths) -> None:
    """pytracking's environment settings for this process: everything under the demo folder."""
    from pytracking_plugins.environment import use_local_settings
    use_local_settings(pytracking=dict(
        network_path=paths.networks, results_path=paths.results,
        segmentation_path=os.path.join(paths.folder, 'segmentation_results'), result_plot_path=paths.report,
        latot_path=paths.test_data))


def write_sequences(root: str, split: str, count: int, frames: int, preset: Preset, seed: int) -> None:
    from ltr_plugins import latot_data, synthetic
    names = latot_data.split_sequence_names(split)[:count]
    synthetic.write_dataset(root, names=names, num_frames=frames, image_size=presets.image_size(preset), seed=seed,
                            overwrite=True, jobs=2)


def train(paths: Paths, role: str, preset: Preset, seed: int) -> None:
    """Trains ``role`` through ltr's ``run_training`` and exports it as ``networks/demo_<role>.pth.tar``."""
    from ltr.run_training import run_training
    from ltr_plugins.export_mkdnet import export_student, resolve_checkpoint
    from pytracking_plugins.demo.tracking_parameters import network_file
    from pytracking_plugins.environment import use_local_settings
    workspace = paths.training(role)
    demo = dict(preset.training_sizes(role), train_dir=paths.train_data, seed=seed)
    if role != 'teacher':
        demo['teacher_checkpoint'] = resolve_checkpoint(teacher_checkpoint_dir(paths))
    use_local_settings(ltr=dict(workspace_dir=workspace, tensorboard_dir=os.path.join(workspace, 'tensorboard'),
                                pretrained_networks=paths.networks, demo=demo))
    run_training('mkdnet', 'demo_' + role, cudnn_benchmark=False)
    export_student(checkpoint_dir(paths, role), os.path.join(paths.networks, network_file(role)))


def checkpoint_dir(paths: Paths, role: str) -> str:
    return os.path.join(paths.training(role), 'checkpoints', 'ltr', 'mkdnet', 'demo_' + role)


def teacher_checkpoint_dir(paths: Paths) -> str:
    return checkpoint_dir(paths, 'teacher')


def test_dataset(paths: Paths) -> 'LaTOTDataset':
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset
    return LaTOTDataset(split='test', allow_missing=True, root=paths.test_data)


def track(paths: Paths, role: str, seed: int) -> None:
    """Runs the parameter file ``mkdnet/demo_<role>`` on the test split, as ``run_tracker.py`` does, seeded (DiMP
    draws random shifts for its initial training samples)."""
    import numpy as np
    import torch
    from pytracking.evaluation import Tracker
    from pytracking.evaluation.running import run_dataset
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    tracker = Tracker('mkdnet', 'demo_' + role, display_name=LABELS[role])
    sequences = test_dataset(paths).get_sequence_list()
    run_dataset(sequences, [tracker], debug=0, threads=0)
    # pytracking prints a sequence's exception and goes on: a missing result file is how a failure shows.
    missing = [s.name for s in sequences if not os.path.isfile(os.path.join(tracker.results_dir, s.name + '.txt'))]
    if missing:
        raise RuntimeError('mkdnet demo_{} failed on {} (see the error printed above); no results in {}'.format(
            role, ', '.join(missing), tracker.results_dir))


def write_initial_box(paths: Paths) -> None:
    """The reference row: every frame's box is the first frame's (what a tracker that never moves scores)."""
    os.makedirs(paths.initial_box, exist_ok=True)
    for sequence in test_dataset(paths).get_sequence_list():
        first = sequence.ground_truth_rect[0]
        line = '\t'.join('{:.2f}'.format(v) for v in first) + '\n'
        path = os.path.join(paths.initial_box, sequence.name + '.txt')
        write_text(path, line * len(sequence.frames))


def evaluate(paths: Paths) -> 'Evaluation':
    """Scores the initial box and the three trackers under the LaTOT protocol; writes and returns the report."""
    from pytracking.evaluation import Tracker
    from pytracking_plugins.analysis import latot
    sources = [latot.folder_source(paths.initial_box, INITIAL_BOX_LABEL)]
    sources += [Tracker('mkdnet', 'demo_' + role, display_name=LABELS[role]) for role in ROLES]
    evaluation = latot.evaluate(sources, test_dataset(paths), output_dir=paths.report, force_evaluation=True,
                                verbose=False)
    summary = latot.print_summary(evaluation, attributes=True, per_sequence=True)
    latot.write_report(evaluation, paths.report, summary=summary, title='MKDNet demo (synthetic tiny objects)')
    latot.write_json(evaluation, os.path.join(paths.report, 'scores.json'))
    return evaluation


def link_animation(paths: Paths, files: Sequence[str], sequence: str) -> None:
    """Adds the animation to the report (report.md)."""
    report = os.path.join(paths.report, 'report.md')
    with open(report) as handle:
        text = handle.read()
    links = '\n'.join('![{0}]({0})'.format(os.path.relpath(f, paths.report)) for f in files)
    text += ('\n## Tracking on {}\n\nThe test sequence where the trackers gain most over the initial box. Ground '
             'truth (white) and each tracker\'s box, zoomed around the target; left: the whole frame.\n\n{}\n'.format(sequence, links))
    write_text(report, text)


def run(paths: Paths, preset: Preset, seed: int) -> int:
    from pytracking_plugins.demo import animation
    names = (['train data', 'test data'] + ['train ' + r for r in ROLES] + ['track ' + r for r in ROLES] +
             ['initial box', 'report', 'animation'])
    progress = Progress(names)
    steps = Steps(paths, progress)
    point_pytracking_at(paths)

    keys = {}
    train_config = dict(n=preset.train_sequences, frames=preset.train_frames, size=presets.image_size(preset),
                        seed=seed)
    keys['train data'] = step_key('train data', train_config)
    steps.run('train data', keys['train data'], lambda: write_sequences(
        paths.train_data, 'train', preset.train_sequences, preset.train_frames, preset, seed), [paths.train_data])
    test_config = dict(n=preset.test_sequences, frames=preset.test_frames, size=presets.image_size(preset),
                       seed=seed + TEST_SEED_OFFSET)
    keys['test data'] = step_key('test data', test_config)
    steps.run('test data', keys['test data'], lambda: write_sequences(
        paths.test_data, 'test', preset.test_sequences, preset.test_frames, preset, seed + TEST_SEED_OFFSET),
        [paths.test_data])

    from pytracking_plugins.demo.tracking_parameters import INFO_FILE, network_file
    os.makedirs(paths.networks, exist_ok=True)
    _write_json(os.path.join(paths.networks, INFO_FILE), preset.tracking_info())
    for role in ROLES:
        uses = [keys['train data']] + ([keys['train teacher']] if role != 'teacher' else [])
        keys['train ' + role] = step_key('train ' + role, dict(preset.training_sizes(role), seed=seed), uses)
        steps.run('train ' + role, keys['train ' + role], lambda r=role: train(paths, r, preset, seed),
                  [paths.training(role), os.path.join(paths.networks, network_file(role))])
    for role in ROLES:
        keys['track ' + role] = step_key('track ' + role, dict(preset.tracking_info(), seed=seed),
                                         [keys['train ' + role], keys['test data']])
        steps.run('track ' + role, keys['track ' + role], lambda r=role: track(paths, r, seed),
                  [paths.tracker_results(role)])
    keys['initial box'] = step_key('initial box', {}, [keys['test data']])
    steps.run('initial box', keys['initial box'], lambda: write_initial_box(paths), [paths.initial_box])

    progress.begin('report', False)
    start = time.time()
    evaluation = evaluate(paths)
    progress.end(time.time() - start)

    sequence = animation.pick_sequence(test_dataset(paths), evaluation, [LABELS[r] for r in ROLES],
                                       INITIAL_BOX_LABEL)
    keys['animation'] = step_key('animation', dict(sequence=sequence.name),
                                 [keys['track ' + r] for r in ROLES] + [keys['initial box']])
    animation_dir = os.path.join(paths.report, 'animation')
    steps.run('animation', keys['animation'], lambda: animation.render(
        sequence, {INITIAL_BOX_LABEL: paths.initial_box, **{LABELS[r]: paths.tracker_results(r) for r in ROLES}},
        animation_dir), [animation_dir])
    link_animation(paths, animation.output_files(animation_dir), sequence.name)

    print('\nReport: {}\nAnimation: {}\nPlots, per-sequence scores and scores.json: {}'.format(
        os.path.join(paths.report, 'report.md'), animation.output_files(animation_dir)[0], paths.report))
    print('Synthetic data and a short training: the comparison shows the pipeline at work, not the paper\'s numbers.')
    print('Total time {} (CPU time: {}).'.format(
        Progress.clock(time.time() - progress.start), Progress.clock(cpu_seconds() - progress.cpu_start)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m pytracking_plugins.demo', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='Preset fields (--set): ' + ', '.join(presets.field_names()))
    parser.add_argument('--folder', default=os.path.join(PROJECT_ROOT, 'workspace', 'demo'),
                        help='where everything is written (default: workspace/demo)')
    parser.add_argument('--preset', choices=sorted(presets.PRESETS), default='cpu',
                        help='sizes: cpu (default, about 15 minutes on 2 cores), gpu (larger), test (smallest)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='NAME=VALUE',
                        help='change one size of the preset, e.g. --set teacher_epochs=10 (repeatable)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the data and the trainings (default 0)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        preset = presets.apply_overrides(presets.PRESETS[args.preset], args.overrides)
    except ValueError as error:
        parser.error(str(error))
    if args.seed < 0:
        parser.error('--seed must not be negative')
    print('MKDNet demo, preset {}{}: {}'.format(args.preset, ' with ' + ' '.join(args.overrides)
                                               if args.overrides else '', preset))
    return run(Paths(args.folder), preset, args.seed)


if __name__ == '__main__':
    sys.exit(main())
