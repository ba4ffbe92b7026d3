"""Which implementation pools a PrRoIPool call, and what happens when one fails.

Three implementations compute the same values: ``'triton'`` (:mod:`ltr_plugins.prroi_pool_triton`, CUDA, no host
reads), ``'extension'`` (the CUDA extension of pytracking's ``PreciseRoIPooling`` submodule, float32, JIT-built on
first use) and ``'torch'`` (pure PyTorch, any device). ``backend='auto'`` pools CPU tensors with ``'torch'`` and CUDA
tensors with the first that works; ``'triton'``, ``'cuda'`` (the extension) and ``'torch'`` use that one or raise,
saying why. Any failure but running out of memory falls back. A failed load (import, build, one tiny first call) is
a fact about the environment: a :class:`Loader` says it once per process and never retries (an unpopulated submodule
says nothing). A failure when pooling is remembered by the :class:`PoolScope` that saw it (a ``PrRoIPool2D`` keeps
one, a bare call gets a fresh one), which says it once and skips that implementation from then on.
"""
import importlib
import re
import sys
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

__all__ = ['PoolScope', 'Loader', 'BackendUnavailable', 'IMPLEMENTATIONS', 'CUDA_EXTENSION_MODULE', 'plan',
           'cuda_report', 'default_loaders']

# pytracking's own path to the PreciseRoIPooling submodule (a CUDA extension, JIT-compiled on its first call).
CUDA_EXTENSION_MODULE = 'ltr.external.PreciseRoIPooling.pytorch.prroi_pool.functional'
TRITON_MODULE = 'ltr_plugins.prroi_pool_triton'

IMPLEMENTATIONS = {
    'triton': "the plugin's Triton kernel",
    'extension': "the CUDA extension of pytracking's PreciseRoIPooling submodule",
    'torch': "the plugin's pure-PyTorch op",
}
BACKEND_IMPLEMENTATION = {'torch': 'torch', 'triton': 'triton', 'cuda': 'extension'}

PoolFn = Callable[[torch.Tensor, torch.Tensor, int, int, float], torch.Tensor]


class BackendUnavailable(RuntimeError):
    """An implementation cannot be used; the message says why."""


def say(text: str) -> None:
    """The one line a fallback prints (stderr)."""
    print('PrRoIPool: ' + text, file=sys.stderr, flush=True)


def describe_error(exc: BaseException) -> str:
    """``Type: headline (first compiler error)``, at most 300 characters: a failed build's commands and output stay
    out of the one line (the submodule's build prints them itself)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = type(exc).__name__
    if lines:
        text += ': ' + lines[0].split(': [', 1)[0]           # ninja's "[1/2] command" follows the headline
        diagnostic = next((match.group(0) for match in map(_COMPILER_ERROR.search, lines[1:]) if match), None)
        if diagnostic:
            text += ' ({})'.format(diagnostic)
    return text if len(text) <= 300 else text[:297] + '...'


_COMPILER_ERROR = re.compile(r'(fatal )?error: .*')


class Loader:
    """Imports an implementation once per process and keeps the outcome (the function, or why there is none).

    ``module``/``attribute`` name the function; ``probe``: run it once on a tiny input of the first call's device
    (the extension builds its kernels there); ``silent_if_absent``: a missing module (an unpopulated submodule) is a
    reason, not a failure worth a line."""

    def __init__(self, name: str, module: str, attribute: str, probe: bool = False, silent_if_absent: bool = False):
        self.name, self.module, self.attribute = name, module, attribute
        self.probe, self.silent_if_absent = probe, silent_if_absent
        self.fn: Optional[PoolFn] = None
        self.reason: Optional[str] = None      # why not, once it failed
        self.imported = False
        self.probed = False

    def imports(self) -> Optional[PoolFn]:
        """The function if its module imports (without probing it), else None with ``reason`` set."""
        if not self.imported:
            self.imported = True
            try:
                self.fn = getattr(importlib.import_module(self.module), self.attribute)
            except Exception as exc:
                if isinstance(exc, ModuleNotFoundError) and _absent(exc, self.module):
                    self._fail('{} is not importable ({})'.format(self.module, describe_error(exc)),
                               quiet=self.silent_if_absent)
                else:
                    self._fail('importing {} failed ({})'.format(self.module, describe_error(exc)))
        return self.fn

    def load(self, device: torch.device) -> PoolFn:
        """The function, imported (and probed on ``device``) on first use; raises :class:`BackendUnavailable`."""
        fn = self.imports()
        if fn is not None and self.probe and not self.probed:
            self.probed = True
            try:
                fn(torch.zeros(1, 1, 2, 2, device=device), torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0]], device=device),
                   1, 1, 1.0)
            except torch.OutOfMemoryError:
                self.probed = False
                raise
            except Exception as exc:
                self.fn = None
                self._fail('building or running it on {} failed ({})'.format(device, describe_error(exc)))
        if self.fn is None:
            raise BackendUnavailable(self.reason)
        return self.fn

    def _fail(self, reason: str, quiet: bool = False) -> None:
        self.fn, self.reason = None, reason
        if not quiet:
            say('{} is unavailable for this process: {}'.format(IMPLEMENTATIONS[self.name], reason))


def _absent(exc: ModuleNotFoundError, module: str) -> bool:
    """Whether ``exc`` says that ``module`` (or a package above it) is missing, rather than something it imports."""
    return exc.name is not None and (module == exc.name or module.startswith(exc.name + '.'))


def default_loaders() -> Dict[str, Loader]:
    """The loaders of the two CUDA implementations, nothing loaded yet."""
    return {'triton': Loader('triton', TRITON_MODULE, 'prroi_pool2d_triton'),
            'extension': Loader('extension', CUDA_EXTENSION_MODULE, 'prroi_pool2d', probe=True,
                                silent_if_absent=True)}


LOADERS = default_loaders()   # this process's: what loaded, or why not


def plan(backend: str, device: torch.device, dtype: torch.dtype) -> Tuple[str, ...]:
    """The implementations a call tries, in order: ``backend`` (resolved: auto, torch, triton or cuda) for features of
    ``device`` and compute ``dtype`` (float32 or float64)."""
    if backend != 'auto':
        return (BACKEND_IMPLEMENTATION[backend],)
    if device.type != 'cuda':
        return ('torch',)
    return ('triton', 'extension', 'torch') if dtype == torch.float32 else ('triton', 'torch')


class PoolScope:
    """The implementations that failed when pooling, for one owner (a ``PrRoIPool2D`` module, or one call of
    ``prroi_pool2d``), each with why; and the implementation that pooled the last call (``used``)."""

    def __init__(self):
        self.failed: Dict[str, str] = {}
        self.used: Optional[str] = None

    def __repr__(self) -> str:
        return 'PoolScope(used={!r}, failed={!r})'.format(self.used, self.failed)

    def pool(self, chain: Sequence[str], torch_pool: PoolFn, features: torch.Tensor, rois: torch.Tensor,
             pooled_height: int, pooled_width: int, spatial_scale: float) -> torch.Tensor:
        """Pools with the first implementation of ``chain`` that works (``torch_pool`` is ``'torch'``); each one that
        failed on this call is said in one line naming the one that pooled. A chain of one implementation raises its
        failure instead."""
        failures, self.used = [], None
        try:
            for position, name in enumerate(chain):
                if name in self.failed:
                    continue
                last = position == len(chain) - 1
                try:
                    fn = torch_pool if name == 'torch' else LOADERS[name].load(features.device)
                    out = fn(features, rois, pooled_height, pooled_width, spatial_scale)
                except torch.OutOfMemoryError:
                    raise
                except BackendUnavailable as exc:     # its loader has said why, once per process
                    if last:
                        raise BackendUnavailable('PrRoIPool: {} is unavailable: {}'.format(IMPLEMENTATIONS[name],
                                                                                           exc)) from None
                    continue
                except Exception as exc:
                    if last:
                        raise
                    self.failed[name] = describe_error(exc)
                    failures.append(name)
                    continue
                self.used = name
                return out
            raise BackendUnavailable('PrRoIPool: no implementation left in this pool ({})'.format(self.failed))
        finally:
            for name in failures:
                say('{} failed ({}); {} from now on in this pool'.format(
                    IMPLEMENTATIONS[name], self.failed[name],
                    'pooling with ' + IMPLEMENTATIONS[self.used] if self.used else 'nothing else worked either'))


def cuda_report(pool: Callable[..., torch.Tensor]) -> Tuple[str, Sequence[str]]:
    """What pools float32 CUDA tensors under ``backend='auto'``: ``(implementation, why not the ones before it)``.

    With a CUDA device, ``pool(features, rois, 1, 1, 1.0, scope=scope)`` (``prroi_pool2d``) pools a small input, so
    the answer is what ran; without one, what would be tried first (whether it works there cannot be known)."""
    chain = plan('auto', torch.device('cuda'), torch.float32)
    if torch.cuda.is_available():
        scope = PoolScope()
        features = torch.ones(1, 1, 4, 4, device='cuda')
        pool(features, torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]], device='cuda'), 1, 1, 1.0, scope=scope)
        notes = ['{}: {}'.format(IMPLEMENTATIONS[name], scope.failed.get(name) or LOADERS[name].reason)
                 for name in chain[:chain.index(scope.used)]]
        return scope.used, notes
    notes = []
    for name in chain[:-1]:
        if LOADERS[name].imports() is not None:
            return name, notes
        notes.append('{}: {}'.format(IMPLEMENTATIONS[name], LOADERS[name].reason))
    return chain[-1], notes
