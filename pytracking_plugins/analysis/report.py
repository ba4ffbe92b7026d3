"""Tables (printed and Markdown), the per-sequence CSV, the JSON and the Markdown report of an evaluation."""
import csv
import io
import json
import os
from typing import Dict, List, Optional

import numpy as np

from pytracking_plugins.analysis import metrics
from pytracking_plugins.analysis.evaluation import Evaluation
from pytracking_plugins.analysis.plots import dataset_title
from pytracking_plugins.analysis.protocol import METRICS
from pytracking_plugins.common.atomic_files import write_text
from pytracking_plugins.common.text_table import format_table

REPORT_FILE = 'report.md'
PER_SEQUENCE_FILE = 'per_sequence.csv'
SUMMARY_FILE = 'summary.txt'


def _score(value: float) -> str:
    return '—' if value is None or np.isnan(value) else '{:.3f}'.format(value)


def _count(number: int, noun: str) -> str:
    return '{} {}{}'.format(number, noun, '' if number == 1 else 's')


def headline(evaluation: Evaluation) -> str:
    skipped = sum(len(v) for v in evaluation.skipped_sequences.values())
    text = 'LaTOT protocol on {}: {}, {:,} frames ({:,} with valid ground truth), {}'.format(
        dataset_title(evaluation.dataset_name), _count(len(evaluation.sequences), 'sequence'),
        int(evaluation.num_frames.sum()), int(evaluation.num_valid.sum()), _count(len(evaluation.labels), 'tracker'))
    unscored = len(evaluation.sequences) - evaluation.scored_sequences()
    if unscored:
        text += '; {} sequence(s) without a valid frame left out'.format(unscored)
    if skipped:
        text += '; sequences skipped for missing results: {}'.format(
            len({n for v in evaluation.skipped_sequences.values() for n in v}))
    return text


def overall_table(evaluation: Evaluation) -> str:
    """The ranked table (by SR) as printed: rank, tracker, PR, NPR, SR."""
    scores = evaluation.scores()
    rows = [[str(rank), label] + [_score(scores[label][m]) for m in METRICS]
            for rank, label in enumerate(evaluation.ranking('SR'), start=1)]
    return format_table(['#', 'Tracker', 'PR', 'NPR', 'SR'], rows, left_columns=2)


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
    parts = [headline(evaluation), '', overall_table(evaluation)]
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


def markdown_report(evaluation: Evaluation, plot_paths: Dict[str, List[str]], output_dir: str,
                    title: Optional[str] = None) -> str:
    def relative(path: str) -> str:
        return os.path.relpath(path, output_dir).replace(os.sep, '/')

    scores = evaluation.scores()
    ranking = evaluation.ranking('SR')
    lines = ['# {}'.format(title or 'LaTOT evaluation on {}'.format(dataset_title(evaluation.dataset_name))), '',
             headline(evaluation) + '.', '']

    lines += ['## Overall', '', 'Ranked by SR. PR: precision at 5 px; NPR: area under the normalised precision curve '
              '(0 to 0.5); SR: area under the success curve. Best in bold, second in italics.', '']
    marked = {m: _highlight({label: scores[label][m] for label in ranking}) for m in METRICS}
    lines += [_md_table(['#', 'Tracker', 'PR', 'NPR', 'SR'],
                        [[str(i), label] + [marked[m][label] for m in METRICS]
                         for i, label in enumerate(ranking, start=1)],
                        ['--:', '---', '--:', '--:', '--:']), '']

    lines += ['## Plots', '']
    captions = {'precision': 'Precision plot (legend: PR at 5 px)',
                'norm_precision': 'Normalized precision plot (legend: NPR)',
                'success': 'Success plot (legend: SR)'}
    for kind, caption in captions.items():
        if kind in plot_paths:
            png, pdf = plot_paths[kind]
            lines += ['![{}]({})'.format(caption, relative(png)), '',
                      '*{}* — [PDF]({})'.format(caption, relative(pdf)), '']

    if evaluation.attributes:
        per_attribute = evaluation.attribute_scores()
        counts = evaluation.attribute_counts()
        attributes = list(evaluation.attributes)
        lines += ['## Attributes', '', 'SR per challenge attribute (the paper\'s Table V); the second header row gives '
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
            lines += ['![SR per attribute]({})'.format(relative(png)), '',
                      '*SR per attribute* — [PDF]({})'.format(relative(pdf)), '']

    lines += ['## Per sequence', '', 'SR of every sequence; PR, NPR and SR of every sequence and tracker are in '
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

    lines += ['## Trackers', '']
    rows = []
    for info in evaluation.trackers:
        folders = info['results_dir'] if isinstance(info['results_dir'], list) else [info['results_dir']]
        what = info['kind'] if info['kind'] != 'pytracking' else 'pytracking {} {}{}'.format(
            info['name'], info['parameter'], '' if info.get('run_id') is None else ' run {}'.format(info['run_id']))
        rows.append([info['label'], what, '<br>'.join('`{}`'.format(f) for f in folders)])
    lines += [_md_table(['Tracker', 'Source', 'Results'], rows), '']

    lines += ['## Protocol', '',
              '- PR: share of frames whose centre error is at most {:g} px (edge inclusive).'.format(
                  metrics.PR_THRESHOLD),
              '- NPR: mean over t = 0, 0.01, …, 0.50 of the share of frames whose normalised centre error is at '
              'most t; the centre difference is divided per axis by the ground truth\'s width and height '
              '(pytracking\'s `calc_err_center(normalized=True)`).',
              '- SR: mean over t = 0, 0.05, …, 1 of the share of frames whose IoU is greater than t.',
              '- Scores are computed per sequence, then averaged over sequences.',
              '- Frames whose ground truth is invalid (any of x, y, w, h not > 0, or target not visible — '
              'pytracking\'s robust rule) are excluded from every score.',
              '- The first frame counts, with the prediction replaced by the ground truth, as in pytracking.',
              '- A prediction with zero width or height takes the previous frame\'s prediction, as in pytracking.',
              '']
    return '\n'.join(lines)


# Files ------------------------------------------------------------------------------------------------------------

def per_sequence_csv(evaluation: Evaluation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['sequence', 'category', 'frames', 'valid_frames', 'attributes'] +
                    ['{} {}'.format(label, m) for label in evaluation.labels for m in METRICS])
    scores = {label: evaluation.sequence_scores(label) for label in evaluation.labels}
    for i, name in enumerate(evaluation.sequences):
        row = [name, evaluation.categories[i] or '', int(evaluation.num_frames[i]), int(evaluation.num_valid[i]),
               ' '.join(evaluation.sequence_attributes(name))]
        for label in evaluation.labels:
            row += ['' if np.isnan(v) else '{:.6f}'.format(v)
                    for v in (getattr(scores[label], m)[i] for m in METRICS)]
        writer.writerow(row)
    return buffer.getvalue()


def write_json(evaluation: Evaluation, path: str) -> str:
    """Every score as JSON at ``path`` (its folder must exist), written atomically; returns the path."""
    return write_text(path, json.dumps(evaluation.to_dict(), indent=1, allow_nan=False) + '\n')


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
