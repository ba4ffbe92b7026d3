"""Confidence intervals by bootstrap over sequences, and paired comparisons of trackers.

A benchmark score is a mean over sequences, and sequences differ far more than frames, so the uncertainty that
matters is which sequences were drawn. The bootstrap resamples the sequences with replacement (seeded), recomputes
every tracker's mean on each resample (a sequence without a score is left out, as in the point estimate) and reports
the 2.5 and 97.5 percentiles. Every tracker gets the *same* resamples, so a paired comparison is the interval of the
difference of two means (a tracker against itself: exactly 0) and costs nothing more. Vectorised: one
``[resamples, sequences]`` count matrix times the ``[sequences, trackers]`` score matrix.
"""
from typing import Dict, List, NamedTuple, Sequence

import numpy as np

from pytracking_plugins.analysis.metrics import average

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
# The resample matrices hold resamples x sequences numbers (several of them at once, 8 bytes each): 100000 resamples
# of LaTOT's 434 sequences take about 1 GB; the percentiles are stable to the printed digits long before.
MAX_RESAMPLES = 100000


def check_resamples(resamples: int) -> int:
    """``resamples`` if it is a whole number in 1..MAX_RESAMPLES; a ValueError naming the setting otherwise."""
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) \
            or not 1 <= resamples <= MAX_RESAMPLES:
        raise ValueError('bootstrap resamples {!r}: give a whole number from 1 to {} (the default {} is plenty for '
                         'the printed digits; each resample costs memory for every sequence)'.format(
                             resamples, MAX_RESAMPLES, DEFAULT_RESAMPLES))
    return int(resamples)


def resample_counts(num_sequences: int, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """``[resamples, num_sequences]``: how often each sequence is drawn in each resample (rows sum to the count)."""
    check_resamples(resamples)
    if num_sequences < 1:
        raise ValueError('the bootstrap needs at least one sequence')
    indices = np.random.default_rng(seed).integers(0, num_sequences, size=(resamples, num_sequences))
    offsets = np.arange(resamples)[:, None] * num_sequences
    return np.bincount((indices + offsets).ravel(), minlength=resamples * num_sequences).reshape(
        resamples, num_sequences).astype(np.float64)


def resampled_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``[trackers, resamples]`` means of ``values`` [trackers, sequences] (NaN: no score) on each resample."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    scored = ~np.isnan(values)
    totals = counts @ np.where(scored, values, 0.0).T
    numbers = counts @ scored.T.astype(np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        return (totals / numbers).T


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> np.ndarray:
    """``[..., 2]`` lower and upper percentiles over the last axis (resamples without a value are ignored)."""
    tail = 100.0 * (1.0 - confidence) / 2.0
    samples = np.asarray(samples, dtype=np.float64)
    low, high = np.full(samples.shape[:-1], np.nan), np.full(samples.shape[:-1], np.nan)
    finite = ~np.all(np.isnan(samples), axis=-1)
    if finite.any():
        low[finite], high[finite] = np.nanpercentile(samples[finite], [tail, 100.0 - tail], axis=-1)
    return np.stack([low, high], axis=-1)


class PairedComparison(NamedTuple):
    a: str
    b: str
    difference: float          # mean of a minus mean of b
    interval: tuple            # its 95 % bootstrap interval
    wins_a: int                # sequences (scored for both) where a scores higher
    wins_b: int
    ties: int


class Uncertainty:
    """Intervals and paired comparisons of one metric for several trackers, from one shared resample matrix."""

    def __init__(self, labels: Sequence[str], values: np.ndarray, counts: np.ndarray,
                 confidence: float = CONFIDENCE):
        self.labels = list(labels)
        self.values = np.atleast_2d(np.asarray(values, dtype=np.float64))
        self.means = resampled_means(self.values, counts)
        self.confidence = confidence
        self._index = {label: i for i, label in enumerate(self.labels)}

    def intervals(self) -> Dict[str, tuple]:
        bounds = percentile_interval(self.means, self.confidence)
        return {label: (float(bounds[i, 0]), float(bounds[i, 1])) for i, label in enumerate(self.labels)}

    def compare(self, a: str, b: str) -> PairedComparison:
        i, j = self._index[a], self._index[b]
        va, vb = self.values[i], self.values[j]
        both = ~np.isnan(va) & ~np.isnan(vb)
        low, high = percentile_interval(self.means[i] - self.means[j], self.confidence)
        return PairedComparison(a, b, float(average(va) - average(vb)), (float(low), float(high)),
                                int(np.sum(va[both] > vb[both])), int(np.sum(vb[both] > va[both])),
                                int(np.sum(va[both] == vb[both])))

    def all_pairs(self) -> List[PairedComparison]:
        return [self.compare(a, b) for k, a in enumerate(self.labels) for b in self.labels[k + 1:]]


class SeedPairedComparison(NamedTuple):
    a: str
    b: str
    difference: float          # mean over seeds and sequences of a minus b (each seed's a and b paired)
    interval: tuple            # its 95 % bootstrap interval over sequences and seeds
    per_seed: tuple            # the difference of each seed, mean over sequences
    wins_a: int                # sequences where a's mean over seeds is higher
    wins_b: int


def compare_over_seeds(a: str, b: str, values_a: np.ndarray, values_b: np.ndarray,
                       resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                       confidence: float = CONFIDENCE) -> SeedPairedComparison:
    """Paired comparison of two trackers trained with the same seeds: ``values_a``, ``values_b`` are
    ``[seeds, sequences]`` scores (NaN: no score), seed k of a paired with seed k of b.

    The interval resamples sequences and seeds independently, with replacement (a two-way bootstrap), so it holds
    both sources of chance: which sequences were drawn and how training happened to go. With one seed it is the
    bootstrap over sequences.
    """
    differences = np.atleast_2d(np.asarray(values_a, dtype=np.float64) - np.asarray(values_b, dtype=np.float64))
    num_seeds, num_sequences = differences.shape
    scored = ~np.isnan(differences)
    sequence_counts = resample_counts(num_sequences, resamples, seed)
    seed_counts = resample_counts(num_seeds, resamples, seed + 1)
    totals = np.einsum('rs,sq,rq->r', seed_counts, np.where(scored, differences, 0.0), sequence_counts)
    numbers = np.einsum('rs,sq,rq->r', seed_counts, scored.astype(np.float64), sequence_counts)
    with np.errstate(invalid='ignore', divide='ignore'):
        low, high = percentile_interval(totals / numbers, confidence)
    per_sequence = np.nanmean(differences, axis=0)
    both = ~np.isnan(per_sequence)
    return SeedPairedComparison(a, b, float(np.nanmean(differences)), (float(low), float(high)),
                                tuple(float(v) for v in np.nanmean(differences, axis=1)),
                                int(np.sum(per_sequence[both] > 0)), int(np.sum(per_sequence[both] < 0)))
