"""Plots in the paper's style (Fig. 7, OTB / LaSOT-toolkit look): one line per tracker, the legend ranked by the
plot's own score and showing it (``[0.631] MKDNet``), PNG for reports and PDF for papers. A tracker keeps one
colour and line style in every plot of a report (assigned by its overall SR rank), so it is easy to follow. With
up to six trackers each curve is shaded with its 95 % bootstrap band over sequences; titles name the protocol.

Figures are built with matplotlib's object API (no pyplot, no global rcParams changed), so plotting never opens
a window nor alters the caller's matplotlib state, and works on machines without a display.
"""
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from pytracking_plugins.analysis import metrics
from pytracking_plugins.analysis.evaluation import Evaluation
from ltr_plugins.common.atomic_files import atomic_path

# 12 well separated colours x 3 line styles: 36 trackers before a style repeats (the paper compares 24).
_COLOURS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#9a6324', '#000000',
            '#808000', '#800000', '#469990']
_LINE_STYLES = ['-', '--', ':']
FORMATS = ('png', 'pdf')
MAX_BANDS = 6

PLOTS = {
    'precision': dict(metric='PR', thresholds=metrics.PRECISION_THRESHOLDS, title='Precision plots of OPE on {}',
                      xlabel='Location error threshold (pixels)', ylabel='Precision', legend='lower right'),
    'norm_precision': dict(metric='NPR', thresholds=metrics.NORM_PRECISION_THRESHOLDS,
                           title='Normalized Precision plots of OPE on {}',
                           xlabel='Normalized location error threshold', ylabel='Normalized Precision',
                           legend='lower right'),
    'success': dict(metric='SR', thresholds=metrics.SUCCESS_THRESHOLDS, title='Success plots of OPE on {}',
                    xlabel='Overlap threshold', ylabel='Success rate', legend='lower left'),
}


def dataset_title(name: str) -> str:
    """'latot' -> 'LaTOT', 'latot_test' -> 'LaTOT testing set' (the paper's wording); other names unchanged."""
    return {'latot': 'LaTOT', 'latot_test': 'LaTOT testing set', 'latot_train': 'LaTOT training set'}.get(name, name)


def style(rank: int) -> Dict:
    return dict(color=_COLOURS[rank % len(_COLOURS)], linestyle=_LINE_STYLES[(rank // len(_COLOURS)) %
                                                                             len(_LINE_STYLES)])


def tracker_styles(evaluation: Evaluation) -> Dict[str, Dict]:
    """Colour and line style per tracker, by overall SR rank (the same in every plot)."""
    return {label: style(rank) for rank, label in enumerate(evaluation.ranking('SR'))}


def save_figure(figure: Figure, path: str, **kwargs) -> str:
    """``figure.savefig`` to ``path`` atomically (the format from the extension, since the temporary name has none)."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=os.path.splitext(path)[1][1:], **kwargs)
    return path


def _save(figure: Figure, output_dir: str, stem: str) -> List[str]:
    paths = []
    for extension in FORMATS:
        path = os.path.join(output_dir, '{}.{}'.format(stem, extension))
        save_figure(figure, path, dpi=150 if extension == 'png' else 300, bbox_inches='tight')
        paths.append(path)
    return paths


def _legend(axes, handles, texts, location: str, count: int) -> None:
    # Many trackers do not fit inside the axes without hiding the curves: put the legend beside them.
    if count > 12:
        axes.legend(handles, texts, loc='upper left', bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=True,
                    edgecolor='black', fancybox=False)
    else:
        axes.legend(handles, texts, loc=location, fontsize=9 if count > 6 else 10, frameon=True, edgecolor='black',
                    fancybox=False, framealpha=0.9)


def plot_curves(evaluation: Evaluation, kind: str, output_dir: str, title: Optional[str] = None,
                sequence_names: Optional[Sequence[str]] = None, stem: Optional[str] = None) -> List[str]:
    """One of 'precision', 'norm_precision', 'success' as ``<stem>.png`` / ``.pdf``; returns the paths."""
    spec = PLOTS[kind]
    scores = evaluation.scores(sequence_names)
    curves = evaluation.mean_curves(sequence_names)
    ranking = evaluation.ranking(spec['metric'], sequence_names)
    thresholds = spec['thresholds']

    styles = tracker_styles(evaluation)
    figure = Figure(figsize=(6.4, 4.8) if len(ranking) <= 12 else (8.6, 4.8))
    axes = figure.add_subplot(111)
    handles, texts = [], []
    # A few trackers' curves get their 95 % bootstrap band (over sequences); more would hide each other.
    bands = evaluation.curve_bands(kind) if sequence_names is None and len(ranking) <= MAX_BANDS else {}
    for rank, label in enumerate(ranking):
        # The best trackers' lines lie on top.
        zorder = len(ranking) - rank + 2
        if label in bands:
            axes.fill_between(thresholds, bands[label][0], bands[label][1], color=styles[label]['color'],
                              alpha=0.15, linewidth=0, zorder=zorder - 0.5)
        line, = axes.plot(thresholds, curves[label][kind], linewidth=2.0 if rank < 3 else 1.5, zorder=zorder,
                          **styles[label])
        handles.append(line)
        texts.append('[{:.3f}] {}'.format(scores[label][spec['metric']], label))
    if kind == 'precision':
        axes.axvline(metrics.PR_THRESHOLD, color='grey', linewidth=0.8, linestyle='--', zorder=1)
    if kind == 'norm_precision' and evaluation.protocol.value == 'toolkit':
        axes.axvline(metrics.TOOLKIT_NPR_THRESHOLD, color='grey', linewidth=0.8, linestyle='--', zorder=1)
    axes.set_xlim(thresholds[0], thresholds[-1])
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel(spec['xlabel'])
    axes.set_ylabel(spec['ylabel'])
    axes.set_title(title or '{} ({} protocol)'.format(spec['title'].format(dataset_title(evaluation.dataset_name)),
                                                      evaluation.protocol.value), fontweight='bold')
    axes.grid(True, linestyle=':', linewidth=0.6)
    _legend(axes, handles, texts, spec['legend'], len(ranking))
    return _save(figure, output_dir, stem or '{}_plot'.format(kind))


def plot_attributes(evaluation: Evaluation, output_dir: str, metric: str = 'SR',
                    stem: str = 'attributes_plot') -> List[str]:
    """Per-attribute scores (Table V as a figure): a radar with 3 or more attributes, bars otherwise.

    The legend ranks trackers by their overall score, shown in brackets. Returns [] without any scored attribute.
    """
    per_attribute = evaluation.attribute_scores()
    if not per_attribute:
        return []
    counts = evaluation.attribute_counts()
    attributes = list(per_attribute)
    overall = evaluation.scores()
    ranking = evaluation.ranking(metric)
    names = ['{}\n({})'.format(a, counts[a]) for a in attributes]
    values = {label: [per_attribute[a][label][metric] for a in attributes] for label in ranking}
    top = max([v for vs in values.values() for v in vs if not np.isnan(v)] + [0.0])
    limit = min(1.0, max(0.1, math.ceil(top * 10 + 0.5) / 10))

    styles = tracker_styles(evaluation)
    wide = len(ranking) > 12
    figure = Figure(figsize=(8.6 if wide else 6.8, 6.4))
    handles, texts = [], []
    if len(attributes) >= 3:
        axes = figure.add_subplot(111, polar=True)
        # Table II's order, clockwise from the top.
        axes.set_theta_offset(np.pi / 2)
        axes.set_theta_direction(-1)
        angles = np.linspace(0, 2 * np.pi, len(attributes), endpoint=False)
        closed = np.concatenate([angles, angles[:1]])
        for rank, label in enumerate(ranking):
            data = np.asarray(values[label] + values[label][:1])
            line, = axes.plot(closed, data, linewidth=1.8 if rank < 3 else 1.2, marker='o', markersize=3,
                              zorder=len(ranking) - rank + 2, **styles[label])
            handles.append(line)
            texts.append('[{:.3f}] {}'.format(overall[label][metric], label))
        axes.set_xticks(angles)
        axes.set_xticklabels(names, fontsize=9)
        axes.set_rlabel_position(180.0 / len(attributes))     # radial labels between the first two spokes
        axes.set_ylim(0.0, limit)
        axes.tick_params(axis='y', labelsize=7, colors='grey')
    else:
        axes = figure.add_subplot(111)
        width = 0.8 / len(ranking)
        positions = np.arange(len(attributes))
        for rank, label in enumerate(ranking):
            bars = axes.bar(positions + (rank - (len(ranking) - 1) / 2) * width, values[label], width,
                            color=styles[label]['color'])
            handles.append(bars)
            texts.append('[{:.3f}] {}'.format(overall[label][metric], label))
        axes.set_xticks(positions)
        axes.set_xticklabels(names)
        axes.set_ylim(0.0, limit)
        axes.set_ylabel({'SR': 'Success rate (AUC)', 'PR': 'Precision (5 px)', 'NPR': 'Normalized precision'}[metric])
        axes.grid(True, axis='y', linestyle=':', linewidth=0.6)
    axes.set_title('{} per attribute on {} ({} protocol)'.format(metric, dataset_title(evaluation.dataset_name),
                                                                evaluation.protocol.value),
                   fontweight='bold', pad=18)
    if wide:
        figure.legend(handles, texts, loc='center left', bbox_to_anchor=(0.8, 0.5), fontsize=8, frameon=True,
                      edgecolor='black', fancybox=False)
        figure.subplots_adjust(right=0.76)
    else:
        axes.legend(handles, texts, loc='upper center', bbox_to_anchor=(0.5, -0.08), ncol=min(3, len(ranking)),
                    fontsize=8, frameon=True, edgecolor='black', fancybox=False)
    return _save(figure, output_dir, stem)


def plot_all(evaluation: Evaluation, output_dir: str) -> Dict[str, List[str]]:
    """Every plot of the report: {'precision': [png, pdf], 'norm_precision': ..., 'success': ..., 'attributes': ...}."""
    paths = {kind: plot_curves(evaluation, kind, output_dir) for kind in PLOTS}
    attribute_paths = plot_attributes(evaluation, output_dir)
    if attribute_paths:
        paths['attributes'] = attribute_paths
    return paths
