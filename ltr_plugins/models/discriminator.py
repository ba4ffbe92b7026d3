"""Discriminators of MKDNet's feature-level (adversarial) distillation, one per IoU-net RoI branch.

Each tells a teacher RoI feature (high-resolution crop) from a student one (degraded crop): flatten -> Linear(., 256)
-> LeakyReLU(0.2) -> Linear(256, 256) -> LeakyReLU(0.2) -> Linear(256, 1) -> sigmoid, as the released code has it.

The losses use the logit (the input of the sigmoid) through ``binary_cross_entropy_with_logits``-style formulas:
mathematically the same BCE on the sigmoid output, without its saturation to log(0) (see ltr_plugins.distillation).
"""
from typing import Dict, Mapping, Tuple

import torch
import torch.nn as nn
from torch.func import functional_call


class FeatureDiscriminator(nn.Module):
    """Scores RoI features ``(..., C, h, w)`` as teacher-like (1) or student-like (0); leading dims are kept."""

    def __init__(self, feature_shape: Tuple[int, int, int], hidden_dim: int = 256, negative_slope: float = 0.2):
        super().__init__()
        self.feature_shape = tuple(int(v) for v in feature_shape)
        in_features = self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2]
        self.layers = nn.Sequential(nn.Flatten(start_dim=-3),
                                    nn.Linear(in_features, hidden_dim), nn.LeakyReLU(negative_slope),
                                    nn.Linear(hidden_dim, hidden_dim), nn.LeakyReLU(negative_slope),
                                    nn.Linear(hidden_dim, 1))

    def _check(self, features: torch.Tensor) -> None:
        if tuple(features.shape[-3:]) != self.feature_shape:
            raise ValueError('expected features (..., {}), got {}'.format(
                ', '.join(map(str, self.feature_shape)), tuple(features.shape)))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores, shaped like ``features`` without its last three dims."""
        self._check(features)
        return self.layers(features).squeeze(-1)

    def frozen_logits(self, features: torch.Tensor) -> torch.Tensor:
        """:meth:`logits` with this discriminator's parameters detached: gradients reach ``features`` only.

        The generator (student) loss runs through the discriminator with these, so one backward pass of the total
        loss leaves the discriminator's gradients to its own loss alone, and no parameter the generator's graph
        saved is stepped before that graph's backward pass (which PyTorch refuses as an in-place modification).
        """
        self._check(features)
        detached = {name: p.detach() for name, p in self.layers.named_parameters()}
        return functional_call(self.layers, detached, (features,)).squeeze(-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Probability that ``features`` come from the teacher (the sigmoid of :meth:`logits`)."""
        return torch.sigmoid(self.logits(features))


def roi_feature_shapes(bb_regressor: nn.Module) -> Dict[str, Tuple[int, int, int]]:
    """``(C, h, w)`` of the IoU-net's test-branch RoI features: layer2 through ``prroi_pool3t``, layer3 through
    ``prroi_pool4t`` (256 x 5 x 5 and 256 x 3 x 3 in Super-DiMP), read from the modules themselves."""
    shapes = {}
    for branch, conv, pool in (('layer2', 'conv3_2t', 'prroi_pool3t'), ('layer3', 'conv4_2t', 'prroi_pool4t')):
        channels = getattr(bb_regressor, conv)[0].out_channels
        pool_module = getattr(bb_regressor, pool)
        shapes[branch] = (channels, pool_module.pooled_height, pool_module.pooled_width)
    return shapes


def build_discriminators(feature_shapes: Mapping[str, Tuple[int, int, int]], hidden_dim: int = 256) -> nn.ModuleDict:
    """One :class:`FeatureDiscriminator` per branch, keyed like ``feature_shapes``."""
    return nn.ModuleDict({branch: FeatureDiscriminator(shape, hidden_dim) for branch, shape in feature_shapes.items()})
