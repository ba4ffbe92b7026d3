"""Precise RoI Pooling (PrRoIPool, Jiang et al., "Acquisition of Localization Confidence for Accurate Object
Detection", ECCV 2018): the definition, the public op and its pure-PyTorch implementation.

A bin's value is the exact integral of the bilinearly interpolated feature map over the bin, over its area
(:func:`prroi_pool2d`, as the CUDA op defines it); computed in float32 (float64 for float64 features). CPU tensors
are pooled here, CUDA tensors by the first that works of the Triton kernels, the CUDA extension and this code
(:mod:`ltr_plugins.prroi_pool_backends`). The integral is separable, ``sum_ij F[i, j] * A_j * B_i`` with
``A_j = G(xb - j) - G(xa - j)`` (``G`` the antiderivative of ``tri``), so a bin is a short weighted sum of cells: the
'taps' strategy gathers exactly those with ``embedding_bag``; the 'window' strategy, for RoIs close together on one
map (DiMP's box refinement), pools all bins by one matrix product over the window of cells their taps lie in.
"""
import contextlib
import os
from typing import ContextManager, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ltr_plugins.prroi_pool_backends import PoolScope, plan

__all__ = ['PrRoIPool2D', 'prroi_pool2d']

BACKENDS = ('auto', 'torch', 'triton', 'cuda')
BACKEND_ENV_VAR = 'PRROI_POOL_BACKEND'

Window = Tuple[int, int, int, int]   # first row, last row, first column, last column (inclusive), in map cells


def _resolve_backend(backend: Optional[str]) -> str:
    if backend is None:
        backend = os.environ.get(BACKEND_ENV_VAR, '') or 'auto'
    backend = backend.strip().lower()
    if backend not in BACKENDS:
        raise ValueError('Unknown PrRoIPool backend {!r} (from the argument or ${}); expected one of {}'.format(
            backend, BACKEND_ENV_VAR, ', '.join(BACKENDS)))
    return backend


# ------------------------------------------------------------------------------------------------- bin geometry
def _tri_antiderivative(t: torch.Tensor, with_derivative: bool = False):
    """G(t) = integral of tri from -inf to t: 0 below -1, 1 above 1, and 1/2 + t - t|t|/2 in between (the two
    quadratics (t + 1)^2 / 2 and 1 - (1 - t)^2 / 2 in one expression). ``with_derivative``: (G(t), tri(t))."""
    t = t.clamp(-1.0, 1.0)
    t_abs = t.abs()
    g = 0.5 + t * (1 - 0.5 * t_abs)
    return (g, 1 - t_abs) if with_derivative else g


class BinEdges(NamedTuple):
    """The bins of RoIs ``x1, y1, x2, y2`` (map units), both axes stacked (axis 0: x, 1: y).

    ``edges`` [K, 2, P + 1] (``P = max(PH, PW)``) are ``x1 + p * bin_w`` for ``p = steps[0]`` (and likewise in y):
    not cumulated, so the last edge is ``x2`` up to one rounding, as in the CUDA op. ``steps`` [2, P + 1] counts
    ``0 .. PW`` along x and ``0 .. PH`` along y, the shorter axis repeating its last edge. ``bin_size`` [K, 2] is
    ``max(x2 - x1, 0) / PW, max(y2 - y1, 0) / PH``; ``extent`` [K, 2] is ``x2 - x1, y2 - y1``.
    """
    edges: torch.Tensor
    steps: torch.Tensor
    bin_size: torch.Tensor
    extent: torch.Tensor
    pooled_height: int
    pooled_width: int

    @property
    def x(self) -> torch.Tensor:
        """[K, PW + 1]"""
        return self.edges[:, 0, :self.pooled_width + 1]

    @property
    def y(self) -> torch.Tensor:
        """[K, PH + 1]"""
        return self.edges[:, 1, :self.pooled_height + 1]


def _pair(first: float, second: float, like: torch.Tensor) -> torch.Tensor:
    """``[first, second]`` made on ``like``'s device in its dtype (no copy from the host, which would block)."""
    pair = torch.full((2,), float(first), device=like.device, dtype=like.dtype)
    pair[1] = second
    return pair


def bin_edges(coords: torch.Tensor, pooled_height: int, pooled_width: int) -> BinEdges:
    """The bin edges of RoIs ``coords`` [K, 4] (``x1, y1, x2, y2`` in map units); see :class:`BinEdges`."""
    counts = _pair(pooled_width, pooled_height, coords)
    steps = torch.arange(max(pooled_height, pooled_width) + 1, device=coords.device, dtype=coords.dtype)
    steps = torch.minimum(steps, counts.view(2, 1))
    extent = coords[:, 2:] - coords[:, :2]
    bin_size = extent.clamp(min=0) / counts
    edges = coords[:, :2].unsqueeze(-1) + steps * bin_size.unsqueeze(-1)
    return BinEdges(edges, steps, bin_size, extent, pooled_height, pooled_width)


def inverse_area(bin_size: torch.Tensor) -> torch.Tensor:
    """1 / (bin_w * bin_h) of bins ``bin_size`` [..., 2], 0 for an empty bin."""
    area = bin_size[..., 0] * bin_size[..., 1]
    # Double where: a zero-area bin yields 0 and, unlike 0 * inf, a zero gradient.
    safe_area = torch.where(area > 0, area, torch.ones_like(area))
    return torch.where(area > 0, 1.0 / safe_area, torch.zeros_like(area))


def cells_read(low: torch.Tensor, high: torch.Tensor,
               size: Union[int, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """First and last cell (inclusive, clipped to ``0 .. size-1``, never ``last < first``) that bins spanning
    ``low .. high`` (map units, along one axis) read: their bilinear support reaches the cells on both sides of every
    edge. Elementwise over tensors; ``size`` may be a tensor broadcasting with them. NaN reads as 0."""
    with torch.no_grad():
        size = (size.to(low.device, low.dtype) if isinstance(size, torch.Tensor)
                else torch.full((), float(size), device=low.device, dtype=low.dtype))
        low = torch.minimum(torch.nan_to_num(low, nan=0.0).clamp(min=-2.0), size + 1)
        high = torch.minimum(torch.nan_to_num(high, nan=0.0).clamp(min=-2.0), size + 1)
        first = torch.minimum(torch.floor(low).clamp(min=0), size - 1)
        last = torch.maximum(torch.minimum(torch.ceil(high), size - 1), first)
    return first.long(), last.long()


def _window_cells(low: torch.Tensor, high: torch.Tensor, map_size: Tuple[int, int]) -> torch.Tensor:
    """``x_first, y_first, x_last, y_last`` (in ``low``'s dtype) of the cells that bins between ``low = (x, y)`` and
    ``high`` (map units) read on a map of ``map_size = (H, W)``, where ``low`` is."""
    first, last = cells_read(low, high, _pair(map_size[1], map_size[0], low))
    return torch.cat((first, last)).to(low.dtype)


def _window(cells: Sequence[float]) -> Window:
    x_first, y_first, x_last, y_last = (int(value) for value in cells)
    return y_first, y_last, x_first, x_last


def window_read(low: torch.Tensor, high: torch.Tensor, map_size: Tuple[int, int]) -> Window:
    """The window of cells that bins between ``low = (x, y)`` and ``high`` (map units) read on a map of
    ``map_size = (H, W)`` (one read on the host)."""
    return _window(_window_cells(low, high, map_size).tolist())


def _axis_weights(lo: torch.Tensor, hi: torch.Tensor, first: torch.Tensor, span: int) -> torch.Tensor:
    """Integration weights [K, P, span] along one axis for bins ``[lo, hi]`` (shape [K, P]) whose first sample is
    ``first`` (:func:`cells_read`): ``weights[..., t]`` belongs to sample ``first + t``."""
    positions = (first.unsqueeze(-1) + torch.arange(span, device=lo.device)).to(lo.dtype)
    return _tri_antiderivative(hi.unsqueeze(-1) - positions) - _tri_antiderivative(lo.unsqueeze(-1) - positions)


STRATEGIES = ('auto', 'taps', 'window')

# The window strategy multiplies every bin's weights with every cell of the shared window; the taps strategy only
# touches a bin's own cells, but a gathered tap costs far more than a multiply-add in a matrix product, so the
# window is the cheaper one up to windows this many times the largest bin (bench/prroi_pool.py, "strategies").
WINDOW_AREA_FACTOR = 32


def _choose_strategy(strategy: str, num_maps: int, edges: BinEdges, H: int, W: int):
    """'taps' or the window ``(y_first, y_last, x_first, x_last)`` for the 'window' strategy."""
    if strategy == 'taps' or num_maps != 1 or edges.edges.shape[0] == 0:
        if strategy == 'window' and num_maps != 1:
            raise ValueError("PrRoIPool strategy='window' pools one feature map, got {}".format(num_maps))
        return 'taps'
    with torch.no_grad():
        low = torch.stack((edges.x.min(), edges.y.min()))
        high = torch.stack((edges.x.max(), edges.y.max()))
        # the window and the largest bin, read on the host in one transfer
        values = torch.cat((_window_cells(low, high, (H, W)), edges.bin_size.amax(0))).tolist()
    window = _window(values[:4])
    if strategy == 'auto':
        largest_bin_w, largest_bin_h = values[4:]
        window_area = (window[1] - window[0] + 1) * (window[3] - window[2] + 1)
        if not window_area <= WINDOW_AREA_FACTOR * (largest_bin_w + 2) * (largest_bin_h + 2):   # NaN: 'taps'
            return 'taps'
    return window


# ---------------------------------------------------------------------------------------------- window strategy
class WindowWeights(NamedTuple):
    """The window strategy's bin weights for RoIs over the cells of a window, and what their gradient needs.

    ``bins`` [K * PH * PW, rows * columns] holds, for bin ``(k, ph, pw)`` (row ``(k * PH + ph) * PW + pw``), the
    weight of every window cell (row-major), the bin's inverse area included: pooled features are
    ``bins @ window_features.T``. Plain tensors without autograd history (built by :func:`window_weights`), so that
    autograd functions can keep them with ``save_for_backward``; :meth:`coords_gradient` gives the gradient.
    """
    bins: torch.Tensor                 # [K * PH * PW, rows * columns]
    weights_x: torch.Tensor            # [K, PW, columns]
    unscaled_weights_y: torch.Tensor   # [K, PH, rows]
    inv_area: torch.Tensor             # [K]
    tri: torch.Tensor                  # [K, 2, P + 1, S]: tri(edge - sample), G's derivative
    steps: torch.Tensor                # BinEdges.steps
    bin_size: torch.Tensor             # BinEdges.bin_size
    extent: torch.Tensor               # BinEdges.extent

    def coords_gradient(self, grad_bins: torch.Tensor) -> torch.Tensor:
        """Gradient [K, 4] with respect to the RoIs, given the gradient [K * PH * PW, rows * columns] of ``bins``."""
        K, PW, columns = self.weights_x.shape
        PH, rows = self.unscaled_weights_y.shape[1:]
        weights_y = self.unscaled_weights_y * self.inv_area.view(K, 1, 1)
        grad_bins = grad_bins.view(K, PH, PW, rows, columns)
        grad_weights_y = (grad_bins * self.weights_x.reshape(K, 1, PW, 1, columns)).sum((2, 4))   # [K, PH, rows]
        grad_weights_x = (grad_bins * weights_y.view(K, PH, 1, rows, 1)).sum((1, 3))            # [K, PW, columns]
        grad_inv_area = (grad_weights_y * self.unscaled_weights_y).sum((1, 2))
        grad_axis = grad_bins.new_zeros(self.tri.shape[:2] + (self.tri.shape[2] - 1, self.tri.shape[3]))
        grad_axis[:, 0, :PW, :columns] = grad_weights_x
        grad_axis[:, 1, :PH, :rows] = grad_weights_y * self.inv_area.view(K, 1, 1)
        # weights = G(edge[p + 1] - s) - G(edge[p] - s): edge m gets G'(edge[m] - s) (grad[m - 1] - grad[m])
        padding = F.pad(grad_axis, (0, 0, 1, 1))
        grad_edges = ((padding[:, :, :-1] - padding[:, :, 1:]) * self.tri).sum(-1)   # [K, 2, P + 1]
        # inv_area = 1 / (bin_w * bin_h) where the area is positive, 0 (and no gradient) elsewhere
        grad_area = -grad_inv_area * self.inv_area * self.inv_area
        # edge[m] = x1 + m * bin_w, bin_w = max(x2 - x1, 0) / PW (clamp passes the gradient at 0, as autograd's)
        grad_bin_size = (grad_edges * self.steps).sum(-1) + grad_area.unsqueeze(1) * self.bin_size.flip(1)
        grad_extent = grad_bin_size * (self.extent >= 0) / self.steps[:, -1]
        return torch.cat([grad_edges.sum(-1) - grad_extent, grad_extent], 1)


def window_weights(coords: torch.Tensor, pooled_height: int, pooled_width: int, window: Window) -> WindowWeights:
    """The window strategy's weights for RoIs ``coords`` [K, 4] (map units, ``x1, y1, x2, y2``) over the cells
    ``window``. Both axes are computed together, the shorter one padded: bins beyond an axis' count repeat its last
    edge, samples beyond its cells lie far away, and both get weight 0."""
    y_first, y_last, x_first, x_last = window
    rows, columns = y_last - y_first + 1, x_last - x_first + 1
    K, PH, PW = coords.shape[0], pooled_height, pooled_width
    device, dtype = coords.device, coords.dtype
    with torch.no_grad():
        edges = bin_edges(coords, PH, PW)
        size = max(rows, columns)
        samples = torch.full((2, size), -float(size + 2), device=device, dtype=dtype)
        samples[0, :columns] = torch.arange(x_first, x_last + 1, device=device, dtype=dtype)
        samples[1, :rows] = torch.arange(y_first, y_last + 1, device=device, dtype=dtype)
        g, tri = _tri_antiderivative(edges.edges.unsqueeze(-1) - samples.view(1, 2, 1, size), True)
        axis_weights = g[:, :, 1:] - g[:, :, :-1]                    # [K, 2, P, S]
        inv_area = inverse_area(edges.bin_size)
        weights_x = axis_weights[:, 0, :PW, :columns]
        unscaled_weights_y = axis_weights[:, 1, :PH, :rows]
        weights_y = unscaled_weights_y * inv_area.view(K, 1, 1)
        bins = (weights_y.view(K, PH, 1, -1, 1) * weights_x.reshape(K, 1, PW, 1, -1)).reshape(K * PH * PW, -1)
    return WindowWeights(bins, weights_x, unscaled_weights_y, inv_area, tri, edges.steps, edges.bin_size,
                         edges.extent)


def prroi_pool2d_dense(features: torch.Tensor, rois: torch.Tensor, pooled_height: int, pooled_width: int,
                       spatial_scale: float) -> torch.Tensor:
    """:func:`prroi_pool2d`'s values (to float rounding) as the window strategy over each RoI's whole map: the
    weights of every cell for every bin, one batched matrix product. Costs ``H * W`` per bin, but has no
    data-dependent shape and reads nothing back to the host, so it traces into a fixed graph (the ONNX export of the
    IoU-net's modulation). ``features`` [N, C, H, W], ``rois`` [K, 5] (``batch_index, x1, y1, x2, y2``); returns
    [K, C, PH, PW] in the features' dtype, differentiable in the features only. Batch indices are not checked."""
    K, (N, C, H, W) = rois.shape[0], features.shape
    coords = rois[:, 1:].to(features.dtype) * spatial_scale
    bins = window_weights(coords, pooled_height, pooled_width, (0, H - 1, 0, W - 1)).bins
    maps = features.index_select(0, rois[:, 0].long()).reshape(K, C, H * W)
    pooled = torch.bmm(bins.view(K, pooled_height * pooled_width, H * W), maps.transpose(1, 2))
    return pooled.transpose(1, 2).reshape(K, C, pooled_height, pooled_width)


def window_cells(features: torch.Tensor, window: Window) -> torch.Tensor:
    """``features`` [C, H, W] over the window's cells, as [C, rows * columns]."""
    y_first, y_last, x_first, x_last = window
    return features[:, y_first:y_last + 1, x_first:x_last + 1].reshape(features.shape[0], -1)


class _WindowPool(torch.autograd.Function):
    """The window strategy (module docstring) as one autograd node with a hand-written backward.

    DiMP's box refinement calls PrRoIPool twice per step for ten boxes; built from ordinary ops, the weights'
    autograd graph (some 40 nodes per call) would cost more than the pooling itself.
    """

    @staticmethod
    def forward(ctx, features, coords, pooled_height, pooled_width, window):
        weights = window_weights(coords, pooled_height, pooled_width, window)
        cells = window_cells(features[0], window)
        pooled = torch.mm(weights.bins, cells.t())   # [K * PH * PW, C]
        ctx.features_shape, ctx.window = tuple(features.shape), window
        ctx.save_for_backward(cells, *weights)
        return pooled.view(coords.shape[0], pooled_height, pooled_width, -1).permute(0, 3, 1, 2).contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_pooled):
        with _autocast_off(grad_pooled.device.type):   # a backward run inside autocast keeps the products exact
            return _WindowPool._backward(ctx, grad_pooled)

    @staticmethod
    def _backward(ctx, grad_pooled):
        cells, *saved = ctx.saved_tensors
        weights = WindowWeights(*saved)
        K, C, PH, PW = grad_pooled.shape
        grad = grad_pooled.permute(0, 2, 3, 1).reshape(K * PH * PW, C)
        grad_features = grad_coords = None
        if ctx.needs_input_grad[0]:
            y_first, y_last, x_first, x_last = ctx.window
            grad_features = grad.new_zeros(ctx.features_shape)
            grad_features[0, :, y_first:y_last + 1, x_first:x_last + 1] = \
                torch.mm(grad.t(), weights.bins).view(C, y_last - y_first + 1, x_last - x_first + 1)
        if ctx.needs_input_grad[1]:
            grad_coords = weights.coords_gradient(torch.mm(grad, cells))
        return grad_features, grad_coords, None, None, None


# ------------------------------------------------------------------------------------------------ taps strategy
def _rois_outside(batch_index: torch.Tensor, num_maps: int) -> Optional[torch.Tensor]:
    """RoIs whose batch index lies outside ``[0, num_maps)``. On the CPU, where reading them is free, an IndexError
    (None when all are inside); elsewhere a mask computed on the device without a host read: those RoIs pool NaN,
    as in the Triton kernel."""
    if batch_index.device.type != 'cpu':
        return (batch_index < 0) | (batch_index >= num_maps)
    if batch_index.numel() and (int(batch_index.min()) < 0 or int(batch_index.max()) >= num_maps):
        raise IndexError('PrRoIPool: RoI batch indices must lie in [0, {}), got [{}, {}]'.format(
            num_maps, int(batch_index.min()), int(batch_index.max())))
    return None


def _prroi_pool2d_torch(features: torch.Tensor, rois: torch.Tensor, pooled_height: int, pooled_width: int,
                        spatial_scale: float, strategy: str = 'auto') -> torch.Tensor:
    N, C, H, W = features.shape
    PH, PW = pooled_height, pooled_width
    rois = rois.to(features.dtype)
    batch_index = rois[:, 0].detach().long()
    outside = _rois_outside(batch_index, N)
    if strategy not in STRATEGIES:
        raise ValueError('PrRoIPool strategy must be one of {}, not {!r}'.format(STRATEGIES, strategy))
    coords = rois[:, 1:] * spatial_scale
    window = 'taps'
    if N == 1 or strategy == 'window':   # several maps (training batches) always gather taps
        with torch.no_grad():
            window = _choose_strategy(strategy, N, bin_edges(coords, PH, PW), H, W)
    if window != 'taps':
        pooled = _WindowPool.apply(features, coords, PH, PW, window)
    else:
        pooled = _pool_taps(features, coords, batch_index if outside is None else batch_index.clamp(0, N - 1),
                            PH, PW)
    return pooled if outside is None else pooled.masked_fill(outside.view(-1, 1, 1, 1), float('nan'))


def _tap_sizes(count_x: torch.Tensor, count_y: torch.Tensor, ny_bin: torch.Tensor,
               taps_per_bin: torch.Tensor) -> List[int]:
    """The sizes the taps strategy's tensors take, read on the host in one transfer: the most cells a bin reads
    along x and along y, the number of rows of cells and of taps of all bins."""
    if not taps_per_bin.numel():
        return [1, 1, 0, 0]
    return [int(v) for v in torch.stack((count_x.max(), count_y.max(), ny_bin.sum(), taps_per_bin.sum())).tolist()]


def _pool_taps(features: torch.Tensor, coords: torch.Tensor, batch_index: torch.Tensor, PH: int, PW: int
               ) -> torch.Tensor:
    """The taps strategy (module docstring): every bin a weighted sum of the cells it reads, by embedding_bag."""
    N, C, H, W = features.shape
    K, device = coords.shape[0], features.device
    edges = bin_edges(coords, PH, PW)
    xs, ys = edges.x, edges.y
    inv_area = inverse_area(edges.bin_size)
    first_x, last_x = cells_read(xs[:, :-1], xs[:, 1:], W)   # [K, PW]
    first_y, last_y = cells_read(ys[:, :-1], ys[:, 1:], H)   # [K, PH]

    # One "bag" of taps per bin, listing only the cells the bin touches (their number varies from bin to bin).
    # Taps are enumerated in two levels, bins -> rows of a bin -> cells of a row, so that most of the per-tap
    # integer work is one gather from a per-row array plus an arange.
    with torch.no_grad():
        count_x, count_y = last_x - first_x + 1, last_y - first_y + 1
        num_bins = K * PH * PW
        nx_bin = count_x.unsqueeze(1).expand(K, PH, PW).reshape(-1)
        ny_bin = torch.where(nx_bin > 0, count_y.unsqueeze(2).expand(K, PH, PW).reshape(-1), 0)
        taps_per_bin = ny_bin * nx_bin
        span_x, span_y, num_rows, num_taps = _tap_sizes(count_x, count_y, ny_bin, taps_per_bin)
        bag_offsets = torch.cumsum(taps_per_bin, 0) - taps_per_bin
        bin_of_row = torch.repeat_interleave(torch.arange(num_bins, device=device), ny_bin, output_size=num_rows)
        ty = torch.arange(num_rows, device=device) - (torch.cumsum(ny_bin, 0) - ny_bin)[bin_of_row]
        k = bin_of_row // (PH * PW)
        ph = (bin_of_row // PW) % PH
        pw = bin_of_row % PW
        kx = k * PW + pw
        nx_row = nx_bin[bin_of_row]
        row_start = torch.cumsum(nx_row, 0) - nx_row   # index of the row's first tap
        row_of_tap = torch.repeat_interleave(torch.arange(num_rows, device=device), nx_row, output_size=num_taps)
        tap = torch.arange(num_taps, device=device)
        # tap - row_start[row] is the column offset inside the row
        table_index = ((batch_index[k] * H + first_y.reshape(-1)[k * PH + ph] + ty) * W
                       + first_x.reshape(-1)[kx] - row_start)[row_of_tap] + tap
        wx_index = (kx * span_x - row_start)[row_of_tap] + tap
        wy_index = (k * PH + ph) * span_y + ty
    weights_x = _axis_weights(xs[:, :-1], xs[:, 1:], first_x, span_x)                       # [K, PW, span_x]
    weights_y = _axis_weights(ys[:, :-1], ys[:, 1:], first_y, span_y) * inv_area.view(K, 1, 1)   # [K, PH, span_y]
    # index_select rather than [] because its backward is an index_add, cheaper than an accumulating index_put.
    weights_row = torch.index_select(weights_y.reshape(-1), 0, wy_index)
    tap_weights = (torch.index_select(weights_x.reshape(-1), 0, wx_index)
                   * torch.index_select(weights_row, 0, row_of_tap))

    # Channels last, so that each tap is one contiguous row of C values.
    table = features.permute(0, 2, 3, 1).reshape(N * H * W, C)
    pooled = F.embedding_bag(table_index, table, bag_offsets, mode='sum', per_sample_weights=tap_weights)
    return pooled.view(K, PH, PW, C).permute(0, 3, 1, 2).contiguous()


def _check_inputs(features: torch.Tensor, rois: torch.Tensor, pooled_height: int, pooled_width: int) -> None:
    if features.dim() != 4:
        raise ValueError('PrRoIPool: features must be [N, C, H, W], got shape {}'.format(tuple(features.shape)))
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError('PrRoIPool: rois must be [K, 5] rows (batch_index, x1, y1, x2, y2), got shape {}'.format(
            tuple(rois.shape)))
    if int(pooled_height) < 1 or int(pooled_width) < 1:
        raise ValueError('PrRoIPool: pooled sizes must be >= 1, got {}x{}'.format(pooled_height, pooled_width))
    if features.device != rois.device:
        raise ValueError('PrRoIPool: features on {} but rois on {}'.format(features.device, rois.device))


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype PrRoIPool computes in for features of ``dtype``: float64 for float64, float32 for anything else (half
    precision included, so that box coordinates keep float32's resolution under autocast)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _autocast_off(device_type: str) -> ContextManager:
    """Autocast disabled for ``device_type`` when it is on (inside, matrix products would run in half precision)."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except (RuntimeError, ValueError):   # a device type autocast does not know (meta)
        enabled = False
    return torch.autocast(device_type, enabled=False) if enabled else contextlib.nullcontext()


def _check_backend_device(backend: str, features: torch.Tensor, rois: torch.Tensor) -> None:
    if backend == 'cuda' and not (features.is_cuda and rois.is_cuda):
        raise RuntimeError("PrRoIPool backend='cuda' needs CUDA tensors, got features on {} and rois on {}; "
                           "use backend='torch' or 'auto' for CPU tensors".format(features.device, rois.device))
    if backend == 'cuda' and features.dtype == torch.float64:
        raise TypeError("PrRoIPool backend='cuda': the CUDA extension computes in float32, got float64 features")
    if backend == 'triton' and not features.is_cuda and os.environ.get('TRITON_INTERPRET', '0') in ('', '0'):
        raise RuntimeError("PrRoIPool backend='triton' needs CUDA tensors (or Triton's interpreter, "
                           "TRITON_INTERPRET=1 before Triton is imported), got features on {}".format(features.device))


def prroi_pool2d(features: torch.Tensor, rois: torch.Tensor, pooled_height: int, pooled_width: int,
                 spatial_scale: float, backend: Optional[str] = None,
                 scope: Optional[PoolScope] = None) -> torch.Tensor:
    """Precise RoI Pooling: the mean of the bilinearly interpolated feature map over each RoI bin.

    Args:
        features: [N, C, H, W] feature maps (CPU or CUDA; any floating dtype, computed in float32, or in float64 for
            float64 features, with autocast off).
        rois: [K, 5] rows ``(batch_index, x1, y1, x2, y2)`` in image coordinates; ``batch_index`` picks the map.
            Cast to the compute dtype (never to half precision).
        pooled_height, pooled_width: number of bins per RoI (PH, PW).
        spatial_scale: factor from image to feature coordinates (e.g. 1/8).
        backend: ``'auto'`` (CPU tensors: pure PyTorch; CUDA tensors: the Triton kernel, falling back to the CUDA
            extension (float32) and then to pure PyTorch when one fails), ``'torch'``, ``'triton'`` or ``'cuda'``
            (the extension): that implementation only, or an error saying why not. None reads
            ``$PRROI_POOL_BACKEND`` (default ``'auto'``). See :mod:`ltr_plugins.prroi_pool_backends`.
        scope: remembers the implementations that failed, so that they are not tried again (a ``PrRoIPool2D``
            passes its own); None: a fresh one for this call.

    Returns:
        [K, C, PH, PW] in the compute dtype: for bin ``(ph, pw)`` of RoI ``k``, the integral of ``f`` over
        ``[x1s + pw * bin_w, x1s + (pw + 1) * bin_w] x [y1s + ph * bin_h, y1s + (ph + 1) * bin_h]`` divided by
        ``bin_w * bin_h`` (0 for an empty bin), where ``f(x, y) = sum_ij F[i, j] tri(x - j) tri(y - i)``,
        ``x1s = x1 * spatial_scale`` etc., ``bin_w = max(x2s - x1s, 0) / PW`` and ``bin_h = max(y2s - y1s, 0) / PH``.
        Differentiable with respect to ``features`` and the four box coordinates (not the batch index).
    """
    _check_inputs(features, rois, pooled_height, pooled_width)
    pooled_height, pooled_width, spatial_scale = int(pooled_height), int(pooled_width), float(spatial_scale)
    backend = _resolve_backend(backend)
    _check_backend_device(backend, features, rois)
    dtype = compute_dtype(features.dtype)
    with _autocast_off(features.device.type):
        features, rois = features.to(dtype), rois.to(dtype)
        return (scope if scope is not None else PoolScope()).pool(
            plan(backend, features.device, dtype), _prroi_pool2d_torch, features, rois, pooled_height, pooled_width,
            spatial_scale)


class PrRoIPool2D(nn.Module):
    """Precise RoI Pooling as a module; see :func:`prroi_pool2d` for the definition and the backends. An
    implementation that fails in this module is said once and not tried again here (``scope``); other modules are
    not affected."""

    def __init__(self, pooled_height: int, pooled_width: int, spatial_scale: float, backend: Optional[str] = None):
        super().__init__()
        self.pooled_height = int(pooled_height)
        self.pooled_width = int(pooled_width)
        self.spatial_scale = float(spatial_scale)
        if backend is not None:
            _resolve_backend(backend)  # fail at construction rather than on the first forward
        self.backend = backend
        self.scope = PoolScope()   # this pool's memory of the implementations that failed

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return prroi_pool2d(features, rois, self.pooled_height, self.pooled_width, self.spatial_scale,
                            backend=self.backend, scope=self.scope)

    def extra_repr(self) -> str:
        text = 'pooled_height={}, pooled_width={}, spatial_scale={}'.format(
            self.pooled_height, self.pooled_width, self.spatial_scale)
        if self.backend is not None:
            text += ', backend={!r}'.format(self.backend)
        return text
