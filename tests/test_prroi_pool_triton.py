"""The Triton kernels of PrRoIPool (ltr_plugins.prroi_pool_triton) against the exact reference.

On a machine with a GPU the cases run on CUDA in this process; without one they run on the CPU in Triton's
interpreter, which must be switched on before Triton is imported, so in a subprocess (tests/prroi_triton_worker.py,
once for all cases). Either way the op runs with ``backend='triton'`` and must not read a tensor on the host.

References: the forward against the quadrature of the definition (tests/test_prroi_pool.py, float64), the gradients
against the pure-PyTorch implementation in float64 (gradchecked there) and the box gradient also against finite
differences of the quadrature. Tolerances: float64 results agree to rounding (1e-10 relative); float32 ones sum up to
some 150 weighted taps of values under 5 in float32 (epsilon 1.2e-7), hence 2e-5 absolute and 1e-5 relative.
"""
import os
import subprocess
import sys

import pytest
import torch

from ltr_plugins.prroi_pool import _prroi_pool2d_torch, prroi_pool2d
from test_prroi_pool import _mixed_rois, reference_prroi

pytestmark = pytest.mark.cuda   # with a GPU every case runs there (bench/gpu_check.sh selects these with -m cuda)

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'prroi_triton_worker.py')
TOLERANCE = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=2e-5)}


def _case(features, rois, pooled, scale, features_grad=True, rois_grad=True, autocast=False, seed=0):
    out_shape = (rois.shape[0], features.shape[1]) + tuple(pooled)
    weights = torch.randn(out_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return dict(features=features, rois=rois, pooled=tuple(pooled), scale=scale, weights=weights.to(features.dtype),
                features_grad=features_grad, rois_grad=rois_grad, autocast=autocast)


def _degenerate_rois():
    """Zero width, zero height, a point, inverted in x and in y, and beyond the map's ramp: all pool exact zeros."""
    return torch.tensor([[0, 3.0, 1.0, 3.0, 4.0], [1, 1.0, 2.0, 4.0, 2.0], [0, 2.0, 2.0, 2.0, 2.0],
                         [1, 4.0, 1.0, 1.0, 4.0], [0, 1.0, 4.0, 4.0, 1.0], [1, 9.5, 1.0, 12.0, 3.0]])


def make_cases():
    g = torch.Generator().manual_seed(22)
    cases = {}
    # random, partly and entirely off the map, tiny, empty boxes (tests/test_prroi_pool.py's mix) over three maps
    cases['mixed float64'] = _case(torch.randn(3, 4, 9, 11, dtype=torch.float64, generator=g),
                                   _mixed_rois(3, 9, 11, 1 / 8, seed=1), (3, 2), 1 / 8, seed=1)
    cases['mixed float32'] = _case(torch.randn(2, 3, 7, 6, generator=g), _mixed_rois(2, 7, 6, 1 / 16, seed=2).float(),
                                   (2, 3), 1 / 16, seed=2)
    # DiMP's layer-2 pooling, 5 x 5 at 1/8
    cases['dimp 5x5 float32'] = _case(torch.randn(2, 8, 9, 11, generator=g), _mixed_rois(2, 9, 11, 1 / 8, seed=3)
                                      [[0, 5, 12]].float(), (5, 5), 1 / 8, seed=3)
    # more channels than one program's block: two channel blocks, the second partly masked
    cases['two channel blocks float64'] = _case(torch.randn(2, 130, 6, 7, dtype=torch.float64, generator=g),
                                                _mixed_rois(2, 6, 7, 1.0, seed=4)[[1, 12, 13, 14]], (2, 2), 1.0,
                                                seed=4)
    cases['degenerate float32'] = _case(torch.randn(2, 3, 5, 8, generator=g), _degenerate_rois(), (2, 2), 1.0, seed=5)
    # gradients for the boxes only (DiMP's refinement, frozen features) and for the features only
    refinement = _mixed_rois(2, 6, 7, 1 / 8, seed=6)[[0, 1, 11, 12]]
    features = torch.randn(2, 5, 6, 7, dtype=torch.float64, generator=g)
    cases['boxes only float64'] = _case(features, refinement, (2, 2), 1 / 8, features_grad=False, seed=6)
    cases['features only float64'] = _case(features, refinement, (2, 2), 1 / 8, rois_grad=False, seed=6)
    # a batch index outside [0, N): NaN for that RoI only
    cases['bad batch index float32'] = _case(torch.randn(2, 3, 5, 5, generator=g),
                                             torch.tensor([[0, 1.0, 1.0, 9.0, 9.0], [2, 1.0, 1.0, 9.0, 9.0],
                                                           [-1, 1.0, 1.0, 9.0, 9.0], [1, 2.0, 1.0, 7.0, 8.0]]),
                                             (1, 1), 0.5, seed=7)
    cases['no rois float32'] = _case(torch.randn(2, 3, 5, 5, generator=g), torch.zeros(0, 5), (2, 2), 0.5)
    # bfloat16 features under CPU autocast (bf16 values, float32 boxes): computed in float32
    features = torch.randn(2, 4, 9, 11, generator=g).bfloat16()
    rois = _mixed_rois(2, 9, 11, 1 / 8, seed=8)[:4].float()
    cases['bf16 autocast'] = _case(features, rois, (2, 2), 1 / 8, autocast=True, seed=8)
    return cases


@pytest.fixture(scope='module')
def triton_run(tmp_path_factory):
    """(cases, results, where they ran)."""
    sys.path.insert(0, os.path.dirname(WORKER))
    import prroi_triton_worker
    cases = make_cases()
    if torch.cuda.is_available():
        return cases, prroi_triton_worker.run_cases(cases, torch.device('cuda')), 'cuda'
    folder = tmp_path_factory.mktemp('triton')
    torch.save(cases, folder / 'cases.pt')
    env = dict(os.environ, TRITON_INTERPRET='1')
    done = subprocess.run([sys.executable, WORKER, str(folder / 'cases.pt'), str(folder / 'results.pt')], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    assert done.returncode == 0, done.stdout
    return cases, torch.load(folder / 'results.pt', weights_only=True), 'interpreter'


def _torch_reference(case):
    """Output and gradients of the pure-PyTorch implementation in float64."""
    features = case['features'].double().requires_grad_(case['features_grad'])
    rois = case['rois'].double().requires_grad_(case['rois_grad'])
    out = _prroi_pool2d_torch(features, rois, *case['pooled'], case['scale'], 'taps')
    if case['features_grad'] or case['rois_grad']:
        (out * case['weights'].double()).sum().backward()
    return out.detach(), features.grad, rois.grad


@pytest.mark.parametrize('name', ['mixed float64', 'mixed float32', 'dimp 5x5 float32', 'two channel blocks float64',
                                  'boxes only float64', 'features only float64'])
def test_triton_matches_the_exact_reference(triton_run, name):
    cases, results, _ = triton_run
    case, result = cases[name], results[name]
    tolerance = TOLERANCE[case['features'].dtype]
    assert result['out'].dtype == case['features'].dtype and result['out'].shape == (
        case['rois'].shape[0], case['features'].shape[1]) + case['pooled']
    exact = reference_prroi(case['features'], case['rois'], *case['pooled'], case['scale'])
    torch.testing.assert_close(result['out'].double(), exact, **tolerance)
    out, features_grad, rois_grad = _torch_reference(case)
    for got, expected in ((result['features_grad'], features_grad), (result['rois_grad'], rois_grad)):
        assert (got is None) == (expected is None)
        if expected is not None:
            assert got.dtype == case['features'].dtype
            torch.testing.assert_close(got.double(), expected, **tolerance)
    if rois_grad is not None:
        assert torch.all(result['rois_grad'][:, 0] == 0) and result['rois_grad'][:, 1:].abs().sum() > 0.1


def test_triton_box_gradient_matches_finite_differences_of_the_reference(triton_run):
    cases, results, _ = triton_run
    case = cases['mixed float64']
    h = 1e-5
    for k in (0, 3, 12, 13, 14):   # random boxes; the whole map and its ramps; boxes starting or ending in a ramp
        for c in range(1, 5):
            plus, minus = case['rois'][k:k + 1].clone(), case['rois'][k:k + 1].clone()
            plus[0, c] += h
            minus[0, c] -= h
            weights = case['weights'][k:k + 1]
            difference = (reference_prroi(case['features'], plus, *case['pooled'], case['scale'])
                          - reference_prroi(case['features'], minus, *case['pooled'], case['scale']))
            fd = (difference * weights).sum() / (2 * h)
            torch.testing.assert_close(results['mixed float64']['rois_grad'][k, c], fd, rtol=1e-6, atol=1e-8)


def test_triton_degenerate_boxes_give_exact_zeros(triton_run):
    _, results, _ = triton_run
    result = results['degenerate float32']
    assert torch.all(result['out'] == 0)
    assert torch.all(result['features_grad'] == 0) and torch.all(result['rois_grad'] == 0)


def test_triton_bad_batch_index_gives_nan_for_that_roi_only(triton_run):
    cases, results, _ = triton_run
    case, result = cases['bad batch index float32'], results['bad batch index float32']
    assert torch.isnan(result['out'][1:3]).all() and torch.isnan(result['rois_grad'][1:3, 1:]).all()
    valid = [0, 3]
    exact = reference_prroi(case['features'], case['rois'][valid], *case['pooled'], case['scale'])
    torch.testing.assert_close(result['out'][valid].double(), exact, **TOLERANCE[torch.float32])
    features_grad = _torch_reference(dict(case, rois=case['rois'][valid], weights=case['weights'][valid]))[1]
    torch.testing.assert_close(result['features_grad'].double(), features_grad, **TOLERANCE[torch.float32])


def test_triton_without_rois(triton_run):
    _, results, _ = triton_run
    result = results['no rois float32']
    assert result['out'].shape == (0, 3, 2, 2)
    assert torch.all(result['features_grad'] == 0) and result['rois_grad'].shape == (0, 5)


def test_triton_bf16_under_autocast_computes_in_float32(triton_run):
    cases, results, _ = triton_run
    case, result = cases['bf16 autocast'], results['bf16 autocast']
    assert result['out'].dtype == torch.float32 and result['features_grad'].dtype == torch.bfloat16
    assert result['rois_grad'].dtype == torch.float32
    exact = reference_prroi(case['features'].double(), case['rois'], *case['pooled'], case['scale'])
    torch.testing.assert_close(result['out'].double(), exact, **TOLERANCE[torch.float32])


def test_triton_backend_needs_cuda_or_the_interpreter():
    if os.environ.get('TRITON_INTERPRET', '0') not in ('', '0'):
        pytest.skip('the interpreter is on in this process')
    with pytest.raises(RuntimeError, match="backend='triton' needs CUDA tensors"):
        prroi_pool2d(torch.randn(1, 2, 4, 4), torch.tensor([[0.0, 0, 0, 2, 2]]), 2, 2, 1.0, backend='triton')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_auto_pools_cuda_tensors_with_the_triton_kernel():
    from ltr_plugins.prroi_pool import PrRoIPool2D
    pool = PrRoIPool2D(5, 5, 1 / 8)
    features = torch.randn(2, 8, 9, 11, device='cuda')
    rois = _mixed_rois(2, 9, 11, 1 / 8, seed=9).float().cuda()
    out = pool(features, rois)
    assert pool.scope.used == 'triton' and pool.scope.failed == {}
    exact = reference_prroi(features, rois, 5, 5, 1 / 8)
    torch.testing.assert_close(out.double().cpu(), exact, **TOLERANCE[torch.float32])
