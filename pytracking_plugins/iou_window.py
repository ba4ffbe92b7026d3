"""DiMP's IoU-net box refinement, computed only where its boxes are.

DiMP refines the target box by gradient ascent on ATOM's IoU prediction: ten boxes around the target estimate, ten
steps, each one pooling the search crop's IoU features inside the boxes with PrRoIPool, two small fully connected
branches, and the gradient of the predicted IoUs back to the boxes. On a CPU this costs more than the backbone
would lead one to expect, for two reasons:

- the IoU features are two stacks of stride-1 convolutions over the whole crop (4.9 GMAC on a 352-pixel crop, 60 %
  of the backbone's work), but the boxes cover a small part of it: a target takes a sixth of the crop's side;
- every step is a few hundred small tensor operations for ten boxes (the modulation of both whole feature maps,
  PrRoIPool, the branches, and as many autograd nodes), so their fixed costs, not arithmetic, dominate.

:class:`WindowedIoUNet` computes the IoU features in a window around the starting boxes only: a convolution's
output cell depends on the input cells within its receptive radius, so the features are computed on the window
widened by that radius (clipped to the map, where the zero padding is the same as on the whole map), and the
widening is cut off again; inside the window the values are those of the whole map. It then predicts IoUs with
the network's own weights in a handful of matrix products per step, with the gradient with respect to the boxes
written out (:class:`_WindowedIoU`), the modulation applied once to the window instead of to both maps every step,
and PrRoIPool's window strategy (:class:`ltr_plugins.prroi_pool.WindowWeights`) over the cells the boxes touch.
The predictions are ``AtomIoUNet.predict_iou``'s to float rounding (``tests/test_iou_window.py``).

PrRoIPool reads a box's bins on the cells their bilinear support touches; every step checks that these lie in the
window. When a box leaves it, :meth:`WindowedIoUNet.predict_iou` raises :class:`LeftWindow`, and the tracker redoes
the refinement the stock way, on the whole map, so the window never changes a result.
"""
import contextlib
import math
from typing import Iterator, List, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.weak import WeakIdKeyDictionary
from ltr.models.bbreg.atom_iou_net import AtomIoUNet
from ltr.models.layers.blocks import LinearBlock

from ltr_plugins.prroi_pool import WindowWeights

Window = Tuple[int, int, int, int]   # first row, last row, first column, last column (inclusive), in map cells

# Per IoU feature map of AtomIoUNet (get_iou_feat, predict_iou): the convolution stacks that compute it, the
# PrRoIPool module that pools it, the fully connected branch that reads the pooled values.
_ATOM_IOU_BRANCHES = ((('conv3_1t', 'conv3_2t'), 'prroi_pool3t', 'fc3_rt'),
                      (('conv4_1t', 'conv4_2t'), 'prroi_pool4t', 'fc4_rt'))


class LeftWindow(Exception):
    """A box of the refinement reached cells outside the window its IoU features were computed in."""


def supports_windowing(bb_regressor: nn.Module) -> bool:
    """Whether the box regressor is ATOM's IoU-net itself (a subclass may compute differently), in eval mode, with
    its stock fully connected branches."""
    if type(bb_regressor) is not AtomIoUNet or bb_regressor.training:
        return False
    try:
        for stacks, _, _ in _ATOM_IOU_BRANCHES:
            _stack_layers(bb_regressor, stacks)
    except ValueError:
        return False
    return all(type(getattr(bb_regressor, branch)) is LinearBlock and getattr(bb_regressor, branch).relu is not None
               for _, _, branch in _ATOM_IOU_BRANCHES)


def _stack_layers(bb_regressor: nn.Module, stacks: Sequence[str]) -> List[nn.Module]:
    layers = [layer for name in stacks for layer in getattr(bb_regressor, name).children()]
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            kernel, dilation, padding = layer.kernel_size[0], layer.dilation[0], layer.padding[0]
            if (layer.stride != (1, 1) or layer.kernel_size[0] != layer.kernel_size[1] or layer.groups != 1
                    or layer.dilation[0] != layer.dilation[1] or layer.padding != (padding, padding)
                    or kernel % 2 == 0 or padding != dilation * (kernel - 1) // 2 or layer.padding_mode != 'zeros'):
                raise ValueError('{} is not a stride-1 convolution that keeps the map size; the IoU features cannot '
                                 'be computed in a window'.format(layer))
        elif not isinstance(layer, (nn.BatchNorm2d, nn.ReLU)):
            raise ValueError('{}: the IoU features can be computed in a window from convolutions, BatchNorm and ReLU '
                             'only'.format(layer))
    return layers


def receptive_radius(layers: Sequence[nn.Module]) -> int:
    """Cells of input that a stack of stride-1, size-preserving convolutions reads on each side of an output cell."""
    return sum(layer.padding[0] for layer in layers if isinstance(layer, nn.Conv2d))


def convolve_window(layers: Sequence[nn.Module], feat: torch.Tensor, window: Window) -> torch.Tensor:
    """What the layers (stride-1 'same' convolutions, BatchNorm, ReLU) compute from ``feat`` [1, C, H, W] on the
    window's cells, computed on those cells only.

    The input is cut to the window grown by the layers' receptive radius; every convolution then runs without
    padding, on the cells the next layer reads, and gets the whole map's zero padding only on the sides where its
    input reaches the map's border.
    """
    height, width = feat.shape[-2:]
    radius = receptive_radius(layers)
    top, bottom = max(window[0] - radius, 0), min(window[1] + radius, height - 1)
    left, right = max(window[2] - radius, 0), min(window[3] + radius, width - 1)
    x = feat[..., top:bottom + 1, left:right + 1]
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            pad = layer.padding[0]
            border = (left == 0, right == width - 1, top == 0, bottom == height - 1)
            x = torch.nn.functional.pad(x, [pad if at_border else 0 for at_border in border])
            x = torch.nn.functional.conv2d(x, layer.weight, layer.bias, dilation=layer.dilation)
            top, left = (top if border[2] else top + pad), (left if border[0] else left + pad)
            bottom, right = (bottom if border[3] else bottom - pad), (right if border[1] else right - pad)
        else:
            x = layer(x)
    return x[..., window[0] - top:window[1] - top + 1, window[2] - left:window[3] - left + 1]


def _clipped_cells(low: float, high: float, size: int) -> Tuple[int, int]:
    first = min(max(math.floor(low), 0), size - 1)
    return first, max(min(math.ceil(high), size - 1), first)


def cells_read(low: Sequence[float], high: Sequence[float], map_size: Tuple[int, int]) -> Window:
    """The cells PrRoIPool reads for boxes spanning ``low = (x, y)`` to ``high`` (map units): their bins' bilinear
    support reaches the cells on both sides of every edge."""
    height, width = map_size
    x_first, x_last = _clipped_cells(low[0], high[0], width)
    y_first, y_last = _clipped_cells(low[1], high[1], height)
    return y_first, y_last, x_first, x_last


def _extent(xyxy: torch.Tensor) -> Tuple[List[float], List[float]]:
    """Smallest ``(x, y)`` and largest ``(x, y)`` of boxes ``x1, y1, x2, y2`` (either corner may be the larger)."""
    corners = xyxy.detach().reshape(-1, 2, 2)
    bounds = torch.stack((corners.amin((0, 1)), corners.amax((0, 1)))).tolist()
    return bounds[0], bounds[1]


def box_window(boxes: torch.Tensor, spatial_scale: float, map_size: Tuple[int, int], margin: float) -> Window:
    """The cells the bins of these boxes (``x, y, w, h`` rows, crop pixels), grown by ``margin`` times their width
    and height on every side, can read; the whole map when a box is not finite."""
    boxes = boxes.detach().reshape(-1, 4).double().cpu()
    if boxes.numel() == 0 or not torch.isfinite(boxes).all():
        return 0, map_size[0] - 1, 0, map_size[1] - 1
    grow = margin * boxes[:, 2:].abs()
    low, high = _extent(torch.cat((boxes[:, :2] - grow, boxes[:, :2] + boxes[:, 2:] + grow), 1))
    return cells_read([v * spatial_scale for v in low], [v * spatial_scale for v in high], map_size)


def _contains(outer: Window, inner: Window) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1] and outer[2] <= inner[2] and inner[3] <= outer[3]


# oneDNN's inner product on a prepacked weight (the kernels torch.compile uses for a frozen linear layer): for ten
# rows about 2.5 times faster than a matrix product on the CPU, where the refinement's fully connected layers
# dominate. Private operators, so used only where present.
_ONEDNN_LINEAR = (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_reorder_linear_weight')
                  and hasattr(torch.ops.mkldnn, '_linear_pointwise'))


class _ConstantLinear:
    """``x @ weight.T + bias`` and its input gradient ``grad @ weight``, for a weight that does not change."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        self.weight, self.bias = weight, bias
        self.packed = self.packed_transposed = None
        if _ONEDNN_LINEAR and weight.device.type == 'cpu' and weight.dtype == torch.float32:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, 16)
            self.packed_transposed = torch.ops.mkldnn._reorder_linear_weight(weight.t().contiguous(), 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is not None and x.dtype == torch.float32:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, 'none', [], '')
        return torch.addmm(self.bias, x, self.weight.t())

    def input_gradient(self, grad: torch.Tensor) -> torch.Tensor:
        if self.packed_transposed is not None and grad.dtype == torch.float32:
            return torch.ops.mkldnn._linear_pointwise(grad, self.packed_transposed, None, 'none', [], '')
        return torch.mm(grad, self.weight)


_FOLDED_LINEARS = WeakIdKeyDictionary()   # LinearBlock -> (its parameters' versions, its _ConstantLinear)


def _folded_linear(block: LinearBlock, bins: int) -> _ConstantLinear:
    """A LinearBlock's linear layer and eval-mode BatchNorm as one affine layer, with the weight's columns in the
    order pooling produces the features in (bin, then channel; the block reads channel, then bin); kept while the
    block lives and its parameters do not change."""
    tensors = [block.linear.weight, block.linear.bias]
    if block.bn is not None:
        tensors += [block.bn.weight, block.bn.bias, block.bn.running_mean, block.bn.running_var]
    versions = tuple(None if t is None else (id(t), t._version) for t in tensors)
    cached = _FOLDED_LINEARS.get(block)
    if cached is None or cached[0] != versions:
        with torch.no_grad():
            weight, bias = block.linear.weight, block.linear.bias
            out = weight.shape[0]
            weight = weight.view(out, -1, bins).transpose(1, 2).reshape(out, -1)
            bias = bias if bias is not None else weight.new_zeros(out)
            if block.bn is not None:
                # BatchNorm in eval mode is the affine map x * scale + shift.
                bn = block.bn
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                weight = weight * scale.view(-1, 1)
                bias = bias * scale + bn.bias - bn.running_mean * scale
        cached = (versions, _ConstantLinear(weight.contiguous(), bias))
        _FOLDED_LINEARS[block] = cached
    return cached[1]


class _Branch:
    """One IoU feature map in its window, with the PrRoIPool geometry and fully connected layer that read it."""

    def __init__(self, window: Window, map_size: Tuple[int, int], cells: torch.Tensor, pool: nn.Module,
                 block: LinearBlock):
        self.window = window
        self.map_size = map_size
        self.cells = cells   # [C, rows, columns]: modulated IoU features in the window
        self.pooled_height, self.pooled_width = pool.pooled_height, pool.pooled_width
        self.spatial_scale = pool.spatial_scale
        self.linear = _folded_linear(block, self.pooled_height * self.pooled_width)   # linear + BatchNorm

    def cells_of(self, window: Window) -> torch.Tensor:
        """The features [C, rows * columns] of a sub-window."""
        y0, x0 = self.window[0], self.window[2]
        sub = self.cells[:, window[0] - y0:window[1] - y0 + 1, window[2] - x0:window[3] - x0 + 1]
        return sub.reshape(sub.shape[0], -1)



class WindowedIoUNet:
    """ATOM's IoU prediction on one search crop, with the IoU features computed in a window around given boxes.

    args:
        bb_regressor: the network's IoU-net (see :func:`supports_windowing`).
        modulation: the target's modulation vectors (``get_modulation``), one target.
        iou_backbone_feat: the backbone features the IoU features are computed from (``get_backbone_bbreg_feat``),
            one crop.
        boxes: [K, 4] boxes (crop pixels, ``x, y, w, h``) the refinement starts from.
        margin: how far the window reaches beyond the boxes on every side, in box widths and heights.

    :meth:`predict_iou` has ``AtomIoUNet.predict_iou``'s signature and results; :meth:`predicting_for` puts it in
    the IoU-net's place for the duration of a refinement.
    """

    def __init__(self, bb_regressor: AtomIoUNet, modulation: Sequence[torch.Tensor],
                 iou_backbone_feat: Sequence[torch.Tensor], boxes: torch.Tensor, margin: float):
        if not supports_windowing(bb_regressor):
            raise TypeError('windowed IoU prediction needs a stock AtomIoUNet in eval mode, got {}'.format(
                type(bb_regressor).__name__))
        if len(iou_backbone_feat) != len(_ATOM_IOU_BRANCHES) or any(f.shape[0] != 1 for f in iou_backbone_feat):
            raise ValueError('windowed IoU prediction takes the backbone features of one crop, got shapes {}'.format(
                [tuple(f.shape) for f in iou_backbone_feat]))
        self.modulation = modulation
        self.branches: List[_Branch] = []
        for feat, mod, (stacks, pool_name, block_name) in zip(iou_backbone_feat, modulation, _ATOM_IOU_BRANCHES):
            pool, layers = getattr(bb_regressor, pool_name), _stack_layers(bb_regressor, stacks)
            window = box_window(boxes, pool.spatial_scale, tuple(feat.shape[-2:]), margin)
            with torch.no_grad():
                window_feat = convolve_window(layers, feat, window)[0]
            if mod.numel() != window_feat.shape[0]:
                raise ValueError('windowed IoU prediction takes the modulation of one target: {} values for {} '
                                 'channels'.format(mod.numel(), window_feat.shape[0]))
            # the modulation predict_iou applies to the whole map every step, once on the window
            cells = window_feat * mod.reshape(-1, 1, 1)
            self.branches.append(_Branch(window, tuple(feat.shape[-2:]), cells, pool,
                                         getattr(bb_regressor, block_name)))
        self.predictor_weight = bb_regressor.iou_predictor.weight   # [1, sum of branch outputs]
        self.predictor_bias = bb_regressor.iou_predictor.bias

    @property
    def windows(self) -> List[Window]:
        return [branch.window for branch in self.branches]

    def predict_iou(self, modulation, feat, proposals: torch.Tensor) -> torch.Tensor:
        """``AtomIoUNet.predict_iou`` for this crop's target: IoUs [1, K] of ``proposals`` [1, K, 4] (``x, y, w, h``,
        crop pixels), differentiable in the proposals. ``feat`` is not read (the features are this object's);
        raises :class:`LeftWindow` when a proposal reaches outside the window."""
        if modulation is not self.modulation:
            raise ValueError('WindowedIoUNet.predict_iou: the modulation differs from the one it was built with')
        if proposals.dim() != 3 or proposals.shape[0] != 1 or proposals.shape[2] != 4:
            raise ValueError('WindowedIoUNet.predict_iou takes proposals [1, K, 4], got {}'.format(
                tuple(proposals.shape)))
        boxes = proposals.detach()[0]
        xyxy = torch.cat((boxes[:, :2], boxes[:, :2] + boxes[:, 2:]), 1)   # as predict_iou forms its RoIs
        low, high = _extent(xyxy)
        if not all(map(math.isfinite, low + high)):   # min and max propagate NaN
            raise LeftWindow('a proposal is not finite')
        reads = []
        for branch in self.branches:
            # a positive scale commutes with min and max, also in floating point
            read = cells_read([v * branch.spatial_scale for v in low], [v * branch.spatial_scale for v in high],
                              branch.map_size)
            if not _contains(branch.window, read):
                raise LeftWindow('a proposal reads cells {} outside the window {}'.format(read, branch.window))
            reads.append(read)
        return _WindowedIoU.apply(proposals, xyxy, self, reads)

    @contextlib.contextmanager
    def predicting_for(self, bb_regressor: AtomIoUNet) -> Iterator['WindowedIoUNet']:
        """Within: ``bb_regressor.predict_iou`` is this object's (an instance attribute shadowing the method)."""
        bb_regressor.predict_iou = self.predict_iou
        try:
            yield self
        finally:
            del bb_regressor.predict_iou


class _WindowedIoU(torch.autograd.Function):
    """``AtomIoUNet.predict_iou`` as one autograd node: PrRoIPool in each branch's window (over the cells the boxes
    read), the fully connected layer with its BatchNorm and ReLU, the IoU predictor; and the gradient with respect
    to the proposals written out (the network's weights are constants here)."""

    @staticmethod
    def forward(ctx, proposals, xyxy, net, reads):
        K = proposals.shape[1]
        activations, saved = [], []
        for branch, read in zip(net.branches, reads):
            weights = WindowWeights(xyxy * branch.spatial_scale, branch.pooled_height, branch.pooled_width, read)
            cells = branch.cells_of(read)
            pooled = torch.mm(weights.bins, cells.t())   # [K * bins, C]: bin-major per box, as branch.weight
            pre_activation = branch.linear.forward(pooled.view(K, -1))   # the BatchNorm's output
            activations.append(pre_activation.clamp(min=0))
            saved.append((weights, cells, pre_activation))
        iou = torch.addmm(net.predictor_bias, torch.cat(activations, 1), net.predictor_weight.t())
        ctx.net, ctx.saved = net, saved
        return iou.view(1, K)

    @staticmethod
    def backward(ctx, grad_iou):
        net = ctx.net
        K = grad_iou.shape[1]
        grad_activations = grad_iou.reshape(K, 1) * net.predictor_weight
        grad_xyxy, start = 0, 0
        for branch, (weights, cells, pre_activation) in zip(net.branches, ctx.saved):
            width = pre_activation.shape[1]
            grad = grad_activations[:, start:start + width]
            start += width
            grad = grad * (pre_activation > 0)   # the ReLU
            bins = branch.pooled_height * branch.pooled_width
            grad_pooled = branch.linear.input_gradient(grad).view(K * bins, -1)   # [K * bins, C]
            grad_xyxy = grad_xyxy + weights.coords_gradient(torch.mm(grad_pooled, cells)) * branch.spatial_scale
        grad_boxes = torch.cat((grad_xyxy[:, :2] + grad_xyxy[:, 2:], grad_xyxy[:, 2:]), 1)
        return grad_boxes.view(1, K, 4), None, None, None
