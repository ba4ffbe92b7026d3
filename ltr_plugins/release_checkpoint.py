"""Reads the authors' released MKDNet model file and loads its student into a stock Super-DiMP network.

The released file is a checkpoint of a forked ``dimpnet50`` holding four networks in one state dict: the student
(``feature_extractor``, ``classifier``, ``bb_regressor``; loaded), the teacher (the same names ending in ``_t``) and
two feature discriminators (``feat_D1``, ``feat_D2``), both ignored. The student is exactly Super-DiMP (paper, IV.B),
so it goes into :func:`ltr_plugins.models.super_dimp.build_super_dimp`'s network; the fork's code never runs.
:func:`read_checkpoint` resolves only the globals that rebuild tensors and plain containers and stands every other
one in with an inert :class:`UnresolvedGlobal`, so nothing from the file runs, yet a file naming unknown classes
still yields its tensors, in every format ``torch.save`` has written. Also accepted: a plain state dict, or one under
``'net'`` or ``'state_dict'``; a file that does not fit raises :class:`CheckpointError` naming what is off.
"""
import _compat_pickle
import builtins
import codecs
import collections
import os
import pickle
import types
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import torch

from ltr_plugins.models.super_dimp import build_super_dimp

STUDENT_PREFIXES = ('feature_extractor', 'classifier', 'bb_regressor')
TEACHER_PREFIXES = ('feature_extractor_t', 'classifier_t', 'bb_regressor_t')
DISCRIMINATOR_PREFIXES = ('feat_D1', 'feat_D2')
IGNORED_PREFIXES = TEACHER_PREFIXES + DISCRIMINATOR_PREFIXES
STATE_DICT_KEYS = ('net', 'state_dict')

_EXPECTED_LAYOUT = ("expected the student of a Super-DiMP (dimpnet50) network under 'feature_extractor.*', "
                    "'classifier.*' and 'bb_regressor.*', optionally with the teacher ('feature_extractor_t.*', "
                    "'classifier_t.*', 'bb_regressor_t.*') and the discriminators ('feat_D1.*', 'feat_D2.*'), which "
                    "are ignored")


class CheckpointError(ValueError):
    """A network file that cannot be read as, or does not fit, an MKDNet student / Super-DiMP network."""


# ----------------------------------------------------------------------------------------- restricted unpickling
class UnresolvedGlobal:
    """Stands in for a class or function that a checkpoint names but that is not resolved (nor imported).

    Each such global gets its own subclass, named after it (``module`` and ``name`` class attributes). Calling it,
    or unpickling an instance of it, only records the arguments and the state, so that whatever the file would
    have built is inert data.
    """
    module = '?'
    name = '?'

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs

    def __setstate__(self, state):
        self.state = state

    # Containers pickle their items after the object: accept them as data too.
    def append(self, item):
        self.__dict__.setdefault('items', []).append(item)

    def extend(self, items):
        self.__dict__.setdefault('items', []).extend(items)

    def __setitem__(self, key, value):
        self.__dict__.setdefault('mapping', {})[key] = value

    @classmethod
    def qualified_name(cls) -> str:
        return '{}.{}'.format(cls.module, cls.name)

    def __repr__(self):
        return '<unresolved {}>'.format(self.qualified_name())


_TENSOR_REBUILDERS = {
    'torch._utils': ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_tensor_v3', '_rebuild_parameter',
                     '_rebuild_parameter_with_state', '_rebuild_sparse_tensor', '_rebuild_meta_tensor_no_storage',
                     '_rebuild_qtensor', '_rebuild_nested_tensor', '_rebuild_wrapper_subclass'),
    'torch._tensor': ('_rebuild_from_type_v2',),
}


def _allowed_globals() -> Dict[Tuple[str, str], Any]:
    """The globals a state dict needs: tensor rebuilding, torch's value types, plain containers.

    All of them are among the globals torch's own ``weights_only`` unpickler allows.
    """
    import importlib
    allowed = {('collections', 'OrderedDict'): collections.OrderedDict,
               ('torch', 'Size'): torch.Size,
               ('torch', 'device'): torch.device,
               ('torch', 'Tensor'): torch.Tensor,
               ('torch.nn.parameter', 'Parameter'): torch.nn.Parameter,
               ('torch.serialization', '_get_layout'): torch.serialization._get_layout,
               ('_codecs', 'encode'): codecs.encode}
    for name in ('set', 'complex', 'bytearray'):
        allowed[('builtins', name)] = getattr(builtins, name)
    for module_name, names in _TENSOR_REBUILDERS.items():
        module = importlib.import_module(module_name)
        for name in names:
            if hasattr(module, name):
                allowed[(module_name, name)] = getattr(module, name)
    for name in dir(torch):
        value = getattr(torch, name, None)
        if isinstance(value, torch.dtype) and str(value) == 'torch.' + name:
            allowed[('torch', name)] = value
    return allowed


_ALLOWED: Optional[Dict[Tuple[str, str], Any]] = None
_UNRESOLVED: Dict[Tuple[str, str], type] = {}


def _unresolved(module: str, name: str) -> type:
    key = (module, name)
    if key not in _UNRESOLVED:
        _UNRESOLVED[key] = type('Unresolved[{}.{}]'.format(module, name), (UnresolvedGlobal,),
                                {'module': module, 'name': name, '__module__': __name__})
    return _UNRESOLVED[key]


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :func:`_allowed_globals`; every other global becomes an :class:`UnresolvedGlobal` subclass."""

    def find_class(self, module: str, name: str):
        global _ALLOWED
        if _ALLOWED is None:
            _ALLOWED = _allowed_globals()
        # Python 2 names (protocol < 3 pickles, e.g. '__builtin__ set'), as pickle's own find_class maps them.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if module == 'torch.tensor':   # torch renamed it (torch.serialization maps it the same way)
            module = 'torch._tensor'
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        return _unresolved(module, name)


def torch_load_restricted(path: str, unpickler: type = RestrictedUnpickler) -> Any:
    """``torch.load(path)`` on the CPU, unpickling with ``unpickler`` (a :class:`RestrictedUnpickler`), in every format
    ``torch.save`` has written."""
    # What torch.load calls as its pickle_module: the Unpickler it subclasses, and load for the legacy format's headers.
    pickle_module = types.SimpleNamespace(__name__='{}.{}'.format(unpickler.__module__, unpickler.__name__),
                                          Unpickler=unpickler, load=lambda file, **kw: unpickler(file, **kw).load())
    # weights_only=False only because torch refuses a custom pickle_module otherwise: the restricted unpickler is
    # what keeps this load at least as strict as weights_only=True.
    return torch.load(path, map_location='cpu', pickle_module=pickle_module, weights_only=False)


def read_checkpoint(path: str) -> Any:
    """``torch.load(path)`` on the CPU that imports nothing the file names and runs none of its code."""
    if not os.path.isfile(path):
        raise FileNotFoundError('network file not found: {}'.format(path))
    try:
        return torch_load_restricted(path)
    except Exception as error:
        raise CheckpointError('cannot read {} as a torch checkpoint: {}: {}{}'.format(
            path, type(error).__name__, error, force_weights_only_hint())) from error


def force_weights_only_hint() -> str:
    """Why a restricted load failed when ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` is set (empty otherwise)."""
    if os.environ.get('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '0').lower() in ('1', 'y', 'yes', 'true'):
        return (' (TORCH_FORCE_WEIGHTS_ONLY_LOAD is set, which makes torch refuse any unpickler but its own; '
                'unset it: this reader resolves no more than weights_only does)')
    return ''


# ------------------------------------------------------------------------------------------ state dict extraction
def is_state_dict(value: Any) -> bool:
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()))


def describe_value(value: Any) -> str:
    if isinstance(value, UnresolvedGlobal):
        return 'an object of class {} (a pickled object, not a state dict)'.format(type(value).qualified_name())
    if isinstance(value, Mapping):
        keys = list(value)
        shown = ', '.join(repr(k) for k in keys[:8]) + (', ...' if len(keys) > 8 else '')
        return 'a {} with keys {}'.format(type(value).__name__, shown or '(none)')
    return 'a {}'.format(type(value).__name__)


def extract_state_dict(checkpoint: Any, path: str) -> Dict[str, torch.Tensor]:
    """The state dict of a checkpoint: the checkpoint itself, or its ``'net'`` / ``'state_dict'`` entry."""
    if is_state_dict(checkpoint):
        return dict(checkpoint)
    if isinstance(checkpoint, Mapping):
        for key in STATE_DICT_KEYS:
            if key in checkpoint:
                if is_state_dict(checkpoint[key]):
                    return dict(checkpoint[key])
                raise CheckpointError("{}: its '{}' entry is {}; expected a state dict (parameter names mapped to "
                                      "tensors).".format(path, key, describe_value(checkpoint[key])))
    raise CheckpointError('{} holds no state dict: it is {}. Expected a state dict (parameter names mapped to '
                          "tensors), or a dict holding one under {}.".format(
                              path, describe_value(checkpoint), ' or '.join(repr(k) for k in STATE_DICT_KEYS)))


def split_release_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor],
                                                                                Dict[str, int], List[str]]:
    """Splits by top-level module: (student entries, ignored entry count per prefix, keys of unknown modules)."""
    student, ignored, unknown = {}, collections.Counter(), []
    for key, value in state_dict.items():
        head = key.split('.', 1)[0]
        if head in STUDENT_PREFIXES:
            student[key] = value
        elif head in IGNORED_PREFIXES:
            ignored[head] += 1
        else:
            unknown.append(key)
    return student, dict(ignored), unknown


def summarise_keys(keys: Iterable[str], reference: Iterable[str] = (), limit: int = 12) -> str:
    """A readable summary of parameter names, grouped by module, in their original order.

    Each key is grouped under its module path (the key less the parameter name) cut to two components, e.g.
    ``bb_regressor.fc3_rt (7 keys: linear.weight, linear.bias, bn.weight, ...)``; a top-level module all of whose
    ``reference`` keys are listed is reported whole, e.g. ``classifier (all 8 keys)``.
    """
    keys = list(keys)
    reference_count = collections.Counter(k.split('.', 1)[0] for k in reference)
    by_head = collections.OrderedDict()
    for key in keys:
        by_head.setdefault(key.split('.', 1)[0], []).append(key)
    parts = []
    for head, head_keys in by_head.items():
        if len(head_keys) > 1 and reference_count.get(head) == len(head_keys):
            parts.append('{} (all {} keys)'.format(head, len(head_keys)))
            continue
        groups = collections.OrderedDict()
        for key in head_keys:
            components = key.split('.')
            depth = min(2, len(components) - 1) or 1
            groups.setdefault('.'.join(components[:depth]), []).append('.'.join(components[depth:]))
        for prefix, rests in groups.items():
            rests = [r for r in rests if r]
            if not rests:
                parts.append(prefix)
                continue
            shown = ', '.join(rests[:3]) + (', ...' if len(rests) > 3 else '')
            parts.append('{} ({} key{}: {})'.format(prefix, len(rests), 's' if len(rests) > 1 else '', shown))
    if len(parts) > limit:
        parts = parts[:limit] + ['... {} more groups'.format(len(parts) - limit)]
    return '; '.join(parts)


def check_student_fits(student: Mapping[str, torch.Tensor], unknown: List[str],
                       reference: Mapping[str, torch.Tensor], path: str) -> None:
    """Raises :class:`CheckpointError` unless ``student`` has exactly the keys and shapes of ``reference``."""
    missing = [k for k in reference if k not in student]
    unexpected = [k for k in student if k not in reference] + list(unknown)
    mismatched = ['{}: file {} vs Super-DiMP {}'.format(k, tuple(v.shape), tuple(reference[k].shape))
                  for k, v in student.items() if k in reference and v.shape != reference[k].shape]
    if not (missing or unexpected or mismatched):
        return
    lines = ['{} does not fit an MKDNet student (a Super-DiMP network):'.format(path)]
    if missing:
        lines.append('  missing {} key(s) of Super-DiMP: {}'.format(len(missing), summarise_keys(missing, reference)))
    if unexpected:
        lines.append('  unexpected {} key(s): {}'.format(len(unexpected), summarise_keys(unexpected)))
    if mismatched:
        lines.append('  {} shape mismatch(es): {}'.format(len(mismatched), '; '.join(mismatched[:10]) +
                                                          ('; ...' if len(mismatched) > 10 else '')))
    lines.append('  ({}.)'.format(_EXPECTED_LAYOUT))
    raise CheckpointError('\n'.join(lines))


def load_release_student(path: str, net: Optional[torch.nn.Module] = None) -> torch.nn.Module:
    """The student of an MKDNet release file (or of any Super-DiMP state dict), in a stock Super-DiMP network.

    ``net`` is the network to load into (a fresh ``build_super_dimp(backbone_pretrained=False)`` by default). The
    returned network holds the student only; ``net.info`` records the source file and what was ignored.
    """
    state_dict = extract_state_dict(read_checkpoint(path), path)
    student, ignored, unknown = split_release_state_dict(state_dict)
    if net is None:
        net = build_super_dimp(backbone_pretrained=False)
    check_student_fits(student, unknown, net.state_dict(), path)
    net.load_state_dict(student, strict=True)
    net.info = {'source': os.path.abspath(path), 'loaded': 'student (feature_extractor, classifier, bb_regressor)',
                'ignored_keys_per_module': ignored}
    return net
