"""The MKDNet tracker: pytracking's DiMP tracker, run with MKDNet's student network.

MKDNet tracks exactly as its baseline Super-DiMP does (paper, IV.D "Online Tracking"): the student network, 15
augmented initial samples, the target model updated every 20 frames or on a distractor, and IoU-net box refinement.
Everything MKDNet-specific is in its parameter files (``pytracking/parameter/mkdnet``) and network wrapper
(:mod:`pytracking_plugins.features.net_wrappers`).

The class is pytracking's ``DiMP`` with one change in how, not what, it computes: a box refinement's IoU features
and predictions are computed in a window around its boxes (:mod:`pytracking_plugins.iou_window`), still by
pytracking's own refinement loop; whenever a box leaves the window the refinement is redone the stock way, on the
whole map. Parameter ``iou_window_margin`` (how far the window reaches beyond the boxes, in box sizes; default 0.5
on the CPU, off on a GPU, where the whole map costs little) sets it; None turns it off.
"""
from typing import Optional

import torch
from pytracking import TensorList
from pytracking.tracker.dimp import DiMP

from pytracking_plugins.iou_window import LeftWindow, WindowedIoUNet, supports_windowing

CPU_IOU_WINDOW_MARGIN = 0.25


class MKDNet(DiMP):
    """pytracking's DiMP tracker, with the box refinement computed in a window (see the module docstring)."""

    def initialize(self, image, info: dict) -> dict:
        self.iou_window_refinements = 0   # refinements done in a window
        self.iou_window_redone = 0        # of which redone on the whole map because a box left the window
        return super().initialize(image, info)

    def iou_window_margin(self) -> Optional[float]:
        default = None if self.params.get('use_gpu', False) else CPU_IOU_WINDOW_MARGIN
        margin = self.params.get('iou_window_margin', default)
        if margin is None or not supports_windowing(self.net.bb_regressor):
            return None
        return float(margin)

    def get_iou_features(self, backbone_feat):
        if self.iou_window_margin() is None:
            return super().get_iou_features(backbone_feat)
        # Deferred: refine_target_box picks the scale and hands these to optimize_boxes, which knows the boxes.
        return TensorList(self.get_iou_backbone_features(backbone_feat))

    def optimize_boxes(self, iou_features, init_boxes):
        margin = self.iou_window_margin()
        if margin is None:
            return super().optimize_boxes(iou_features, init_boxes)
        iou_backbone_feat = iou_features
        bb_regressor = self.net.bb_regressor
        self.iou_window_refinements += 1
        windowed = WindowedIoUNet(bb_regressor, self.iou_modulation, iou_backbone_feat, init_boxes, margin)
        try:
            with windowed.predicting_for(bb_regressor):
                return super().optimize_boxes(iou_backbone_feat, init_boxes)
        except LeftWindow:
            self.iou_window_redone += 1
        with torch.no_grad():
            whole_map = TensorList(bb_regressor.get_iou_feat(iou_backbone_feat))
        return super().optimize_boxes(whole_map, init_boxes)
