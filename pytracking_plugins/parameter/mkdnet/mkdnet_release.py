"""MKDNet with the authors' released model file and the authors' tracking parameters.

The student is loaded from the released file into a stock Super-DiMP network without running the fork's constructor
(:mod:`ltr_plugins.release_checkpoint`); save the file in the network folder as ``mkdnet_release.pth.tar`` (or pass
``net_path``). The authors tracked with more steepest-descent iterations than Super-DiMP (``net_opt_iter`` 25 instead
of 10, ``net_opt_update_iter`` 3 instead of 2, ``net_opt_hn_iter`` 3 instead of 1); everything else is Super-DiMP's,
taken from :mod:`pytracking.parameter.mkdnet.mkdnet`.
"""
from typing import Optional

from pytracking.utils import TrackerParams

from pytracking_plugins.features.net_wrappers import MKDNetNetwork
from . import mkdnet

NETWORK_FILE = 'mkdnet_release.pth.tar'


def parameters(use_gpu: Optional[bool] = None, net_path: str = NETWORK_FILE) -> TrackerParams:
    """use_gpu: None (default) uses CUDA when this machine has it. net_path: a file name in the network folder,
    or an absolute path."""
    params = mkdnet.parameters(use_gpu=use_gpu)
    params.net_opt_iter = 25
    params.net_opt_update_iter = 3
    params.net_opt_hn_iter = 3
    params.net = MKDNetNetwork(net_path=net_path, use_gpu=params.use_gpu, checkpoint_format='release')
    return params
