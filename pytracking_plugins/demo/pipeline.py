"""``mkdnet-demo``: MKDNet at work on a laptop, with nothing downloaded -- the paper's experiment in miniature.

    mkdnet-demo [--preset cpu|gpu|test] [--set NAME=VALUE ...] [--folder workspace/demo] [--seed 0]

On synthetic sequences in the LaTOT layout it trains a Super-DiMP teacher on ordinary-sized targets, then MKDNet and
the baseline (the same student without distillation) from it on crops degraded so that the targets look as tiny
as the test split's; tracks the tiny-target test split with each; scores them with the LaTOT protocol next to the
reference row "Initial box" (the first box held still); writes a report with the comparison, the training curves
and an animation (:mod:`.experiment`, :mod:`.report`). Steps are reused on the next run while nothing they depend
on changes; the folder holds everything, and the user's local.py files, networks and results are never touched.
"""
import argparse
import os
import resource
import sys
import time
from typing import Optional, Sequence

from pytracking_plugins.demo import presets
from pytracking_plugins.demo.experiment import INITIAL_BOX_LABEL, LABELS, Experiment, label
from pytracking_plugins.demo.steps import FolderError, Steps, step_key

DEMO_VARIANTS = ('baseline', 'mkdnet')


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (data writers, tracking workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def clock(seconds: float) -> str:
    return '{:d}:{:02d}'.format(int(seconds) // 60, int(seconds) % 60)


def add_common_arguments(parser: argparse.ArgumentParser, default_folder: str, preset_help: str) -> None:
    """The options mkdnet-demo and mkdnet-ablation share."""
    parser.add_argument('--folder', default=presets.default_folder(default_folder),
                        help='where everything is written (default: workspace/{})'.format(default_folder))
    parser.add_argument('--preset', choices=sorted(presets.PRESETS), default='cpu', help=preset_help)
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='NAME=VALUE',
                        help='change one size of the preset, e.g. --set student_epochs=6 (repeatable)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the data and the teacher (default 0)')
    parser.add_argument('--adopt-folder', action='store_true',
                        help='use a non-empty --folder that no earlier run made (its files are left alone)')


def parse_preset(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 base: presets.Preset) -> presets.Preset:
    try:
        preset = presets.apply_overrides(base, args.overrides)
    except ValueError as error:
        parser.error(str(error))
    if args.seed < 0:
        parser.error('--seed must not be negative')
    return preset


def render_animation(experiment: Experiment, evaluation) -> None:
    """The test sequence where the trackers gain most over the initial box, as a GIF and a strip, in the report."""
    from ltr_plugins.common.atomic_files import write_text
    from pytracking_plugins.demo import animation
    rows = [label(variant, experiment.seeds[0]) for variant in experiment.variants]
    dataset = experiment.test_dataset()
    sequence = animation.pick_sequence(dataset, evaluation, rows, INITIAL_BOX_LABEL)
    folder = os.path.join(experiment.paths.report, 'animation')
    steps = Steps(experiment.paths.folder)
    tracks = {INITIAL_BOX_LABEL: experiment.paths.initial_box,
              LABELS['teacher']: experiment.paths.tracker_results('teacher', None),
              **{LABELS[v]: experiment.paths.tracker_results(v, experiment.seeds[0]) for v in experiment.variants}}
    key = step_key('animation', dict(sequence=sequence.name),
                   [experiment.keys['track ' + experiment.paths.run_name(v, s)] for v, s in experiment.trackers()])
    steps.run('animation', key, lambda: animation.render(sequence, tracks, folder), [folder])
    report = os.path.join(experiment.paths.report, 'report.md')
    with open(report) as handle:
        text = handle.read()
    links = '\n'.join('![{0}]({0})'.format(os.path.relpath(f, experiment.paths.report))
                      for f in animation.output_files(folder))
    write_text(report, text + '\n## Tracking on {}\n\nThe test sequence where the trackers gain most over the initial '
                              'box (seed {}). Ground truth (white) and each tracker\'s box, zoomed around the target; '
                              'left: the whole frame.\n\n{}\n'.format(sequence.name, experiment.seeds[0], links))


def finish(experiment: Experiment, title: str, animate: bool) -> None:
    """Scores, report (and animation); prints where they are and the comparison's one-line answers."""
    from pytracking_plugins.demo import report
    per_seed, merged = experiment.evaluate(merge_seeds=False), experiment.evaluate(merge_seeds=True)
    path = report.write(experiment, per_seed, merged, title)
    if animate:
        render_animation(experiment, per_seed)
    print('\nReport: {}\nPlots, per-sequence scores, scores.json and training curves: {}'.format(
        path, experiment.paths.report))
    print(report.conclusion(per_seed, experiment))
    print(report.spread_line(per_seed, experiment))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='mkdnet-demo', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='Preset fields (--set): ' + ', '.join(presets.field_names()))
    add_common_arguments(parser, 'demo', 'sizes: cpu (default, about 12 minutes on 2 cores), gpu (Super-DiMP\'s '
                                         'crops, more data; hours), test (the smallest, for the test suite)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = parse_preset(parser, args, presets.PRESETS[args.preset])
    print('mkdnet-demo, preset {}{}: {}'.format(args.preset, ' with ' + ' '.join(args.overrides)
                                               if args.overrides else '', preset))
    start, cpu_start = time.time(), cpu_seconds()
    experiment = Experiment(args.folder, preset, DEMO_VARIANTS, 'mkdnet-demo', args.seed, args.adopt_folder)
    try:
        experiment.run()
    except FolderError as error:
        print('mkdnet-demo: {}'.format(error), file=sys.stderr)
        return 2
    finish(experiment, 'MKDNet demo: the paper\'s experiment in miniature (synthetic tiny objects)', animate=True)
    print('Total time {} (CPU time: {}).'.format(clock(time.time() - start), clock(cpu_seconds() - cpu_start)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
