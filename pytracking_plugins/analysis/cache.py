"""The analysis cache: each tracker's per-sequence curves under a fingerprint of everything they depend on.

Kept as ``latot_eval_data.npz`` next to the report, numpy arrays read with ``allow_pickle=False``, so a cache file
from anywhere can never run code. An entry's key hashes everything its curves came from (protocol version, sequences,
ground truth, the bytes of every result file); it carries a hash of key and values, is used only for the frame counts
it was made for, and its values must be curves this module computes (shares in [0, 1] of whole frame counts,
monotone, NaN only as whole rows). Anything else is dropped with one line on stderr, recomputed and rewritten.
Layout: ``format``, ``keys`` (least recently used first), ``digests``, and per entry ``i`` the float64
``entry<i>_precision`` [S, 51], ``_norm_precision`` [S, 51], ``_success`` [S, 21] and the int64 ``entry<i>_num_valid``,
``_repaired``, ``_cut_lines`` [S].
"""
import hashlib
import os
import re
import sys
import zipfile
from typing import Dict, List, Optional, Tuple

import numpy as np

from pytracking_plugins.analysis import metrics
from ltr_plugins.common.atomic_files import atomic_path

CACHE_FILE_NAME = 'latot_eval_data.npz'
CACHE_FORMAT = 4            # 1 was a pickle, never read any more; 2 had no repair counts; 3 no digests
MAX_ENTRIES = 200
_KEY = re.compile(r'^[0-9a-f]{40}$')
_CURVE_COLUMNS = {'precision': len(metrics.PRECISION_THRESHOLDS),
                  'norm_precision': len(metrics.NORM_PRECISION_THRESHOLDS),
                  'success': len(metrics.SUCCESS_THRESHOLDS)}


_COUNT_FIELDS = ('num_valid', 'repaired', 'cut_lines')


class InvalidCache(ValueError):
    """A cache file that is not what this module writes."""


def _member(index: int, field: str) -> str:
    return 'entry{}_{}'.format(index, field)


def entry_digest(key: str, curves: metrics.Curves) -> str:
    """The hash of an entry: its key and every value, so that an edited value no longer matches."""
    digest = hashlib.blake2b(key.encode('ascii'), digest_size=20)
    for field in metrics.Curves._fields:
        value = np.ascontiguousarray(getattr(curves, field),
                                     dtype=np.int64 if field in _COUNT_FIELDS else np.float64)
        digest.update(field.encode('ascii'))
        digest.update(repr(value.shape).encode('ascii'))
        digest.update(value.tobytes())
    return digest.hexdigest()


def _is_whole(counts: np.ndarray) -> np.ndarray:
    return np.abs(counts - np.round(counts)) <= 1e-6


def invalid_values(curves: metrics.Curves) -> Optional[str]:
    """Why ``curves`` cannot be what the metrics compute (None when they can): negative counts; shares outside
    [0, 1], that are not whole frame counts of their sequence's denominator, or not monotone; NaN other than whole
    rows; a scored row for a sequence without frames to score."""
    num_valid = curves.num_valid
    for field in _COUNT_FIELDS:
        if np.any(getattr(curves, field) < 0):
            return 'negative {}'.format(field)
    for field, falling in (('precision', False), ('norm_precision', False), ('success', True)):
        values = getattr(curves, field)
        missing = np.isnan(values)
        if np.any(missing.any(axis=1) & ~missing.all(axis=1)):
            return '{} curve partly NaN'.format(field)
        rows = ~missing.all(axis=1)
        if np.any(rows & (num_valid == 0)):
            return '{} curve for a sequence without frames to score'.format(field)
        finite = values[rows]
        if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
            outside = finite[(finite < 0.0) | (finite > 1.0)][0]
            return '{} value {:g} outside [0, 1]'.format(field, outside)
        if not np.all(_is_whole(finite * num_valid[rows, None])):
            return '{} values that are not frame counts of their sequences'.format(field)
        steps = np.diff(finite, axis=1)
        if np.any(steps > 1e-12 if falling else steps < -1e-12):
            return '{} curve not {} along its thresholds'.format(field, 'falling' if falling else 'rising')
    return None


def _read_entries(path: str) -> Tuple[Dict[str, metrics.Curves], List[str]]:
    """The valid entries of a cache file, in order, and why the others were dropped; :class:`InvalidCache` for a
    file this module did not write."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise InvalidCache('not an npz archive ({})'.format(error)) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InvalidCache('a single array, not an npz archive')
    with archive:
        try:
            fmt = archive['format']
            if fmt.shape != (1,) or fmt.dtype.kind not in 'iu' or int(fmt[0]) != CACHE_FORMAT:
                raise InvalidCache('format {} (expected {})'.format(fmt.tolist(), CACHE_FORMAT))
            keys = archive['keys']
            if keys.ndim != 1 or keys.dtype.kind != 'U' or len(set(keys.tolist())) != len(keys) \
                    or not all(_KEY.match(k) for k in keys.tolist()):
                raise InvalidCache('the keys are not distinct fingerprints')
            digests = archive['digests']
            if digests.shape != keys.shape or digests.dtype.kind != 'U':
                raise InvalidCache('no digest per entry')
            entries, dropped = {}, []
            for index, key in enumerate(keys.tolist()):
                arrays = {field: archive[_member(index, field)] for field in metrics.Curves._fields}
                num_valid = arrays['num_valid']
                for field in _COUNT_FIELDS:
                    count = arrays[field]
                    if count.ndim != 1 or count.dtype != np.int64 or np.any(count < 0) \
                            or len(count) != len(num_valid):
                        raise InvalidCache('entry {}: bad {}'.format(index, field))
                for field, columns in _CURVE_COLUMNS.items():
                    if arrays[field].dtype != np.float64 or arrays[field].shape != (len(num_valid), columns):
                        raise InvalidCache('entry {}: bad {} array'.format(index, field))
                curves = metrics.Curves(**arrays)
                reason = ('its values do not match its digest' if entry_digest(key, curves) != digests[index]
                          else invalid_values(curves))
                if reason is None:
                    entries[key] = curves
                else:
                    dropped.append('entry {}: {}'.format(index, reason))
        except KeyError as error:
            raise InvalidCache('missing array {}'.format(error)) from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:    # pickled members among them
            if isinstance(error, InvalidCache):
                raise
            raise InvalidCache(str(error)) from None
    return entries, dropped


class CurveCache:
    """Curves by fingerprint, loaded from and saved to one file; remembers which entries this run used."""

    def __init__(self, path: str, entries: Optional[Dict[str, metrics.Curves]] = None):
        self.path = path
        self.entries: Dict[str, metrics.Curves] = dict(entries or {})
        self.used: List[str] = []

    @classmethod
    def load(cls, path: str) -> 'CurveCache':
        """The cache at ``path``; empty when there is none, or (with a line on stderr) when it is not valid; entries
        that are not valid are dropped with one line saying why."""
        entries: Dict[str, metrics.Curves] = {}
        if os.path.exists(path):
            try:
                entries, dropped = _read_entries(path)
            except InvalidCache as error:
                print('Ignoring the analysis cache {}: {}; every score is recomputed and the file '
                      'rewritten'.format(path, error), file=sys.stderr)
            else:
                if dropped:
                    print('Ignoring {} of the {} entries of the analysis cache {} ({}); their scores are recomputed '
                          'and the file rewritten'.format(len(dropped), len(dropped) + len(entries), path,
                                                          '; '.join(dropped)), file=sys.stderr)
        return cls(path, entries)

    def get(self, key: str, num_valid: np.ndarray) -> Optional[metrics.Curves]:
        """The curves stored under ``key`` if they were made for sequences with these frame counts (``num_valid``,
        the curves' denominators), else None; marks the key as used."""
        self.used.append(key)
        curves = self.entries.get(key)
        if curves is not None and not np.array_equal(curves.num_valid, np.asarray(num_valid)):
            print('Ignoring entry {} of the analysis cache {}: it was made for other frame counts than these '
                  'sequences have; its scores are recomputed'.format(key[:12], self.path), file=sys.stderr)
            del self.entries[key]
            return None
        return curves

    def put(self, key: str, curves: metrics.Curves) -> None:
        self.entries[key] = curves
        if key not in self.used:
            self.used.append(key)

    def save(self) -> str:
        """Writes this run's entries and the most recent others (switching between tracker sets stays cached)."""
        used = [key for key in dict.fromkeys(self.used) if key in self.entries]
        others = [key for key in self.entries if key not in set(used)]
        room = max(0, MAX_ENTRIES - len(used))
        kept = others[len(others) - room:] if room else []
        keys = kept + used
        arrays = {'format': np.array([CACHE_FORMAT], dtype=np.int64), 'keys': np.array(keys, dtype='<U40'),
                  'digests': np.array([entry_digest(key, self.entries[key]) for key in keys], dtype='<U40')}
        for index, key in enumerate(keys):
            for field, value in self.entries[key]._asdict().items():
                arrays[_member(index, field)] = np.asarray(value, dtype=np.int64 if field in _COUNT_FIELDS
                                                           else np.float64)
        with atomic_path(self.path) as temporary:
            with open(temporary, 'wb') as f:
                np.savez(f, **arrays)
        return self.path

