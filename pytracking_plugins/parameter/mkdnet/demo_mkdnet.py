"""The demo's mkdnet network (``python -m pytracking_plugins.demo``) with Super-DiMP's online procedure."""
from pytracking.utils import TrackerParams

from pytracking_plugins.demo import tracking_parameters


def parameters() -> TrackerParams:
    return tracking_parameters.parameters('mkdnet')
