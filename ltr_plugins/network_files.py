"""Reading pytracking network files without running pickled code (the tracking side knows where they are).

A network file (``super_dimp.pth.tar``, ``mkdnet.pth.tar``, any ltr checkpoint) pickles the weights and ltr's
``NetConstructor``, which names a function to call, so ``torch.load(weights_only=False)`` could run any code.
:func:`read_network_file` unpickles with :class:`NetworkFileUnpickler`: tensors and plain containers are rebuilt, ltr's
own records (globals of ``ltr.*``, ``dlframework.*``, ``ltr_plugins.*``, ``types.SimpleNamespace``, numpy values) kept
as inert data, any other global refused, naming the file; the constructor is rebuilt from an allow-list (an
``ltr.models`` function decorated with ``@model_constructor``, plain arguments). pytracking's ``load_network`` (patch
02) and ltr's training resume (:func:`read_training_checkpoint`) read through here.
``PYTRACKING_TRUST_NETWORK_FILES=1`` loads with pickle instead, for a file you trust (docs/safe_loading.md).
"""
import importlib
import os
import pickle
import re
from typing import Any, Dict

from ltr_plugins.release_checkpoint import (CheckpointError, RestrictedUnpickler, UnresolvedGlobal,
                                                   describe_value, force_weights_only_hint, is_state_dict,
                                                   torch_load_restricted)

TRUST_ENV = 'PYTRACKING_TRUST_NETWORK_FILES'
MKDNET_TRAINING_NET_TYPE = 'MKDNetStudent'

# Modules whose globals a network file may name as inert records (see the module docstring).
_RECORD_PACKAGES = ('ltr', 'dlframework', 'ltr_plugins', 'numpy')
_RECORD_GLOBALS = {('types', 'SimpleNamespace')}
_CONSTRUCTOR_CLASSES = {('ltr.admin.model_constructor', 'NetConstructor'),
                        ('dlframework.common.utils.model_constructor', 'NetConstructor')}
_PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_MODULE_NAME = re.compile(r'^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$')

_SHAPE = ("a pytracking network file is a dict with the network's weights under 'net' and its constructor under "
          "'constructor', as ltr's training and `mkdnet-export` write it")


class RefusedGlobal(pickle.UnpicklingError):
    """A network file names a global outside the allow-list; nothing of it was imported or run."""

    def __init__(self, module: str, name: str):
        super().__init__('{}.{}'.format(module, name))
        self.qualified_name = '{}.{}'.format(module, name)


class NetworkFileError(CheckpointError):
    """A file that cannot be read as a pytracking network; ``foreign`` when it holds weights but no ltr constructor
    (the authors' fork, a bare state dict), which MKDNet's ``mkdnet_release`` parameter can read."""

    def __init__(self, message: str, foreign: bool = False):
        super().__init__(message)
        self.foreign = foreign


# -------------------------------------------------------------------------------------------------------- read
def _is_record_global(module: str, name: str) -> bool:
    return (module, name) in _RECORD_GLOBALS or module.split('.', 1)[0] in _RECORD_PACKAGES


class NetworkFileUnpickler(RestrictedUnpickler):
    """The release loader's unpickler, refusing every global that is neither allowed nor an ltr record."""

    def find_class(self, module: str, name: str):
        found = super().find_class(module, name)
        if isinstance(found, type) and issubclass(found, UnresolvedGlobal) \
                and not _is_record_global(found.module, found.name):
            raise RefusedGlobal(found.module, found.name)
        return found


_TRUE_VALUES = ('1', 'y', 'yes', 'true', 'on')
_FALSE_VALUES = ('', '0', 'n', 'no', 'false', 'off')


def trusted_loading() -> bool:
    """Whether the user opted into pickle loading (``PYTRACKING_TRUST_NETWORK_FILES=1``, ``yes``, ``true``, ``on``);
    a value that is neither yes nor no is a ValueError naming the variable."""
    value = os.environ.get(TRUST_ENV, '').strip().lower()
    if value in _TRUE_VALUES:
        return True
    if value in _FALSE_VALUES:
        return False
    raise ValueError('{}={!r} is neither yes nor no: set it to 1 (or yes, true, on) to load network files with '
                     'pickle, or unset it'.format(TRUST_ENV, os.environ[TRUST_ENV]))


def _announce_pickle(path: str, what: str) -> None:
    print('Loading {} {} with pickle ({}={}): the file can run code.'.format(what, path, TRUST_ENV,
                                                                          os.environ[TRUST_ENV]), flush=True)


def _pickle_load(path: str) -> Any:
    """``torch.load`` with pickle under ltr's legacy module names, as stock ``torch_load_legacy`` does."""
    import torch
    from ltr.admin import loading
    loading._setup_legacy_env()
    try:
        return torch.load(path, map_location='cpu', weights_only=False)
    finally:
        loading._cleanup_legacy_env()


def _refusal(path: str, qualified_name: str) -> NetworkFileError:
    return NetworkFileError(
        '{}: refused to load: it names the Python object {}, which a network file or training checkpoint does not '
        "need (only tensors, plain values and ltr's own records are read; nothing in the file was run). Use only "
        'files you trust; to load this one with pickle, which runs whatever it holds, set {}=1.'.format(
            path, qualified_name, TRUST_ENV), foreign=True)


def unpickle_network_file(path: str) -> Any:
    """The file's pickled content as :class:`NetworkFileUnpickler` reads it: allowed values, inert ltr records."""
    if not os.path.isfile(path):
        raise FileNotFoundError('Network file {} does not exist.'.format(path))
    if os.path.getsize(path) == 0:
        raise NetworkFileError('{} is empty (0 bytes), not a network file: an interrupted download or copy? Get '
                               'the file again.'.format(path))
    try:
        return torch_load_restricted(path, NetworkFileUnpickler)
    except RefusedGlobal as error:
        raise _refusal(path, error.qualified_name) from None
    except Exception as error:
        raise NetworkFileError('{} is not a torch network file ({}: {}): a damaged download or copy, or another kind '
                               'of file? Get the file again.{}'.format(path, type(error).__name__, error,
                                                                       force_weights_only_hint())) from None


def _check_plain(value: Any, path: str, where: str) -> None:
    if isinstance(value, UnresolvedGlobal):
        raise _refusal(path, '{} (in {})'.format(type(value).qualified_name(), where))
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_plain(item, path, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, path, where)
            _check_plain(item, path, where)
    elif not isinstance(value, _PLAIN_SCALARS):
        import torch
        if not isinstance(value, (torch.Size, torch.dtype, torch.device, torch.Tensor)):
            raise _refusal(path, '{} (in {})'.format(type(value).__name__, where))


def _model_constructor_code():
    from ltr.admin.model_constructor import model_constructor
    return model_constructor(lambda: None).__code__


def rebuild_constructor(record: Any, path: str, where: str = "'constructor'"):
    """ltr's ``NetConstructor`` from its inert record, if it names an ``ltr.models`` ``@model_constructor`` function
    called with plain values; :class:`NetworkFileError` naming the file otherwise."""
    from ltr.admin.model_constructor import NetConstructor
    if not (isinstance(record, UnresolvedGlobal) and (record.module, record.name) in _CONSTRUCTOR_CLASSES
            and isinstance(getattr(record, 'state', None), dict)):
        what = type(record).qualified_name() if isinstance(record, UnresolvedGlobal) else describe_value(record)
        raise NetworkFileError("{}: its {} entry is {}, not ltr's NetConstructor ({}).".format(
            path, where, what, _SHAPE), foreign=True)
    state = record.state
    fun_module, fun_name = state.get('fun_module'), state.get('fun_name')
    args, kwds = state.get('args', ()), state.get('kwds', {})
    if isinstance(fun_module, str) and fun_module.startswith('dlframework.'):   # as ltr's legacy loading does
        fun_module = fun_module[len('dlframework.'):]
    shown = '{}.{}'.format(fun_module, fun_name)
    valid = (isinstance(fun_module, str) and isinstance(fun_name, str) and _MODULE_NAME.match(fun_module)
             and fun_name.isidentifier() and isinstance(args, (tuple, list)) and isinstance(kwds, dict)
             and all(isinstance(k, str) for k in kwds))
    function = None
    if valid and fun_module.startswith('ltr.models.'):
        try:
            function = getattr(importlib.import_module(fun_module), fun_name, None)
        except ImportError:
            function = None
    if function is None or getattr(function, '__code__', None) is not _model_constructor_code():
        raise NetworkFileError(
            '{}: its network constructor {} is not one of the ltr.models network functions (those decorated with '
            '@model_constructor), so it is not run. If you trust the file, set {}=1 to load it with pickle, which '
            'runs whatever it holds.'.format(path, shown, TRUST_ENV), foreign=True)
    _check_plain(args, path, 'the arguments of ' + shown)
    _check_plain(kwds, path, 'the arguments of ' + shown)
    return NetConstructor(fun_name, fun_module, tuple(args), dict(kwds))


def read_network_file(path: str, need_constructor: bool = True) -> Dict[str, Any]:
    """A pytracking network file as ``torch.load`` gives it (a dict with ``'net'`` and ``'constructor'``), read
    without running anything it pickled; the constructor is a real ltr ``NetConstructor`` rebuilt from the
    allow-list (see the module docstring). Every failure is a one-line :class:`NetworkFileError` naming the file and
    what to do. With ``PYTRACKING_TRUST_NETWORK_FILES=1``, ltr's own pickle loading instead."""
    path = os.fspath(path)
    if trusted_loading():
        _announce_pickle(path, 'the network file')
        return _pickle_load(path)
    checkpoint = unpickle_network_file(path)
    if not isinstance(checkpoint, dict):
        what = 'None' if checkpoint is None else describe_value(checkpoint)
        raise NetworkFileError('{} holds {}, not a network: {}.'.format(path, what, _SHAPE))
    if checkpoint.get('net_type') == MKDNET_TRAINING_NET_TYPE:
        raise NetworkFileError(
            '{} is an MKDNet training checkpoint (student and discriminators), not a tracking network: export its '
            'student with `mkdnet-export {}`.'.format(path, path))
    if is_state_dict(checkpoint):
        raise NetworkFileError('{} is a bare state dict without a network constructor: pytracking cannot tell which '
                               'network to build ({}).'.format(path, _SHAPE), foreign=True)
    if not is_state_dict(checkpoint.get('net')):
        raise NetworkFileError("{} has no network weights: its 'net' entry is {} ({}).".format(
            path, describe_value(checkpoint.get('net')) if 'net' in checkpoint else 'missing', _SHAPE))
    checkpoint = dict(checkpoint)
    if checkpoint.get('constructor') is not None:
        checkpoint['constructor'] = rebuild_constructor(checkpoint['constructor'], path)
    elif need_constructor:
        raise NetworkFileError('{} has no network constructor, so pytracking cannot tell which network to build '
                               '({}).'.format(path, _SHAPE), foreign=True)
    return checkpoint


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = ' '.join(str(error).split())
    return text if len(text) <= limit else text[:limit] + ' ...'


def build_network(constructor, weights: Dict[str, Any], path: str):
    """The network a file's (rebuilt) ``constructor`` builds, with the file's ``weights`` loaded; a failure -- sizes
    in the constructor's arguments no machine can allocate, weights that do not fit -- is one-line
    :class:`NetworkFileError` naming the file (pytracking's ``load_network``, patch 02)."""
    shown = '{}.{}'.format(constructor.fun_module, constructor.fun_name)
    try:
        net = constructor.get()
    except (RuntimeError, MemoryError, ValueError, TypeError, OverflowError) as error:
        huge = ['{}={}'.format(name, value) for name, value in dict(constructor.kwds).items()
                if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2 ** 16]
        raise NetworkFileError('{}: its network constructor {} failed ({}: {}){}: the file does not describe a '
                               'network that can be built; get the file again.'.format(
                                   path, shown, type(error).__name__, _one_line(error),
                                   ', with the implausible size(s) ' + ', '.join(huge) if huge else '')) from None
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        raise NetworkFileError('{}: its weights do not fit the network its constructor {} builds ({}): a damaged '
                               'file or one of another network; get the file again.'.format(
                                   path, shown, _one_line(error))) from None
    return net


def read_network_weights(path: str) -> Dict[str, Any]:
    """The state dict of a network file (its ``'net'`` entry, or the file itself when it is a bare state dict),
    read as :func:`read_network_file` reads; for networks built by the caller (the teacher)."""
    if trusted_loading():
        checkpoint = read_network_file(path)
        return checkpoint['net'] if isinstance(checkpoint, dict) and 'net' in checkpoint else checkpoint
    checkpoint = unpickle_network_file(path)
    if is_state_dict(checkpoint):
        return dict(checkpoint)
    if isinstance(checkpoint, dict) and is_state_dict(checkpoint.get('net')):
        return dict(checkpoint['net'])
    raise NetworkFileError('{} holds {}, no network weights ({}).'.format(path, describe_value(checkpoint), _SHAPE))



# ------------------------------------------------------------------------------------------- training checkpoints
_STATS_CLASSES = {('ltr.admin.stats', 'AverageMeter'), ('ltr.admin.stats', 'StatValue'),
                  ('dlframework.common.utils.stats', 'AverageMeter'), ('dlframework.common.utils.stats', 'StatValue')}


def _rebuild_record(value: Any, path: str, where: str) -> Any:
    """``value`` with the ltr records a training resume uses made real again: constructors through the allow-list,
    statistics meters (``ltr.admin.stats``) from their plain state; any other record is refused."""
    if isinstance(value, UnresolvedGlobal):
        key = (value.module, value.name)
        if key in _CONSTRUCTOR_CLASSES:
            return rebuild_constructor(value, path, where)
        state = getattr(value, 'state', None)
        if key in _STATS_CLASSES and isinstance(state, dict) and not getattr(value, 'args', ()):
            _check_plain(state, path, where)
            meter_class = getattr(importlib.import_module('ltr.admin.stats'), value.name)
            meter = meter_class.__new__(meter_class)
            meter.__dict__.update(state)
            return meter
        raise _refusal(path, '{} (in {})'.format(value.qualified_name(), where))
    if isinstance(value, dict):
        return type(value)((key, _rebuild_record(item, path, '{}[{!r}]'.format(where, key)))
                           for key, item in value.items())
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(_rebuild_record(item, path, where) for item in value)
    _check_plain(value, path, where)
    return value


def read_training_checkpoint(path: str) -> Dict[str, Any]:
    """An ltr training checkpoint as ``BaseTrainer.load_checkpoint`` uses it, read without running pickled code:
    tensors and plain values, ltr's statistics meters and constructors rebuilt from their plain state; ``settings``
    (which ltr ignores when resuming) stays an inert record. Refusals and damage are one-line
    :class:`NetworkFileError` naming the file; with ``PYTRACKING_TRUST_NETWORK_FILES=1``, pickle, announced."""
    path = os.fspath(path)
    if trusted_loading():
        _announce_pickle(path, 'the training checkpoint')
        return _pickle_load(path)
    checkpoint = unpickle_network_file(path)
    if not isinstance(checkpoint, dict) or not is_state_dict(checkpoint.get('net')):
        raise NetworkFileError("{} is not an ltr training checkpoint: it holds {}, not a dict with the network's "
                               "weights under 'net' as ltr's trainer writes it.".format(
                                   path, describe_value(checkpoint)))
    return {key: value if key == 'settings' else _rebuild_record(value, path, repr(key))
            for key, value in checkpoint.items()}
