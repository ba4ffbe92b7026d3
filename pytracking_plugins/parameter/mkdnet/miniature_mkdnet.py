"""The miniature's MKDNet student (Eq. 11 with RDM), tracked with Super-DiMP's online procedure; trained by mkdnet-demo
/ mkdnet-ablation."""
from pytracking.utils import TrackerParams

from pytracking_plugins.demo import tracking_parameters


def parameters() -> TrackerParams:
    return tracking_parameters.parameters('mkdnet')
