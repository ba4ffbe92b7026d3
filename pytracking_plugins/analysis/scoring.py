"""Scores many trackers on a dataset under the LaTOT protocol: reads the results, uses the cache, merges runs.

The pieces: :mod:`.datasets` (sequences and attributes of a dataset), :mod:`.results` (where results come from and
how they are read), :mod:`.metrics` (the definitions), :mod:`.cache` (curves by fingerprint), :mod:`.evaluation`
(the result object). This module only puts them together.
"""
import os
import sys
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from pytracking_plugins import latot_attributes
from pytracking_plugins.analysis import metrics
from pytracking_plugins.analysis.cache import CACHE_FILE_NAME, CurveCache
from pytracking_plugins.analysis.datasets import attribute_infos_from_flags, load_dataset_view
from pytracking_plugins.analysis.evaluation import Evaluation
from pytracking_plugins.analysis.protocol import PROTOCOL_VERSION
from pytracking_plugins.analysis.results import (ResultSource, ResultsError, as_sources, fingerprint,
                                                 missing_results, missing_results_message, parse_result,
                                                 read_result_bytes)


def default_report_name(dataset_name: str) -> str:
    """'latot_protocol_<dataset>': apart from the folders of pytracking's own plot_results, whose plot file names
    are the same."""
    return 'latot_protocol_{}'.format(dataset_name)


def default_output_dir(report_name: str) -> str:
    from pytracking.evaluation.environment import env_settings
    return os.path.join(env_settings().result_plot_path, report_name)


def cache_path(output_dir: str) -> str:
    return os.path.join(output_dir, CACHE_FILE_NAME)


def save_cache(cache: CurveCache) -> bool:
    """Saves the cache into its folder (created: it is the evaluation's own output folder); False, with a line on
    stderr, if that failed (the scores are not lost, only the cache)."""
    folder = os.path.dirname(os.path.abspath(cache.path))
    try:
        os.makedirs(folder, exist_ok=True)
        cache.save()
        return True
    except OSError as error:
        print('Could not write the analysis cache into {}: {}; the next run recomputes the scores'.format(
            folder, error.strerror or error), file=sys.stderr)
        return False


def _ground_truth(sequences: Sequence) -> Dict[str, Any]:
    gts, valid, lengths = [], [], []
    for sequence in sequences:
        gt = np.asarray(sequence.ground_truth_rect, dtype=np.float64).reshape(-1, 4)
        visible = sequence.target_visible
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
                     cache: Optional[CurveCache], reuse: bool = True) -> metrics.Curves:
    """Curves of one tracker; from the cache when nothing they depend on has changed."""
    paths = [source.result_path(s.name) for s in sequences]
    data = [read_result_bytes(p) for p in paths]
    key = fingerprint([truth['fingerprint'].encode()] + data)
    if cache is not None and reuse:
        cached = cache.get(key, len(sequences))
        if cached is not None:
            return cached
    boxes = [parse_result(d, p, n) for d, p, n in zip(data, paths, truth['lengths'])]
    curves = metrics.evaluate_concatenated(np.concatenate(boxes), truth['gt'], truth['valid'], truth['lengths'])
    if cache is not None:
        cache.put(key, curves)
    return curves


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
             force_evaluation: bool = False, use_cache: bool = True, cache: Optional[CurveCache] = None,
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
        use_cache - read and write the cache ``<output_dir>/latot_eval_data.npz``
        cache - a cache the caller loaded and saves itself (the command saves it after printing the scores);
                by default the cache is loaded here and saved before returning (a write failure is reported
                on stderr and loses nothing but the cache)
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
    own_cache = cache is None and use_cache
    if own_cache:
        folder = output_dir or default_output_dir(report_name or default_report_name(view.name))
        cache = CurveCache.load(cache_path(folder))
    # Forcing recomputes this evaluation's entries but keeps the others.
    curves = {source.label: _evaluate_source(source, sequences, truth, cache if use_cache else None,
                                             reuse=not force_evaluation)
              for source in sources}
    if own_cache:
        save_cache(cache)

    tracker_infos = [s.describe() for s in sources]
    if merge_runs:
        tracker_infos, curves = _merge_runs(sources, curves)
    return Evaluation(view.name, [s.name for s in sequences], truth['lengths'],
                      next(iter(curves.values())).num_valid, tracker_infos, curves, attribute_infos,
                      {label: absent for label, absent in missing.items()},
                      [s.object_class for s in sequences])
