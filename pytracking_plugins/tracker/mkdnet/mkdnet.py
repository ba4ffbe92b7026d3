"""The MKDNet tracker: pytracking's DiMP tracker, run with MKDNet's student network.

MKDNet tracks exactly as its baseline Super-DiMP (paper, IV.D); everything MKDNet-specific is in its parameter files
and network wrapper (:mod:`pytracking_plugins.features.net_wrappers`). This class changes how, not what, DiMP
computes: the box refinement works in a window around its boxes (:mod:`pytracking_plugins.iou_window`; parameter
``iou_window_margin``, default ``CPU_IOU_WINDOW_MARGIN`` on the CPU, None -- the whole map -- on a GPU), and on a GPU
the best scale's index is read to the host once per frame. Parameter ``seed`` seeds torch at each sequence's start,
so a sequence tracks the same whatever ran before it; ``backend='onnxruntime'`` runs the backbone and the feature
networks from the network's ONNX export (``params.onnx_path``), the classifier and the box refinement staying PyTorch.
"""
import math
import numbers
from typing import Optional

import torch
from pytracking.tracker.dimp import DiMP

from pytracking_plugins.features.net_wrappers import MKDNetNetwork
from pytracking_plugins.iou_window import (NonFiniteProposal, WindowedIoUFeatures, WindowedIoUNet,
                                          supports_windowing)

CPU_IOU_WINDOW_MARGIN = 0.05


class MKDNet(DiMP):
    """pytracking's DiMP tracker, with the box refinement computed in a window (see the module docstring)."""

    def initialize(self, image, info: dict) -> dict:
        """DiMP's, after seeding torch's generator with ``params.seed`` when it is set."""
        seed = self.params.get('seed', None)
        if seed is not None:
            torch.manual_seed(seed)
        return super().initialize(image, info)

    def localize_target(self, scores, sample_pos, sample_scales):
        """DiMP's, with the best scale's index as a Python int (read once)."""
        translation_vec, scale_ind, s, flag = super().localize_target(scores, sample_pos, sample_scales)
        return translation_vec, int(scale_ind), s, flag

    def initialize_features(self):
        """DiMP's, the network set to ``params.backend`` (and ``params.onnx_path``) before it loads."""
        if not getattr(self, 'features_initialized', False):
            backend = self.params.get('backend', 'pytorch')
            if isinstance(self.params.net, MKDNetNetwork):
                self.params.net.use_backend(backend, self.params.get('onnx_path', None))
            elif backend != 'pytorch':
                raise ValueError('params.backend = {!r} needs the network wrapper MKDNetNetwork, got {}'.format(
                    backend, type(self.params.net).__name__))
        super().initialize_features()

    def get_iou_features(self, backbone_feat):
        """DiMP's, in onnxruntime with that backend."""
        onnx = getattr(self.net, 'onnx', None)
        if onnx is None:
            return super().get_iou_features(backbone_feat)
        return onnx.iou_features(self.get_iou_backbone_features(backbone_feat))

    def get_iou_modulation(self, iou_backbone_feat, target_boxes):
        """DiMP's, in onnxruntime with that backend."""
        onnx = getattr(self.net, 'onnx', None)
        if onnx is None:
            return super().get_iou_modulation(iou_backbone_feat, target_boxes)
        return onnx.iou_modulation(iou_backbone_feat, target_boxes)

    def iou_window_margin(self) -> Optional[float]:
        """The first window's margin in box sizes, or None where the refinement runs on the whole map."""
        default = None if self.params.get('use_gpu', False) else CPU_IOU_WINDOW_MARGIN
        margin = self.params.get('iou_window_margin', default)
        if margin is None or not supports_windowing(self.net.bb_regressor):
            return None
        if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not 0 <= margin < math.inf:
            raise ValueError('params.iou_window_margin must be None (the whole map) or a margin >= 0 in box sizes, '
                             'got {!r}: fix it in your parameter file'.format(margin))
        return float(margin)

    def init_iou_net(self, backbone_feat):
        """DiMP's, and the IoU-net prepared for windowed prediction when the window is on."""
        super().init_iou_net(backbone_feat)
        self.window_margin = self.iou_window_margin()   # read and checked once per sequence, not every frame
        self.windowed_iou_net = WindowedIoUNet(self.net.bb_regressor) if self.window_margin is not None else None
        self.iou_window_refinements = 0   # refinements started in a window
        self.iou_window_growths = 0       # times a map's window grew because a box reached beyond it
        self.iou_window_redone = 0        # refinements run on the whole map because a box was not finite

    def refine_boxes(self, backbone_feat, scale_ind, init_boxes):
        """DiMP's refinement of ``init_boxes`` on sample ``scale_ind``, on IoU features computed in a window around
        them; on the whole map (DiMP's own) when a box is not finite, from the start or at a step."""
        if self.windowed_iou_net is None:
            return super().refine_boxes(backbone_feat, scale_ind, init_boxes)
        if not bool(torch.isfinite(init_boxes).all()):   # no window holds such a box: skip computing one
            self.iou_window_redone += 1
            return super().refine_boxes(backbone_feat, scale_ind, init_boxes)
        iou_backbone_feat = [x[scale_ind:scale_ind + 1, ...] for x in self.get_iou_backbone_features(backbone_feat)]
        iou_features = self.windowed_iou_net.iou_features(self.iou_modulation, iou_backbone_feat, init_boxes,
                                                          self.window_margin)
        self.iou_window_refinements += 1
        try:
            return self.optimize_boxes(iou_features, init_boxes)
        except NonFiniteProposal:
            self.iou_window_redone += 1
        finally:
            self.iou_window_growths += iou_features.growths
        return super().refine_boxes(backbone_feat, scale_ind, init_boxes)

    def predict_iou(self, iou_features, boxes):
        """DiMP's, on IoU features in a window as on whole maps."""
        if isinstance(iou_features, WindowedIoUFeatures):
            return iou_features.predict_iou(boxes)
        return super().predict_iou(iou_features, boxes)
