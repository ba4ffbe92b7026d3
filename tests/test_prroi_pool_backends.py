"""Which implementation pools PrRoIPool calls, and the fallback when pytracking's PreciseRoIPooling submodule fails
(ltr_plugins.prroi_pool_backends).

The submodule is populated for a test as ``git submodule update --init`` would, without touching the installed
checkout: a second folder of the real ``ltr`` package (``ltr.__path__``) holds
``external/PreciseRoIPooling/pytorch/prroi_pool`` with the submodule's interface (``prroi_pool2d(features, rois,
pooled_height, pooled_width, spatial_scale)``, which builds its kernels on the first call) and the failure under
test. CPU tensors take the pure-PyTorch path under ``backend='auto'``, so the pools here are given the chain CUDA
tensors get when the Triton kernel is unavailable (``extension``, then ``torch``).
"""
import importlib
import shutil
import sys
import textwrap

import pytest
import torch
import torch.utils.cpp_extension

import ltr
from ltr_plugins import prroi_pool as prroi_module
from ltr_plugins import prroi_pool_backends as backends
from ltr_plugins.prroi_pool import PrRoIPool2D, prroi_pool2d
from ltr_plugins.prroi_pool_backends import BackendUnavailable, PoolScope, plan

CHAIN = ('extension', 'torch')   # CUDA float32 tensors' chain without the Triton kernel


@pytest.fixture
def submodule(tmp_path, monkeypatch):
    """Writes the submodule's ``functional.py`` from source (None: leave the submodule folder empty, as an
    unpopulated checkout has it); fresh loaders; pools given :data:`CHAIN`. Yields the writer."""
    overlay = tmp_path / 'ltr'
    package = overlay / 'external' / 'PreciseRoIPooling' / 'pytorch' / 'prroi_pool'
    for name in [n for n in sys.modules if n.startswith('ltr.external')]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(ltr, '__path__', list(ltr.__path__) + [str(overlay)])
    monkeypatch.setattr(backends, 'LOADERS', backends.default_loaders())
    monkeypatch.setattr(prroi_module, 'plan', lambda backend, device, dtype: CHAIN if backend == 'auto'
                        else plan(backend, device, dtype))

    def write(source):
        if source is not None:
            package.mkdir(parents=True, exist_ok=True)
            (package / '__init__.py').write_text('from .functional import prroi_pool2d\n')
            (package / 'functional.py').write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return package

    yield write
    for name in [n for n in sys.modules if n.startswith('ltr.external')]:
        del sys.modules[name]


def _inputs():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 3, 9, 9, generator=g)
    rois = torch.tensor([[0, 3.0, 5.0, 50.0, 41.0], [1, -7.0, 12.0, 30.0, 66.0], [1, 20.0, 20.0, 28.0, 31.0]])
    return features, rois, prroi_pool2d(features, rois, 3, 3, 1 / 8, backend='torch')


def _said(captured):
    """The lines the pools said (stderr), one per failure."""
    return [line for line in captured.err.splitlines() if line.startswith('PrRoIPool:')]


def _fallback_holds(pools, capfd, expected_reason, calls=3):
    """Every pool falls back to the pure-PyTorch op with the exact result, over several calls; returns the lines."""
    features, rois, expected = _inputs()
    for _ in range(calls):
        for pool in pools:
            torch.testing.assert_close(pool(features, rois), expected, rtol=0, atol=0)
            assert pool.scope.used == 'torch'
    lines = _said(capfd.readouterr())
    assert all(expected_reason in line for line in lines), lines
    return lines


# --------------------------------------------------------------------------------------- failures while loading
def test_an_unpopulated_submodule_says_nothing(submodule, capfd):
    submodule(None)
    assert _fallback_holds([PrRoIPool2D(3, 3, 1 / 8)], capfd, '') == []
    assert "No module named 'ltr.external.PreciseRoIPooling.pytorch'" in backends.LOADERS['extension'].reason


def test_a_failing_import_falls_back_with_one_line(submodule, capfd):
    submodule('from torch.utils.ffi import create_extension   # gone since PyTorch 1.0\n')
    lines = _fallback_holds([PrRoIPool2D(3, 3, 1 / 8), PrRoIPool2D(3, 3, 1 / 8)], capfd, 'torch.utils.ffi')
    assert len(lines) == 1 and 'importing ltr.external.PreciseRoIPooling' in lines[0], lines


_BUILD = '''
    import os
    import torch.utils.cpp_extension

    calls = 0


    def prroi_pool2d(features, rois, pooled_height, pooled_width, spatial_scale):
        global calls
        calls += 1
        here = os.path.dirname(__file__)
        torch.utils.cpp_extension.load('_prroi_pooling_test', [os.path.join(here, {source!r})],
                                       build_directory=os.path.join(here, 'build'))
'''


@pytest.mark.skipif(not torch.utils.cpp_extension.is_ninja_available() or shutil.which('c++') is None,
                    reason='needs ninja and a C++ compiler to run a real build')
def test_a_real_build_error_falls_back_with_one_line(submodule, capfd):
    package = submodule(_BUILD.format(source='prroi_pooling_gpu.c'))
    (package / 'build').mkdir()
    (package / 'prroi_pooling_gpu.c').write_text('#include <THC/THC.h>   /* removed from PyTorch in 1.11 */\n')
    pools = [PrRoIPool2D(3, 3, 1 / 8), PrRoIPool2D(3, 3, 1 / 8)]
    lines = _fallback_holds(pools, capfd, "RuntimeError: Error building extension '_prroi_pooling_test'")
    assert len(lines) == 1 and 'unavailable for this process' in lines[0], lines   # once per process: no rebuild
    assert 'THC/THC.h' in lines[0] and 'c++ ' not in lines[0]   # the compiler's error, not its command line
    assert sys.modules['ltr.external.PreciseRoIPooling.pytorch.prroi_pool.functional'].calls == 1


def test_a_missing_cuda_toolkit_falls_back_with_one_line(submodule, capfd, monkeypatch):
    package = submodule(_BUILD.format(source='prroi_pooling_gpu_impl.cu'))
    (package / 'build').mkdir()
    (package / 'prroi_pooling_gpu_impl.cu').write_text('__global__ void kernel() {}\n')
    monkeypatch.setattr(torch.utils.cpp_extension, 'CUDA_HOME', None)   # what torch finds without a toolkit
    reason = ('OSError: CUDA_HOME environment variable is not set' if torch.utils.cpp_extension.is_ninja_available()
              else 'RuntimeError: Ninja is required')                 # torch checks for ninja first
    lines = _fallback_holds([PrRoIPool2D(3, 3, 1 / 8)], capfd, reason)
    assert len(lines) == 1, lines


@pytest.mark.parametrize('error', [
    "RuntimeError(\"Error building extension '_prroi_pooling'\\n[1/2] nvcc ... error: THC/THC.h: No such file\")",
    "OSError('CUDA_HOME environment variable is not set. Please set it to your CUDA install root.')",
    "ImportError('Can not compile Precise RoI Pooling library.')",
    "subprocess.CalledProcessError(1, ['ninja', '-v'])",
    "AssertionError('Precise RoI Pooling only takes float input')",
])
def test_any_exception_of_the_build_falls_back_with_one_line(submodule, capfd, error):
    submodule('''
        import subprocess


        def prroi_pool2d(features, rois, pooled_height, pooled_width, spatial_scale):
            raise {}
    '''.format(error))
    lines = _fallback_holds([PrRoIPool2D(3, 3, 1 / 8), PrRoIPool2D(3, 3, 1 / 8)], capfd, error.split('(')[0]
                            .split('.')[-1] + ':')
    assert len(lines) == 1 and 'building or running it on cpu failed' in lines[0], lines


# ----------------------------------------------------------------------------- failures when pooling: scoped
_FAILS_ON_REAL_INPUTS = '''
    import torch
    from ltr_plugins.prroi_pool import _prroi_pool2d_torch

    calls = 0


    def prroi_pool2d(features, rois, pooled_height, pooled_width, spatial_scale):
        global calls
        calls += 1
        if features.shape[1] > 1:   # the loader's probe has one channel
            {}
        return _prroi_pool2d_torch(features, rois, pooled_height, pooled_width, spatial_scale) + 1000
'''


def test_a_failure_on_the_first_call_falls_back_in_that_pool_only(submodule, capfd):
    submodule(_FAILS_ON_REAL_INPUTS.format(
        "raise RuntimeError('CUDA error: no kernel image is available for execution on the device')"))
    first, second = PrRoIPool2D(3, 3, 1 / 8), PrRoIPool2D(3, 3, 1 / 8)
    lines = _fallback_holds([first], capfd, 'RuntimeError: CUDA error: no kernel image is available')
    assert len(lines) == 1 and 'from now on in this pool' in lines[0], lines
    functional = sys.modules['ltr.external.PreciseRoIPooling.pytorch.prroi_pool.functional']
    assert functional.calls == 2                      # the probe, then one failed call: not tried again here
    assert first.scope.failed == {'extension': 'RuntimeError: CUDA error: no kernel image is available for '
                                               'execution on the device'}
    # another pool is not affected: it tries the extension itself, and says so once
    assert second.scope.failed == {} and backends.LOADERS['extension'].fn is not None
    assert len(_fallback_holds([second], capfd, 'RuntimeError: CUDA error')) == 1
    assert functional.calls == 3


def test_a_working_extension_is_used(submodule, capfd):
    submodule(_FAILS_ON_REAL_INPUTS.format('pass'))
    features, rois, expected = _inputs()
    pool = PrRoIPool2D(3, 3, 1 / 8)
    torch.testing.assert_close(pool(features, rois), expected + 1000)
    assert pool.scope.used == 'extension' and _said(capfd.readouterr()) == []


def test_running_out_of_memory_is_raised(submodule):
    submodule(_FAILS_ON_REAL_INPUTS.format("raise torch.OutOfMemoryError('CUDA out of memory')"))
    features, rois, _ = _inputs()
    pool = PrRoIPool2D(3, 3, 1 / 8)
    with pytest.raises(torch.OutOfMemoryError):
        pool(features, rois)
    assert pool.scope.failed == {}


def test_an_explicit_implementation_raises_instead_of_falling_back(submodule):
    submodule("raise ImportError('Can not compile Precise RoI Pooling library.')\n")
    features, rois, _ = _inputs()
    with pytest.raises(BackendUnavailable, match='Can not compile Precise RoI Pooling library'):
        PoolScope().pool(('extension',), prroi_module._prroi_pool2d_torch, features, rois, 3, 3, 1 / 8)


def test_a_functional_call_without_a_scope_gets_its_own(submodule, capfd):
    submodule(_FAILS_ON_REAL_INPUTS.format("raise RuntimeError('CUDA error: an illegal memory access')"))
    features, rois, expected = _inputs()
    for _ in range(2):
        torch.testing.assert_close(prroi_pool2d(features, rois, 3, 3, 1 / 8), expected, rtol=0, atol=0)
    assert len(_said(capfd.readouterr())) == 2   # one line per call: each call is its own scope
    scope = PoolScope()
    for _ in range(2):
        prroi_pool2d(features, rois, 3, 3, 1 / 8, scope=scope)
    assert len(_said(capfd.readouterr())) == 1 and scope.used == 'torch'


# ----------------------------------------------------------------------------------------------- the policy
def test_the_plan_for_each_device_dtype_and_backend():
    cpu, cuda = torch.device('cpu'), torch.device('cuda', 0)
    assert plan('auto', cpu, torch.float32) == ('torch',)
    assert plan('auto', cuda, torch.float32) == ('triton', 'extension', 'torch')
    assert plan('auto', cuda, torch.float64) == ('triton', 'torch')   # the extension takes float32 only
    assert plan('torch', cuda, torch.float32) == ('torch',)
    assert plan('triton', cuda, torch.float32) == ('triton',)
    assert plan('cuda', cuda, torch.float32) == ('extension',)


def test_cuda_report_names_what_would_run(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip('with a GPU the report is what ran (the doctor prints it)')
    monkeypatch.setattr(backends, 'LOADERS', backends.default_loaders())
    assert backends.cuda_report(prroi_pool2d) == ('triton', [])
    monkeypatch.setitem(backends.LOADERS, 'triton', backends.Loader('triton', 'no_such_triton_module', 'pool'))
    monkeypatch.setitem(backends.LOADERS, 'extension', backends.Loader(
        'extension', 'ltr.external.no_such_submodule.functional', 'prroi_pool2d', silent_if_absent=True))
    name, notes = backends.cuda_report(prroi_pool2d)
    assert name == 'torch' and len(notes) == 2
    assert notes[0].startswith("the plugin's Triton kernel: no_such_triton_module is not importable")
