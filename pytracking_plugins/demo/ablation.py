"""``mkdnet-ablation``: Table IV in miniature -- the baseline, MKDNet-FD, -SD, -IoUD and MKDNet, each trained with
several seeds from one teacher, tracked on a test split of tiny targets, and each compared with the baseline.

    mkdnet-ablation [--preset cpu|gpu|test] [--set NAME=VALUE ...] [--folder workspace/ablation]

The setup is the demo's (:mod:`.pipeline`), with every variant of Table IV, three seeds each and a larger test
split (:data:`ABLATION_SIZES`); the report (``<folder>/report/report.md``) holds, for every variant against the
baseline, the paired differences of PR, NPR and SR pooled over seeds with their 95 % bootstrap intervals over
sequences and seeds, and the per-seed differences. Resumable: finished steps are reused.
"""
import argparse
import dataclasses
import sys
import time
from typing import Dict, Optional, Sequence

from pytracking_plugins.demo import presets
from pytracking_plugins.demo.experiment import VARIANTS, Experiment
from pytracking_plugins.demo.pipeline import add_common_arguments, clock, cpu_seconds, finish, parse_preset
from pytracking_plugins.demo.steps import FolderError

# The ablation's sizes on top of each preset: three seeds per variant and a test split sized to resolve SR
# differences of about 0.02 (docs/demo.md, "The ablation"); the test preset stays the suite's smallest.
ABLATION_SIZES: Dict[str, Dict] = {
    'cpu': dict(seeds=3, test_sequences=96, test_frames=40),
    'gpu': dict(seeds=3, test_sequences=160),
    'test': dict(seeds=2),
}


def ablation_preset(name: str) -> presets.Preset:
    return dataclasses.replace(presets.PRESETS[name], **ABLATION_SIZES[name])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='mkdnet-ablation', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='Preset fields (--set): ' + ', '.join(presets.field_names()))
    add_common_arguments(parser, 'ablation', 'sizes: cpu (default, at most 90 minutes on 2 cores), gpu (Super-DiMP\'s '
                                             'crops; hours), test (the smallest, for the test suite)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = parse_preset(parser, args, ablation_preset(args.preset))
    print('mkdnet-ablation, preset {}{}: {}'.format(args.preset, ' with ' + ' '.join(args.overrides)
                                                   if args.overrides else '', preset))
    start, cpu_start = time.time(), cpu_seconds()
    experiment = Experiment(args.folder, preset, VARIANTS, 'mkdnet-ablation', args.seed, args.adopt_folder)
    try:
        experiment.run()
    except FolderError as error:
        print('mkdnet-ablation: {}'.format(error), file=sys.stderr)
        return 2
    finish(experiment, 'MKDNet ablation (Table IV in miniature, synthetic tiny objects)', animate=False)
    print('Total time {} (CPU time: {}).'.format(clock(time.time() - start), clock(cpu_seconds() - cpu_start)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
