"""Tracking parameters of the demo's networks: Super-DiMP's online procedure at the demo's crop size.

The demo writes ``demo.json`` next to its networks (in the network folder it points pytracking at) with the crop
size they were trained on and the score below which the target counts as not found (see
:mod:`pytracking_plugins.demo.presets`); the parameter files ``mkdnet/demo_teacher``, ``mkdnet/demo_mkdnet`` and
``mkdnet/demo_baseline`` read it here, so tracking always samples the crops the networks were trained with.
"""
import json
import os
from typing import Optional

from pytracking.parameter.dimp import super_dimp
from pytracking.utils import TrackerParams

from pytracking_plugins.features.net_wrappers import MKDNetNetwork, default_use_gpu
from pytracking_plugins.network_folders import network_folders

INFO_FILE = 'demo.json'


def network_file(role: str) -> str:
    """The file name of the demo's ``role`` network (teacher, mkdnet, baseline) in the network folder."""
    return 'demo_{}.pth.tar'.format(role)


def read_network_info() -> dict:
    """``demo.json`` of the (first) network folder: ``{'image_sample_size': int, ...}``."""
    folder = network_folders()[0]
    path = os.path.join(os.path.expanduser(folder), INFO_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError('{} not found: the demo parameter files track the networks of '
                                '`python -m pytracking_plugins.demo`, which writes it'.format(path))
    with open(path) as handle:
        info = json.load(handle)
    if not isinstance(info.get('image_sample_size'), int) or info['image_sample_size'] <= 0:
        raise ValueError('{}: image_sample_size must be a positive integer'.format(path))
    return info


def parameters(role: str, use_gpu: Optional[bool] = None) -> TrackerParams:
    """Super-DiMP's parameters with the demo's ``role`` network and crop size."""
    info = read_network_info()
    params = super_dimp.parameters()
    params.use_gpu = default_use_gpu(use_gpu)
    params.image_sample_size = info['image_sample_size']
    params.target_not_found_threshold = float(info.get('target_not_found_threshold',
                                                       params.target_not_found_threshold))
    params.net = MKDNetNetwork(net_path=network_file(role), use_gpu=params.use_gpu, checkpoint_format='network')
    return params
