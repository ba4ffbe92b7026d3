"""The Super-DiMP network as pytracking's ``ltr/train_settings/dimp/super_dimp.py`` builds it, and its checkpoint.

MKDNet's teacher and student, the benchmarks and the tests all need exactly that network; building it in one place
keeps them from drifting apart.
"""
import os
from typing import Any, Optional, Sequence

import torch
from ltr.models.tracking import dimpnet

from ltr_plugins.common.atomic_files import atomic_path

# ltr/train_settings/dimp/super_dimp.py's data settings that the network's construction depends on.
SEARCH_AREA_FACTOR = 6.0
OUTPUT_SIGMA_FACTOR = 1 / 4
TARGET_FILTER_SZ = 4
FEATURE_SZ = 22


# Backbones build_super_dimp knows: Super-DiMP's ResNet-50, and ResNet-18 (DiMP-18's backbone, the demo's teacher).
BACKBONES = ('resnet50', 'resnet18')
SUPER_DIMP_FROZEN_LAYERS = ('conv1', 'bn1', 'layer1', 'layer2')


def build_super_dimp(backbone_pretrained: bool = True, feature_sz: int = FEATURE_SZ,
                     search_area_factor: float = SEARCH_AREA_FACTOR,
                     output_sigma_factor: float = OUTPUT_SIGMA_FACTOR,
                     target_filter_sz: int = TARGET_FILTER_SZ, backbone: str = 'resnet50',
                     frozen_backbone_layers: Sequence[str] = SUPER_DIMP_FROZEN_LAYERS) -> torch.nn.Module:
    """``dimpnet50`` with Super-DiMP's arguments; ``backbone_pretrained`` loads torchvision's ImageNet ResNet-50.

    ``backbone='resnet18'`` builds the same network (classifier, steepest-descent optimiser, IoU-net) on ``dimpnet18``
    with DiMP-18's feature widths, for small networks trained from scratch (``frozen_backbone_layers=()``).
    """
    if backbone not in BACKBONES:
        raise ValueError('backbone must be one of {}, not {!r}'.format(BACKBONES, backbone))
    output_sigma = output_sigma_factor / search_area_factor
    common = dict(filter_size=target_filter_sz, backbone_pretrained=backbone_pretrained, optim_iter=5,
                  clf_feat_norm=True, clf_feat_blocks=0, final_conv=True, optim_init_step=0.9, optim_init_reg=0.1,
                  init_gauss_sigma=output_sigma * feature_sz, num_dist_bins=100, bin_displacement=0.1,
                  mask_init_factor=3.0, target_mask_act='sigmoid', score_act='relu',
                  frozen_backbone_layers=list(frozen_backbone_layers))
    if backbone == 'resnet18':
        return dimpnet.dimpnet18(out_feature_dim=256, **common)
    return dimpnet.dimpnet50(out_feature_dim=512, **common)


def save_tracking_network(net: torch.nn.Module, path: str, net_info: Optional[Any] = None, **extra: Any) -> str:
    """Saves ``net`` as a pytracking network file that ``NetWithBackbone`` / ``load_network`` can load.

    The file holds the state dict and the network's constructor (set by ltr's ``@model_constructor``), like the
    checkpoints ltr's trainer writes, less the optimizer. Written to a temporary file first, then renamed, so a
    crash never leaves a half-written network file.
    """
    constructor = getattr(net, 'constructor', None)
    if constructor is None:
        raise ValueError('{} has no constructor: build it with an ltr @model_constructor function'.format(
            type(net).__name__))
    state = {'net_type': type(net).__name__, 'net': net.state_dict(), 'net_info': net_info,
             'constructor': constructor, **extra}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with atomic_path(path) as tmp_path:
        torch.save(state, tmp_path)
    return path
