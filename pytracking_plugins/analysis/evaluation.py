"""The result of an evaluation: every tracker's per-sequence curves, the scores derived from them, and its JSON."""
from typing import Dict, Iterable, List, Optional

import numpy as np

from pytracking_plugins.analysis import metrics
from pytracking_plugins.analysis.datasets import AttributeInfo
from pytracking_plugins.analysis.protocol import METRICS, protocol_description


class Evaluation:
    """Per-sequence curves of every tracker on the evaluated sequences, and every score derived from them.

    ``curves[label]`` is a :class:`metrics.Curves`; sequences without a valid frame have NaN rows and are left out
    of every average.
    """

    def __init__(self, dataset_name: str, sequences: List[str], num_frames: np.ndarray, num_valid: np.ndarray,
                 trackers: List[Dict], curves: Dict[str, metrics.Curves], attributes: Dict[str, AttributeInfo],
                 skipped_sequences: Dict[str, List[str]], categories: Optional[List[Optional[str]]] = None):
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

    # scores ------------------------------------------------------------------------------------------------------
    def sequence_scores(self, label: str) -> metrics.Scores:
        return metrics.scores_from_curves(self.curves[label])

    def _mask(self, sequence_names: Optional[Iterable[str]]) -> np.ndarray:
        if sequence_names is None:
            return np.ones(len(self.sequences), dtype=bool)
        mask = np.zeros(len(self.sequences), dtype=bool)
        mask[[self._index[n] for n in sequence_names if n in self._index]] = True
        return mask

    def scores(self, sequence_names: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, float]]:
        """``{label: {'PR', 'NPR', 'SR'}}`` averaged over the (given) sequences that have a score."""
        mask = self._mask(sequence_names)
        result = {}
        for label in self.labels:
            per_sequence = self.sequence_scores(label)
            result[label] = {m: float(metrics.average(getattr(per_sequence, m)[mask])) for m in METRICS}
        return result

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
        return {
            'protocol': protocol_description(),
            'dataset': {'name': self.dataset_name, 'num_sequences': len(self.sequences),
                        'num_scored_sequences': self.scored_sequences(),
                        'num_frames': int(self.num_frames.sum()), 'num_valid_frames': int(self.num_valid.sum()),
                        'skipped_sequences': self.skipped_sequences},
            'trackers': self.trackers,
            'ranking': {m: self.ranking(m) for m in METRICS},
            'overall': {label: dict({m: number(overall[label][m]) for m in METRICS},
                                    rank=ranking.index(label) + 1) for label in self.labels},
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
                       'scores': {label: {m: number(getattr(per_sequence[label], m)[i]) for m in METRICS}
                                  for label in self.labels}}
                for i, name in enumerate(self.sequences)},
        }
