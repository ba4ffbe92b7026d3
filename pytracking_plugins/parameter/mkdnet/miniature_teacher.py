"""The miniature's teacher (Super-DiMP on a ResNet-18, trained from scratch on ordinary-sized targets), tracked with
Super-DiMP's online procedure; trained by mkdnet-demo / mkdnet-ablation."""
from pytracking.utils import TrackerParams

from pytracking_plugins.demo import tracking_parameters


def parameters() -> TrackerParams:
    return tracking_parameters.parameters('teacher')
