"""Precise RoI Pooling as Triton kernels: the exact integral of :mod:`ltr_plugins.prroi_pool`, for CUDA tensors.

The pure-PyTorch path sizes its work from the data, so on a GPU it reads counts back to the host. Here one program
pools one bin for a block of channels (channels-last features), looping over exactly the cells the bin reads, so
forward and backward are a few launches with no host reads or blocking copies. The backward scatters the features'
gradient with atomic adds (its last bits in float32 may vary between runs, as roi_align's) and writes the boxes' per
block, summed deterministically. float32 and float64 only (the caller casts half precision up). Batch indices are not
checked, which would read them on the host: a RoI whose index is outside ``[0, N)`` pools NaN, so the error shows in
the loss. With ``TRITON_INTERPRET=1`` set before Triton is imported it runs on CPU tensors in Triton's interpreter,
which is how the tests check it without a GPU.
"""
from typing import Tuple

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

__all__ = ['prroi_pool2d_triton']

MAX_BLOCK_C = 128


@triton.jit
def _antiderivative(t):
    """G(t), the integral of tri from -inf to t, and tri(t) = G'(t) (as ``_tri_antiderivative``)."""
    t = tl.minimum(tl.maximum(t, -1.0), 1.0)
    t_abs = tl.abs(t)
    return 0.5 + t * (1.0 - 0.5 * t_abs), 1.0 - t_abs


@triton.jit
def _cells(low, high, size):
    """First and last cell (inclusive, clipped to the map) that a bin spanning ``low .. high`` reads; NaN reads as
    0 (as ``cells_read``)."""
    low = tl.where(low == low, low, 0.0)
    high = tl.where(high == high, high, 0.0)
    low = tl.minimum(tl.maximum(low, -2.0), size + 1.0)
    high = tl.minimum(tl.maximum(high, -2.0), size + 1.0)
    first = tl.minimum(tl.maximum(tl.floor(low), 0.0), size - 1.0)
    last = tl.maximum(tl.minimum(tl.ceil(high), size - 1.0), first)
    return first.to(tl.int32), last.to(tl.int32)


@triton.jit
def _bin(coords_ptr, k, ph, pw, PH, PW):
    """Edges ``xa, xb, ya, yb`` of bin ``(ph, pw)`` of RoI ``k`` (map units), its size, the RoI's extents and the
    bin's inverse area (0 for an empty bin), as ``bin_edges`` and ``inverse_area`` compute them."""
    x1 = tl.load(coords_ptr + k * 4)
    y1 = tl.load(coords_ptr + k * 4 + 1)
    x2 = tl.load(coords_ptr + k * 4 + 2)
    y2 = tl.load(coords_ptr + k * 4 + 3)
    extent_x = x2 - x1
    extent_y = y2 - y1
    bin_w = tl.maximum(extent_x, 0.0) / PW
    bin_h = tl.maximum(extent_y, 0.0) / PH
    xa = x1 + pw * bin_w
    xb = x1 + (pw + 1) * bin_w
    ya = y1 + ph * bin_h
    yb = y1 + (ph + 1) * bin_h
    area = bin_w * bin_h
    inv_area = tl.where(area > 0, 1.0 / tl.where(area > 0, area, 1.0), 0.0)
    return xa, xb, ya, yb, bin_w, bin_h, extent_x, extent_y, inv_area


@triton.jit
def _forward_kernel(features_ptr, batch_ptr, coords_ptr, out_ptr, N, C, H, W, PH, PW, BLOCK_C: tl.constexpr):
    bin_id = tl.program_id(0)            # (k * PH + ph) * PW + pw
    k = bin_id // (PH * PW)
    ph = (bin_id // PW) % PH
    pw = bin_id % PW
    channels = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    channel_mask = channels < C
    b = tl.load(batch_ptr + k)
    valid = (b >= 0) & (b < N)
    xa, xb, ya, yb, bin_w, bin_h, extent_x, extent_y, inv_area = _bin(coords_ptr, k, ph, pw, PH, PW)
    x_first, x_last = _cells(xa, xb, W)
    y_first, y_last = _cells(ya, yb, H)
    y_last = tl.where(valid & (inv_area > 0), y_last, y_first - 1)     # nothing to read: an empty loop
    map_ptr = features_ptr + tl.where(valid, b, 0).to(tl.int64) * H * W * C
    acc = tl.zeros([BLOCK_C], dtype=out_ptr.dtype.element_ty)
    for i in range(y_first, y_last + 1):
        g_b, _ = _antiderivative(yb - i)
        g_a, _ = _antiderivative(ya - i)
        weight_y = g_b - g_a
        for j in range(x_first, x_last + 1):
            g_b, _ = _antiderivative(xb - j)
            g_a, _ = _antiderivative(xa - j)
            cell = tl.load(map_ptr + (i * W + j).to(tl.int64) * C + channels, mask=channel_mask, other=0.0)
            acc += cell * ((g_b - g_a) * weight_y)
    pooled = tl.where(valid, acc * inv_area, float('nan'))
    tl.store(out_ptr + (k * C + channels).to(tl.int64) * PH * PW + ph * PW + pw, pooled, mask=channel_mask)


@triton.jit
def _backward_kernel(features_ptr, batch_ptr, coords_ptr, grad_out_ptr, grad_features_ptr, grad_coords_ptr,
                     N, C, H, W, PH, PW, BLOCK_C: tl.constexpr, FEATURES_GRAD: tl.constexpr,
                     COORDS_GRAD: tl.constexpr):
    bin_id = tl.program_id(0)
    block = tl.program_id(1)
    k = bin_id // (PH * PW)
    ph = (bin_id // PW) % PH
    pw = bin_id % PW
    channels = block * BLOCK_C + tl.arange(0, BLOCK_C)
    channel_mask = channels < C
    b = tl.load(batch_ptr + k)
    valid = (b >= 0) & (b < N)
    xa, xb, ya, yb, bin_w, bin_h, extent_x, extent_y, inv_area = _bin(coords_ptr, k, ph, pw, PH, PW)
    x_first, x_last = _cells(xa, xb, W)
    y_first, y_last = _cells(ya, yb, H)
    y_last = tl.where(valid & (inv_area > 0), y_last, y_first - 1)
    offset = tl.where(valid, b, 0).to(tl.int64) * H * W * C
    grad = tl.load(grad_out_ptr + (k * C + channels).to(tl.int64) * PH * PW + ph * PW + pw, mask=channel_mask,
                   other=0.0)
    grad_cell = grad * inv_area
    # the bin's integral S and its derivatives with respect to the four edges, per channel
    s = tl.zeros([BLOCK_C], dtype=grad_out_ptr.dtype.element_ty)
    s_xa = tl.zeros([BLOCK_C], dtype=grad_out_ptr.dtype.element_ty)
    s_xb = tl.zeros([BLOCK_C], dtype=grad_out_ptr.dtype.element_ty)
    s_ya = tl.zeros([BLOCK_C], dtype=grad_out_ptr.dtype.element_ty)
    s_yb = tl.zeros([BLOCK_C], dtype=grad_out_ptr.dtype.element_ty)
    for i in range(y_first, y_last + 1):
        g_b, tri_yb = _antiderivative(yb - i)
        g_a, tri_ya = _antiderivative(ya - i)
        weight_y = g_b - g_a
        for j in range(x_first, x_last + 1):
            g_b, tri_xb = _antiderivative(xb - j)
            g_a, tri_xa = _antiderivative(xa - j)
            weight_x = g_b - g_a
            cell_offset = offset + (i * W + j).to(tl.int64) * C + channels
            if FEATURES_GRAD:
                tl.atomic_add(grad_features_ptr + cell_offset, grad_cell * (weight_x * weight_y), mask=channel_mask)
            if COORDS_GRAD:
                cell = tl.load(features_ptr + cell_offset, mask=channel_mask, other=0.0)
                s += cell * (weight_x * weight_y)
                s_xa -= cell * (tri_xa * weight_y)
                s_xb += cell * (tri_xb * weight_y)
                s_ya -= cell * (weight_x * tri_ya)
                s_yb += cell * (weight_x * tri_yb)
    if COORDS_GRAD:
        _store_coords_grad(grad_coords_ptr + (bin_id * tl.num_programs(1) + block) * 4, grad, s, s_xa, s_xb, s_ya,
                           s_yb, inv_area, bin_w, bin_h, extent_x, extent_y, ph, pw, PH, PW, valid)


@triton.jit
def _store_coords_grad(ptr, grad, s, s_xa, s_xb, s_ya, s_yb, inv_area, bin_w, bin_h, extent_x, extent_y, ph, pw,
                       PH, PW, valid):
    """One bin's (and channel block's) share of the gradient with respect to ``x1, y1, x2, y2`` (map units).

    pooled = S / area, the edges ``xa = x1 + pw * bin_w``, ``xb = x1 + (pw + 1) * bin_w`` and
    ``bin_w = max(x2 - x1, 0) / PW`` (the clamp passes the gradient at 0, as autograd's); 1 / area has no gradient
    where the bin is empty (as ``inverse_area``)."""
    grad_s = tl.sum(grad * s, axis=0)
    grad_xa = inv_area * tl.sum(grad * s_xa, axis=0)
    grad_xb = inv_area * tl.sum(grad * s_xb, axis=0)
    grad_ya = inv_area * tl.sum(grad * s_ya, axis=0)
    grad_yb = inv_area * tl.sum(grad * s_yb, axis=0)
    grad_inv_area = -grad_s * inv_area * inv_area
    grad_bin_w = pw * grad_xa + (pw + 1) * grad_xb + grad_inv_area * bin_h
    grad_bin_h = ph * grad_ya + (ph + 1) * grad_yb + grad_inv_area * bin_w
    grad_x2 = tl.where(extent_x >= 0, grad_bin_w / PW, 0.0)
    grad_y2 = tl.where(extent_y >= 0, grad_bin_h / PH, 0.0)
    nan = float('nan')
    tl.store(ptr, tl.where(valid, grad_xa + grad_xb - grad_x2, nan))
    tl.store(ptr + 1, tl.where(valid, grad_ya + grad_yb - grad_y2, nan))
    tl.store(ptr + 2, tl.where(valid, grad_x2, nan))
    tl.store(ptr + 3, tl.where(valid, grad_y2, nan))


def _launch_config(num_channels: int) -> Tuple[int, int, int]:
    """(channel block, number of channel blocks, warps)."""
    block = min(MAX_BLOCK_C, max(16, triton.next_power_of_2(num_channels)))
    return block, triton.cdiv(num_channels, block), max(1, min(4, block // 32))


def _device_guard(tensor: torch.Tensor):
    """Triton launches on the current CUDA device: make it the tensors' (a no-op context on the CPU)."""
    import contextlib
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()


class _TritonPool(torch.autograd.Function):
    """PrRoIPool over channels-last features with the two kernels above; gradients for features and coords."""

    @staticmethod
    def forward(ctx, features, batch_index, coords, pooled_height, pooled_width):
        N, C, H, W = features.shape
        K = coords.shape[0]
        table = features.permute(0, 2, 3, 1).contiguous()       # [N, H, W, C]; a view if already channels-last
        out = features.new_empty((K, C, pooled_height, pooled_width))
        block, blocks, warps = _launch_config(C)
        if K and C:
            with _device_guard(features):
                _forward_kernel[(K * pooled_height * pooled_width, blocks)](
                    table, batch_index, coords, out, N, C, H, W, pooled_height, pooled_width, BLOCK_C=block,
                    num_warps=warps)
        ctx.save_for_backward(table, batch_index, coords)
        ctx.pooled = pooled_height, pooled_width
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        table, batch_index, coords = ctx.saved_tensors
        pooled_height, pooled_width = ctx.pooled
        N, H, W, C = table.shape
        K = coords.shape[0]
        features_grad, coords_grad = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        block, blocks, warps = _launch_config(C)
        grad_table = table.new_zeros(table.shape) if features_grad else None
        bins = K * pooled_height * pooled_width
        grad_parts = coords.new_empty((bins, blocks, 4)) if coords_grad else None
        if K and C and (features_grad or coords_grad):
            with _device_guard(table):
                _backward_kernel[(bins, blocks)](
                    table, batch_index, coords, grad_out.contiguous(),
                    grad_table if features_grad else table, grad_parts if coords_grad else coords,
                    N, C, H, W, pooled_height, pooled_width, BLOCK_C=block, FEATURES_GRAD=features_grad,
                    COORDS_GRAD=coords_grad, num_warps=warps)
        grad_features = grad_table.permute(0, 3, 1, 2) if features_grad else None
        grad_coords = None
        if coords_grad:
            grad_coords = (grad_parts.view(K, -1, 4).sum(1) if K and C else coords.new_zeros(coords.shape))
        return grad_features, None, grad_coords, None, None


def prroi_pool2d_triton(features: torch.Tensor, rois: torch.Tensor, pooled_height: int, pooled_width: int,
                        spatial_scale: float) -> torch.Tensor:
    """PrRoIPool of ``features`` [N, C, H, W] (float32 or float64, CUDA; CPU in the interpreter) over ``rois``
    [K, 5] of the same dtype; the definition and the result are :func:`ltr_plugins.prroi_pool.prroi_pool2d`'s.
    Differentiable with respect to the features and the four box coordinates."""
    if features.dtype not in (torch.float32, torch.float64) or rois.dtype != features.dtype:
        raise TypeError('PrRoIPool Triton kernel: float32 or float64 features and RoIs of the same dtype, got {} '
                        'and {}'.format(features.dtype, rois.dtype))
    batch_index = rois[:, 0].detach().to(torch.int32)
    coords = (rois[:, 1:] * spatial_scale).contiguous()       # map units; autograd scales the gradient back
    return _TritonPool.apply(features, batch_index, coords, int(pooled_height), int(pooled_width))
