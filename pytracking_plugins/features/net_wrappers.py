"""The network wrapper MKDNet's parameter files give pytracking's DiMP tracker.

:class:`MKDNetNetwork` is pytracking's ``NetWithBackbone`` (same preprocessing, same lazy loading), except that a
missing file is an error naming every folder searched and how to get the file
(:func:`pytracking_plugins.network_folders.find_network_file`); ``checkpoint_format='network'`` reads a network file
through pytracking's ``load_network`` (no pickled code runs: :mod:`ltr_plugins.network_files`) and ``'release'`` the
authors' released file (:func:`ltr_plugins.release_checkpoint.load_release_student`); the parameters are frozen; and
with the backend 'onnxruntime' (:meth:`MKDNetNetwork.use_backend`) the backbone and the classification features run
from the network's ONNX export (:mod:`pytracking_plugins.deploy.onnx_runtime`), PyTorch keeping the online
classifier and the box refinement.
"""
import os
from typing import Optional

import torch
from pytracking.features.net_wrappers import NetWithBackbone

from pytracking_plugins.network_folders import find_network_file

CHECKPOINT_FORMATS = ('network', 'release')
BACKENDS = ('pytorch', 'onnxruntime')

# How to obtain each kind of network file, for the error a missing one raises.
HOW_TO_GET = {
    'network': ('Train MKDNet with `python run_training.py mkdnet mkdnet` (in ltr/), then export its student with '
                '`mkdnet-export mkdnet/mkdnet`, which writes mkdnet.pth.tar into the network '
                'folder; or track with the authors\' released model: `python run_tracker.py mkdnet mkdnet_release`.'),
    'release': ('Download the MKDNet model file released by the paper\'s authors '
                '(https://github.com/mmic-lcl/Datasets-and-benchmark-code) and save it in the network folder under '
                'this name (or write a parameter file that calls '
                'pytracking.parameter.mkdnet.mkdnet_release.parameters(net_path=...) with its path).'),
}


# For a file with weights but no ltr constructor of a Super-DiMP network.
RELEASE_HINT = ("A file saved from the authors' fork, or a bare Super-DiMP state dict, loads with the parameter file "
                'mkdnet_release (it reads the student of any Super-DiMP state dict without running pickled code).')


def default_use_gpu(use_gpu: Optional[bool] = None) -> bool:
    """``use_gpu`` as given, or whether this machine has a CUDA device when it is not given (None)."""
    return torch.cuda.is_available() if use_gpu is None else bool(use_gpu)


class MKDNetNetwork(NetWithBackbone):
    """``NetWithBackbone`` for MKDNet's network files (see the module docstring).

    args:
        net_path: file name in pytracking's network folder, or an absolute path.
        use_gpu: move the network to CUDA (an error without a CUDA device; run through pytracking's Tracker, patch 06
            sets it to False first).
        checkpoint_format: 'network' (pytracking network file) or 'release' (the authors' released file).
        **kwargs: as ``NetWithBackbone`` (image_format, mean, std; constructor overrides for 'network' files).
    """

    def __init__(self, net_path: str, use_gpu: bool = True, initialize: bool = False,
                 checkpoint_format: str = 'network', **kwargs):
        if checkpoint_format not in CHECKPOINT_FORMATS:
            raise ValueError('checkpoint_format must be one of {}, not {!r}'.format(CHECKPOINT_FORMATS,
                                                                                   checkpoint_format))
        overrides = sorted(set(kwargs) - {'image_format', 'mean', 'std'})
        if checkpoint_format == 'release' and overrides:
            raise TypeError('constructor overrides {} do not apply to release files: their student is always a '
                            'stock Super-DiMP network'.format(overrides))
        self.checkpoint_format = checkpoint_format   # set first: the base class may load right away
        self.backend, self.onnx_path, self.onnx, self.network_file = 'pytorch', None, None, None
        super().__init__(net_path, use_gpu, initialize, **kwargs)

    def use_backend(self, backend: str, onnx_path: Optional[str] = None) -> None:
        """What computes the backbone, the classification features and the IoU-net's features and modulation:
        'pytorch', or 'onnxruntime' with the ONNX export in ``onnx_path`` (a folder in the network folder or an
        absolute path; None: beside the network file, ``<name>_onnx``). Applies from the network's loading on, or at
        once to a loaded network."""
        if backend not in BACKENDS:
            raise ValueError('params.backend must be one of {}, not {!r}'.format(BACKENDS, backend))
        self.backend, self.onnx_path, self.onnx = backend, onnx_path, None
        if backend == 'onnxruntime' and self.net is not None:
            self.load_onnx()

    def load_onnx(self) -> None:
        """Opens the ONNX export of the loaded network file in onnxruntime (``self.onnx``)."""
        from pytracking_plugins.deploy.manifest import default_onnx_folder
        from pytracking_plugins.deploy.onnx_runtime import OnnxNetworks, import_onnx_module
        import_onnx_module('onnxruntime', "params.backend = 'onnxruntime'")
        folder = self.onnx_path or default_onnx_folder(self.network_file)
        folder = find_network_file(folder, 'Export it with `mkdnet-export {} --onnx {}`.'.format(
            self.network_file, os.path.join(os.path.dirname(self.network_file), folder)), what='ONNX folder')
        self.onnx = OnnxNetworks(folder, self.network_file, 'cuda' if self.use_gpu else 'cpu')
        self.onnx.check_preprocessing(self.image_format, self._mean.flatten().tolist(), self._std.flatten().tolist())

    def extract_backbone(self, im: torch.Tensor):
        """``NetWithBackbone.extract_backbone``, in onnxruntime with that backend."""
        if self.onnx is None:
            return super().extract_backbone(im)
        return self.onnx.backbone(im)

    def extract_classification_feat(self, backbone_feat):
        """``DiMPnet.extract_classification_feat``, in onnxruntime with that backend."""
        if self.onnx is None:
            return self.net.extract_classification_feat(backbone_feat)
        return self.onnx.classification_features(self.net.get_backbone_clf_feat(backbone_feat))

    def load_network(self):
        path = find_network_file(self.net_path, HOW_TO_GET[self.checkpoint_format])
        self.network_file = path
        if self.checkpoint_format == 'release':
            from ltr_plugins.release_checkpoint import load_release_student
            self.net = load_release_student(path)
        else:
            from pytracking.utils.loading import load_network
            from ltr_plugins.network_files import NetworkFileError
            try:
                self.net = load_network(path, **self.net_kwargs)
            except NetworkFileError as error:
                if not error.foreign:
                    raise
                raise NetworkFileError('{} {}'.format(error, RELEASE_HINT), foreign=True) from None
            except (ImportError, AttributeError, KeyError, RuntimeError) as error:
                raise NetworkFileError('{} does not load as a pytracking network file: {}: {}. {}'.format(
                    path, type(error).__name__, error, RELEASE_HINT), foreign=True) from None
        if self.use_gpu and not torch.cuda.is_available():
            # The one CPU fallback is pytracking's Tracker.get_parameters (patch 06), which sets use_gpu = False
            # before anything loads; a wrapper asked for CUDA outside it is a mistake to name, not to paper over.
            raise RuntimeError('{}: use_gpu=True, but PyTorch sees no CUDA device; build the parameters with '
                               'use_gpu=None (CUDA when the machine has it) or use_gpu=False'.format(path))
        if self.use_gpu:
            self.cuda()
        self.eval()
        # Tracking never trains the network, but DiMP's box refinement backpropagates through the IoU-net to the
        # boxes: frozen weights spare it the weight gradients (and their accumulation) of every refinement step.
        self.net.requires_grad_(False)
        if self.backend == 'onnxruntime':
            self.load_onnx()
