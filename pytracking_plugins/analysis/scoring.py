"""Scores many trackers on a dataset under a LaTOT protocol (paper or toolkit): reads the results, uses the cache,
merges runs.

The pieces: :mod:`.datasets` (sequences and attributes of a dataset), :mod:`.results` (where results come from and
how they are read), :mod:`.metrics` (the definitions), :mod:`.cache` (curves by fingerprint), :mod:`.evaluation`
(the result object). This module only puts them together.
"""
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from ltr_plugins import latot_attributes
from pytracking_plugins.analysis import metrics
from pytracking_plugins.analysis.cache import CACHE_FILE_NAME, CurveCache
from pytracking_plugins.analysis.datasets import attribute_infos_from_flags, load_dataset_view
from pytracking_plugins.analysis.evaluation import Evaluation
from pytracking_plugins.analysis.protocol import PROTOCOL_VERSION, Protocol
from pytracking_plugins.analysis.results import (ResultSource, ResultsError, as_sources, fingerprint,
                                                 missing_results, missing_results_message, parse_result,
                                                 parse_result_toolkit, read_result_bytes, check_result_paths)
from pytracking_plugins.analysis.uncertainty import DEFAULT_RESAMPLES, DEFAULT_SEED, check_resamples


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


def _absent_flags(sequence, given: Optional[Mapping[str, Any]], dataset_flags: Optional[Dict[str, Any]],
                  num_frames: int) -> np.ndarray:
    """The toolkit protocol's absent flags: given, else the LaTOT dataset's flag files (none: no frame absent),
    else where pytracking's ``target_visible`` is False (LaSOT's occlusion / out-of-view flags)."""
    if given is not None and sequence.name in given:
        flags = given[sequence.name]
    elif dataset_flags is not None:
        flags = dataset_flags.get(sequence.name)
    else:
        visible = sequence.target_visible
        flags = None if visible is None else ~np.asarray(visible, dtype=bool)
    if flags is None:
        return np.zeros(num_frames, dtype=bool)
    flags = np.asarray(flags, dtype=bool).reshape(-1)
    if len(flags) != num_frames:
        raise ValueError('Sequence {}: {} absent flags for {} ground-truth boxes'.format(
            sequence.name, len(flags), num_frames))
    return flags


def _ground_truth(sequences: Sequence, protocol: Protocol, absent_flags: Optional[Mapping[str, Any]] = None,
                  dataset_flags: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    gts, valid, absent, lengths = [], [], [], []
    for sequence in sequences:
        gt = np.asarray(sequence.ground_truth_rect, dtype=np.float64).reshape(-1, 4)
        visible = sequence.target_visible
        if visible is not None and len(visible) != len(gt):
            raise ValueError('Sequence {}: {} visibility flags for {} ground-truth boxes'.format(
                sequence.name, len(visible), len(gt)))
        gts.append(gt)
        if protocol is Protocol.TOOLKIT:
            absent.append(_absent_flags(sequence, absent_flags, dataset_flags, len(gt)))
        else:
            if absent_flags is not None and sequence.name in absent_flags:
                given = _absent_flags(sequence, absent_flags, None, len(gt))
                visible = ~given if visible is None else np.asarray(visible, dtype=bool) & ~given
            valid.append(metrics.valid_ground_truth(gt, visible))
        lengths.append(len(gt))
    gt = np.concatenate(gts) if gts else np.zeros((0, 4))
    frames = valid if protocol is Protocol.PAPER else absent
    flags = np.concatenate(frames) if frames else np.zeros(0, dtype=bool)
    lengths = np.asarray(lengths, dtype=np.int64)
    key = fingerprint([str(PROTOCOL_VERSION).encode(), protocol.value.encode(),
                       '\n'.join(s.name for s in sequences).encode(), lengths.tobytes(), gt.tobytes(), flags.tobytes()])
    truth = dict(gt=gt, lengths=lengths, fingerprint=key, protocol=protocol)
    if protocol is Protocol.PAPER:
        truth['valid'] = flags
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        truth['num_valid'] = (np.add.reduceat(flags.astype(np.int64), starts) if len(lengths)
                              else np.zeros(0, dtype=np.int64))
    else:
        with np.errstate(invalid='ignore'):
            positive = np.all(gt > 0, axis=1)
        truth.update(num_valid=lengths, absent=flags, frame_counts={'absent_flagged': int(flags.sum()),
                                                 'ground_truth_not_all_positive': int(np.sum(~positive & ~flags))})
    return truth


def _evaluate_source(source: ResultSource, sequences: Sequence, truth: Dict[str, Any],
                     cache: Optional[CurveCache], reuse: bool = True) -> metrics.Curves:
    """Curves of one tracker; from the cache when nothing they depend on has changed."""
    paths = [source.result_path(s.name) for s in sequences]
    data = [read_result_bytes(p) for p in paths]
    key = fingerprint([truth['fingerprint'].encode()] + data)
    if cache is not None and reuse:
        cached = cache.get(key, truth['num_valid'])
        if cached is not None:
            return cached
    if truth['protocol'] is Protocol.TOOLKIT:
        parsed = [parse_result_toolkit(d, p, n) for d, p, n in zip(data, paths, truth['lengths'])]
        curves = metrics.evaluate_toolkit_concatenated(np.concatenate([boxes for boxes, _ in parsed]), truth['gt'],
                                                       truth['absent'], truth['lengths'])
        curves = curves._replace(cut_lines=np.asarray([cut for _, cut in parsed], dtype=np.int64))
    else:
        boxes = [parse_result(d, p, n) for d, p, n in zip(data, paths, truth['lengths'])]
        curves = metrics.evaluate_concatenated(np.concatenate(boxes), truth['gt'], truth['valid'], truth['lengths'])
    if cache is not None:
        cache.put(key, curves)
    return curves


REPAIRED_FILES_SHOWN = 10


def repair_summary(curves: metrics.Curves, paths: Sequence[str]) -> Dict[str, Any]:
    """What the toolkit protocol repaired in one tracker's results (``paths``: its result file per sequence):
    frames, sequences, files cut, lines cut, and which files (``{path: frames}``, ``{path: lines}``)."""
    return {'frames_repaired': int(curves.repaired.sum()), 'sequences_repaired': int(np.sum(curves.repaired > 0)),
            'files_cut': int(np.sum(curves.cut_lines > 0)), 'lines_cut': int(curves.cut_lines.sum()),
            'repaired_files': {p: int(n) for p, n in zip(paths, curves.repaired) if n},
            'cut_files': {p: int(n) for p, n in zip(paths, curves.cut_lines) if n}}


def _files(counts: Dict[str, int], unit: str) -> str:
    """'in FOLDER: a.txt (2 frames), b.txt (1 frame)' (the folder once when they share one), at most ten."""
    paths = list(counts)
    folders = {os.path.dirname(p) for p in paths}
    shared = folders.pop() if len(folders) == 1 else None
    shown = ', '.join('{} ({} {}{})'.format(os.path.basename(p) if shared else p, counts[p], unit,
                                            's' if counts[p] > 1 else '') for p in paths[:REPAIRED_FILES_SHOWN])
    more = len(paths) - REPAIRED_FILES_SHOWN
    return '{}{}{}'.format('in {}: '.format(shared) if shared else '', shown,
                           ' and {} more (all in the JSON\'s repairs)'.format(more) if more > 0 else '')


def repair_warning(label: str, summary: Dict[str, Any]) -> Optional[str]:
    """One line per tracker whose results the toolkit protocol repaired, naming the files (None when nothing
    was)."""
    parts = []
    if summary['frames_repaired']:
        parts.append('replaced {} prediction(s) in {} sequence(s) by the previous frame\'s (NaN or width/height '
                     '<= 0), {}'.format(summary['frames_repaired'], summary['sequences_repaired'],
                                        _files(summary.get('repaired_files', {}), 'frame')))
    if summary['files_cut']:
        parts.append('cut {} result file(s) longer than the annotation ({} line(s)), {}'.format(
            summary['files_cut'], summary['lines_cut'], _files(summary.get('cut_files', {}), 'line')))
    return 'Warning: {}: the toolkit protocol {}'.format(label, '; and '.join(parts)) if parts else None


def _merge_runs(sources: List[ResultSource], curves: Dict[str, metrics.Curves], repairs: Dict[str, Dict]):
    """Averages the per-sequence curves of the runs of one pytracking tracker (pytracking's ``merge_results``),
    and adds up their repairs."""
    groups: Dict[tuple, List[ResultSource]] = {}
    for source in sources:
        groups.setdefault(source.group, []).append(source)
    merged_trackers, merged_curves, merged_repairs = [], {}, {}
    for members in groups.values():
        first = members[0]
        label = first.merged_label
        runs = [curves[m.label] for m in members]
        merged_curves[label] = metrics.Curves(
            *(np.mean([getattr(r, f) for r in runs], axis=0) for f in ('precision', 'norm_precision', 'success')),
            num_valid=runs[0].num_valid, repaired=np.sum([r.repaired for r in runs], axis=0),
            cut_lines=np.sum([r.cut_lines for r in runs], axis=0))
        if repairs:
            parts = [repairs[m.label] for m in members]
            merged_repairs[label] = dict(repair_summary(merged_curves[label], []), **{
                key: {path: count for part in parts for path, count in part[key].items()}
                for key in ('repaired_files', 'cut_files')})
        info = first.describe()
        info['label'] = label
        if len(members) > 1:
            info['run_id'] = [m.run_id for m in members]
            info['results_dir'] = [m.describe()['results_dir'] for m in members]
        merged_trackers.append(info)
    return merged_trackers, merged_curves, merged_repairs


@dataclass(frozen=True)
class ScoringOptions:
    """How :func:`evaluate` scores: the protocol, the toolkit protocol's absent flags and the intervals' bootstrap."""
    protocol: Protocol = Protocol.PAPER
    absent_flags: Optional[Mapping[str, Any]] = None
    bootstrap_resamples: int = DEFAULT_RESAMPLES
    bootstrap_seed: int = DEFAULT_SEED

    @classmethod
    def checked(cls, protocol: Union[str, Protocol], absent_flags: Optional[Mapping[str, Any]],
                bootstrap_resamples: int, bootstrap_seed: int) -> 'ScoringOptions':
        """The options with the protocol parsed and the number of resamples checked (ValueError otherwise)."""
        protocol = Protocol.parse(protocol)
        check_resamples(bootstrap_resamples)
        return cls(protocol, absent_flags, bootstrap_resamples, bootstrap_seed)


def _attribute_infos(view, sequences: Sequence, attributes: Optional[Mapping[str, latot_attributes.Flags]]):
    """The dataset's attributes, or those of the caller's ``{sequence: flags}`` (one entry per sequence)."""
    if attributes is None:
        return view.attributes
    unflagged = [s.name for s in sequences if s.name not in attributes]
    if unflagged:
        raise ValueError('attributes: no flags for {} of {} sequences ({}{})'.format(
            len(unflagged), len(sequences), ', '.join(unflagged[:10]), ' ...' if len(unflagged) > 10 else ''))
    return attribute_infos_from_flags({s.name: attributes[s.name] for s in sequences})


def _sequences_with_results(sources: List[ResultSource], sequences: Sequence, skip_missing: bool, verbose: bool):
    """``(sequences, missing)``: the sequences to score and ``{label: [sequence names]}`` of the missing results;
    missing results are an error, or with ``skip_missing`` their sequences are left out."""
    names = [s.name for s in sequences]
    check_result_paths(sources, names)
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
    return sequences, missing


def _toolkit_repairs(sources: List[ResultSource], sequences: Sequence, curves: Dict[str, metrics.Curves],
                     verbose: bool) -> Dict[str, Dict[str, Any]]:
    """Each tracker's repairs under the toolkit protocol, with a warning line per tracker that had any."""
    repairs = {s.label: repair_summary(curves[s.label], [s.result_path(q.name) for q in sequences])
               for s in sources}
    for label, summary in repairs.items():
        warning = repair_warning(label, summary)
        if warning and verbose:
            print(warning, file=sys.stderr)
    return repairs


def evaluate(trackers: Iterable, dataset: Union[str, Any] = 'latot_test', *, report_name: Optional[str] = None,
             output_dir: Optional[str] = None, skip_missing: bool = False, merge_runs: bool = False,
             force_evaluation: bool = False, use_cache: bool = True, cache: Optional[CurveCache] = None,
             attributes: Optional[Mapping[str, latot_attributes.Flags]] = None, verbose: bool = True,
             protocol: Union[str, Protocol] = Protocol.PAPER, absent_flags: Optional[Mapping[str, Any]] = None,
             bootstrap_resamples: int = DEFAULT_RESAMPLES, bootstrap_seed: int = DEFAULT_SEED,
             **dataset_kwargs) -> Evaluation:
    """Scores ``trackers`` on ``dataset`` under the LaTOT protocol (definitions: :mod:`metrics`).

    args:
        trackers - any mix of pytracking Trackers (``trackerlist(...)``), :class:`ResultSource` and folder paths
        dataset - a pytracking dataset name ('latot_test', 'latot', 'otb', ...), a dataset object or Sequences
        report_name, output_dir - where the cache is: ``output_dir``, else ``result_plot_path/<report_name>``
                      (default report name 'latot_protocol_<dataset>')
        skip_missing - evaluate only the sequences every tracker has results for (otherwise an error lists the
                       missing files), as pytracking's ``skip_missing_seq``
        merge_runs - average the runs of a pytracking tracker, as pytracking's ``merge_results``
        force_evaluation - recompute everything (the cache is rewritten)
        use_cache - read and write the cache ``<output_dir>/latot_eval_data.npz``
        cache - a cache the caller loaded and saves itself; by default it is loaded here and saved before
                returning (a write failure is reported on stderr and loses nothing but the cache)
        attributes - ``{sequence: flags}`` when ``dataset`` is a plain list of Sequences
        protocol, absent_flags, bootstrap_resamples, bootstrap_seed - see :class:`ScoringOptions`: 'paper'
                      (default) or 'toolkit' (:mod:`.protocol`); ``{sequence: [N] bool}`` for the toolkit protocol
                      instead of the LaTOT flag files or ``~target_visible``; the bootstrap (:mod:`.uncertainty`)
        dataset_kwargs - passed to the dataset's constructor (LaTOT: ``allow_missing=True``, ``root=...``)
    """
    scoring = ScoringOptions.checked(protocol, absent_flags, bootstrap_resamples, bootstrap_seed)
    sources = as_sources(trackers)
    if not sources:
        raise ValueError('No trackers to evaluate')
    view = load_dataset_view(dataset, **dataset_kwargs)
    if not view.sequences:
        raise ValueError('Dataset {} has no sequences'.format(view.name))
    attribute_infos = _attribute_infos(view, view.sequences, attributes)
    sequences, missing = _sequences_with_results(sources, view.sequences, skip_missing, verbose)

    truth = _ground_truth(sequences, scoring.protocol, scoring.absent_flags, view.absent)
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
    repairs = _toolkit_repairs(sources, sequences, curves, verbose) if scoring.protocol is Protocol.TOOLKIT else {}

    tracker_infos = [s.describe() for s in sources]
    if merge_runs:
        tracker_infos, curves, repairs = _merge_runs(sources, curves, repairs)
    return Evaluation(view.name, [s.name for s in sequences], truth['lengths'],
                      next(iter(curves.values())).num_valid, tracker_infos, curves, attribute_infos,
                      {label: absent for label, absent in missing.items()},
                      [s.object_class for s in sequences], protocol=scoring.protocol, repairs=repairs,
                      frame_counts=truth.get('frame_counts', {}), bootstrap_resamples=scoring.bootstrap_resamples,
                      bootstrap_seed=scoring.bootstrap_seed)
