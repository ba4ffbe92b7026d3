"""Tests of ltr_plugins.prroi_pool (Precise RoI Pooling in pure PyTorch).

The reference below evaluates the definition directly: the bilinear interpolation f(x, y) = sum F[i, j] tri(x - j)
tri(y - i) is sampled at Gauss-Legendre nodes on every piece of the bin between integer coordinates (where f is
bilinear, so the quadrature is exact), and the integral is divided by the bin area.
"""
import numpy as np
import pytest
import torch

from ltr_plugins import prroi_pool as prroi_module
from ltr_plugins.prroi_pool import PrRoIPool2D, prroi_pool2d
from ltr_plugins.prroi_pool_backends import LOADERS, BackendUnavailable

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(2)


def _pieces_quadrature(a, b):
    """Nodes and weights integrating a piecewise-linear-between-integers function over [a, b] exactly."""
    cuts = [a] + [float(v) for v in range(int(np.floor(a)) + 1, int(np.ceil(b)))] + [b]
    nodes, weights = [], []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if hi <= lo:
            continue
        nodes.append(0.5 * (hi - lo) * _GL_NODES + 0.5 * (hi + lo))
        weights.append(0.5 * (hi - lo) * _GL_WEIGHTS)
    if not nodes:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(nodes), np.concatenate(weights)


def _tri(t):
    return np.maximum(0.0, 1.0 - np.abs(t))


def reference_prroi(features, rois, pooled_height, pooled_width, spatial_scale):
    feats = features.detach().double().cpu().numpy()
    boxes = rois.detach().double().cpu().numpy()
    _, C, H, W = feats.shape
    out = np.zeros((boxes.shape[0], C, pooled_height, pooled_width))
    for k, (b, x1, y1, x2, y2) in enumerate(boxes):
        x1, y1, x2, y2 = x1 * spatial_scale, y1 * spatial_scale, x2 * spatial_scale, y2 * spatial_scale
        bin_w = max(x2 - x1, 0.0) / pooled_width
        bin_h = max(y2 - y1, 0.0) / pooled_height
        if bin_w * bin_h <= 0:
            continue
        for ph in range(pooled_height):
            ys, wys = _pieces_quadrature(y1 + ph * bin_h, y1 + (ph + 1) * bin_h)
            ty = _tri(ys[:, None] - np.arange(H)[None, :])                  # [ny, H]
            for pw in range(pooled_width):
                xs, wxs = _pieces_quadrature(x1 + pw * bin_w, x1 + (pw + 1) * bin_w)
                tx = _tri(xs[:, None] - np.arange(W)[None, :])              # [nx, W]
                values = np.einsum('yi,cij,xj->cyx', ty, feats[int(b)], tx)  # f at the nodes
                out[k, :, ph, pw] = np.einsum('cyx,y,x->c', values, wys, wxs) / (bin_w * bin_h)
    return torch.from_numpy(out)


def _mixed_rois(num_images, H, W, spatial_scale, seed):
    """Random boxes plus hand-placed ones: partly/wholly outside, tiny, empty, one map cell beyond the edge."""
    g = torch.Generator().manual_seed(seed)
    img_w, img_h = W / spatial_scale, H / spatial_scale
    n = 12
    cx = torch.rand(n, generator=g, dtype=torch.float64) * 1.4 * img_w - 0.2 * img_w
    cy = torch.rand(n, generator=g, dtype=torch.float64) * 1.4 * img_h - 0.2 * img_h
    bw = torch.rand(n, generator=g, dtype=torch.float64) * 0.8 * img_w + 0.3 / spatial_scale
    bh = torch.rand(n, generator=g, dtype=torch.float64) * 0.8 * img_h + 0.3 / spatial_scale
    b = torch.randint(0, num_images, (n,), generator=g).double()
    rand = torch.stack([b, cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    u = 1.0 / spatial_scale   # one feature cell in image coordinates
    hand = torch.tensor([
        [0, -3.3 * u, -2.1 * u, (W + 2.7) * u, (H + 1.9) * u],   # covers the map and the ramps beyond it
        [1, -0.6 * u, 1.3 * u, 2.2 * u, 3.9 * u],                 # starts inside the left ramp
        [num_images - 1, (W - 1.5) * u, (H - 2.2) * u, (W + 0.4) * u, (H - 0.1) * u],   # ends in the right ramp
        [0, 1.23 * u, 2.34 * u, 1.61 * u, 2.52 * u],              # tiny: under one cell
        [1, 2.11 * u, 0.57 * u, 2.19 * u, 0.62 * u],              # tinier
        [0, (W + 1.2) * u, 1.1 * u, (W + 4.3) * u, 3.3 * u],      # entirely beyond one cell outside: zeros
        [1, 1.1 * u, -5.7 * u, 3.3 * u, -1.05 * u],               # above the map, beyond the ramp: zeros
        [0, 3.3 * u, 1.1 * u, 2.2 * u, 4.4 * u],                  # x2 < x1: empty
        [1, 1.7 * u, 3.1 * u, 4.4 * u, 3.1 * u],                  # y2 == y1: empty
        [num_images - 1, -0.9 * u, -0.8 * u, -0.2 * u, -0.3 * u],  # only in the top-left ramp
    ], dtype=torch.float64)
    return torch.cat([rand, hand], 0)


@pytest.mark.parametrize('pooled_height, pooled_width, spatial_scale, H, W', [
    (5, 5, 1 / 8, 9, 11),
    (3, 3, 1 / 16, 7, 6),
    (1, 1, 1 / 16, 5, 8),
    (2, 4, 1 / 8, 10, 7),
    (4, 3, 1.0, 6, 6),
])
def test_matches_quadrature_reference(pooled_height, pooled_width, spatial_scale, H, W):
    torch.manual_seed(0)
    features = torch.randn(3, 4, H, W, dtype=torch.float64)
    rois = _mixed_rois(3, H, W, spatial_scale, seed=H * 100 + W)
    ours = prroi_pool2d(features, rois, pooled_height, pooled_width, spatial_scale)
    ref = reference_prroi(features, rois, pooled_height, pooled_width, spatial_scale)
    assert ours.shape == (rois.shape[0], 4, pooled_height, pooled_width)
    assert ours.is_contiguous()
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-9)
    # the hand-placed zero cases really are zero, and the rest is not trivially zero
    assert torch.all(ours[-5:-3] == 0) and torch.all(ours[-3:-1] == 0)
    assert ours[:12].abs().max() > 0.1


def test_constant_map_and_ramps():
    H, W, c = 6, 8, 2.5
    features = torch.full((1, 3, H, W), c, dtype=torch.float64)
    rois = torch.tensor([
        [0, 0.5, 1.25, 6.5, 4.0],         # inside [0, W-1] x [0, H-1]: exactly c
        [0, 0.0, 0.0, W - 1.0, H - 1.0],  # the whole interior
        [0, W - 1.0, 1.0, W, 3.0],        # the right ramp c * (W - x), one cell wide
        [0, -1.0, -1.0, 0.0, 0.0],        # the corner ramp c * (1 + x) * (1 + y)
        [0, W + 0.01, 0.0, W + 2.0, 2.0],  # beyond one cell outside: 0
    ], dtype=torch.float64)
    out = prroi_pool2d(features, rois, 2, 3, 1.0)
    # mean of the ramp over the thirds [p/3, (p+1)/3] of its cell, and over its halves
    thirds = torch.tensor([1 / 6, 3 / 6, 5 / 6], dtype=torch.float64)
    halves = torch.tensor([1 / 4, 3 / 4], dtype=torch.float64)
    expected = torch.zeros(5, 3, 2, 3, dtype=torch.float64)
    expected[:2] = c
    expected[2] = c * thirds.flip(0)
    expected[3] = c * halves[:, None] * thirds[None, :]
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    # one bin over a whole ramp cell: the mean of a linear ramp from c to 0 is c / 2, of the corner c / 4
    out = prroi_pool2d(features, rois[2:4], 1, 1, 1.0)
    torch.testing.assert_close(out.flatten(0, 2), torch.tensor([[c / 2], [c / 4]], dtype=torch.float64)
                               .expand(2, 3).reshape(6, 1), rtol=1e-12, atol=1e-12)


def test_single_sample_is_a_pyramid():
    # f is the tent tri(x - 3) tri(y - 2): its integral over [2, 4] x [1, 3] is 1, the bin area 4
    features = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
    features[0, 0, 2, 3] = 1.0
    rois = torch.tensor([[0, 2.0, 1.0, 4.0, 3.0], [0, 3.0, 2.0, 4.0, 3.0]], dtype=torch.float64)
    out = prroi_pool2d(features, rois, 1, 1, 1.0)
    # second box: a quarter of the pyramid (volume 1/4) over unit area
    torch.testing.assert_close(out.flatten(), torch.tensor([0.25, 0.25], dtype=torch.float64))


def test_empty_boxes_give_zero_and_zero_gradients():
    features = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 3.0, 1.0, 1.0, 4.0], [1, 1.0, 2.0, 4.0, 2.0], [1, 2.0, 2.0, 2.0, 2.0]],
                        dtype=torch.float64, requires_grad=True)
    out = prroi_pool2d(features, rois, 2, 2, 1.0)
    assert torch.all(out == 0)
    out.sum().backward()
    assert torch.all(features.grad == 0) and torch.all(rois.grad == 0)


@pytest.mark.parametrize('num_maps, strategy', [(2, 'taps'), (1, 'window')])
def test_gradcheck_features_and_coordinates(num_maps, strategy):
    torch.manual_seed(1)
    features = torch.randn(num_maps, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[-0.83, 0.37, 5.41, 4.62],
                          [1.27, 2.13, 3.31, 2.71],
                          [4.62, -1.44, 7.53, 3.28],
                          [0.21, 0.64, 0.47, 1.12]], dtype=torch.float64) * 8
    boxes.requires_grad_(True)
    batch_index = torch.tensor([[0.0], [1.0], [1.0], [0.0]], dtype=torch.float64) % num_maps

    def fn(feat, coords):
        return prroi_module._prroi_pool2d_torch(feat, torch.cat([batch_index, coords], 1), 3, 2, 1 / 8, strategy)

    assert torch.autograd.gradcheck(fn, (features, boxes), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_coordinate_gradient_matches_reference_finite_difference():
    torch.manual_seed(2)
    features = torch.randn(1, 3, 8, 9, dtype=torch.float64)
    rois = torch.tensor([[0, 5.3, 9.1, 51.7, 44.2]], dtype=torch.float64, requires_grad=True)
    weights = torch.randn(1, 3, 3, 3, dtype=torch.float64)
    (prroi_pool2d(features, rois, 3, 3, 1 / 8) * weights).sum().backward()
    h = 1e-4
    for c in range(1, 5):
        plus, minus = rois.detach().clone(), rois.detach().clone()
        plus[0, c] += h
        minus[0, c] -= h
        fd = ((reference_prroi(features, plus, 3, 3, 1 / 8) - reference_prroi(features, minus, 3, 3, 1 / 8))
              * weights).sum() / (2 * h)
        torch.testing.assert_close(rois.grad[0, c], fd, rtol=1e-5, atol=1e-8)
    assert rois.grad[0, 0] == 0


def test_coordinate_gradient_without_feature_gradient():
    # DiMP refines boxes by gradient ascent with frozen features
    torch.manual_seed(9)
    features = torch.randn(2, 4, 9, 9)
    rois = _mixed_rois(2, 9, 9, 1 / 8, seed=9).float()
    weights = torch.randn(rois.shape[0], 4, 5, 5)
    grads = []
    for features_need_grad in (False, True):
        r = rois.clone().requires_grad_(True)
        f = features.clone().requires_grad_(features_need_grad)
        (prroi_pool2d(f, r, 5, 5, 1 / 8) * weights).sum().backward()
        grads.append(r.grad)
    assert torch.isfinite(grads[0]).all() and grads[0][:, 1:].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1])


def test_float32_agrees_with_float64():
    torch.manual_seed(3)
    features = torch.rand(3, 8, 22, 22, dtype=torch.float64)
    rois = _mixed_rois(3, 22, 22, 1 / 16, seed=7)
    out64 = prroi_pool2d(features, rois, 3, 3, 1 / 16)
    out32 = prroi_pool2d(features.float(), rois.float(), 3, 3, 1 / 16)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-5)


def test_layouts_and_roi_dtype():
    torch.manual_seed(4)
    features = torch.randn(2, 5, 9, 10, dtype=torch.float64)
    rois = _mixed_rois(2, 9, 10, 1 / 8, seed=3)
    expected = prroi_pool2d(features, rois, 3, 3, 1 / 8)
    channels_last = features.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(prroi_pool2d(channels_last, rois, 3, 3, 1 / 8), expected, rtol=0, atol=1e-12)
    transposed = features.transpose(2, 3).contiguous().transpose(2, 3)
    torch.testing.assert_close(prroi_pool2d(transposed, rois, 3, 3, 1 / 8), expected, rtol=0, atol=1e-12)
    # float32 boxes (as pytracking builds them) with float64 features are cast to the features' dtype
    out = prroi_pool2d(features, rois.float(), 3, 3, 1 / 8)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('num_maps', [1, 2])   # one map: the window strategy (a matrix product); two: the taps
def test_bf16_autocast_pools_in_float32(num_maps):
    """Under bf16 autocast, with no float32 wrapper, the pool computes in float32: bf16 features (a convolution's
    output) are cast up and the boxes keep float32's resolution (bf16 has 2-px steps at 300 px)."""
    torch.manual_seed(10)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    image = torch.randn(num_maps, 3, 44, 44)
    offsets = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.3, -0.7, 0.9, 0.45], [1.1, 0.6, -0.8, 1.3]])
    boxes = torch.tensor([[0.0, 301.3, 297.1, 331.7, 340.9]]).repeat(3, 1)
    boxes[:, 1:] += offsets
    boxes[:, 0] = torch.arange(3) % num_maps
    pool = PrRoIPool2D(5, 5, 1 / 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        features = conv(image)
        rois = boxes.clone().requires_grad_(True)
        out = pool(features, rois)
    assert features.dtype == torch.bfloat16 and out.dtype == torch.float32
    out.sum().backward()
    features32 = features.detach().float()
    rois32 = boxes.clone().requires_grad_(True)
    expected = prroi_pool2d(features32, rois32, 5, 5, 1 / 8)
    expected.sum().backward()
    torch.testing.assert_close(out, expected, rtol=0, atol=0)     # the same float32 computation
    torch.testing.assert_close(rois.grad, rois32.grad, rtol=0, atol=0)
    torch.testing.assert_close(out.double(), reference_prroi(features32, boxes, 5, 5, 1 / 8), rtol=1e-5, atol=1e-5)
    assert (out[0] - out[1]).abs().max() > 1e-3   # sub-pixel box offsets change the pooled values


def test_no_rois():
    features = torch.randn(2, 4, 6, 6, requires_grad=True)
    rois = torch.zeros(0, 5, requires_grad=True)
    out = prroi_pool2d(features, rois, 3, 2, 0.5)
    assert out.shape == (0, 4, 3, 2)
    out.sum().backward()
    assert features.grad.shape == features.shape and torch.all(features.grad == 0)
    assert rois.grad.shape == (0, 5)


def test_module_matches_functional_and_repr():
    module = PrRoIPool2D(5, 3, 1 / 8)
    assert repr(module) == 'PrRoIPool2D(pooled_height=5, pooled_width=3, spatial_scale=0.125)'
    assert 'backend=' in repr(PrRoIPool2D(1, 1, 1 / 16, backend='torch'))
    torch.manual_seed(5)
    features = torch.randn(2, 3, 9, 9)
    rois = _mixed_rois(2, 9, 9, 1 / 8, seed=5).float()
    torch.testing.assert_close(module(features, rois), prroi_pool2d(features, rois, 5, 3, 1 / 8))
    assert set(prroi_module.__all__) == {'PrRoIPool2D', 'prroi_pool2d'}


# ---------------------------------------------------------------- the two strategies of the pure-PyTorch path
def _one_map_rois(H, W, spatial_scale, seed):
    """The mixed boxes (partly outside, tiny, empty, beyond the ramp) all on map 0."""
    rois = _mixed_rois(1, H, W, spatial_scale, seed)
    rois[:, 0] = 0
    return rois


@pytest.mark.parametrize('pooled_height, pooled_width, spatial_scale, H, W', [
    (5, 5, 1 / 8, 9, 11),
    (3, 3, 1 / 16, 7, 6),
    (1, 1, 1 / 16, 5, 8),
    (2, 4, 1 / 8, 10, 7),
])
def test_window_strategy_matches_the_reference(pooled_height, pooled_width, spatial_scale, H, W):
    features = torch.randn(1, 4, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(H + W))
    rois = _one_map_rois(H, W, spatial_scale, seed=H * 10 + W)
    ref = reference_prroi(features, rois, pooled_height, pooled_width, spatial_scale)
    for subset in (slice(None), slice(12, 13), slice(-5, -3)):   # all boxes; one inside; boxes beyond the map
        ours = prroi_module._prroi_pool2d_torch(features, rois[subset], pooled_height, pooled_width, spatial_scale,
                                                'window')
        assert ours.is_contiguous()
        torch.testing.assert_close(ours, ref[subset], rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize('pooled_height, pooled_width, spatial_scale, H, W', [
    (5, 5, 1 / 8, 9, 11),
    (1, 1, 1 / 16, 5, 8),
    (2, 4, 1 / 8, 10, 7),
])
def test_dense_pooling_matches_the_reference(pooled_height, pooled_width, spatial_scale, H, W):
    """The dense formulation the ONNX export traces: every RoI over its whole map, several maps, the mixed boxes."""
    features = torch.randn(3, 4, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(H * W))
    rois = _mixed_rois(3, H, W, spatial_scale, seed=H + 7 * W)
    ours = prroi_module.prroi_pool2d_dense(features, rois, pooled_height, pooled_width, spatial_scale)
    ref = reference_prroi(features, rois, pooled_height, pooled_width, spatial_scale)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-9)
    assert torch.all(ours[-5:-3] == 0) and torch.all(ours[-3:-1] == 0)


def test_window_strategy_gradients_are_the_tap_strategys():
    torch.manual_seed(6)
    features = torch.randn(1, 3, 9, 11, dtype=torch.float64)
    rois = _one_map_rois(9, 11, 1 / 8, seed=6)[:12]
    weights = torch.randn(12, 3, 5, 5, dtype=torch.float64)
    grads = []
    for strategy in ('taps', 'window'):
        f, r = features.clone().requires_grad_(True), rois.clone().requires_grad_(True)
        (prroi_module._prroi_pool2d_torch(f, r, 5, 5, 1 / 8, strategy) * weights).sum().backward()
        grads.append((f.grad, r.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-10, atol=1e-12)
    assert grads[0][1][:, 1:].abs().sum() > 0.1 and torch.all(grads[0][1][:, 0] == 0)


def test_auto_strategy_pools_clustered_boxes_on_one_map_in_a_window():
    def choice(num_maps, boxes, size=44):
        coords = torch.tensor(boxes, dtype=torch.float64) / 8
        return prroi_module._choose_strategy('auto', num_maps, prroi_module.bin_edges(coords, 5, 5), size, size)

    refinement = [[150.0, 160.0, 208.0, 207.0], [148.0, 158.0, 212.0, 201.0], [153.0, 163.0, 201.0, 214.0]]
    assert choice(1, refinement) == (19, 27, 18, 27)   # the cells the boxes' bins read
    assert choice(2, refinement) == 'taps'             # several maps
    spread = [[2.0, 3.0, 30.0, 31.0], [300.0, 310.0, 330.0, 340.0]]
    assert choice(1, spread) == 'taps'                 # a window far larger than the boxes
    with pytest.raises(ValueError, match="strategy='window' pools one feature map"):
        prroi_module._choose_strategy('window', 2, prroi_module.bin_edges(torch.zeros(1, 4), 5, 5), 9, 9)
    # and both give the same numbers
    features = torch.randn(1, 8, 44, 44, dtype=torch.float64)
    rois = torch.cat([torch.zeros(3, 1, dtype=torch.float64), torch.tensor(refinement, dtype=torch.float64)], 1)
    torch.testing.assert_close(prroi_pool2d(features, rois, 5, 5, 1 / 8),
                               prroi_module._prroi_pool2d_torch(features, rois, 5, 5, 1 / 8, 'taps'),
                               rtol=1e-12, atol=1e-12)


def test_invalid_inputs():
    features = torch.randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match='rois'):
        prroi_pool2d(features, torch.zeros(3, 4), 2, 2, 1.0)
    with pytest.raises(ValueError, match='features'):
        prroi_pool2d(features[0], torch.zeros(3, 5), 2, 2, 1.0)
    with pytest.raises(ValueError, match='pooled'):
        prroi_pool2d(features, torch.zeros(3, 5), 0, 2, 1.0)
    with pytest.raises(IndexError, match='batch indices'):
        prroi_pool2d(features, torch.tensor([[1.0, 0, 0, 2, 2]]), 2, 2, 1.0)


def test_cuda_backend_on_cpu_tensors_raises():
    features, rois = torch.randn(1, 2, 4, 4), torch.tensor([[0.0, 0, 0, 2, 2]])
    with pytest.raises(RuntimeError, match='CUDA tensors'):
        prroi_pool2d(features, rois, 2, 2, 1.0, backend='cuda')
    with pytest.raises(RuntimeError, match='CUDA tensors'):
        PrRoIPool2D(2, 2, 1.0, backend='cuda')(features, rois)
    with pytest.raises(ValueError, match='backend'):
        prroi_pool2d(features, rois, 2, 2, 1.0, backend='tensorrt')
    with pytest.raises(ValueError, match='backend'):
        PrRoIPool2D(2, 2, 1.0, backend='tensorrt')


def test_backend_environment_variable(monkeypatch):
    features, rois = torch.randn(1, 2, 4, 4), torch.tensor([[0.0, 0.3, 0.2, 2.5, 2.1]])
    expected = prroi_pool2d(features, rois, 2, 2, 1.0, backend='torch')
    monkeypatch.setenv('PRROI_POOL_BACKEND', 'cuda')
    with pytest.raises(RuntimeError, match='CUDA tensors'):
        prroi_pool2d(features, rois, 2, 2, 1.0)
    with pytest.raises(RuntimeError, match='CUDA tensors'):
        PrRoIPool2D(2, 2, 1.0)(features, rois)
    # an explicit argument wins over the variable
    torch.testing.assert_close(prroi_pool2d(features, rois, 2, 2, 1.0, backend='torch'), expected)
    monkeypatch.setenv('PRROI_POOL_BACKEND', 'torch')
    torch.testing.assert_close(prroi_pool2d(features, rois, 2, 2, 1.0), expected)
    monkeypatch.setenv('PRROI_POOL_BACKEND', 'auto')
    torch.testing.assert_close(PrRoIPool2D(2, 2, 1.0)(features, rois), expected)
    monkeypatch.setenv('PRROI_POOL_BACKEND', 'bogus')
    with pytest.raises(ValueError, match='PRROI_POOL_BACKEND'):
        prroi_pool2d(features, rois, 2, 2, 1.0)


def test_pytracking_builds_its_prroi_pool_modules_from_the_plugin():
    from ltr.models.bbreg.atom_iou_net import AtomIoUNet
    from ltr.models.target_classifier.initializer import FilterPool
    pools = [AtomIoUNet().prroi_pool3t, FilterPool(filter_size=4).prroi_pool]
    assert all(type(pool) is PrRoIPool2D for pool in pools)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


@pytest.mark.cuda
@requires_cuda
def test_torch_backend_on_cuda_matches_cpu():
    torch.manual_seed(6)
    features = torch.randn(3, 16, 22, 22, dtype=torch.float64, requires_grad=True)
    rois = _mixed_rois(3, 22, 22, 1 / 16, seed=11).requires_grad_(True)
    weights = torch.randn(rois.shape[0], 16, 3, 3, dtype=torch.float64)
    out_cpu = prroi_pool2d(features, rois, 3, 3, 1 / 16, backend='torch')
    (out_cpu * weights).sum().backward()
    grads_cpu = features.grad.clone(), rois.grad.clone()
    features_cuda = features.detach().cuda().requires_grad_(True)
    rois_cuda = rois.detach().cuda().requires_grad_(True)
    out_cuda = prroi_pool2d(features_cuda, rois_cuda, 3, 3, 1 / 16, backend='torch')
    (out_cuda * weights.cuda()).sum().backward()
    torch.testing.assert_close(out_cuda.cpu(), out_cpu, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(features_cuda.grad.cpu(), grads_cpu[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(rois_cuda.grad.cpu(), grads_cpu[1], rtol=1e-10, atol=1e-10)


@pytest.mark.cuda
@requires_cuda
def test_torch_backend_matches_cuda_extension():
    extension = LOADERS['extension']
    try:
        extension.load(torch.device('cuda'))
    except BackendUnavailable:
        pytest.skip('CUDA extension unavailable: {}'.format(extension.reason))
    torch.manual_seed(7)
    features = torch.rand(2, 32, 44, 44, device='cuda', requires_grad=True)
    g = torch.Generator().manual_seed(8)
    w = torch.rand(64, generator=g) * 190 + 10
    h = torch.rand(64, generator=g) * 190 + 10
    x1 = torch.rand(64, generator=g) * (352 - w)
    y1 = torch.rand(64, generator=g) * (352 - h)
    b = torch.randint(0, 2, (64,), generator=g).float()
    rois = torch.stack([b, x1, y1, x1 + w, y1 + h], 1).cuda().requires_grad_(True)
    weights = torch.randn(64, 32, 5, 5, device='cuda')
    results = []
    for backend in ('torch', 'cuda'):
        features.grad, rois.grad = None, None
        out = prroi_pool2d(features, rois, 5, 5, 1 / 8, backend=backend)
        (out * weights).sum().backward()
        results.append((out.detach(), features.grad.clone(), rois.grad[:, 1:].clone()))
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
