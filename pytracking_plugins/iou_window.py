"""DiMP's IoU-net box refinement, computed only where its boxes are.

DiMP refines the target box by ten gradient-ascent steps on ATOM's IoU prediction for ten boxes; on a CPU the IoU
features (stride-1 convolutions over the whole crop, which the boxes barely cover) and hundreds of small operations
per step dominate. :meth:`WindowedIoUNet.iou_features` computes the features in a window around the starting boxes,
widened by the convolutions' receptive radius and cut back, so that inside it they are the whole map's;
:meth:`WindowedIoUFeatures.predict_iou` predicts IoUs with the network's own weights in a few matrix products per
step, the box gradient written out (:class:`_WindowedIoU`). A box reaching beyond the window grows it
(:data:`GROWTH_MARGIN`), so the window never changes a result; a non-finite proposal raises
:class:`NonFiniteProposal`, and the tracker redoes the refinement the stock way.
"""
from typing import List, NamedTuple, Sequence, Tuple

import torch
import torch.nn as nn
from torch.autograd.function import once_differentiable
from ltr.models.bbreg.atom_iou_net import AtomIoUNet
from ltr.models.layers.blocks import LinearBlock

from ltr_plugins.prroi_pool import Window, WindowWeights, window_read, window_weights

# Per IoU feature map of AtomIoUNet (get_iou_feat, predict_iou): the convolution stacks that compute it, the
# PrRoIPool module that pools it, the fully connected branch that reads the pooled values.
_ATOM_IOU_BRANCHES = ((('conv3_1t', 'conv3_2t'), 'prroi_pool3t', 'fc3_rt'),
                      (('conv4_1t', 'conv4_2t'), 'prroi_pool4t', 'fc4_rt'))


# How far a grown window reaches beyond the boxes of the step that outgrew the previous one, in box widths and
# heights: a box that leaves its window is usually moving, so the grown window leaves it room for the steps to come.
GROWTH_MARGIN = 0.25


class NonFiniteProposal(Exception):
    """A proposal of the refinement is not a finite box, so no window of cells holds what it reads."""


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


def box_window(boxes: torch.Tensor, spatial_scale: float, map_size: Tuple[int, int], margin: float) -> Window:
    """The cells the bins of these boxes (``x, y, w, h`` rows, crop pixels), grown by ``margin`` times their width
    and height on every side, can read; the whole map when a box is not finite."""
    boxes = boxes.detach().reshape(-1, 4).double().cpu()
    if boxes.numel() == 0 or not torch.isfinite(boxes).all():
        return 0, map_size[0] - 1, 0, map_size[1] - 1
    grow = margin * boxes[:, 2:].abs()
    low, high = _extent(torch.cat((boxes[:, :2] - grow, boxes[:, :2] + boxes[:, 2:] + grow), 1))
    return window_read(low * spatial_scale, high * spatial_scale, map_size)


def _extent(xyxy: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Smallest ``(x, y)`` and largest ``(x, y)`` of boxes ``x1, y1, x2, y2`` (either corner may be the larger)."""
    corners = xyxy.detach().reshape(-1, 2, 2)
    return corners.amin((0, 1)), corners.amax((0, 1))


def _contains(outer: Window, inner: Window) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1] and outer[2] <= inner[2] and inner[3] <= outer[3]


def _union(first: Window, second: Window) -> Window:
    return min(first[0], second[0]), max(first[1], second[1]), min(first[2], second[2]), max(first[3], second[3])


class _Branch(NamedTuple):
    """One IoU feature map of AtomIoUNet: the layers that compute it, how PrRoIPool pools it, and its fully connected
    layer with the BatchNorm folded in, as one slice per bin: ``weight`` [bins, channels, out], ``bias`` [out]."""
    layers: List[nn.Module]
    pooled_height: int
    pooled_width: int
    spatial_scale: float
    weight: torch.Tensor
    bias: torch.Tensor


def _folded_linear(block: LinearBlock, bins: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """A LinearBlock's linear layer and eval-mode BatchNorm as one affine layer ``(weight, bias)``, its weight split
    into one [channels, out] slice per bin: [bins, channels, out] (the block reads its input as (channel, bin))."""
    with torch.no_grad():
        weight, bias = block.linear.weight, block.linear.bias
        out = weight.shape[0]
        bias = bias if bias is not None else weight.new_zeros(out)
        if block.bn is not None:   # BatchNorm in eval mode is the affine map x * scale + shift
            bn = block.bn
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight = weight * scale.view(-1, 1)
            bias = bias * scale + bn.bias - bn.running_mean * scale
        weight = weight.view(out, -1, bins).permute(2, 1, 0)
    return weight.contiguous(), bias.clone()


class WindowedIoUNet:
    """ATOM's IoU-net prediction (``AtomIoUNet.predict_iou``) computed in windows of the IoU feature maps: the
    network's layers and weights, prepared once (the tracker's network does not change while it tracks).

    :meth:`iou_features` computes one crop's IoU features in a window around the boxes a refinement starts from;
    their :meth:`WindowedIoUFeatures.predict_iou` gives ``AtomIoUNet.predict_iou``'s results.
    """

    def __init__(self, bb_regressor: AtomIoUNet):
        if not supports_windowing(bb_regressor):
            raise TypeError('windowed IoU prediction needs a stock AtomIoUNet in eval mode, got {}'.format(
                type(bb_regressor).__name__))
        self.branches = []
        for stacks, pool_name, block_name in _ATOM_IOU_BRANCHES:
            pool = getattr(bb_regressor, pool_name)
            bins = pool.pooled_height * pool.pooled_width
            self.branches.append(_Branch(_stack_layers(bb_regressor, stacks), pool.pooled_height, pool.pooled_width,
                                         pool.spatial_scale, *_folded_linear(getattr(bb_regressor, block_name), bins)))
        self.predictor_weight = bb_regressor.iou_predictor.weight.detach()   # [1, sum of branch outputs]
        self.predictor_bias = bb_regressor.iou_predictor.bias.detach()

    def iou_features(self, modulation: Sequence[torch.Tensor], iou_backbone_feat: Sequence[torch.Tensor],
                     boxes: torch.Tensor, margin: float) -> 'WindowedIoUFeatures':
        """One crop's modulated IoU features in a window around ``boxes``.

        args:
            modulation: the target's modulation vectors (``get_modulation``), one target.
            iou_backbone_feat: the backbone features the IoU features are computed from
                (``get_backbone_bbreg_feat``), one crop.
            boxes: [K, 4] boxes (crop pixels, ``x, y, w, h``) the refinement starts from.
            margin: how far the first window reaches beyond the boxes on every side, in box widths and heights.
        """
        if len(iou_backbone_feat) != len(self.branches) or any(f.shape[0] != 1 for f in iou_backbone_feat):
            raise ValueError('windowed IoU prediction takes the backbone features of one crop, got shapes {}'.format(
                [tuple(f.shape) for f in iou_backbone_feat]))
        return WindowedIoUFeatures(self, modulation, iou_backbone_feat, boxes, margin)


def project_cells(cells: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Every window cell's features [C, rows, columns] through each bin's slice [bins, C, out] of a folded linear
    layer (:func:`_folded_linear`): [bins, rows * columns, out]. Pooling is linear, so pooling these projections
    gives the linear layer's output without multiplying by the whole weight at every step."""
    return torch.matmul(cells.reshape(cells.shape[0], -1).t(), weight)


class WindowedIoUFeatures:
    """The modulated IoU features of one crop in a window of each map (``cells[i]`` [C, rows, columns] over
    ``windows[i]``), their projections through the branches' linear layers (:func:`project_cells`), and the
    IoU-net's prediction on them. A window grows when a proposal reaches beyond it; ``growths`` counts how often."""

    def __init__(self, net: WindowedIoUNet, modulation: Sequence[torch.Tensor],
                 iou_backbone_feat: Sequence[torch.Tensor], boxes: torch.Tensor, margin: float):
        self.net, self.modulation, self.iou_backbone_feat = net, list(modulation), list(iou_backbone_feat)
        self.map_sizes = [tuple(f.shape[-2:]) for f in iou_backbone_feat]
        boxes = boxes.detach().reshape(-1, 4).double().cpu()   # read once for both windows
        self.windows = [box_window(boxes, branch.spatial_scale, map_size, margin)
                        for branch, map_size in zip(net.branches, self.map_sizes)]
        self.cells: List[torch.Tensor] = [None] * len(net.branches)       # set by _compute
        self.projected: List[torch.Tensor] = [None] * len(net.branches)   # set by _compute
        self.growths = 0
        for index in range(len(net.branches)):
            self._compute(index)

    def _compute(self, index: int) -> None:
        """Branch ``index``'s modulated features and their projections on its window."""
        branch, modulation = self.net.branches[index], self.modulation[index]
        with torch.no_grad():
            cells = convolve_window(branch.layers, self.iou_backbone_feat[index], self.windows[index])[0]
            if modulation.numel() != cells.shape[0]:
                raise ValueError('windowed IoU prediction takes the modulation of one target: {} values for {} '
                                 'channels'.format(modulation.numel(), cells.shape[0]))
            # the modulation predict_iou applies to the whole map every step, once on the window
            self.cells[index] = cells * modulation.reshape(-1, 1, 1)
            self.projected[index] = project_cells(self.cells[index], branch.weight)

    def predict_iou(self, proposals: torch.Tensor) -> torch.Tensor:
        """``AtomIoUNet.predict_iou`` for this crop's target: IoUs [1, K] of ``proposals`` [1, K, 4] (``x, y, w, h``,
        crop pixels), differentiable in the proposals. A window that a proposal reaches beyond grows first; a
        proposal that is not finite raises :class:`NonFiniteProposal`."""
        if proposals.dim() != 3 or proposals.shape[0] != 1 or proposals.shape[2] != 4:
            raise ValueError('WindowedIoUFeatures.predict_iou takes proposals [1, K, 4], got {}'.format(
                tuple(proposals.shape)))
        boxes = proposals.detach()[0]
        low, high = _extent(torch.cat((boxes[:, :2], boxes[:, :2] + boxes[:, 2:]), 1))   # predict_iou's RoIs
        # the step's extent on the host, read in one transfer (the windows are computed there: the same float
        # operations on the same values as on a device)
        low, high = torch.cat((low, high)).cpu().split(2)
        if not bool(torch.isfinite(low).all() and torch.isfinite(high).all()):   # min and max propagate NaN
            raise NonFiniteProposal('a proposal is not finite')
        layouts, tensors = [], []
        for index, branch in enumerate(self.net.branches):
            # a positive scale commutes with min and max, also in floating point
            read = window_read(low * branch.spatial_scale, high * branch.spatial_scale, self.map_sizes[index])
            if not _contains(self.windows[index], read):
                grown = box_window(boxes, branch.spatial_scale, self.map_sizes[index], GROWTH_MARGIN)
                self.windows[index] = _union(self.windows[index], _union(grown, read))
                self._compute(index)
                self.growths += 1
            layouts.append((branch.pooled_height, branch.pooled_width, branch.spatial_scale, self.windows[index]))
            tensors += [self.projected[index], branch.bias]
        return _WindowedIoU.apply(proposals, self.net.predictor_weight, self.net.predictor_bias, tuple(layouts),
                                  *tensors)


class _WindowedIoU(torch.autograd.Function):
    """``AtomIoUNet.predict_iou`` as one autograd node, differentiable in the proposals only (the network's weights
    and features are constants here): per branch, PrRoIPool over the window's cells, the fully connected layer with
    its BatchNorm and ReLU; then the IoU predictor.

    Inputs: ``proposals`` [1, K, 4], the predictor's weight and bias, ``layouts`` (per branch: pooled height and
    width, spatial scale, window) and, per branch, the window's projected cells [bins, cells, out]
    (:func:`project_cells`) and the folded linear layer's bias.
    """

    @staticmethod
    def forward(ctx, proposals, predictor_weight, predictor_bias, layouts, *branch_tensors):
        K = proposals.shape[1]
        boxes = proposals[0]
        xyxy = torch.cat((boxes[:, :2], boxes[:, :2] + boxes[:, 2:]), 1)
        activations, saved = [], [predictor_weight]
        for i, (pooled_height, pooled_width, spatial_scale, window) in enumerate(layouts):
            projected, bias = branch_tensors[2 * i:2 * i + 2]
            weights = window_weights(xyxy * spatial_scale, pooled_height, pooled_width, window)
            bins_per_box = weights.bins.view(K, pooled_height * pooled_width, -1).transpose(0, 1)   # [bins, K, cells]
            pre_activation = torch.bmm(bins_per_box, projected).sum(0) + bias   # the BatchNorm's output
            activations.append(pre_activation.clamp(min=0))
            saved += [projected, pre_activation, *weights]
        iou = torch.addmm(predictor_bias, torch.cat(activations, 1), predictor_weight.t())
        ctx.scales = tuple(layout[2] for layout in layouts)
        ctx.save_for_backward(*saved)
        return iou.view(1, K)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_iou):
        predictor_weight, *saved = ctx.saved_tensors
        per_branch = 2 + len(WindowWeights._fields)
        K = grad_iou.shape[1]
        grad_activations = grad_iou.reshape(K, 1) * predictor_weight
        grad_xyxy, start = 0, 0
        for i, spatial_scale in enumerate(ctx.scales):
            projected, pre_activation, *weights = saved[per_branch * i:per_branch * (i + 1)]
            weights = WindowWeights(*weights)
            width = pre_activation.shape[1]
            grad = grad_activations[:, start:start + width] * (pre_activation > 0)   # the ReLU
            start += width
            bins = projected.shape[0]
            grad_bins = torch.bmm(grad.expand(bins, K, width), projected.transpose(1, 2))   # [bins, K, cells]
            grad_xyxy = grad_xyxy + weights.coords_gradient(
                grad_bins.transpose(0, 1).reshape(K * bins, -1)) * spatial_scale
        grad_boxes = torch.cat((grad_xyxy[:, :2] + grad_xyxy[:, 2:], grad_xyxy[:, 2:]), 1)
        return (grad_boxes.view(1, K, 4), None, None, None) + (None,) * (2 * len(ctx.scales))
