"""What the ONNX export writes: the gradient-free inference networks of a DiMP tracking network, as PyTorch modules
that call the network's own methods, so that each exported graph computes what the tracker calls.

``backbone`` (``NetWithBackbone.extract_backbone``: ``image`` [B, 3, H, W], RGB 0-255 -> ``layer2``, ``layer3``),
``classification_features`` (``DiMPnet.extract_classification_feat``), ``iou_features`` (``AtomIoUNet.get_iou_feat``)
and ``iou_modulation`` (``AtomIoUNet.get_modulation`` of the first frame's ``boxes`` [B, 4], x, y, w, h in crop
pixels). The batch B is dynamic, the crop size fixed at export. The modulation pools with
:func:`ltr_plugins.prroi_pool.prroi_pool2d_dense` (the same values, no data-dependent shapes). Not exported, as they
are not fixed feed-forward networks: the online classifier and the box refinement's IoU prediction.
"""
import copy
from typing import TYPE_CHECKING, Callable, Dict, List, NamedTuple, Sequence, Tuple

import torch
import torch.nn as nn

if TYPE_CHECKING:
    from pytracking.features.net_wrappers import NetWithBackbone

GRAPH_NAMES = ('backbone', 'classification_features', 'iou_features', 'iou_modulation')
BOXES = 'boxes'
IMAGE = 'image'


class Graph(NamedTuple):
    """One network to export: its module, the names of its inputs and outputs (in order), and what the tracker's
    PyTorch backend computes instead (the module itself but for the modulation, whose PrRoIPool differs)."""
    name: str
    module: nn.Module
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]
    reference: Callable[..., Tuple[torch.Tensor, ...]]


class Backbone(nn.Module):
    """``wrapper.extract_backbone(image)`` (pytracking's normalisation, then the backbone up to the deepest layer the
    tracker reads): the layers ``layers``, in that order."""

    def __init__(self, wrapper: 'NetWithBackbone', layers: Sequence[str]):
        super().__init__()
        self.net = wrapper.net
        self.wrapper = wrapper
        self.layers = tuple(layers)

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        features = self.wrapper.extract_backbone(image)
        return tuple(features[layer] for layer in self.layers)


class ClassificationFeatures(nn.Module):
    """``DiMPnet.extract_classification_feat`` on the classification layer."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.classifier = net.classifier

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier.extract_classification_feat(features)


class IoUFeatures(nn.Module):
    """``AtomIoUNet.get_iou_feat``: the test branch's features of both maps."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.bb_regressor = net.bb_regressor

    def forward(self, feat3: torch.Tensor, feat4: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return tuple(self.bb_regressor.get_iou_feat([feat3, feat4]))


class DensePrRoIPool2D(nn.Module):
    """A ``PrRoIPool2D``'s pooling by :func:`ltr_plugins.prroi_pool.prroi_pool2d_dense` (traceable to ONNX)."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        self.pooled_height, self.pooled_width = pool.pooled_height, pool.pooled_width
        self.spatial_scale = pool.spatial_scale

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        from ltr_plugins.prroi_pool import prroi_pool2d_dense
        return prroi_pool2d_dense(features, rois, self.pooled_height, self.pooled_width, self.spatial_scale)


class IoUModulation(nn.Module):
    """``AtomIoUNet.get_modulation`` on a copy of the IoU-net whose reference PrRoIPools pool densely: the
    modulation vectors [B, C, 1, 1] of each box [B, 4] on its own crop's features."""

    def __init__(self, net: nn.Module):
        super().__init__()
        from ltr_plugins.prroi_pool import PrRoIPool2D
        self.bb_regressor = copy.deepcopy(net.bb_regressor)
        for name, child in list(self.bb_regressor.named_children()):
            if isinstance(child, PrRoIPool2D):
                setattr(self.bb_regressor, name, DensePrRoIPool2D(child))

    def forward(self, feat3: torch.Tensor, feat4: torch.Tensor,
                boxes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return tuple(self.bb_regressor.get_modulation([feat3, feat4], boxes))


def check_exportable(net: nn.Module) -> None:
    """ValueError unless ``net`` is a DiMP network the graphs above describe: ATOM's IoU-net on two backbone
    layers, one classification layer, a classifier with a feature extractor."""
    from ltr.models.bbreg.atom_iou_net import AtomIoUNet
    if not all(hasattr(net, name) for name in ('feature_extractor', 'classifier', 'bb_regressor',
                                                 'classification_layer', 'bb_regressor_layer')):
        raise ValueError('the ONNX export takes a DiMP network (feature_extractor, classifier, bb_regressor), got '
                         '{}'.format(type(net).__name__))
    problems = []
    if not isinstance(net.bb_regressor, AtomIoUNet) or len(net.bb_regressor_layer) != 2:
        problems.append("ATOM's IoU-net on two backbone layers (got {} on {})".format(
            type(net.bb_regressor).__name__, list(net.bb_regressor_layer)))
    if len(net.classification_layer) != 1:
        problems.append('one classification layer (got {})'.format(list(net.classification_layer)))
    if getattr(net.classifier, 'feature_extractor', None) is None:
        problems.append('a classifier with a feature extractor')
    if problems:
        raise ValueError('the ONNX export takes a DiMP network with ' + '; '.join(problems))


def inference_graphs(wrapper: 'NetWithBackbone') -> List[Graph]:
    """The four graphs of the network of ``wrapper`` (a pytracking ``NetWithBackbone`` whose ``net`` is loaded, in
    eval mode), in :data:`GRAPH_NAMES`' order."""
    net = wrapper.net
    check_exportable(net)
    clf_layer = net.classification_layer[0]
    bbreg = tuple(net.bb_regressor_layer)
    layers = tuple(net.output_layers)
    backbone, classification = Backbone(wrapper, layers).eval(), ClassificationFeatures(net).eval()
    iou = IoUFeatures(net).eval()

    def modulation(feat3: torch.Tensor, feat4: torch.Tensor, boxes: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(net.bb_regressor.get_modulation([feat3, feat4], boxes))

    return [
        Graph('backbone', backbone, (IMAGE,), layers, backbone),
        Graph('classification_features', classification, (clf_layer,), ('classification_features',),
              classification),
        Graph('iou_features', iou, bbreg, tuple('iou_features_' + name for name in bbreg), iou),
        Graph('iou_modulation', IoUModulation(net).eval(), bbreg + (BOXES,),
              tuple('modulation_' + name for name in bbreg), modulation),
    ]


def example_inputs(graphs: Sequence[Graph], crop_size: Tuple[int, int], batch: int,
                   seed: int) -> Dict[str, torch.Tensor]:
    """Inputs for every graph at batch ``batch``: random crops (``image``), the PyTorch backbone's layers on them, and
    random boxes inside the crop (``boxes``: 4 to 40 % of its side, centred in its middle half)."""
    generator = torch.Generator().manual_seed(seed)
    height, width = crop_size
    image = torch.rand(batch, 3, height, width, generator=generator) * 255
    with torch.no_grad():
        inputs = dict(zip(graphs[0].outputs, graphs[0].module(image.clone())))
    size = (torch.rand(batch, 2, generator=generator) * 0.36 + 0.04) * torch.tensor([width, height])
    centre = (torch.rand(batch, 2, generator=generator) * 0.5 + 0.25) * torch.tensor([width, height])
    inputs.update({IMAGE: image, BOXES: torch.cat((centre - size / 2, size), 1)})
    return inputs
