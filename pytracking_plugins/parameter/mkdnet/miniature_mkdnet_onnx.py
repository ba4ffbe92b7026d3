"""The miniature's MKDNet student (parameter file ``miniature_mkdnet``) with its gradient-free parts run by onnxruntime,
from ``miniature_mkdnet_onnx/`` beside the network (``mkdnet-export miniature_mkdnet.pth.tar --onnx``, which reads the
crop size from ``miniature.json``). Needs onnxruntime (``./install.sh --with-onnx``)."""
from pytracking.utils import TrackerParams

from pytracking_plugins.demo import tracking_parameters


def parameters() -> TrackerParams:
    params = tracking_parameters.parameters('mkdnet')
    params.backend = 'onnxruntime'
    params.onnx_path = None             # miniature_mkdnet_onnx beside the network file
    return params
