"""The experiment's report: the LaTOT protocol's tables and plots, each variant against the baseline over seeds and
sequences, the spread from seed to seed, and how training went (the teacher's curves, the distillation terms).
"""
import json
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from ltr_plugins.common.atomic_files import write_text
from pytracking_plugins.analysis.uncertainty import SeedPairedComparison, compare_over_seeds
from pytracking_plugins.demo import curves
from pytracking_plugins.demo.experiment import LABELS, Experiment, label
from pytracking_plugins.demo.presets import PROJECT_ROOT, default_folder

METRICS = ('PR', 'NPR', 'SR')
CURVES_DIR = 'training'


def seed_scores(evaluation, experiment: Experiment, variant: str, metric: str) -> np.ndarray:
    """``[seeds, sequences]`` per-sequence scores of ``variant`` (one row per seed)."""
    return np.stack([getattr(evaluation.sequence_scores(label(variant, seed)), metric) for seed in experiment.seeds])


def comparisons(evaluation, experiment: Experiment) -> Dict[str, Dict[str, SeedPairedComparison]]:
    """Every variant against the baseline, per metric, paired by seed and sequence (:func:`compare_over_seeds`)."""
    resamples, seed = evaluation.bootstrap_resamples, evaluation.bootstrap_seed
    return {variant: {metric: compare_over_seeds(LABELS[variant], LABELS['baseline'],
                                                 seed_scores(evaluation, experiment, variant, metric),
                                                 seed_scores(evaluation, experiment, 'baseline', metric),
                                                 resamples, seed)
                      for metric in METRICS}
            for variant in experiment.variants if variant != 'baseline'}


def seed_means(evaluation, experiment: Experiment, metric: str = 'SR') -> Dict[str, List[float]]:
    """Each variant's score of each seed (mean over the test sequences)."""
    return {variant: [float(np.nanmean(row)) for row in seed_scores(evaluation, experiment, variant, metric)]
            for variant in experiment.variants}


# The project's own ablation run, for a demo with one seed per variant: what it measured, how and when.
RECORDED_SPREAD = os.path.join(PROJECT_ROOT, 'settings', 'demo', 'seed_spread.json')
SEED_SUFFIX = re.compile(r'^(.*)_(\d{3})$')


def spread_from_scores(path: str) -> Tuple[float, str, List[float]]:
    """From an ablation's ``scores_per_seed.json``: the widest seed-to-seed range of a variant's mean SR over the test
    sequences, that variant's label and its per-seed means."""
    with open(path) as handle:
        per_sequence = json.load(handle)['per_sequence']
    means: Dict[str, Dict[str, float]] = {}
    for row in next(iter(per_sequence.values()))['scores']:
        match = SEED_SUFFIX.match(row)
        if match:
            means.setdefault(match.group(1), {})[match.group(2)] = float(np.nanmean(
                [scores['scores'][row]['SR'] for scores in per_sequence.values()]))
    ranges = {variant: max(v.values()) - min(v.values()) for variant, v in means.items() if len(v) > 1}
    if not ranges:
        raise ValueError('{} holds no variant with two seeds or more'.format(path))
    widest = max(ranges, key=ranges.get)
    return ranges[widest], widest, [means[widest][seed] for seed in sorted(means[widest])]


def spread_line(evaluation, experiment: Experiment,
                ablation_folder: Optional[str] = default_folder('ablation')) -> str:
    """One line: how much a variant's SR moves from seed to seed. With one seed per variant, from a finished
    ``mkdnet-ablation`` in ``ablation_folder``, else from the project's recorded ablation run (settings/demo)."""
    def line(spread: float, variant: str, values: List[float], where: str) -> str:
        return ('Run-to-run spread: {}, a variant\'s SR moved by up to {:.3f} from seed to seed ({}: {}); a difference '
                'smaller than that between two single runs says nothing.'.format(
                    where, spread, variant, ', '.join('{:.3f}'.format(v) for v in values)))

    if len(experiment.seeds) >= 2:
        means = seed_means(evaluation, experiment)
        ranges = {variant: max(v) - min(v) for variant, v in means.items()}
        widest = max(ranges, key=ranges.get)
        return line(ranges[widest], LABELS[widest], means[widest], 'over this run\'s {} seeds'.format(
            len(experiment.seeds)))
    scores = os.path.join(ablation_folder or '', 'report', 'scores_per_seed.json')
    if ablation_folder and os.path.isfile(scores):
        spread, variant, values = spread_from_scores(scores)
        return line(spread, variant, values, 'one seed here; in your mkdnet-ablation ({}, {} seeds)'.format(
            ablation_folder, len(values)))
    with open(RECORDED_SPREAD) as handle:
        recorded = json.load(handle)
    return line(recorded['spread'], recorded['variant'], recorded['seed_means'],
                'one seed here; in the project\'s mkdnet-ablation run ({}, {}; {} seeds)'.format(
                    recorded['date'], recorded['machine'], len(recorded['seed_means'])))


def _signed(value: float) -> str:
    return '{:+.3f}'.format(value)


def comparison_table(evaluation, experiment: Experiment) -> str:
    """Markdown: each variant minus the baseline, pooled over seeds, with its 95 % interval and per-seed values."""
    rows = ['| Variant minus baseline | ΔPR [95 % interval] | ΔNPR [95 % interval] | ΔSR [95 % interval] | ΔSR per '
            'seed | sequences won / lost (SR) |', '| --- | --- | --- | --- | --- | --- |']
    for variant, by_metric in comparisons(evaluation, experiment).items():
        cells = ['{} [{}, {}]'.format(_signed(c.difference), _signed(c.interval[0]), _signed(c.interval[1]))
                 for c in (by_metric[m] for m in METRICS)]
        sr = by_metric['SR']
        rows.append('| {} | {} | {} | {} / {} |'.format(LABELS[variant], ' | '.join(cells),
                                                        ', '.join(_signed(v) for v in sr.per_seed), sr.wins_a,
                                                        sr.wins_b))
    return '\n'.join(rows)


def conclusion(evaluation, experiment: Experiment) -> str:
    """One sentence on MKDNet against the baseline, from the interval of the SR difference."""
    found = comparisons(evaluation, experiment)
    if 'mkdnet' not in found:
        return ''
    sr = found['mkdnet']['SR']
    low, high = sr.interval
    if low > 0:
        verdict = 'MKDNet beats the baseline: the 95 % interval of the SR difference lies above 0'
    elif high < 0:
        verdict = 'MKDNet scores below the baseline: the 95 % interval of the SR difference lies below 0'
    else:
        verdict = 'this run cannot tell MKDNet from the baseline: the 95 % interval of the SR difference holds 0'
    return '{} ({} [{}, {}], {} seed(s) x {} sequences).'.format(verdict, _signed(sr.difference), _signed(low),
                                                                  _signed(high), len(experiment.seeds),
                                                                  len(evaluation.sequences))


def teacher_section(experiment: Experiment, folder: str) -> List[str]:
    """The teacher's training and validation losses per epoch, and whether validation has flattened."""
    tensorboard = experiment.paths.tensorboard('teacher')
    train, val = curves.epoch_curves(tensorboard, 'train'), curves.epoch_curves(tensorboard, 'val')
    panels = [(name, {'train': train[name], 'validation': val[name]})
              for name in ('Loss/total', 'Loss/cls', 'Loss/iou') if name in train and name in val]
    if not panels:
        return ['No training logs of the teacher in {}.'.format(tensorboard)]
    path = curves.plot_panels(panels, os.path.join(folder, 'teacher_curves.png'), 'epoch', columns=3)
    lines = ['![teacher]({})'.format(os.path.relpath(path, experiment.paths.report)), '']
    slope = curves.trend(val['Loss/total'][1]) if 'Loss/total' in val else None
    if slope is None:
        lines.append('The teacher trained for fewer than {} epochs: too few to tell whether its validation loss has '
                     'flattened.'.format(curves.FLAT_EPOCHS))
    else:
        verdict = ('flattened' if slope >= -curves.FLAT_SLOPE else 'still falling (train the teacher longer: '
                   '--set teacher_epochs=N)')
        lines.append('Validation loss over the teacher\'s last {} epochs: {} (least-squares trend {:+.1%} of its mean '
                     'per epoch; flattened means a fall of less than {:.0%} per epoch).'.format(
                         curves.FLAT_EPOCHS, verdict, slope, curves.FLAT_SLOPE))
    return lines


def student_section(experiment: Experiment, folder: str) -> List[str]:
    """Over the students' training (seed 0): Eq. 11's terms as they enter the loss, RDM's gates, the share of the
    batch the teacher does better on, and the student-teacher distances of every variant, the baseline included."""
    seed = experiment.seeds[0]
    runs = {LABELS[v]: curves.iteration_curves(experiment.paths.tensorboard(v, seed)) for v in experiment.variants}
    val = {LABELS[v]: curves.epoch_curves(experiment.paths.tensorboard(v, seed), 'val') for v in experiment.variants}
    mkdnet = runs.get(LABELS['mkdnet'], {})
    window = max(1, experiment.preset.iterations_per_epoch // 2)
    panels = [('MKDNet: Eq. 11 terms as they enter L_tot (log scale)', {name[len('Eq11/'):]: mkdnet[name] for name in
                                                               curves.statistics_with('Eq11/', {'': mkdnet})})]
    for level in ('iou', 'cls'):
        gates = {'{} gate'.format(k): c for k, c in curves.labelled(runs, 'RDM/open_' + level).items()}
        better = {'{} teacher better'.format(k): c
                  for k, c in curves.labelled(runs, 'RDM/teacher_better_' + level).items()}
        panels.append(('RDM_{}: gate open (share), teacher better (share)'.format(level), {**gates, **better}))
    for name in ('feature', 'score', 'iou'):
        panels.append(('Student-teacher distance, {} level (training)'.format(name),
                       curves.labelled(runs, 'Distance/' + {'feature': 'cons', 'score': 'score_d',
                                                            'iou': 'iou_d'}[name])))
    path = curves.plot_panels(panels, os.path.join(folder, 'student_curves.png'), 'iteration', smoothing=window,
                              log_panels=(0,))
    val_panels = [('Validation: student-teacher distance, {} level'.format(name),
                   curves.labelled(val, 'Distance/' + key))
                  for name, key in (('feature', 'cons'), ('score', 'score_d'), ('IoU', 'iou_d'))]
    val_panels.append(('Validation: Loss/total', curves.labelled(val, 'Loss/total')))
    val_path = curves.plot_panels(val_panels, os.path.join(folder, 'student_validation.png'), 'epoch')
    lines = ['![students]({})'.format(os.path.relpath(path, experiment.paths.report)), '',
             '![students, validation]({})'.format(os.path.relpath(val_path, experiment.paths.report)), '']
    last = {variant: {name: float(c[1][-1]) for name, c in run.items() if name.startswith('Distance/')}
            for variant, run in val.items()}
    if last:
        lines += ['| Last epoch, validation | feature distance | score distance | IoU distance |',
                  '| --- | --- | --- | --- |']
        lines += ['| {} | {} |'.format(variant, ' | '.join('{:.4f}'.format(d[k]) if k in d else '-' for k in (
            'Distance/cons', 'Distance/score_d', 'Distance/iou_d'))) for variant, d in last.items()]
    return lines


def setup_lines(experiment: Experiment, evaluation) -> List[str]:
    """What was compared, with the measured target sizes of each split."""
    from ltr_plugins.latot_data import annotation_path, read_boxes
    preset = experiment.preset
    medians = {}
    for split in ('train', 'test'):
        root = experiment.paths.data(split)
        sides = [np.sqrt(box[2] * box[3]) for name in sorted(os.listdir(root))
                 if os.path.isfile(annotation_path(root, name))
                 for box in read_boxes(annotation_path(root, name)) if box[2] > 0 and box[3] > 0]
        medians[split] = float(np.median(sides)) if sides else float('nan')
    return ['- Training: {} sequences ({} validation), targets {:g}-{:g} px (median box side {:.1f} px); test: {} '
            'sequences of {} frames, targets {:g}-{:g} px (median box side {:.1f} px).'.format(
                preset.train_sequences, preset.val_sequences, preset.train_target_min, preset.train_target_max,
                medians['train'], len(evaluation.sequences), preset.test_frames, preset.test_target_min,
                preset.test_target_max, medians['test']),
            '- Crops of {} px; the students\' crops degraded to a mean target of {:g} px (the test targets\' median '
            'side) and blown back up.'.format(preset.crop_size, preset.degrade_target_size),
            '- Teacher: {} epochs from random weights on the undegraded crops; every student: {} epochs from the '
            'teacher, seeds {}.'.format(preset.teacher_epochs, preset.student_epochs,
                                        ', '.join(str(s) for s in experiment.seeds)),
            '- Intervals: 95 % percentile bootstrap, {} resamples; the differences resample sequences and seeds.'
            .format(evaluation.bootstrap_resamples)]


def write(experiment: Experiment, per_seed, merged, title: str) -> str:
    """Writes the report into the experiment's report folder (the analysis' files for the seed-averaged rows, plus
    this module's sections); returns the path of report.md."""
    from pytracking_plugins.analysis import latot
    report = experiment.paths.report
    summary = latot.print_summary(merged, attributes=True, per_sequence=False)
    latot.write_report(merged, report, summary=summary, title=title)
    latot.write_json(per_seed, os.path.join(report, 'scores_per_seed.json'))
    latot.write_json(merged, os.path.join(report, 'scores.json'))
    folder = os.path.join(report, CURVES_DIR)
    os.makedirs(folder, exist_ok=True)
    sections = ['', '## The experiment', ''] + setup_lines(experiment, per_seed)
    sections += ['', '## Against the baseline', '', conclusion(per_seed, experiment), '',
                 comparison_table(per_seed, experiment), '', spread_line(per_seed, experiment), '']
    sections += ['## The teacher\'s training', ''] + teacher_section(experiment, folder)
    sections += ['', '## The students\' training', ''] + student_section(experiment, folder) + ['']
    path = os.path.join(report, 'report.md')
    with open(path) as handle:
        text = handle.read()
    write_text(path, text.rstrip('\n') + '\n' + '\n'.join(sections))
    return path
