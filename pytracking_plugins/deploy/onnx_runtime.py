"""An ONNX export run by onnxruntime, called as the tracker calls its network (the backend ``params.backend =
'onnxruntime'``; :class:`pytracking_plugins.features.net_wrappers.MKDNetNetwork` holds it).

Before a session opens, the folder's manifest is checked (:mod:`.manifest`), every graph file against its recorded
hash, and the network file the tracker loads against the hash of the one the graphs were exported from: the online
classifier and the box refinement run that file's weights in PyTorch, so graphs of another network would track
with mismatched halves. onnxruntime runs with as many threads as torch (``torch.get_num_threads()``), so both
backends get the same share of the machine; on CUDA when the tracker uses the GPU and onnxruntime offers it.
"""
import importlib
import os
import sys
from collections import OrderedDict
from typing import List, Sequence, Tuple

import torch

from pytracking_plugins.deploy.manifest import ManifestError, file_sha256, read_manifest

INSTALL_HINT = ('install the plugin\'s onnx extra: ./install.sh --with-onnx (the pinned versions, into .venv), or in '
                'your own environment ./install.sh --env PYTHON --with-onnx, or pip install "onnxruntime>=1.20"')


class OnnxRuntimeMissing(ImportError):
    """onnxruntime (or onnx, for the export) is not installed; the message says what to install."""


def import_onnx_module(name: str, purpose: str):
    """``import name`` (onnxruntime, onnx), or OnnxRuntimeMissing saying what needs it and how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise OnnxRuntimeMissing('{} needs the Python package {}, which is not installed in {} ({}): {}'.format(
            purpose, name, sys.prefix, error, INSTALL_HINT)) from None


def create_session(path: str, device: str = 'cpu'):
    """An onnxruntime session of the graph ``path``: torch's number of threads, CUDA first on 'cuda' when offered."""
    onnxruntime = import_onnx_module('onnxruntime', 'the onnxruntime backend')
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    # The tracker's PyTorch parts run between the sessions' calls: onnxruntime's threads spinning for more work
    # would take the cores from them.
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    providers = ['CPUExecutionProvider']
    if device == 'cuda' and 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        providers.insert(0, 'CUDAExecutionProvider')
    return onnxruntime.InferenceSession(path, options, providers=providers)


def run_session(session, inputs: Sequence[torch.Tensor], device: str = 'cpu') -> List[torch.Tensor]:
    """The session's outputs on ``inputs`` (its inputs in order), as float tensors on ``device``."""
    feed = {entry.name: tensor.detach().to('cpu', torch.float32).contiguous().numpy()
            for entry, tensor in zip(session.get_inputs(), inputs)}
    return [torch.from_numpy(output).to(device) for output in session.run(None, feed)]


class OnnxNetworks:
    """The graphs of the ONNX folder ``folder``, exported from ``network_file``, in onnxruntime sessions.

    args:
        folder: an ONNX export (``mkdnet-export --onnx``).
        network_file: the network file the tracker loads (its hash must be the manifest's).
        device: where the outputs go ('cpu' or 'cuda'), as the tracker's PyTorch parts need them.
    """

    def __init__(self, folder: str, network_file: str, device: str = 'cpu'):
        import_onnx_module('onnxruntime', 'the onnxruntime backend')
        self.folder, self.device = folder, device
        self.manifest = read_manifest(folder)
        network = self.manifest['network']
        if file_sha256(network_file) != network['sha256']:
            raise ManifestError('{} holds graphs of another network than {} (exported from {}, SHA-256 {}...): export '
                                'this network again with mkdnet-export --onnx'.format(
                                    folder, network_file, network.get('file'), network['sha256'][:12]))
        self.crop_size = tuple(self.manifest['crop_size'])
        self.sessions = {}
        for name, graph in self.manifest['graphs'].items():
            path = os.path.join(folder, graph['file'])
            if file_sha256(path) != graph['sha256']:
                raise ManifestError('{} is not the file its manifest describes (another hash): export again with '
                                    'mkdnet-export --onnx'.format(path))
            self.sessions[name] = create_session(path, device)
        self.output_names = {name: [entry['name'] for entry in graph['outputs']]
                             for name, graph in self.manifest['graphs'].items()}

    def check_preprocessing(self, image_format: str, mean: Sequence[float], std: Sequence[float]) -> None:
        """ValueError unless the tracker's network wrapper normalises crops as the exported backbone does."""
        recorded = self.manifest['preprocessing']
        if (image_format, [round(v, 6) for v in mean], [round(v, 6) for v in std]) != (
                recorded['image_format'], [round(v, 6) for v in recorded['mean']],
                [round(v, 6) for v in recorded['std']]):
            raise ValueError('the backbone in {} normalises {} crops with mean {} and std {}, the network wrapper '
                             '{} crops with mean {} and std {}'.format(
                                 self.folder, recorded['image_format'], recorded['mean'], recorded['std'],
                                 image_format, list(mean), list(std)))

    def _run(self, name: str, inputs: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        return run_session(self.sessions[name], inputs, self.device)

    def backbone(self, image: torch.Tensor) -> 'OrderedDict[str, torch.Tensor]':
        """``NetWithBackbone.extract_backbone(image)``: crops [B, 3, H, W] (0-255) -> the layers by name."""
        if tuple(image.shape[-2:]) != self.crop_size:
            raise ValueError('the ONNX backbone in {} was exported for {}x{} crops, the tracker samples {}x{} '
                             '(params.image_sample_size): export again with mkdnet-export --onnx DIR --crop-size {}'
                             .format(self.folder, *self.crop_size, *image.shape[-2:], image.shape[-1]))
        return OrderedDict(zip(self.output_names['backbone'], self._run('backbone', [image])))

    def classification_features(self, features: torch.Tensor) -> torch.Tensor:
        """``DiMPnet.extract_classification_feat`` on the classification layer's features."""
        return self._run('classification_features', [features])[0]

    def iou_features(self, iou_backbone_feat: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """``AtomIoUNet.get_iou_feat`` on the IoU-net's two backbone layers."""
        return tuple(self._run('iou_features', list(iou_backbone_feat)))

    def iou_modulation(self, iou_backbone_feat: Sequence[torch.Tensor],
                       boxes: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``AtomIoUNet.get_modulation``: one box [B, 4] per crop of the two layers [B, ...]."""
        return tuple(self._run('iou_modulation', list(iou_backbone_feat) + [boxes]))
