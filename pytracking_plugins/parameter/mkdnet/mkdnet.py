"""MKDNet as the paper tracks (IV.D): the student network ``mkdnet.pth.tar``, Super-DiMP's online procedure.

The parameters are Super-DiMP's own (``pytracking/parameter/dimp/super_dimp.py``, read at call time, so the two
cannot drift apart); only the network and ``use_gpu`` differ. ``mkdnet.pth.tar`` comes from MKDNet's training
(``python run_training.py mkdnet mkdnet``, then ``mkdnet-export mkdnet/mkdnet``) and is looked up in the network
folder. To change something, write your own parameter file on top of this one, e.g. to track on the CPU:
``from pytracking.parameter.mkdnet import mkdnet`` and ``return mkdnet.parameters(use_gpu=False)``.
"""
from typing import Optional

from pytracking.parameter.dimp import super_dimp
from pytracking.utils import TrackerParams

from pytracking_plugins.features.net_wrappers import MKDNetNetwork, default_use_gpu

NETWORK_FILE = 'mkdnet.pth.tar'


def parameters(use_gpu: Optional[bool] = None, net_path: str = NETWORK_FILE) -> TrackerParams:
    """use_gpu: None (default) uses CUDA when this machine has it. net_path: a file name in the network folder,
    or an absolute path."""
    params = super_dimp.parameters()
    params.use_gpu = default_use_gpu(use_gpu)
    params.net = MKDNetNetwork(net_path=net_path, use_gpu=params.use_gpu, checkpoint_format='network')
    return params
