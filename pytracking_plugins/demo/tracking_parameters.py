"""Tracking parameters of the miniature's networks: Super-DiMP's online procedure at the crop size they were
trained on.

The experiment writes ``miniature.json`` next to its networks (in the network folder it points pytracking at) with
the crop size and the score below which the target counts as not found (see :mod:`pytracking_plugins.demo.presets`);
the parameter files ``mkdnet/miniature_<variant>`` read it here, so tracking samples the crops the networks saw.
"""
import json
import os
from typing import Optional

from pytracking.parameter.dimp import super_dimp
from pytracking.utils import TrackerParams

from pytracking_plugins.features.net_wrappers import MKDNetNetwork, default_use_gpu
from pytracking_plugins.network_folders import network_folders

INFO_FILE = 'miniature.json'


def network_file(variant: str) -> str:
    """The file name of a miniature network (teacher, baseline, fd, sd, ioud, mkdnet) in its network folder."""
    return 'miniature_{}.pth.tar'.format(variant)


def read_network_info() -> dict:
    """``miniature.json`` of the (first) network folder: ``{'image_sample_size': int, ...}``."""
    folders = network_folders()
    path = os.path.join(folders[0] if folders else '', INFO_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError('{} not found: the miniature parameter files track the networks of mkdnet-demo and '
                                'mkdnet-ablation, which write it next to them'.format(path))
    with open(path) as handle:
        info = json.load(handle)
    if not isinstance(info.get('image_sample_size'), int) or info['image_sample_size'] <= 0:
        raise ValueError('{}: image_sample_size must be a positive integer'.format(path))
    return info


def parameters(variant: str, use_gpu: Optional[bool] = None) -> TrackerParams:
    """Super-DiMP's parameters with the miniature's ``variant`` network and crop size."""
    info = read_network_info()
    params = super_dimp.parameters()
    params.use_gpu = default_use_gpu(use_gpu)
    params.image_sample_size = info['image_sample_size']
    params.target_not_found_threshold = float(info.get('target_not_found_threshold',
                                                       params.target_not_found_threshold))
    params.net = MKDNetNetwork(net_path=network_file(variant), use_gpu=params.use_gpu, checkpoint_format='network')
    params.seed = 0                     # every sequence tracks the same whatever the order (see the tracker)
    return params
