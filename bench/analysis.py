"""Benchmark: LaTOT-protocol scoring of 25 trackers on 434 sequences of LaTOT's length distribution, cold cache,
under both protocols (paper and toolkit), with the bootstrap intervals and paired comparisons.

    .venv/bin/python bench/analysis.py [--trackers 25] [--sequences 434] [--work DIR] [--keep]

Data (made once per work folder, not timed): synthetic annotations whose lengths follow LaTOT's Table I, and per
tracker perturbed result files, half as pytracking result folders, half as external ones. Timed per protocol: cold
(reading, parsing, scoring, intervals and paired comparisons, no cache; target <= 30 s), warm (from the cache) and
the report's files. Also printed: how far the toolkit protocol's scores are from the paper's, and rank changes.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from types import SimpleNamespace

import numpy as np

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT_ROOT)

from pytracking.evaluation.data import Sequence  # noqa: E402

from ltr_plugins import latot_attributes, latot_data, synthetic  # noqa: E402
from pytracking_plugins.analysis import scoring as latot_scoring  # noqa: E402
from pytracking_plugins.analysis.cache import CACHE_FILE_NAME  # noqa: E402
from pytracking_plugins.analysis import report  # noqa: E402
from pytracking_plugins.analysis.results import folder_source, pytracking_sources  # noqa: E402

TARGET_SECONDS = 30.0
LATOT_MIN, LATOT_MAX, LATOT_TOTAL = 21, 4632, 217_700    # Table I: 434 videos, 21 / 4,632 / 501 frames, 217.7K


def latot_lengths(count: int, seed: int) -> np.ndarray:
    """``count`` lengths with LaTOT's min and max, long-tailed, summing to LaTOT's total (scaled to ``count``)."""
    rng = np.random.default_rng(seed)
    total = int(round(LATOT_TOTAL * count / 434))
    lengths = np.exp(rng.normal(np.log(380.0), 0.75, size=count))
    lengths[0], lengths[1] = LATOT_MIN, LATOT_MAX
    # Rescale the free lengths until the total matches (clipping makes one rescale inexact).
    for _ in range(50):
        free = lengths[2:]
        scale = (total - LATOT_MIN - LATOT_MAX) / free.sum()
        lengths[2:] = np.clip(free * scale, LATOT_MIN, LATOT_MAX)
        if abs(lengths.sum() - total) < 1:
            break
    lengths = np.round(lengths).astype(np.int64)
    lengths[2 + int(np.argmax(lengths[2:]))] += total - lengths.sum()
    return lengths


def perturb(gt: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """A tracker-like output: jitter growing with ``level``, slow drift, and lost stretches holding a wrong box."""
    n = len(gt)
    present = (gt[:, 2] > 0) & (gt[:, 3] > 0)
    # Where the target is absent, trackers keep reporting their last box.
    idx = np.maximum.accumulate(np.where(present, np.arange(n), 0))
    base = gt[idx].copy()
    size = np.sqrt(np.maximum(base[:, 2] * base[:, 3], 1.0))[:, None]
    drift = np.cumsum(rng.normal(0, 0.05 * level, (n, 2)), axis=0)
    pred = base.copy()
    pred[:, :2] += rng.normal(0, 0.15 * level, (n, 2)) * size + drift
    pred[:, 2:] *= np.exp(rng.normal(0, 0.1 * level, (n, 2)))
    for _ in range(rng.poisson(level * n / 800.0)):
        start = int(rng.integers(1, max(2, n)))
        stop = min(n, start + int(rng.integers(10, 200)))
        pred[start:stop, :2] = pred[start, :2] + rng.normal(0, 30, 2)
    return pred


def write_boxes(path: str, boxes: np.ndarray, delimiter: str) -> None:
    with open(path, 'w') as f:
        np.savetxt(f, boxes, fmt='%.2f', delimiter=delimiter)


def make_data(work: str, num_sequences: int, num_trackers: int, seed: int) -> dict:
    root = os.path.join(work, 'latot')
    marker = os.path.join(work, 'complete-{}-{}-{}'.format(num_sequences, num_trackers, seed))
    names = latot_data.split_sequence_names('all')[:num_sequences]
    if len(names) < num_sequences:
        names += ['bench{}'.format(i) for i in range(num_sequences - len(names))]
    lengths = latot_lengths(num_sequences, seed)
    pytracking_trackers = (num_trackers + 1) // 2
    layout = dict(root=root, names=names, results_path=os.path.join(work, 'tracking_results'),
                  external=[os.path.join(work, 'external', 'Tracker{:02d}'.format(k))
                            for k in range(pytracking_trackers, num_trackers)],
                  pytracking=['bench{:02d}'.format(k) for k in range(pytracking_trackers)])
    if os.path.exists(marker):
        return layout
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    started = time.perf_counter()
    for k, (name, length) in enumerate(zip(names, lengths)):
        spec = synthetic.random_spec(np.random.default_rng([seed, k]), name, int(length))
        synthetic.write_sequence(root, spec, seed=seed * 100_003 + k, images=False)
    print('annotations: {} sequences, {:,} frames ({:.1f} s)'.format(len(names), int(lengths.sum()),
                                                                     time.perf_counter() - started))
    started = time.perf_counter()
    gts = {name: latot_data.read_sequence_annotation(root, name) for name in names}
    folders = [os.path.join(layout['results_path'], t, 'default') for t in layout['pytracking']] + layout['external']
    for k, folder in enumerate(folders):
        os.makedirs(folder)
        rng = np.random.default_rng([seed, 1000 + k])
        level = 0.3 + 2.5 * k / max(1, num_trackers - 1)
        for name in names:
            write_boxes(os.path.join(folder, name + '.txt'), perturb(gts[name], level, rng),
                        '\t' if k < pytracking_trackers else ',')
    print('results: {} trackers x {} sequences ({:.1f} s)'.format(len(folders), len(names),
                                                                  time.perf_counter() - started))
    open(marker, 'w').close()
    return layout


def load_flags(root: str, names) -> dict:
    """The synthetic data's attribute flag files (the per-attribute scores are part of the scoring)."""
    return {name: latot_attributes.read_flag_file(latot_attributes.flag_file_path(root, name)) for name in names}


def load_sequences(root: str, names) -> list:
    """pytracking Sequences from the annotations alone (the benchmark has no images to list)."""
    sequences = []
    for name in names:
        gt = latot_data.read_sequence_annotation(root, name)
        frames = ['{}/{}/img/{:06d}.jpg'.format(root, name, i + 1) for i in range(len(gt))]
        finite = np.all(np.isfinite(gt), axis=1)
        gt[~finite] = 0.0
        sequences.append(Sequence(name, frames, 'latot', gt, object_class=latot_data.sequence_category(name),
                                  target_visible=finite & (gt[:, 2] > 0) & (gt[:, 3] > 0)))
    return sequences


def _uncertainty(evaluation) -> None:
    """The bootstrap intervals and every paired comparison, as the timings include them."""
    evaluation.intervals()
    for metric in evaluation.metrics:
        evaluation.paired_comparisons(metric)


def _sources(layout: dict) -> list:
    sources = [s for name in layout['pytracking']
               for s in pytracking_sources(name, 'default', results_path=layout['results_path'])]
    return sources + [folder_source(folder) for folder in layout['external']]


def _timed_runs(layout: dict, sources: list, output_dir: str) -> SimpleNamespace:
    """The timed runs, from a cold cache: paper protocol, toolkit protocol, warm paper protocol, report."""
    cache = os.path.join(output_dir, CACHE_FILE_NAME)
    if os.path.exists(cache):
        os.remove(cache)
    run = SimpleNamespace()
    started = time.perf_counter()
    run.sequences = load_sequences(layout['root'], layout['names'])
    flags = load_flags(layout['root'], layout['names'])
    run.truth_seconds = time.perf_counter() - started
    run.cold = latot_scoring.evaluate(sources, run.sequences, output_dir=output_dir, attributes=flags, verbose=False)
    run.cold.attribute_scores()
    scoring_seconds = time.perf_counter() - started
    _uncertainty(run.cold)
    run.cold_seconds = time.perf_counter() - started
    run.bootstrap_seconds = run.cold_seconds - scoring_seconds

    started = time.perf_counter()
    run.toolkit = latot_scoring.evaluate(sources, load_sequences(layout['root'], layout['names']),
                                         output_dir=output_dir, attributes=load_flags(layout['root'], layout['names']),
                                         verbose=False, protocol='toolkit')
    run.toolkit.attribute_scores()
    _uncertainty(run.toolkit)
    run.toolkit_seconds = time.perf_counter() - started

    started = time.perf_counter()
    warm = latot_scoring.evaluate(sources, load_sequences(layout['root'], layout['names']),
                                  output_dir=output_dir, attributes=load_flags(layout['root'], layout['names']),
                                  verbose=False)
    run.warm_seconds = time.perf_counter() - started
    assert warm.scores() == run.cold.scores()

    started = time.perf_counter()
    run.written = report.write_report(run.cold, output_dir)
    run.written.append(report.write_json(run.cold, os.path.join(output_dir, 'scores.json')))
    run.report_seconds = time.perf_counter() - started
    return run


def _print_protocol_differences(cold, toolkit) -> None:
    """How far the toolkit protocol's scores are from the paper protocol's, and how many ranks differ."""
    paper_scores, toolkit_scores = cold.scores(), toolkit.scores()
    for metric in ('PR', 'NPR', 'SR'):
        differences = np.array([toolkit_scores[label][metric] - paper_scores[label][metric]
                                for label in cold.labels])
        moved = sum(a != b for a, b in zip(cold.ranking(metric), toolkit.ranking(metric)))
        print('toolkit - paper {}: {:+.3f} to {:+.3f} (mean {:+.3f}); {} of {} ranks differ'.format(
            metric, differences.min(), differences.max(), differences.mean(), moved, len(cold.labels)))
    npr_area = np.array([toolkit_scores[label]['NPR_AUC'] - paper_scores[label]['NPR'] for label in cold.labels])
    print('toolkit NPR_AUC - paper NPR (same definition, toolkit frame rules): {:+.3f} to {:+.3f}'.format(
        npr_area.min(), npr_area.max()))


def _print_results(run: SimpleNamespace, sources: list) -> None:
    cold, sequences = run.cold, run.sequences
    frames = int(cold.num_frames.sum())
    print('{} trackers x {} sequences ({:,} frames each; min {}, max {}, mean {:.0f})'.format(
        len(sources), len(sequences), frames, int(cold.num_frames.min()), int(cold.num_frames.max()),
        frames / len(sequences)))
    print('cold scoring, paper protocol: {:.2f} s (of which reading the ground truth and flags {:.2f} s, the '
          'bootstrap intervals and {} paired comparisons x {} scores {:.2f} s) -> {:,.0f} tracker-frames/s; '
          'target <= {:.0f} s: {}'.format(
              run.cold_seconds, run.truth_seconds, len(sources) * (len(sources) - 1) // 2, len(cold.metrics),
              run.bootstrap_seconds, len(sources) * frames / run.cold_seconds, TARGET_SECONDS,
              'met' if run.cold_seconds <= TARGET_SECONDS else 'MISSED'))
    print('cold scoring, toolkit protocol (with intervals and comparisons): {:.2f} s; target <= {:.0f} s: '
          '{}'.format(run.toolkit_seconds, TARGET_SECONDS,
                      'met' if run.toolkit_seconds <= TARGET_SECONDS else 'MISSED'))
    _print_protocol_differences(cold, run.toolkit)
    widths = np.array([high - low for label in cold.labels for low, high in [cold.intervals()[label]['SR']]])
    print('paper SR 95% interval half-widths: {:.3f} to {:.3f}'.format(widths.min() / 2, widths.max() / 2))
    print('warm (cached) scoring: {:.2f} s'.format(run.warm_seconds))
    print('report (plots in PNG + PDF, CSV, Markdown, JSON): {:.2f} s, {} files'.format(
        run.report_seconds, len(run.written)))
    best = cold.ranking('SR')[0]
    print('best tracker {}: {}'.format(best, {k: round(v, 3) for k, v in cold.scores()[best].items()}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--trackers', type=int, default=25)
    parser.add_argument('--sequences', type=int, default=434)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work', help='data folder, kept between runs (default: a temporary folder, removed)')
    parser.add_argument('--keep', action='store_true', help='keep the temporary data folder')
    args = parser.parse_args()

    work = args.work or tempfile.mkdtemp(prefix='latot_bench_')
    try:
        layout = make_data(os.path.join(work, 'data'), args.sequences, args.trackers, args.seed)
        sources = _sources(layout)
        run = _timed_runs(layout, sources, os.path.join(work, 'report'))
        _print_results(run, sources)
        return 0 if max(run.cold_seconds, run.toolkit_seconds) <= TARGET_SECONDS else 1
    finally:
        if not args.work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
