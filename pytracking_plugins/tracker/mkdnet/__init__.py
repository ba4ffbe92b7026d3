"""The MKDNet tracker: pytracking's DiMP tracker, run with MKDNet's student network.

MKDNet tracks exactly as its baseline Super-DiMP does (paper, IV.D "Online Tracking"): the student network, 15
augmented initial samples, the target model updated every 20 frames or on a distractor, and IoU-net box refinement.
Everything MKDNet-specific is in its parameter files (``pytracking/parameter/mkdnet``) and network wrapper
(:mod:`pytracking_plugins.features.net_wrappers`), so the tracker is pytracking's own ``DiMP`` class, not a copy.
"""
from pytracking.tracker.dimp import DiMP


def get_tracker_class():
    return DiMP
