"""The LaTOT evaluation protocol (paper, section V-A): PR, NPR and SR of many trackers, with plots and a report.

From Python, :func:`evaluate` (pytracking trackers and :func:`folder_source` result folders), then
:func:`print_summary`, :func:`write_report` and :func:`write_json`; as a command, ``python -m
pytracking_plugins.analysis.latot --help`` (docs/latot.md). The scores are printed before any file is written, so a
folder that cannot be written loses none of them, and every file is written to a temporary name first. ``--protocol``
scores by the paper's text or by the LaSOT toolkit's semantics (:mod:`.protocol`); every score carries a bootstrap
interval (:mod:`.uncertainty`). Definitions: :mod:`.metrics`; result folders: :mod:`.results`; attributes:
:mod:`ltr_plugins.latot_attributes`; statistics: :mod:`.stats`. pytracking's own analysis tools work on LaTOT but
report pytracking's metrics (precision at 20 px, not 5 px): use this module for LaTOT's numbers.
"""
import argparse
import os
import sys
from typing import List, Optional, Sequence

from ltr_plugins import latot_attributes, latot_data
from ltr_plugins.common.file_names import displayable, tolerate_undecodable_output
from pytracking_plugins.analysis.cache import CACHE_FILE_NAME, CurveCache
from pytracking_plugins.analysis.evaluation import Evaluation
from pytracking_plugins.analysis.plots import plot_all, plot_attributes, plot_curves
from pytracking_plugins.analysis.protocol import METRICS, Protocol, protocol_description
from pytracking_plugins.analysis.report import (attribute_table, markdown_report, overall_table, print_summary,
                                                write_json, write_report)
from pytracking_plugins.analysis.results import (ResultSource, ResultsError, folder_source, folder_sources_under,
                                                 parse_run_ids, pytracking_sources)
from pytracking_plugins.analysis.uncertainty import DEFAULT_RESAMPLES, DEFAULT_SEED, MAX_RESAMPLES, check_resamples
from pytracking_plugins.analysis.scoring import (cache_path, default_output_dir, default_report_name, evaluate,
                                                 save_cache)

__all__ = ['evaluate', 'Evaluation', 'Protocol', 'ResultSource', 'ResultsError', 'folder_source',
           'folder_sources_under', 'pytracking_sources', 'print_summary', 'write_report', 'write_json', 'plot_all', 'plot_curves',
           'plot_attributes', 'overall_table', 'attribute_table', 'markdown_report', 'default_output_dir',
           'default_report_name', 'protocol_description', 'METRICS', 'CACHE_FILE_NAME', 'main']


# Command line -----------------------------------------------------------------------------------------------------

class _Tracker(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) < 2:
            parser.error('--tracker takes NAME PARAMETER [RUN_IDS ...], got {}'.format(' '.join(values)))
        run_ids = None
        if len(values) > 2:
            try:
                run_ids = [run_id for text in values[2:] for run_id in parse_run_ids(text)]
            except ValueError as error:
                parser.error(str(error))
        namespace.sources.append(dict(kind='pytracking', name=values[0], parameter=values[1], run_ids=run_ids,
                                      label=None))


class _Results(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        namespace.sources.append(dict(kind='folder', directory=values, label=None))


class _ResultsRoot(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        namespace.sources.append(dict(kind='root', directory=values, label=None))


class _Label(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        if not namespace.sources or namespace.sources[-1]['kind'] == 'root':
            parser.error('--label names the --tracker or --results given just before it')
        if namespace.sources[-1]['label'] is not None:
            parser.error('--label given twice for one tracker')
        namespace.sources[-1]['label'] = values


def _resamples(text: str) -> int:
    try:
        return check_resamples(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError('{!r}: give a whole number from 1 to {} (default {})'.format(
            text, MAX_RESAMPLES, DEFAULT_RESAMPLES)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m pytracking_plugins.analysis.latot',
        description='Scores trackers under the LaTOT protocol (PR at 5 px, NPR, SR; per attribute and per sequence) '
                    'and writes the plots, a Markdown report and, on request, a JSON file of every score.',
        epilog='Trackers are scored in the order given; give --tracker and --results as often as needed, in any mix. '
               'Result files: <folder>/<sequence>.txt, one x,y,w,h box per frame (commas, tabs or spaces).')
    parser.set_defaults(sources=[])
    group = parser.add_argument_group('trackers')
    group.add_argument('--tracker', nargs='+', action=_Tracker, metavar=('NAME PARAMETER', 'RUN_IDS'),
                       help="pytracking results: <results_path>/NAME/PARAMETER[_<run id>], as trackerlist(NAME, "
                            "PARAMETER, RUN_IDS); RUN_IDS like 0 1 2, 0-4 or 0,2,5")
    group.add_argument('--results', action=_Results, metavar='FOLDER',
                       help='an external results folder (label: the folder name)')
    group.add_argument('--results-root', action=_ResultsRoot, metavar='FOLDER',
                       help='a folder of results folders, one per tracker (e.g. a LaSOT-toolkit tracking_results/)')
    group.add_argument('--label', action=_Label, metavar='TEXT',
                       help='display name of the --tracker or --results just before (run ids are appended)')
    group.add_argument('--merge-runs', action='store_true',
                       help="average the runs of a pytracking tracker (pytracking's merge_results)")

    group = parser.add_argument_group('protocol')
    group.add_argument('--protocol', choices=[p.value for p in Protocol] + ['both'], default=Protocol.PAPER.value,
                       help="paper (default): the paper's definitions (NPR: area under the curve; invalid and absent "
                            "frames excluded); toolkit: the LaSOT evaluation toolkit's semantics, which made the "
                            "paper's tables (NPR at 0.20, absent frames as failures, results repaired; NPR_AUC too); "
                            "both: both tables, one JSON holding both, the toolkit's report in "
                            "<output>/toolkit_protocol/")
    group.add_argument('--bootstrap-resamples', type=_resamples, default=DEFAULT_RESAMPLES, metavar='N',
                       help='resamples of the confidence intervals, 1 to {} (default %(default)s)'.format(
                           MAX_RESAMPLES))
    group.add_argument('--bootstrap-seed', type=int, default=DEFAULT_SEED, metavar='SEED',
                       help='seed of the bootstrap (default %(default)s)')

    group = parser.add_argument_group('dataset')
    group.add_argument('--dataset', default='latot_test',
                       help="pytracking dataset name: latot_test (default), latot, latot_train, or any other")
    group.add_argument('--latot-path', metavar='FOLDER',
                       help="LaTOT root instead of settings.latot_path in pytracking's local.py")
    group.add_argument('--allow-missing-sequences', action='store_true',
                       help='evaluate the LaTOT sequences present on disk instead of stopping at missing ones')
    group.add_argument('--skip-missing', action='store_true',
                       help='evaluate only the sequences every tracker has results for (otherwise: an error that '
                            'lists the missing result files)')

    group = parser.add_argument_group('output')
    group.add_argument('--report-name', help='folder under result_plot_path (default: latot_protocol_<dataset>)')
    group.add_argument('--output-dir', metavar='FOLDER', help='write here instead of result_plot_path/<report name>')
    group.add_argument('--json', metavar='FILE', help='write every score (overall, per attribute, per sequence) here')
    group.add_argument('--title', help='title of the Markdown report')
    group.add_argument('--no-plots', action='store_true', help='no plots (the report then has none either)')
    group.add_argument('--no-report', action='store_true', help='print (and --json) only; write no report files')
    group.add_argument('--per-sequence', action='store_true', help='also print the SR of every sequence')
    group.add_argument('--force', action='store_true', help='ignore the cache and recompute every score')
    return parser


def _sources(specs: List[dict]) -> List[ResultSource]:
    sources: List[ResultSource] = []
    for spec in specs:
        if spec['kind'] == 'pytracking':
            sources += pytracking_sources(spec['name'], spec['parameter'], spec['run_ids'], spec['label'])
        elif spec['kind'] == 'folder':
            sources.append(folder_source(spec['directory'], spec['label']))
        else:
            sources += folder_sources_under(spec['directory'])
    return sources


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


TOOLKIT_REPORT_FOLDER = 'toolkit_protocol'


def _write_outputs(args: argparse.Namespace, evaluations: List[Evaluation], output_dir: str, cache: CurveCache,
                   summaries: List[str]) -> int:
    """Writes the JSON, the report and the cache (after the scores were printed); 1 if a requested file failed.

    With both protocols the JSON holds both, and the toolkit protocol's report goes into ``toolkit_protocol/``."""
    written, failures = [], []
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        try:
            if _inside(folder, output_dir):
                os.makedirs(folder, exist_ok=True)
            written.append(write_json(evaluations if len(evaluations) > 1 else evaluations[0], args.json))
        except OSError as error:
            failures.append('cannot write {} into {}: {}'.format(os.path.basename(args.json), folder, _reason(error)))
    report_failed = False
    if not args.no_report:
        for index, (evaluation, summary) in enumerate(zip(evaluations, summaries)):
            folder = output_dir if index == 0 else os.path.join(output_dir, TOOLKIT_REPORT_FOLDER)
            try:
                os.makedirs(folder, exist_ok=True)
                written += write_report(evaluation, folder, plots=not args.no_plots, title=args.title,
                                        summary=summary)
            except OSError as error:
                report_failed = True
                failures.append('cannot write the report into {}: {}'.format(folder, _reason(error)))
                break
    if not report_failed:       # a failed report has already named the folder
        save_cache(cache)
    if written:
        print('\nWrote:\n' + '\n'.join('  ' + path for path in written))
    for failure in failures:
        print('error: {} (the scores above are complete)'.format(failure), file=sys.stderr)
    return 1 if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command; returns its exit status (0; 1 when an output could not be written; 2 for bad input)."""
    tolerate_undecodable_output()          # paths that are not UTF-8 print as their bytes
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.title is not None:
        args.title = displayable(args.title)
    if not args.sources:
        parser.error('give at least one --tracker, --results or --results-root')
    dataset_kwargs = {}
    if args.latot_path is not None or args.allow_missing_sequences:
        if not args.dataset.lower().startswith('latot'):
            parser.error('--latot-path and --allow-missing-sequences apply to the LaTOT datasets only')
        if args.latot_path is not None:
            dataset_kwargs['root'] = args.latot_path
        if args.allow_missing_sequences:
            dataset_kwargs['allow_missing'] = True
    report_name = args.report_name or default_report_name(args.dataset)
    try:
        output_dir = args.output_dir or default_output_dir(report_name)
        if args.json:
            folder = os.path.dirname(os.path.abspath(args.json))
            if not os.path.isdir(folder) and not _inside(folder, output_dir):
                parser.error('argument --json: the folder {} does not exist; create it first (only folders inside '
                             'the output folder {} are created)'.format(folder, output_dir))
        cache = CurveCache.load(cache_path(output_dir))
        protocols = [p.value for p in Protocol] if args.protocol == 'both' else [args.protocol]
        sources = _sources(args.sources)
        evaluations = [evaluate(sources, args.dataset, report_name=report_name, output_dir=output_dir,
                                skip_missing=args.skip_missing, merge_runs=args.merge_runs,
                                force_evaluation=args.force, cache=cache, protocol=protocol,
                                bootstrap_resamples=args.bootstrap_resamples, bootstrap_seed=args.bootstrap_seed,
                                verbose=index == 0 or protocol != 'paper', **dataset_kwargs)
                       for index, protocol in enumerate(protocols)]
    except (ResultsError, latot_data.LaTOTFormatError, latot_attributes.AttributeFormatError, ValueError) as error:
        print('error: {}'.format(error), file=sys.stderr)
        return 2
    summaries = []
    for index, evaluation in enumerate(evaluations):
        if index:
            print()
        summaries.append(print_summary(evaluation, per_sequence=args.per_sequence))
    return _write_outputs(args, evaluations, output_dir, cache, summaries)


if __name__ == '__main__':
    sys.exit(main())
