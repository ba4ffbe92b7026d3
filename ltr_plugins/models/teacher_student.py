"""MKDNet's teacher and student: two Super-DiMP networks, the teacher fixed, the student trained with discriminators.

Both run the stock ``DiMPnet.forward`` and also hand back the IoU-net's test-branch RoI features that MKDNet distils
(the paper's "FMM"): layer2 after modulation and ``prroi_pool3t`` (256 x 5 x 5 per proposal), layer3 after modulation
and ``prroi_pool4t`` (256 x 3 x 3). Forward hooks on the two pooling modules record them during one forward pass, in
the graph, without copying ``AtomIoUNet.predict_iou`` or changing the network's class or state dict, so the student
exports as a stock Super-DiMP (under ``DataParallel`` each replica records its own). Every output keeps the sequence
dimension at dim 1 (RoI features ``(images, sequences, proposals, C, h, w)``), so ltr's ``MultiGPU(net, dim=1)``
scatters and gathers them for any number of GPUs, also when the batch does not split evenly.
"""
import contextlib
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn

from ltr_plugins.models.super_dimp import build_super_dimp
from ltr_plugins.network_files import read_network_weights

ROI_BRANCHES = ('layer2', 'layer3')
# The AtomIoUNet pooling module of each branch ("3"/"4" are ATOM's names for backbone blocks layer2/layer3).
ROI_POOL_MODULES = {'layer2': 'prroi_pool3t', 'layer3': 'prroi_pool4t'}

SUPER_DIMP_FILE = 'super_dimp.pth.tar'
SUPER_DIMP_URL = 'https://drive.google.com/open?id=1qDptswis2FxihLRYLVRGDvx6aUoAVVLv'


@contextlib.contextmanager
def _recording(modules: Sequence[nn.Module]) -> Iterator[List[List[torch.Tensor]]]:
    """Records the outputs of ``modules`` during the block, by forward hooks that are removed when it ends."""
    recorded: List[List[torch.Tensor]] = [[] for _ in modules]
    handles = [module.register_forward_hook(lambda _module, _inputs, output, into=into: into.append(output))
               for module, into in zip(modules, recorded)]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def forward_with_roi_features(net: nn.Module, train_imgs: torch.Tensor, test_imgs: torch.Tensor,
                              train_bb: torch.Tensor, test_proposals: torch.Tensor) -> Dict[str, Any]:
    """Runs ``net`` (a DiMPnet) as in training and returns

    ``{'scores': [classifier score map of every filter iterate, (images, sequences, H, W)],
    'iou': (images, sequences, proposals), 'roi': {'layer2': (images, sequences, proposals, C, 5, 5),
    'layer3': (images, sequences, proposals, C, 3, 3)}}``.
    """
    pools = [getattr(net.bb_regressor, ROI_POOL_MODULES[branch]) for branch in ROI_BRANCHES]
    with _recording(pools) as recorded:
        scores, iou = net(train_imgs=train_imgs, test_imgs=test_imgs, train_bb=train_bb,
                          test_proposals=test_proposals)
    num_images, num_sequences, num_proposals = test_proposals.shape[:3]
    roi = {}
    for branch, outputs in zip(ROI_BRANCHES, recorded):
        if len(outputs) != 1:
            raise RuntimeError('expected one {} call in the IoU-net forward, saw {}'.format(
                ROI_POOL_MODULES[branch], len(outputs)))
        # AtomIoUNet pools image-major: row = (image * sequences + sequence) * proposals + proposal.
        roi[branch] = outputs[0].reshape(num_images, num_sequences, num_proposals, *outputs[0].shape[-3:])
    return {'scores': scores, 'iou': iou, 'roi': roi}


class FrozenTeacher(nn.Module):
    """The fixed teacher: its own modules, no parameter requires grad, always in eval mode (BatchNorm statistics
    never move, whatever ``train()`` is asked for), and its forward runs under ``torch.no_grad()``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.net.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> 'FrozenTeacher':
        return super().train(False)

    def forward(self, train_imgs: torch.Tensor, test_imgs: torch.Tensor, train_bb: torch.Tensor,
                test_proposals: torch.Tensor) -> Dict[str, Any]:
        with torch.no_grad():
            return forward_with_roi_features(self.net, train_imgs, test_imgs, train_bb, test_proposals)


class MKDNetStudent(nn.Module):
    """What MKDNet trains: the student Super-DiMP (``net``) and the feature-level discriminators (None when the
    recipe uses no adversarial term). This is the ``actor.net`` whose state ltr's trainer checkpoints; the teacher
    is not part of it (it is rebuilt from its checkpoint, unchanged, at every start).

    ``info['student_constructor']`` keeps the student's ltr constructor so a training checkpoint can be exported
    as a stock tracking network (:mod:`ltr_plugins.export_mkdnet`).
    """

    def __init__(self, net: nn.Module, discriminators: Optional[nn.ModuleDict] = None,
                 info: Optional[Dict[str, Any]] = None):
        super().__init__()
        self.net = net
        self.discriminators = discriminators
        self.info = dict(info or {}, student_constructor=getattr(net, 'constructor', None))

    def forward(self, train_imgs: torch.Tensor, test_imgs: torch.Tensor, train_bb: torch.Tensor,
                test_proposals: torch.Tensor, teacher_roi: Optional[Dict[str, torch.Tensor]] = None,
                adversarial: Sequence[str] = ()) -> Dict[str, Any]:
        """:func:`forward_with_roi_features` of the student, and the discriminators' logits that ``adversarial``
        asks for (each ``{branch: (images, sequences, proposals)}``):

        * ``'gen'``: ``'gen_logits'``, the student's RoI features through the discriminators with their parameters
          detached (the generator term's input: its gradient reaches the student only);
        * ``'dis'``: ``'real_logits'`` of ``teacher_roi`` and ``'fake_logits'`` of the detached student RoI features
          (the discriminator term's input: its gradient reaches the discriminators only).

        The discriminators run here, inside the student's forward, so that one DistributedDataParallel (or
        ``MultiGPU``) wrapper of this module covers every trained parameter.
        """
        out = forward_with_roi_features(self.net, train_imgs, test_imgs, train_bb, test_proposals)
        unknown = set(adversarial) - {'gen', 'dis'}
        if unknown or (adversarial and self.discriminators is None):
            raise ValueError('adversarial={} needs discriminators and only knows gen, dis'.format(tuple(adversarial)))
        if 'gen' in adversarial:
            out['gen_logits'] = {branch: self.discriminators[branch].frozen_logits(roi)
                                 for branch, roi in out['roi'].items()}
        if 'dis' in adversarial:
            if teacher_roi is None:
                raise ValueError("adversarial 'dis' needs the teacher's RoI features")
            out['real_logits'] = {branch: self.discriminators[branch].logits(roi)
                                  for branch, roi in teacher_roi.items()}
            out['fake_logits'] = {branch: self.discriminators[branch].logits(roi.detach())
                                  for branch, roi in out['roi'].items()}
        return out


def super_dimp_search_dirs(settings) -> List[str]:
    """Where ``super_dimp.pth.tar`` is looked for: the ltr environment's ``pretrained_networks`` (ltr/admin/local.py;
    the plugin's template points it at the folder where pytracking finds its networks too)."""
    pretrained = getattr(settings.env, 'pretrained_networks', '')
    return [os.path.abspath(os.path.expanduser(pretrained))] if pretrained else []


def find_super_dimp_checkpoint(settings) -> str:
    """The Super-DiMP checkpoint MKDNet's teacher and student start from: ``settings.teacher_checkpoint`` when set,
    else ``super_dimp.pth.tar`` in :func:`super_dimp_search_dirs`. A missing file is an error that says where to get
    it."""
    explicit = getattr(settings, 'teacher_checkpoint', None)
    where = 'pytracking\'s MODEL_ZOO.md, "SuperDimp" -> model: {}'.format(SUPER_DIMP_URL)
    if explicit:
        path = os.path.abspath(os.path.expanduser(explicit))
        if not os.path.isfile(path):
            raise FileNotFoundError('settings.teacher_checkpoint = {!r}: no such file. MKDNet starts teacher and '
                                    'student from the official Super-DiMP checkpoint {} (get it from {}).'.format(
                                        explicit, SUPER_DIMP_FILE, where))
        return path
    searched = super_dimp_search_dirs(settings)
    for directory in searched:
        path = os.path.join(directory, SUPER_DIMP_FILE)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        'MKDNet starts teacher and student from the official Super-DiMP checkpoint {}, which was not found.\n'
        'Folders searched:\n{}\nGet it from {}\nand put it in one of these folders, or set '
        'settings.teacher_checkpoint to its path.'.format(
            SUPER_DIMP_FILE, '\n'.join('  ' + d for d in searched) or
            '  (none: set pretrained_networks in ltr/admin/local.py)', where))


def load_super_dimp(path: str, feature_sz: int) -> nn.Module:
    """Super-DiMP built exactly as ltr/train_settings/dimp/super_dimp.py builds it, with the weights of ``path``
    (strictly: a file that is not a Super-DiMP network is an error naming it). Read without running pickled code
    (:func:`ltr_plugins.network_files.read_network_weights`)."""
    net = build_super_dimp(backbone_pretrained=False, feature_sz=feature_sz)
    try:
        net.load_state_dict(read_network_weights(path))
    except RuntimeError as error:
        raise ValueError('{} is not a Super-DiMP network (the teacher): {}'.format(
            path, ' '.join(str(error).split())[:400])) from None
    return net
