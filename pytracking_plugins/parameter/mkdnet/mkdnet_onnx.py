"""MKDNet (parameter file ``mkdnet``) with the network's gradient-free parts run by onnxruntime: the backbone, the
classification features and the IoU-net's features and modulation, from the ONNX export of ``mkdnet.pth.tar``
(``mkdnet-export mkdnet.pth.tar --onnx``, which writes ``mkdnet_onnx/`` beside it). The online classifier and the box
refinement run in PyTorch with the same network file's weights; the boxes are the PyTorch backend's to float
rounding. Needs onnxruntime (``./install.sh --with-onnx``).
"""
from typing import Optional

from pytracking.utils import TrackerParams

from . import mkdnet


def parameters(use_gpu: Optional[bool] = None, net_path: str = mkdnet.NETWORK_FILE,
               onnx_path: Optional[str] = None) -> TrackerParams:
    """use_gpu, net_path: as mkdnet's. onnx_path: the ONNX folder (a folder in the network folder or an absolute
    path); None: ``<network file name>_onnx`` beside the network file."""
    params = mkdnet.parameters(use_gpu=use_gpu, net_path=net_path)
    params.backend = 'onnxruntime'
    params.onnx_path = onnx_path
    return params
