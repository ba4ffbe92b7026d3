"""Tables (printed and Markdown), the per-sequence CSV, the JSON and the Markdown report of an evaluation."""
import csv
import io
import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from pytracking_plugins.analysis import metrics
from pytracking_plugins.analysis.evaluation import Evaluation
from pytracking_plugins.analysis.plots import dataset_title
from pytracking_plugins.analysis.protocol import Protocol
from ltr_plugins.common.atomic_files import write_text
from pytracking_plugins.analysis.text_table import format_table

REPORT_FILE = 'report.md'
PER_SEQUENCE_FILE = 'per_sequence.csv'
SUMMARY_FILE = 'summary.txt'


def _score(value: float) -> str:
    return '—' if value is None or np.isnan(value) else '{:.3f}'.format(value)


def _count(number: int, noun: str) -> str:
    return '{} {}{}'.format(number, noun, '' if number == 1 else 's')


def _interval(value: float, interval) -> str:
    """``0.413 ± 0.021``: the score and half the width of its 95 % interval."""
    if value is None or np.isnan(value) or interval is None or np.isnan(interval[0]):
        return _score(value)
    return '{:.3f} ± {:.3f}'.format(value, (interval[1] - interval[0]) / 2.0)


def headline(evaluation: Evaluation) -> str:
    skipped = sum(len(v) for v in evaluation.skipped_sequences.values())
    if evaluation.protocol is Protocol.TOOLKIT:
        counts = evaluation.frame_counts
        text = '{} on {}: {}, {:,} frames ({:,} flagged absent, {:,} with ground truth not all-positive), {}'.format(
            evaluation.protocol.title, dataset_title(evaluation.dataset_name),
            _count(len(evaluation.sequences), 'sequence'), int(evaluation.num_frames.sum()),
            counts.get('absent_flagged', 0), counts.get('ground_truth_not_all_positive', 0),
            _count(len(evaluation.labels), 'tracker'))
    else:
        text = 'LaTOT protocol (paper) on {}: {}, {:,} frames ({:,} with valid ground truth), {}'.format(
            dataset_title(evaluation.dataset_name), _count(len(evaluation.sequences), 'sequence'),
            int(evaluation.num_frames.sum()), int(evaluation.num_valid.sum()),
            _count(len(evaluation.labels), 'tracker'))
    unscored = len(evaluation.sequences) - evaluation.scored_sequences()
    if unscored:
        text += '; {} sequence(s) without a valid frame left out'.format(unscored)
    if skipped:
        text += '; sequences skipped for missing results: {}'.format(
            len({n for v in evaluation.skipped_sequences.values() for n in v}))
    return text


def overall_table(evaluation: Evaluation) -> str:
    """The ranked table (by SR) as printed: rank, tracker, then each score ± half its 95 % interval."""
    scores = evaluation.scores()
    intervals = evaluation.intervals()
    rows = [[str(rank), label] + [_interval(scores[label][m], intervals[label][m]) for m in evaluation.metrics]
            for rank, label in enumerate(evaluation.ranking('SR'), start=1)]
    return format_table(['#', 'Tracker'] + list(evaluation.metrics), rows, left_columns=2)


def comparison_rows(evaluation: Evaluation, metric: str = 'SR') -> List[List[str]]:
    """Each tracker against the next in the ``metric`` ranking: difference, its interval, sequences won."""
    return [['{} vs {}'.format(c.a, c.b), '{:+.3f}'.format(c.difference),
             '[{:+.3f}, {:+.3f}]'.format(*c.interval), '{} / {} / {}'.format(c.wins_a, c.wins_b, c.ties)]
            for c in evaluation.paired_comparisons(metric, adjacent=True)]


COMPARISON_HEADER = ['Pair', 'Difference', '95% interval', 'Wins / losses / ties']


def comparison_table(evaluation: Evaluation, metric: str = 'SR') -> str:
    return format_table(COMPARISON_HEADER, comparison_rows(evaluation, metric), left_columns=1)


def interval_note(evaluation: Evaluation) -> str:
    return ('± half the width of the 95 % bootstrap interval over sequences ({:,} resamples, seed {}); the bounds '
            'and every pair of trackers are in the JSON.'.format(evaluation.bootstrap_resamples,
                                                                  evaluation.bootstrap_seed))


def dropped_lines(evaluation: Evaluation) -> List[str]:
    """Toolkit protocol: per tracker, the sequences left out of a mean because that curve is 0 everywhere."""
    names = {'precision': 'PR', 'norm_precision': 'NPR', 'success': 'SR'}
    lines = []
    for label, dropped in evaluation.dropped_sequences().items():
        if any(dropped.values()):
            lines.append('{}: sequences left out of the mean (curve 0 at every threshold, as the toolkit does): '
                         '{}'.format(label, ', '.join('{} {}'.format(names[k], v) for k, v in dropped.items())))
    return lines


def repair_lines(evaluation: Evaluation) -> List[str]:
    from pytracking_plugins.analysis.scoring import repair_warning
    return [line for line in (repair_warning(label, summary) for label, summary in evaluation.repairs.items())
            if line]


def attribute_table(evaluation: Evaluation, metric: str = 'SR') -> str:
    """Table V: one row per tracker (ranked by overall ``metric``), one column per attribute; n/a = unavailable."""
    per_attribute = evaluation.attribute_scores()
    counts = evaluation.attribute_counts()
    attributes = list(evaluation.attributes)
    rows = [['', '(sequences)'] + [str(counts[a]) if evaluation.attributes[a].available else 'n/a'
                                   for a in attributes]]
    for rank, label in enumerate(evaluation.ranking(metric), start=1):
        rows.append([str(rank), label] + [_score(per_attribute[a][label][metric]) if a in per_attribute else
                                          ('n/a' if not evaluation.attributes[a].available else '—')
                                          for a in attributes])
    return format_table(['#', 'Tracker'] + attributes, rows, left_columns=2)


def sequence_table(evaluation: Evaluation, metric: str = 'SR') -> str:
    ranking = evaluation.ranking(metric)
    values = {label: getattr(evaluation.sequence_scores(label), metric) for label in ranking}
    rows = [[name, str(int(evaluation.num_frames[i]))] + [_score(values[label][i]) for label in ranking]
            for i, name in enumerate(evaluation.sequences)]
    return format_table(['Sequence', 'Frames'] + ranking, rows)


def unavailable_note(evaluation: Evaluation) -> Optional[str]:
    missing = [a for a, info in evaluation.attributes.items() if not info.available]
    if not missing:
        return None
    reasons = {evaluation.attributes[a].reason for a in missing}
    return 'Unavailable attributes: {} ({}).'.format(' '.join(missing), '; '.join(sorted(r for r in reasons if r)))


def print_summary(evaluation: Evaluation, attributes: bool = True, per_sequence: bool = False) -> str:
    """The text printed by the command: headline, ranked table, Table V (and per-sequence SR); also returned."""
    parts = [headline(evaluation), '', overall_table(evaluation), interval_note(evaluation)]
    if len(evaluation.labels) > 1:
        parts += ['', 'Paired comparisons of neighbours in the SR ranking (same bootstrap resamples):',
                  comparison_table(evaluation)]
    parts += dropped_lines(evaluation)     # the repairs were printed on stderr by evaluate(), and are in the report
    if attributes and evaluation.attributes:
        parts += ['', 'Success rate (SR) per attribute (Table V):', attribute_table(evaluation)]
        note = unavailable_note(evaluation)
        if note:
            parts.append(note)
    if per_sequence:
        parts += ['', 'Success rate (SR) per sequence:', sequence_table(evaluation)]
    text = '\n'.join(parts)
    print(text)
    return text


# Markdown ---------------------------------------------------------------------------------------------------------

def _md_table(header: List[str], rows: List[List[str]], align: Optional[List[str]] = None) -> str:
    align = align or ['---'] * len(header)

    def cells(values) -> str:
        return '| ' + ' | '.join(str(v).replace('|', '\\|') for v in values) + ' |'

    return '\n'.join([cells(header), '|' + '|'.join(align) + '|'] + [cells(row) for row in rows])


def _highlight(values: Dict[str, float]) -> Dict[str, str]:
    """Best in bold, second in italics (the paper's red and green)."""
    ordered = sorted((v for v in values.values() if not np.isnan(v)), reverse=True)
    best = ordered[0] if ordered else None
    second = next((v for v in ordered if v < best), None) if ordered else None
    marked = {}
    for label, value in values.items():
        text = _score(value)
        marked[label] = '**{}**'.format(text) if value == best else ('*{}*'.format(text) if value == second else text)
    return marked


def _plot_lines(png: str, pdf: str, caption: str, relative: Callable[[str], str]) -> List[str]:
    return ['![{}]({})'.format(caption, relative(png)), '', '*{}* — [PDF]({})'.format(caption, relative(pdf)), '']


def _overall_section(evaluation: Evaluation, ranking: List[str]) -> List[str]:
    """The ranked table with intervals, the paired comparisons and the repairs."""
    scores = evaluation.scores()
    metric_names = list(evaluation.metrics)
    if evaluation.protocol is Protocol.TOOLKIT:
        meaning = ('PR: precision at 5 px; NPR: normalised precision at 0.20; SR: area under the success curve; '
                   'NPR_AUC: area under the normalised precision curve (0 to 0.5)')
    else:
        meaning = ('PR: precision at 5 px; NPR: area under the normalised precision curve (0 to 0.5); SR: area under '
                   'the success curve')
    lines = ['## Overall', '', 'Protocol: **{}**. Ranked by SR. {}. Best in bold, second in italics; {}'.format(
        evaluation.protocol.value, meaning, interval_note(evaluation)), '']
    marked = {m: _highlight({label: scores[label][m] for label in ranking}) for m in metric_names}
    intervals = evaluation.intervals()
    lines += [_md_table(['#', 'Tracker'] + metric_names + ['{} 95% interval'.format(m) for m in metric_names],
                        [[str(i), label] + [marked[m][label] for m in metric_names] +
                         ['—' if np.isnan(intervals[label][m][0]) else '{:.3f}–{:.3f}'.format(*intervals[label][m])
                          for m in metric_names]
                         for i, label in enumerate(ranking, start=1)],
                        ['--:', '---'] + ['--:'] * (2 * len(metric_names))), '']
    if len(ranking) > 1:
        lines += ['### Paired comparisons', '', 'Each tracker against the next in the ranking of each score, on the '
                  'same sequences and the same bootstrap resamples: the difference of the scores, its 95 % '
                  'interval (excluding 0: the order is not an accident of the sequences drawn), and the sequences '
                  'each wins.', '']
        for metric in metric_names:
            lines += ['**{}**'.format(metric), '', _md_table(COMPARISON_HEADER, comparison_rows(evaluation, metric),
                                                              ['---', '--:', '--:', '--:']), '']
    repaired = repair_lines(evaluation) + dropped_lines(evaluation)
    if repaired:
        lines += ['### Repaired results and left-out sequences', ''] + ['- ' + line for line in repaired] + ['']
    return lines


def _curve_plot_section(plot_paths: Dict[str, List[str]], relative: Callable[[str], str]) -> List[str]:
    lines = ['## Plots', '']
    captions = {'precision': 'Precision plot (legend: PR at 5 px)',
                'norm_precision': 'Normalized precision plot (legend: NPR)',
                'success': 'Success plot (legend: SR)'}
    for kind, caption in captions.items():
        if kind in plot_paths:
            png, pdf = plot_paths[kind]
            lines += _plot_lines(png, pdf, caption, relative)
    return lines


def _attribute_section(evaluation: Evaluation, ranking: List[str], plot_paths: Dict[str, List[str]],
                       relative: Callable[[str], str]) -> List[str]:
    """SR per attribute (the paper's Table V) with the sequence counts; nothing without attributes."""
    if not evaluation.attributes:
        return []
    per_attribute = evaluation.attribute_scores()
    counts = evaluation.attribute_counts()
    attributes = list(evaluation.attributes)
    lines = ['## Attributes', '', 'SR per challenge attribute (the paper\'s Table V); the second header row gives '
             'the number of sequences; n/a: attribute unavailable for this dataset; —: no sequence has it.', '']
    columns = {a: _highlight({label: per_attribute[a][label]['SR'] for label in ranking})
               for a in attributes if a in per_attribute}
    rows = [['', '*sequences*'] + [str(counts[a]) if evaluation.attributes[a].available else 'n/a'
                                   for a in attributes]]
    for i, label in enumerate(ranking, start=1):
        rows.append([str(i), label] + [columns[a][label] if a in columns else
                                       ('n/a' if not evaluation.attributes[a].available else '—')
                                       for a in attributes])
    lines += [_md_table(['#', 'Tracker'] + attributes, rows, ['--:', '---'] + ['--:'] * len(attributes)), '']
    lines += ['Attributes: ' + '; '.join('{} {}'.format(a, evaluation.attributes[a].long) for a in attributes)
              + '.', '']
    note = unavailable_note(evaluation)
    if note:
        lines += [note, '']
    if 'attributes' in plot_paths:
        png, pdf = plot_paths['attributes']
        lines += _plot_lines(png, pdf, 'SR per attribute', relative)
    return lines


def _sequence_section(evaluation: Evaluation, ranking: List[str]) -> List[str]:
    """SR of every sequence (folded), and the sequences left out."""
    lines = ['## Per sequence', '', 'SR of every sequence; PR, NPR and SR of every sequence and tracker are in '
             '[{0}]({0}).'.format(PER_SEQUENCE_FILE), '', '<details><summary>{} sequences</summary>'.format(
                 len(evaluation.sequences)), '']
    sr = {label: evaluation.sequence_scores(label).SR for label in ranking}
    rows = [[name, str(int(evaluation.num_frames[i])), ' '.join(evaluation.sequence_attributes(name))] +
            [_score(sr[label][i]) for label in ranking] for i, name in enumerate(evaluation.sequences)]
    lines += [_md_table(['Sequence', 'Frames', 'Attributes'] + ranking, rows,
                        ['---', '--:', '---'] + ['--:'] * len(ranking)), '', '</details>', '']
    if evaluation.skipped_sequences:
        lines += ['## Skipped sequences', '', 'Left out because some tracker has no results for them:', '']
        lines += ['- {}: {}'.format(label, ', '.join(names)) for label, names in
                  evaluation.skipped_sequences.items()] + ['']
    return lines


def _tracker_section(evaluation: Evaluation) -> List[str]:
    rows = []
    for info in evaluation.trackers:
        folders = info['results_dir'] if isinstance(info['results_dir'], list) else [info['results_dir']]
        what = info['kind'] if info['kind'] != 'pytracking' else 'pytracking {} {}{}'.format(
            info['name'], info['parameter'], '' if info.get('run_id') is None else ' run {}'.format(info['run_id']))
        rows.append([info['label'], what, '<br>'.join('`{}`'.format(f) for f in folders)])
    return ['## Trackers', '', _md_table(['Tracker', 'Source', 'Results'], rows), '']


def markdown_report(evaluation: Evaluation, plot_paths: Dict[str, List[str]], output_dir: str,
                    title: Optional[str] = None) -> str:
    def relative(path: str) -> str:
        return os.path.relpath(path, output_dir).replace(os.sep, '/')

    ranking = evaluation.ranking('SR')
    lines = ['# {}'.format(title or 'LaTOT evaluation on {}'.format(dataset_title(evaluation.dataset_name))), '',
             headline(evaluation) + '.', '']
    lines += _overall_section(evaluation, ranking)
    lines += _curve_plot_section(plot_paths, relative)
    lines += _attribute_section(evaluation, ranking, plot_paths, relative)
    lines += _sequence_section(evaluation, ranking)
    lines += _tracker_section(evaluation)
    lines += ['## Protocol', ''] + ['- ' + line for line in protocol_lines(evaluation.protocol)] + ['']
    return '\n'.join(lines)


def protocol_lines(protocol: Protocol) -> List[str]:
    """The protocol's rules, one line each, for the report."""
    if protocol is Protocol.TOOLKIT:
        return ['The LaSOT evaluation toolkit\'s semantics (from which the paper\'s MATLAB toolkit derives) with '
                'LaTOT\'s thresholds.',
                'PR: share of frames whose centre error is at most {:g} px; NPR: share whose normalised centre error '
                'is at most {:g} (rank index {}); NPR_AUC: mean of that curve over 0, 0.01, …, 0.50; SR: mean over '
                't = 0, 0.05, …, 1 of the share of frames whose IoU is greater than t.'.format(
                    metrics.PR_THRESHOLD, metrics.TOOLKIT_NPR_THRESHOLD, metrics.TOOLKIT_NPR_INDEX + 1),
                'The denominator is every annotation row; frames flagged absent count in it only (failures).',
                'Ground truth not all-positive (x, y, w, h > 0): a success for PR and NPR, a failure for SR.',
                'Frames 2…N: a prediction with NaN or width/height ≤ 0 takes the previous frame\'s prediction, '
                'before the first frame is replaced by the ground truth; longer result files are cut (counted '
                'above).',
                'Per tracker and curve, sequences whose curve is 0 at every threshold are left out of the mean.']
    return ['PR: share of frames whose centre error is at most {:g} px (edge inclusive).'.format(metrics.PR_THRESHOLD),
            'NPR: mean over t = 0, 0.01, …, 0.50 of the share of frames whose normalised centre error is at most t; '
            'the centre difference is divided per axis by the ground truth\'s width and height (pytracking\'s '
            '`calc_err_center(normalized=True)`).',
            'SR: mean over t = 0, 0.05, …, 1 of the share of frames whose IoU is greater than t.',
            'Scores are computed per sequence, then averaged over sequences.',
            'Frames whose ground truth is invalid (any of x, y, w, h not > 0, or target not visible or flagged '
            'absent — pytracking\'s robust rule) are excluded from every score.',
            'The first frame counts, with the prediction replaced by the ground truth, as in pytracking.',
            'A prediction with zero width or height takes the previous frame\'s prediction, as in pytracking.']


# Files ------------------------------------------------------------------------------------------------------------

def per_sequence_csv(evaluation: Evaluation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['sequence', 'category', 'frames', 'valid_frames', 'attributes'] +
                    ['{} {}'.format(label, m) for label in evaluation.labels for m in evaluation.metrics])
    scores = {label: evaluation.sequence_scores(label) for label in evaluation.labels}
    for i, name in enumerate(evaluation.sequences):
        row = [name, evaluation.categories[i] or '', int(evaluation.num_frames[i]), int(evaluation.num_valid[i]),
               ' '.join(evaluation.sequence_attributes(name))]
        for label in evaluation.labels:
            row += ['' if np.isnan(v) else '{:.6f}'.format(v)
                    for v in (getattr(scores[label], m)[i] for m in evaluation.metrics)]
        writer.writerow(row)
    return buffer.getvalue()


def write_json(evaluation: Union[Evaluation, Sequence[Evaluation]], path: str) -> str:
    """Every score as JSON at ``path`` (its folder must exist), written atomically; returns the path.

    Several evaluations (one per protocol) are written as ``{"protocols": {"paper": ..., "toolkit": ...}}``."""
    if isinstance(evaluation, Evaluation):
        exported = evaluation.to_dict()
    else:
        names = [e.protocol.value for e in evaluation]
        if len(set(names)) != len(names):
            raise ValueError('write_json: one evaluation per protocol, got {}'.format(', '.join(names)))
        exported = {'protocols': {e.protocol.value: e.to_dict() for e in evaluation}}
    return write_text(path, json.dumps(exported, indent=1, allow_nan=False) + '\n')


def write_report(evaluation: Evaluation, output_dir: str, plots: bool = True, title: Optional[str] = None,
                 summary: Optional[str] = None) -> List[str]:
    """Plots, ``per_sequence.csv``, ``summary.txt`` and ``report.md`` in ``output_dir``; returns the paths."""
    from pytracking_plugins.analysis.plots import plot_all
    os.makedirs(output_dir, exist_ok=True)
    plot_paths = plot_all(evaluation, output_dir) if plots else {}
    written = [path for paths in plot_paths.values() for path in paths]
    written.append(write_text(os.path.join(output_dir, PER_SEQUENCE_FILE), per_sequence_csv(evaluation)))
    if summary is not None:
        written.append(write_text(os.path.join(output_dir, SUMMARY_FILE), summary + '\n'))
    written.append(write_text(os.path.join(output_dir, REPORT_FILE),
                                    markdown_report(evaluation, plot_paths, output_dir, title)))
    return written
