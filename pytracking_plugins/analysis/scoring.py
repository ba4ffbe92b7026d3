"""Scores many trackers on a dataset under the LaTOT protocol, with pytracking-style caching.

The cache (``latot_eval_data.pkl`` next to the report, as pytracking keeps ``eval_data.pkl`` under
``result_plot_path/<report_name>``) stores each tracker's per-sequence curves under a fingerprint of everything
they depend on: the protocol version, the sequence names, the ground truth (boxes and visibility) and the bytes of
every result file. Changing, adding or removing any of these recomputes that tracker only; nothing stale is ever
read back. Hashing a result file costs a small fraction of parsing it: a warm run is about ten times faster.
"""
import os
import pickle
import sys
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np

from pytracking_plugins import latot_attributes
from pytracking_plugins.analysis import files, metrics
from pytracking_plugins.analysis.results import (ResultSource, ResultsError, as_sources, fingerprint,
                                                 missing_results, missing_results_message, parse_result,
                                                 read_result_bytes)

PROTOCOL_VERSION = 1
CACHE_FILE_NAME = 'latot_eval_data.pkl'
_CACHE_FORMAT = 1
_CACHE_MAX_ENTRIES = 200
METRICS = ('PR', 'NPR', 'SR')


class AttributeInfo(NamedTuple):
    short: str
    long: str
    available: bool
    members: tuple            # sequence names with the attribute (among the dataset's sequences)
    reason: Optional[str]     # why it is unavailable


class DatasetView(NamedTuple):
    name: str
    sequences: list           # pytracking Sequence objects
    attributes: Dict[str, AttributeInfo]


# Datasets ---------------------------------------------------------------------------------------------------------

def _latot_attribute_infos(dataset) -> Dict[str, AttributeInfo]:
    flags = dataset.sequence_attributes()
    sources = dataset.attribute_sources()
    infos = {}
    for short in latot_attributes.ATTRIBUTES:
        unknown = [name for name, f in flags.items() if f[short] is None]
        reason = None
        if unknown:
            kinds = sorted({sources[name] for name in unknown})
            reason = ('no flag for {} of {} sequences (flags {}); only {} follow from the boxes'.format(
                len(unknown), len(flags), '/'.join(kinds), '/'.join(latot_attributes.DERIVABLE))
                if short not in latot_attributes.DERIVABLE else
                'not derivable for {} of {} sequences'.format(len(unknown), len(flags)))
        infos[short] = AttributeInfo(short, latot_attributes.LONG_NAMES[short], not unknown,
                                     tuple(latot_attributes.members(flags, short)) if not unknown else (), reason)
    return infos


def _pytracking_attribute_infos(name: str, dataset, sequence_names: Sequence[str]) -> Dict[str, AttributeInfo]:
    """Attributes of a pytracking dataset with ``get_attribute_names`` (OTB, LaSOT, AVisT...), pytracking's way."""
    from pytracking.evaluation.datasets import load_dataset
    shorts, longs = dataset.get_attribute_names('short'), dataset.get_attribute_names('long')
    present = set(sequence_names)
    infos = {}
    for short, long in zip(shorts, longs):
        subset = load_dataset(name, attribute=short)
        members = getattr(subset, 'sequence_list', None)
        if members is None or not isinstance(members[0] if members else '', str):
            members = [s.name for s in subset.get_sequence_list()]
        infos[short] = AttributeInfo(short, long, True, tuple(m for m in members if m in present), None)
    return infos


def load_dataset_view(dataset: Union[str, Any], **dataset_kwargs) -> DatasetView:
    """Sequences and attributes of a dataset given by pytracking name, dataset object or list of Sequences."""
    name = dataset if isinstance(dataset, str) else getattr(dataset, 'name', None)
    dataset_object = dataset
    if isinstance(dataset, str):
        from pytracking.evaluation.datasets import load_dataset
        dataset_object = load_dataset(dataset, **dataset_kwargs)
    if hasattr(dataset_object, 'get_sequence_list'):
        sequences = list(dataset_object.get_sequence_list())
        name = name or type(dataset_object).__name__
    else:
        sequences = list(dataset_object)
        name = name or (sequences[0].dataset if sequences else 'dataset')
    names = [s.name for s in sequences]
    attributes: Dict[str, AttributeInfo] = {}
    if hasattr(dataset_object, 'sequence_attributes'):
        attributes = _latot_attribute_infos(dataset_object)
    elif hasattr(dataset_object, 'get_attribute_names') and isinstance(dataset, str):
        attributes = _pytracking_attribute_infos(dataset, dataset_object, names)
    return DatasetView(name, sequences, attributes)


def attribute_infos_from_flags(flags_by_sequence: Mapping[str, latot_attributes.Flags]) -> Dict[str, AttributeInfo]:
    """Attribute infos for a plain list of sequences, from ``{sequence: flags}``."""
    available = latot_attributes.availability(flags_by_sequence)
    return {a: AttributeInfo(a, latot_attributes.LONG_NAMES[a], available[a],
                             tuple(latot_attributes.members(flags_by_sequence, a)) if available[a] else (),
                             None if available[a] else 'no flag for some sequences')
            for a in latot_attributes.ATTRIBUTES}


# The result of an evaluation --------------------------------------------------------------------------------------

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


def protocol_description() -> Dict:
    return {
        'name': 'LaTOT', 'version': PROTOCOL_VERSION,
        'PR': 'share of valid frames with centre error <= {:g} px'.format(metrics.PR_THRESHOLD),
        'NPR': 'mean over t = 0, 0.01, ..., 0.50 of the share of valid frames with normalised centre error <= t '
               '(centre difference divided by the ground truth width / height per axis)',
        'SR': 'mean over t = 0, 0.05, ..., 1 of the share of valid frames with IoU > t',
        'averaging': 'per sequence, then the mean over sequences with at least one valid frame',
        'valid_frames': 'ground truth x, y, w, h all > 0 and finite, and target visible (pytracking robust rule); '
                        'invalid frames are excluded from numerator and denominator',
        'first_frame': 'counted, with the prediction replaced by the ground truth',
        'no_box': 'a prediction with zero width or height is replaced by the previous frame\'s prediction',
        'invalid_predictions': 'NaN, infinite or negative width/height: an error naming the file and line',
        'missing_results': 'an error listing them; with skip_missing the sequence is left out for every tracker',
        'unscored_sequences': 'a sequence without a valid frame has no score (null) and is left out of averages',
        'tolerance': metrics.TOLERANCE,
        'thresholds': {'precision_px': metrics.PRECISION_THRESHOLDS.tolist(),
                       'norm_precision': metrics.NORM_PRECISION_THRESHOLDS.tolist(),
                       'success': metrics.SUCCESS_THRESHOLDS.tolist()},
    }


# Evaluation -------------------------------------------------------------------------------------------------------

def default_report_name(dataset_name: str) -> str:
    """'latot_protocol_<dataset>': apart from the folders of pytracking's own plot_results, whose plot file names
    are the same."""
    return 'latot_protocol_{}'.format(dataset_name)


def default_output_dir(report_name: str) -> str:
    from pytracking.evaluation.environment import env_settings
    return os.path.join(env_settings().result_plot_path, report_name)


def _load_cache(path: str) -> Dict[str, Dict]:
    try:
        with open(path, 'rb') as f:
            data = pickle.load(f)
        if isinstance(data, dict) and data.get('format') == _CACHE_FORMAT:
            return data['entries']
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, KeyError, ImportError, TypeError, ValueError):
        pass    # no cache, or an unreadable one: everything is recomputed and the file rewritten
    return {}


def _save_cache(path: str, entries: Dict[str, Dict], used: Iterable[str]) -> None:
    """Keeps this run's entries and the most recent others (switching between tracker sets stays cached)."""
    used = list(dict.fromkeys(used))
    others = [key for key in entries if key not in set(used)]
    room = max(0, _CACHE_MAX_ENTRIES - len(used))
    kept = others[len(others) - room:] if room else []
    files.write_pickle(path, {'format': _CACHE_FORMAT, 'entries': {key: entries[key] for key in kept + used}})


def _ground_truth(sequences: Sequence) -> Dict[str, Any]:
    gts, valid, lengths = [], [], []
    for sequence in sequences:
        gt = np.asarray(sequence.ground_truth_rect, dtype=np.float64).reshape(-1, 4)
        visible = getattr(sequence, 'target_visible', None)
        if visible is not None and len(visible) != len(gt):
            raise ValueError('Sequence {}: {} visibility flags for {} ground-truth boxes'.format(
                sequence.name, len(visible), len(gt)))
        gts.append(gt)
        valid.append(metrics.valid_ground_truth(gt, visible))
        lengths.append(len(gt))
    gt = np.concatenate(gts) if gts else np.zeros((0, 4))
    valid = np.concatenate(valid) if valid else np.zeros(0, dtype=bool)
    lengths = np.asarray(lengths, dtype=np.int64)
    key = fingerprint([str(PROTOCOL_VERSION).encode(), '\n'.join(s.name for s in sequences).encode(),
                       lengths.tobytes(), gt.tobytes(), valid.tobytes()])
    return dict(gt=gt, valid=valid, lengths=lengths, fingerprint=key)


def _evaluate_source(source: ResultSource, sequences: Sequence, truth: Dict[str, Any],
                     cache: Dict[str, Dict], reuse: bool = True) -> tuple:
    """(fingerprint, curves) of one tracker; from the cache when nothing it depends on has changed."""
    paths = [source.result_path(s.name) for s in sequences]
    data = [read_result_bytes(p) for p in paths]
    key = fingerprint([truth['fingerprint'].encode()] + data)
    entry = cache.get(key) if reuse else None
    if entry is not None:
        return key, metrics.Curves(**entry)
    boxes = [parse_result(d, p, n) for d, p, n in zip(data, paths, truth['lengths'])]
    curves = metrics.evaluate_concatenated(np.concatenate(boxes), truth['gt'], truth['valid'], truth['lengths'])
    cache[key] = curves._asdict()
    return key, curves


def _merge_runs(sources: List[ResultSource], curves: Dict[str, metrics.Curves]):
    """Averages the per-sequence curves of the runs of one pytracking tracker (pytracking's ``merge_results``)."""
    groups: Dict[tuple, List[ResultSource]] = {}
    for source in sources:
        groups.setdefault(source.group, []).append(source)
    merged_trackers, merged_curves = [], {}
    for members in groups.values():
        first = members[0]
        label = first.merged_label if len(members) > 1 else first.label
        runs = [curves[m.label] for m in members]
        merged_curves[label] = metrics.Curves(
            *(np.mean([getattr(r, f) for r in runs], axis=0) for f in ('precision', 'norm_precision', 'success')),
            num_valid=runs[0].num_valid)
        info = first.describe()
        info['label'] = label
        if len(members) > 1:
            info['run_id'] = [m.run_id for m in members]
            info['results_dir'] = [m.describe()['results_dir'] for m in members]
        merged_trackers.append(info)
    return merged_trackers, merged_curves


def evaluate(trackers: Iterable, dataset: Union[str, Any] = 'latot_test', *, report_name: Optional[str] = None,
             output_dir: Optional[str] = None, skip_missing: bool = False, merge_runs: bool = False,
             force_evaluation: bool = False, use_cache: bool = True,
             attributes: Optional[Mapping[str, latot_attributes.Flags]] = None, verbose: bool = True,
             **dataset_kwargs) -> Evaluation:
    """Scores ``trackers`` on ``dataset`` under the LaTOT protocol (definitions: :mod:`metrics`).

    args:
        trackers - any mix of pytracking Trackers (``trackerlist(...)``), :class:`ResultSource` and folder paths
        dataset - a pytracking dataset name ('latot_test', 'latot', 'otb', ...), a dataset object or Sequences
        report_name - folder name under pytracking's ``result_plot_path`` for the cache
                      (default 'latot_protocol_<dataset>')
        output_dir - the folder instead of ``result_plot_path/<report_name>``
        skip_missing - evaluate only the sequences every tracker has results for (otherwise an error lists the
                       missing files), as pytracking's ``skip_missing_seq``
        merge_runs - average the runs of a pytracking tracker, as pytracking's ``merge_results``
        force_evaluation - recompute everything (the cache is rewritten)
        attributes - ``{sequence: flags}`` when ``dataset`` is a plain list of Sequences
        dataset_kwargs - passed to the dataset's constructor (LaTOT: ``allow_missing=True``, ``root=...``)
    """
    sources = as_sources(trackers)
    if not sources:
        raise ValueError('No trackers to evaluate')
    view = load_dataset_view(dataset, **dataset_kwargs)
    sequences = view.sequences
    if not sequences:
        raise ValueError('Dataset {} has no sequences'.format(view.name))
    attribute_infos = view.attributes
    if attributes is not None:
        unflagged = [s.name for s in sequences if s.name not in attributes]
        if unflagged:
            raise ValueError('attributes: no flags for {} of {} sequences ({}{})'.format(
                len(unflagged), len(sequences), ', '.join(unflagged[:10]), ' ...' if len(unflagged) > 10 else ''))
        attribute_infos = attribute_infos_from_flags({s.name: attributes[s.name] for s in sequences})

    names = [s.name for s in sequences]
    missing = missing_results(sources, names)
    if missing and not skip_missing:
        raise ResultsError(missing_results_message(missing, sources, len(names)))
    skipped = {name for absent in missing.values() for name in absent}
    if skipped:
        sequences = [s for s in sequences if s.name not in skipped]
        if verbose:
            print('Skipping {} of {} sequences that some tracker has no results for ({})'.format(
                len(skipped), len(names), '; '.join('{}: {}'.format(k, len(v)) for k, v in missing.items())),
                file=sys.stderr)
        if not sequences:
            raise ResultsError('No sequence has results from every tracker:\n' +
                               missing_results_message(missing, sources, len(names)))

    truth = _ground_truth(sequences)
    if report_name is None:
        report_name = default_report_name(view.name)
    cache_path = os.path.join(output_dir or default_output_dir(report_name), CACHE_FILE_NAME)
    # Forcing recomputes this evaluation's entries but keeps the others.
    cache = _load_cache(cache_path) if use_cache else {}
    used, curves = [], {}
    for source in sources:
        key, curves[source.label] = _evaluate_source(source, sequences, truth, cache, reuse=not force_evaluation)
        used.append(key)
    if use_cache:
        _save_cache(cache_path, cache, used)

    tracker_infos = [s.describe() for s in sources]
    if merge_runs:
        tracker_infos, curves = _merge_runs(sources, curves)
    return Evaluation(view.name, [s.name for s in sequences], truth['lengths'],
                      next(iter(curves.values())).num_valid, tracker_infos, curves, attribute_infos,
                      {label: absent for label, absent in missing.items()},
                      [getattr(s, 'object_class', None) for s in sequences])
