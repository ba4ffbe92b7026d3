"""The analysis cache: each tracker's per-sequence curves under a fingerprint of everything they depend on.

Kept as ``latot_eval_data.npz`` next to the report (as pytracking keeps ``eval_data.pkl`` under
``result_plot_path/<report_name>``), but in a data format: numpy arrays read with ``allow_pickle=False``, so a cache
file from anywhere (a shared report folder, a results archive) can never run code. A file that is not a valid cache
is ignored with a line saying so, and every score recomputed; nothing stale is read back, because a key covers the
protocol version, the sequences, the ground truth and the bytes of every result file.

Layout: ``format`` (the format number), ``keys`` (the fingerprints, least recently used first) and per entry ``i``
the arrays ``entry<i>_precision`` [S, 51], ``entry<i>_norm_precision`` [S, 51], ``entry<i>_success`` [S, 21]
(float64), ``entry<i>_num_valid``, ``entry<i>_repaired`` and ``entry<i>_cut_lines`` [S] (int64).
"""
import os
import re
import sys
import zipfile
from typing import Dict, List, Optional

import numpy as np

from pytracking_plugins.analysis import metrics
from ltr_plugins.common.atomic_files import atomic_path

CACHE_FILE_NAME = 'latot_eval_data.npz'
CACHE_FORMAT = 3            # 1 was a pickle, which is never read any more; 2 had no repair counts
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


def _read_entries(path: str) -> Dict[str, metrics.Curves]:
    """The entries of a cache file, in order; :class:`InvalidCache` for anything this module did not write."""
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
            entries = {}
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
                entries[key] = metrics.Curves(**arrays)
        except KeyError as error:
            raise InvalidCache('missing array {}'.format(error)) from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:    # pickled members among them
            if isinstance(error, InvalidCache):
                raise
            raise InvalidCache(str(error)) from None
    return entries


class CurveCache:
    """Curves by fingerprint, loaded from and saved to one file; remembers which entries this run used."""

    def __init__(self, path: str, entries: Optional[Dict[str, metrics.Curves]] = None):
        self.path = path
        self.entries: Dict[str, metrics.Curves] = dict(entries or {})
        self.used: List[str] = []

    @classmethod
    def load(cls, path: str) -> 'CurveCache':
        """The cache at ``path``; empty when there is none, or (with a line on stderr) when it is not valid."""
        entries: Dict[str, metrics.Curves] = {}
        if os.path.exists(path):
            try:
                entries = _read_entries(path)
            except InvalidCache as error:
                print('Ignoring the analysis cache {}: {}; every score is recomputed and the file '
                      'rewritten'.format(path, error), file=sys.stderr)
        return cls(path, entries)

    def get(self, key: str, num_sequences: int) -> Optional[metrics.Curves]:
        """The curves stored under ``key`` (for ``num_sequences`` sequences), or None; marks the key as used."""
        self.used.append(key)
        curves = self.entries.get(key)
        return curves if curves is not None and len(curves.num_valid) == num_sequences else None

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
        arrays = {'format': np.array([CACHE_FORMAT], dtype=np.int64), 'keys': np.array(keys, dtype='<U40')}
        for index, key in enumerate(keys):
            for field, value in self.entries[key]._asdict().items():
                arrays[_member(index, field)] = np.asarray(value, dtype=np.int64 if field in _COUNT_FIELDS
                                                           else np.float64)
        with atomic_path(self.path) as temporary:
            with open(temporary, 'wb') as f:
                np.savez(f, **arrays)
        return self.path

