"""Host syncs: where a CUDA run makes the host wait for the device, counted with or without a GPU.

The host waits, and the device's queue runs dry, where it needs a value the device computes (``.item()``, ``bool()``
of a tensor, a tensor as a Python index, ``.cpu()``, an output size that depends on values: boolean masks,
``nonzero``, ...) and at a blocking host-to-device copy. :class:`SimulatedCuda` counts them without a GPU: CPU tensors
that a CUDA run would hold on the device say so (``.device`` is ``cuda:0``), so the code takes its CUDA paths, and
each host read, syncing operation and blocking copy is recorded with its line (host and device tensors in one
operation, an error on CUDA, as ``mismatch``). :func:`profiled_syncs` counts them on a GPU, from the CUDA runtime
calls of a ``torch.profiler`` trace.
"""
import collections
import contextlib
import os
import traceback
from typing import Any, Counter, Dict, Iterator, List, NamedTuple, Optional, Tuple

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakIdKeyDictionary

CUDA = torch.device('cuda', 0)

# Tensor methods that read a tensor's values on the host.
HOST_READS = frozenset({'item', 'tolist', '__bool__', '__int__', '__float__', '__index__', '__complex__', '__format__',
                        '__repr__', '__str__', '__contains__'})
# ... that raise on a CUDA tensor.
RAISE_ON_CUDA = frozenset({'numpy', '__array__'})
# Functions that build a tensor from host data: on the device, a blocking copy.
FROM_HOST_DATA = frozenset({'tensor', 'as_tensor', 'asarray', 'new_tensor'})
# Functions that may take index or value tensors from the host with device tensors: copied over, blocking.
COPIES_HOST_OPERANDS = frozenset({'__getitem__', '__setitem__', 'index_put_', 'index_put', 'copy_'})
# aten operations that read values on the host inside (their output size depends on values, or they return one).
SYNCING_OPS = frozenset({'nonzero', 'nonzero_static', 'masked_select', '_unique2', 'unique_dim', 'unique_consecutive',
                         'equal', '_local_scalar_dense', 'bincount'})
_THIS_FILE = os.path.realpath(__file__)
_PROJECT_DIR = os.path.dirname(os.path.dirname(_THIS_FILE)) + os.sep
_TORCH_DIR = os.path.dirname(os.path.realpath(torch.__file__)) + os.sep


class Event(NamedTuple):
    """One host sync (``read``: a value the host waits for; ``copy``: a blocking copy to the device), non-blocking
    copy (``async_copy``) or operation that would raise on CUDA (``mismatch``), and the line that made it."""
    kind: str
    what: str
    where: str


def _caller() -> str:
    """The innermost line of the stack outside PyTorch and this module, as ``path:line (function)``, the path
    relative to the project (``ltr_plugins/...``, ``external/pytracking/...``) when it lies there."""
    for frame in reversed(traceback.extract_stack()):
        path = os.path.realpath(frame.filename)
        if path != _THIS_FILE and not path.startswith(_TORCH_DIR):
            if path.startswith(_PROJECT_DIR):
                path = path[len(_PROJECT_DIR):]
            return '{}:{} ({})'.format(path, frame.lineno, frame.name)
    return '?'


def _is_cuda(device: Any) -> bool:
    return ((isinstance(device, torch.device) and device.type == 'cuda')
            or (isinstance(device, str) and device.split(':')[0] == 'cuda'))


def _to_cpu(value: Any) -> Any:
    """``value`` with CUDA devices replaced by the CPU (in lists, tuples and dicts too)."""
    if _is_cuda(value):
        return 'cpu' if isinstance(value, str) else torch.device('cpu')
    if type(value) in (list, tuple):
        return type(value)(_to_cpu(v) for v in value)
    if type(value) is dict:
        return {k: _to_cpu(v) for k, v in value.items()}
    return value


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """The tensors in ``value``, also inside lists, tuples and dicts of any subclass (pytracking's TensorList)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _in_place(name: str) -> bool:
    return name == '__setitem__' or (name.endswith('_') and not name.startswith('_'))


class _InOpSyncs(TorchDispatchMode):
    """The aten-level half of :class:`SimulatedCuda`: operations that read device values on the host inside (also
    those a Python function hides: ``torch.arange(t)`` reads ``t``)."""

    def __init__(self, simulation: 'SimulatedCuda'):
        super().__init__()
        self.simulation = simulation

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        simulation = self.simulation
        if os.getpid() != simulation._process:
            return func(*args, **kwargs)
        if not simulation.quiet and args and simulation.on_device(args[0]):
            what = self.syncing_op(func, args, kwargs)
            if what:
                simulation.record('read', what)
        result = func(*args, **kwargs)
        inputs = list(_tensors((args, kwargs)))
        if inputs:   # the tensors made inside a function (views, temporaries) are where their inputs are
            simulation._place(result, any(simulation.on_device(t) for t in inputs))
        return result

    def syncing_op(self, func, args: Tuple, kwargs: Dict) -> Optional[str]:
        """What makes this aten call read values on the host, or None."""
        name = func.overloadpacket.__name__
        if name in SYNCING_OPS:
            return name
        if name == 'repeat_interleave' and kwargs.get('output_size') is None and (len(args) < 4 or args[3] is None):
            return 'repeat_interleave without output_size'
        if name in ('index', 'index_put', 'index_put_', '_index_put_impl_'):
            indices = [i for i in args[1] if i is not None]
            if not any(i.dtype in (torch.bool, torch.uint8) for i in indices):
                return None
            if name == 'index':
                return 'boolean-mask indexing'
            # One mask set to one host value is a masked_fill_ (what PyTorch does), which does not sync.
            host_value = self.simulation.host_value or not self.simulation.on_device(args[2])
            if len(indices) == 1 and args[2].numel() == 1 and host_value:
                return None
            return 'boolean-mask assignment'
        return None


class SimulatedCuda(TorchFunctionMode):
    """Runs code on the CPU as if its tensors were on a CUDA device, and records every host sync it would make.

    Where each tensor would live follows PyTorch's rules: a tensor made from host data or by a factory without a
    device (``torch.tensor(x)``, ``torch.zeros(3)``, ``torch.from_numpy``) and ``.cpu()``'s result are on the host; a
    factory given a CUDA device, ``.cuda()`` and ``.to('cuda')`` results are on the device; an in-place operation
    leaves its tensor where it is; any other result (of a function or of the aten operations that compute it,
    autograd's backward included) is on the device when one of its tensor inputs is. Tensors made before, or by
    pytracking's legacy constructors (``torch.Tensor([...])``), are on the host; :meth:`device` puts a module's
    parameters and buffers (or any tensors) on the device. CUDA devices given to functions are replaced by the CPU,
    so nothing needs a GPU.

    ``events`` lists what happened, in order; ``syncs`` counts the host syncs (reads and blocking copies).
    """

    def __init__(self):
        super().__init__()
        self._device = WeakIdKeyDictionary()
        self.events: List[Event] = []
        self.quiet = 0                 # > 0 inside a read already recorded
        self.host_value = False        # True inside an assignment of one host value
        self._in_op = _InOpSyncs(self)
        self._stack = contextlib.ExitStack()
        self._process = os.getpid()    # a process forked under the simulation (a loader worker) runs as it is

    def __enter__(self):
        self._stack.enter_context(self._in_op)
        return super().__enter__()

    def __exit__(self, *exc):
        result = super().__exit__(*exc)
        self._stack.close()
        return result

    def on_device(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor) and value in self._device

    def device(self, value: Any) -> Any:
        """Puts a module's parameters and buffers, or every tensor of ``value`` (nested lists, tuples, dicts), on the
        device, as ``.cuda()`` would without copying; returns ``value``."""
        if isinstance(value, torch.nn.Module):
            self._place(list(value.parameters()) + list(value.buffers()), True)
        else:
            self._place(value, True)
        return value

    def _place(self, value: Any, on_device: bool) -> None:
        for tensor in _tensors(value):
            if on_device:
                self._device[tensor] = True
            else:
                self._device.pop(tensor, None)

    def record(self, kind: str, what: str) -> None:
        self.events.append(Event(kind, what, _caller()))

    def count(self, *kinds: str) -> int:
        return sum(event.kind in kinds for event in self.events)

    @property
    def syncs(self) -> int:
        """Host reads and blocking copies to the device."""
        return self.count('read', 'copy')

    def summary(self) -> Counter:
        """How often each event (kind, what, where) occurred."""
        return collections.Counter(self.events)

    def clear(self) -> None:
        self.events.clear()

    # ---------------------------------------------------------------------------------------------- the mode
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if os.getpid() != self._process:
            return func(*args, **kwargs)
        name = getattr(func, '__name__', '')
        first = args[0] if args else None
        if name == '__get__':
            return self._attribute(func, first)
        if func is torch.device:
            return func(*args, **kwargs)
        if name == 'get_device' and self.on_device(first):
            return 0
        if name in HOST_READS and self.on_device(first):
            self.record('read', name)
            self.quiet += 1
            try:
                return func(*args, **kwargs)
            finally:
                self.quiet -= 1
        if name in RAISE_ON_CUDA and self.on_device(first):
            self.record('mismatch', '{}() of a CUDA tensor'.format(name))
        on_device = self._result_on_device(name, args, kwargs)
        self._check_operands(name, args, kwargs, on_device)
        self.host_value = name == '__setitem__' and self._one_host_value(args[2])
        try:
            result = first if name == 'cuda' else func(*_to_cpu(args), **_to_cpu(kwargs))
        finally:
            self.host_value = False
        if name in ('to', 'cuda', 'cpu') and result is first and on_device != self.on_device(first):
            result = result.clone()   # a copy on the other device, as on CUDA
        self._place(result, on_device)
        return result

    def _one_host_value(self, value: Any) -> bool:
        return not isinstance(value, torch.Tensor) or (value.numel() == 1 and not self.on_device(value))

    def _attribute(self, getter, tensor) -> Any:
        attribute = getattr(getattr(getter, '__self__', None), '__name__', '')
        if attribute in ('device', 'is_cuda', 'is_cpu') and self.on_device(tensor):
            return {'device': CUDA, 'is_cuda': True, 'is_cpu': False}[attribute]
        value = getter(tensor)
        if isinstance(value, torch.Tensor):   # .data, .grad, .T, ...: where their tensor is
            self._place(value, self.on_device(tensor))
        return value

    def _result_on_device(self, name: str, args: Tuple, kwargs: Dict) -> bool:
        """Where the result lives; records the copies between host and device that making it takes."""
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        target, non_blocking = self._target(name, args, kwargs)
        if name in ('to', 'cuda', 'cpu') and source is not None:
            if target is None or target == self.on_device(source):
                return self.on_device(source)
            if target:
                self.record('async_copy' if non_blocking else 'copy', name + '() to the device')
            else:
                self.record('read', name + '() to the host' + (' (non-blocking)' if non_blocking else ''))
            return target
        if name in FROM_HOST_DATA:
            data = args[1] if name == 'new_tensor' else (args[0] if args else kwargs.get('data'))
            on_device = target if target is not None else (name == 'new_tensor' and self.on_device(source))
            if on_device and not any(self.on_device(t) for t in _tensors(data)):
                self.record('copy', '{} from host data'.format(name))
            return bool(on_device)
        if (_in_place(name) or name == '__getitem__') and source is not None:
            # indexing reads a 0-dim integer index on the host (an aten-level read) and stays where its tensor is
            return self.on_device(source)
        if target is not None:
            return target
        return any(self.on_device(t) for t in _tensors((args, kwargs)))

    def _target(self, name: str, args: Tuple, kwargs: Dict) -> Tuple[Optional[bool], bool]:
        """(on the device?, non_blocking) that the call asks for explicitly; None: it does not say."""
        if name == 'cpu':
            return False, False
        if name == 'cuda':
            return True, bool(kwargs.get('non_blocking', False))
        if name == 'to':
            rest = args[1:]
            if rest and isinstance(rest[0], torch.Tensor):
                return self.on_device(rest[0]), bool(kwargs.get('non_blocking', len(rest) > 1 and rest[1] is True))
            flags = [a for a in rest if isinstance(a, bool)]   # to(device, dtype, non_blocking, copy), to(dtype, ...)
            non_blocking = kwargs.get('non_blocking', flags[0] if flags else False)
            device = kwargs.get('device', next((a for a in rest if isinstance(a, (str, torch.device))), None))
            return (None if device is None else _is_cuda(device)), bool(non_blocking)
        if kwargs.get('device') is not None:
            return _is_cuda(kwargs['device']), False
        return None, False

    def _check_operands(self, name: str, args: Tuple, kwargs: Dict, on_device: bool) -> None:
        """Operands on the other side: host tensors (not scalars) in a device operation are copied over by indexing
        and ``copy_``, an error elsewhere; device tensors in a host operation are read by ``copy_`` and assignment,
        an error elsewhere."""
        if name in ('to', 'cuda', 'cpu') or name in FROM_HOST_DATA:
            return
        operands = list(_tensors((args, kwargs)))
        if name in ('__getitem__', '__setitem__'):   # 0-dim integer indices are read, wherever they are
            operands = [t for t in operands if t.dim() > 0 or t.is_floating_point() or t.dtype == torch.bool]
        if on_device and any(not self.on_device(t) and t.dim() > 0 for t in operands):
            if name in COPIES_HOST_OPERANDS:
                self.record('copy', '{} with host operands'.format(name))
            else:
                self.record('mismatch', '{}: host and device tensors in one operation'.format(name))
        elif not on_device and any(self.on_device(t) for t in operands):
            if name in ('copy_', '__setitem__'):
                self.record('read', '{} to the host'.format(name))
            else:
                self.record('mismatch', '{}: device tensors in a host operation'.format(name))


# ------------------------------------------------------------------------------------------------------ on a GPU
def profiled_syncs(profile: 'torch.profiler.profile') -> Dict[str, int]:
    """The host syncs in a ``torch.profiler`` trace taken with CUDA activity, by CUDA runtime call: the calls that
    wait for the device (stream, event and device synchronisations, blocking ``cudaMemcpy``)."""
    counts: Dict[str, int] = collections.Counter()
    for event in profile.events():
        name = event.name
        if 'Synchronize' in name or name.startswith('cudaMemcpy') and 'Async' not in name:
            counts[name] += 1
    return dict(counts)


def format_summary(simulation: SimulatedCuda, limit: int = 20) -> str:
    """The most frequent events of a simulation, one line each."""
    return '\n'.join('{:>4} x {:<10} {:<42} {}'.format(n, e.kind, e.what, e.where)
                     for e, n in simulation.summary().most_common(limit))
