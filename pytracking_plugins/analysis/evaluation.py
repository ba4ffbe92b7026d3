"""The result of an evaluation: every tracker's per-sequence curves, the scores derived from them, and its JSON."""
from typing import Dict, Iterable, List, Optional, Union

import numpy as np

from pytracking_plugins.analysis import metrics
from pytracking_plugins.analysis.datasets import AttributeInfo
from pytracking_plugins.analysis.protocol import Protocol, protocol_description
from pytracking_plugins.analysis.uncertainty import (CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, PairedComparison,
                                                     Uncertainty, percentile_interval, resample_counts,
                                                     resampled_means)


class Evaluation:
    """Per-sequence curves of every tracker on the evaluated sequences, and every score derived from them.

    ``curves[label]`` is a :class:`metrics.Curves`; sequences without a score (paper: no valid frame; toolkit: a
    curve 0 at every threshold) have NaN rows and are left out of every average. ``protocol`` made them;
    ``repairs`` (toolkit protocol) counts per tracker what was repaired in its results; the confidence intervals
    and paired comparisons come from one bootstrap (``bootstrap_resamples``, ``bootstrap_seed``).
    """

    def __init__(self, dataset_name: str, sequences: List[str], num_frames: np.ndarray, num_valid: np.ndarray,
                 trackers: List[Dict], curves: Dict[str, metrics.Curves], attributes: Dict[str, AttributeInfo],
                 skipped_sequences: Dict[str, List[str]], categories: Optional[List[Optional[str]]] = None,
                 protocol: Union[str, Protocol] = Protocol.PAPER, repairs: Optional[Dict[str, Dict]] = None,
                 frame_counts: Optional[Dict[str, int]] = None, bootstrap_resamples: int = DEFAULT_RESAMPLES,
                 bootstrap_seed: int = DEFAULT_SEED):
        self.dataset_name = dataset_name
        self.sequences = sequences
        self.num_frames = num_frames
        self.num_valid = num_valid
        self.trackers = trackers
        self.labels = [t['label'] for t in trackers]
        self.curves = curves
        self.attributes = attributes
        self.skipped_sequences = skipped_sequences
        self.categories = categories or [None] * len(sequences)
        self._index = {name: i for i, name in enumerate(sequences)}
        self._members = {short: frozenset(info.members) for short, info in attributes.items() if info.available}
        self.protocol = Protocol.parse(protocol)
        self.metrics = self.protocol.metrics
        self.repairs = repairs or {}
        self.frame_counts = frame_counts or {}
        self.bootstrap_resamples = bootstrap_resamples
        self.bootstrap_seed = bootstrap_seed
        self._uncertainty: Dict[str, Uncertainty] = {}

    # scores ------------------------------------------------------------------------------------------------------
    def sequence_scores(self, label: str) -> metrics.Scores:
        return self.protocol.scores(self.curves[label])

    def _mask(self, sequence_names: Optional[Iterable[str]]) -> np.ndarray:
        if sequence_names is None:
            return np.ones(len(self.sequences), dtype=bool)
        mask = np.zeros(len(self.sequences), dtype=bool)
        mask[[self._index[n] for n in sequence_names if n in self._index]] = True
        return mask

    def scores(self, sequence_names: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, float]]:
        """``{label: {'PR', 'NPR', 'SR'}}`` averaged over the (given) sequences that have a score."""
        mask = self._mask(sequence_names)
        if self.protocol is Protocol.TOOLKIT:      # the toolkit's order: curves averaged first
            return {label: metrics.toolkit_overall(self.curves[label], mask) for label in self.labels}
        result = {}
        for label in self.labels:
            per_sequence = self.sequence_scores(label)
            result[label] = {m: float(metrics.average(getattr(per_sequence, m)[mask])) for m in self.metrics}
        return result

    # uncertainty -------------------------------------------------------------------------------------------------
    def uncertainty(self, metric: str) -> Uncertainty:
        """The bootstrap of ``metric`` over the evaluated sequences (one resample matrix for every tracker)."""
        if metric not in self._uncertainty:
            values = np.stack([getattr(self.sequence_scores(label), metric) for label in self.labels])
            self._uncertainty[metric] = Uncertainty(self.labels, values, self._resample_counts())
        return self._uncertainty[metric]

    def _resample_counts(self) -> np.ndarray:
        if not hasattr(self, '_counts'):
            self._counts = resample_counts(len(self.sequences), self.bootstrap_resamples, self.bootstrap_seed)
        return self._counts

    def curve_bands(self, kind: str) -> Dict[str, np.ndarray]:
        """``{label: [2, thresholds]}``: the 95 % bootstrap band of each tracker's mean ``kind`` curve (the plots'
        shading), from the same resamples as the intervals."""
        bands = {}
        for label, curves in self.curves.items():
            means = resampled_means(getattr(curves, kind).T, self._resample_counts())     # [thresholds, resamples]
            bands[label] = percentile_interval(means, CONFIDENCE).T
        return bands

    def intervals(self) -> Dict[str, Dict[str, tuple]]:
        """``{label: {metric: (low, high)}}``: 95 % bootstrap intervals of the overall scores."""
        per_metric = {m: self.uncertainty(m).intervals() for m in self.metrics}
        return {label: {m: per_metric[m][label] for m in self.metrics} for label in self.labels}

    def paired_comparisons(self, metric: str = 'SR', adjacent: bool = False) -> List[PairedComparison]:
        """Every pair of trackers (in tracker order) or, with ``adjacent``, each tracker against the next in the
        ``metric`` ranking."""
        if adjacent:
            ranking = self.ranking(metric)
            return [self.uncertainty(metric).compare(a, b) for a, b in zip(ranking, ranking[1:])]
        return self.uncertainty(metric).all_pairs()

    def bootstrap_description(self) -> Dict:
        return {'method': 'percentile bootstrap over sequences, one resample matrix shared by every tracker '
                          '(paired comparisons use the same resamples)',
                'resamples': self.bootstrap_resamples, 'seed': self.bootstrap_seed, 'confidence': CONFIDENCE}

    def mean_curves(self, sequence_names: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, np.ndarray]]:
        """``{label: {'precision', 'norm_precision', 'success'}}``: the curves averaged over sequences."""
        mask = self._mask(sequence_names)
        return {label: {kind: metrics.average(getattr(c, kind)[mask], axis=0)
                        for kind in ('precision', 'norm_precision', 'success')}
                for label, c in self.curves.items()}

    def ranking(self, metric: str = 'SR', sequence_names: Optional[Iterable[str]] = None) -> List[str]:
        """Labels from best to worst by ``metric`` (NaN last; ties keep the given tracker order)."""
        scores = self.scores(sequence_names)
        key = {label: (-scores[label][metric] if not np.isnan(scores[label][metric]) else np.inf)
               for label in self.labels}
        return sorted(self.labels, key=lambda label: key[label])

    def scored_sequences(self) -> int:
        return int(np.sum(self.num_valid > 0))

    def dropped_sequences(self) -> Dict[str, Dict[str, int]]:
        """Toolkit protocol: ``{label: {curve: sequences left out of its mean}}`` (a curve 0 at every threshold)."""
        if self.protocol is not Protocol.TOOLKIT:
            return {}
        return {label: {kind: int(np.sum(np.isnan(getattr(c, kind)[:, 0])))
                        for kind in ('precision', 'norm_precision', 'success')} for label, c in self.curves.items()}

    def attribute_scores(self) -> Dict[str, Dict[str, Dict[str, float]]]:
        """``{attribute: {label: scores}}`` for available attributes with at least one evaluated sequence."""
        return {short: self.scores(info.members) for short, info in self.attributes.items()
                if info.available and self._mask(info.members).any()}

    def attribute_counts(self) -> Dict[str, int]:
        return {short: int(self._mask(info.members).sum()) if info.available else 0
                for short, info in self.attributes.items()}

    def sequence_attributes(self, sequence_name: str) -> List[str]:
        return [short for short, members in self._members.items() if sequence_name in members]

    # export ------------------------------------------------------------------------------------------------------
    def to_dict(self) -> Dict:
        """Every score (overall, per attribute, per sequence) and the curves, as plain JSON-able values."""
        def number(value):
            value = float(value)
            return None if np.isnan(value) else value

        overall = self.scores()
        ranking = self.ranking('SR')
        curves = self.mean_curves()
        attribute_scores = self.attribute_scores()
        counts = self.attribute_counts()
        per_sequence = {label: self.sequence_scores(label) for label in self.labels}
        intervals = self.intervals()

        def pair(c: PairedComparison) -> Dict:
            return {'a': c.a, 'b': c.b, 'difference': number(c.difference),
                    'interval': [number(c.interval[0]), number(c.interval[1])],
                    'wins_a': c.wins_a, 'wins_b': c.wins_b, 'ties': c.ties}

        return {
            'protocol': protocol_description(self.protocol),
            'dataset': {'name': self.dataset_name, 'num_sequences': len(self.sequences),
                        'num_scored_sequences': self.scored_sequences(),
                        'num_frames': int(self.num_frames.sum()), 'num_valid_frames': int(self.num_valid.sum()),
                        'skipped_sequences': self.skipped_sequences},
            'trackers': self.trackers,
            'ranking': {m: self.ranking(m) for m in self.metrics},
            'overall': {label: dict({m: number(overall[label][m]) for m in self.metrics},
                                    rank=ranking.index(label) + 1) for label in self.labels},
            'bootstrap': self.bootstrap_description(),
            'confidence_intervals': {label: {m: [number(v) for v in intervals[label][m]] for m in self.metrics}
                                     for label in self.labels},
            'paired_comparisons': {m: [pair(c) for c in self.paired_comparisons(m)] for m in self.metrics},
            'repairs': self.repairs,
            'frame_counts': self.frame_counts,
            'dropped_sequences': self.dropped_sequences(),
            'curves': {label: {'precision': [number(v) for v in c['precision']],
                               'norm_precision': [number(v) for v in c['norm_precision']],
                               'success': [number(v) for v in c['success']]} for label, c in curves.items()},
            'per_attribute': {
                short: {'long_name': info.long, 'available': info.available, 'reason': info.reason,
                        'num_sequences': counts[short],
                        'scores': ({label: {m: number(v) for m, v in attribute_scores[short][label].items()}
                                    for label in self.labels} if short in attribute_scores else None)}
                for short, info in self.attributes.items()},
            'per_sequence': {
                name: {'category': self.categories[i], 'num_frames': int(self.num_frames[i]),
                       'num_valid_frames': int(self.num_valid[i]), 'attributes': self.sequence_attributes(name),
                       'scores': {label: {m: number(getattr(per_sequence[label], m)[i]) for m in self.metrics}
                                  for label in self.labels}}
                for i, name in enumerate(self.sequences)},
        }
