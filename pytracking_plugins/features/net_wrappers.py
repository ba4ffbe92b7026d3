"""The network wrapper MKDNet's parameter files give pytracking's DiMP tracker.

:class:`MKDNetNetwork` is pytracking's ``NetWithBackbone`` (same preprocessing, same lazy loading on the tracker's
``initialize_features``), with these differences:

- the file is looked up like ``NetWrapper`` does (:func:`pytracking_plugins.network_folders.find_network_file`), and a
  missing file is an error that names the file, every folder searched and how to get it, instead of ltr's 'No
  matching checkpoint file found';
- ``checkpoint_format='network'`` reads a pytracking network file (state dict + constructor, what MKDNet's training
  exports) through pytracking's own ``load_network`` (which reads it without running pickled code:
  :mod:`ltr_plugins.network_files`); ``'release'`` reads the authors' released file with
  :func:`ltr_plugins.release_checkpoint.load_release_student`: the student alone, in a stock Super-DiMP
  network, without running the file's constructor;
- the network's parameters are frozen (``requires_grad=False``): tracking never trains them.
"""
import os
from typing import Optional

import torch
from pytracking.features.net_wrappers import NetWithBackbone

from pytracking_plugins.network_folders import find_network_file

CHECKPOINT_FORMATS = ('network', 'release')

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
        use_gpu: move the network to CUDA; without a CUDA device it stays on the CPU (and says so).
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
        super().__init__(net_path, use_gpu, initialize, **kwargs)

    def load_network(self):
        path = find_network_file(self.net_path, HOW_TO_GET[self.checkpoint_format])
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
            print('No CUDA device: keeping {} on the CPU.'.format(os.path.basename(path)))
            self.use_gpu = False
        if self.use_gpu:
            self.cuda()
        self.eval()
        # Tracking never trains the network, but DiMP's box refinement backpropagates through the IoU-net to the
        # boxes: frozen weights spare it the weight gradients (and their accumulation) of every refinement step.
        self.net.requires_grad_(False)
