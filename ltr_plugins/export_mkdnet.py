"""MKDNet's student out of a training checkpoint, and written as a tracking network.

The result is a Super-DiMP network file: the student's state dict and its ltr constructor, nothing else -- no
teacher, no discriminators, no optimizer state -- so pytracking's ``NetWithBackbone`` loads it as it loads
``super_dimp.pth.tar``, and it is the same size. The command is ``mkdnet-export`` on the tracking side.
"""
import os

import torch.nn as nn

from ltr_plugins.models.super_dimp import save_tracking_network
from ltr_plugins.network_files import rebuild_constructor, unpickle_network_file
from ltr_plugins.trainers import ltr_checkpoints

TRAINING_NET_TYPE = 'MKDNetStudent'
STUDENT_PREFIX = 'net.'          # MKDNetStudent.net is the student DiMPnet


def resolve_checkpoint(checkpoint: str) -> str:
    """A checkpoint file from a file path, a folder (its latest checkpoint) or a train setting ``module/name``."""
    path = os.path.expanduser(checkpoint)
    if os.path.isfile(path):
        return os.path.abspath(path)
    folder = path if os.path.isdir(path) else None
    if folder is None:
        from ltr_plugins.common.local_settings import LTR_LOCAL, load_local_settings
        folder = ltr_checkpoints.setting_checkpoint_dir(load_local_settings(*LTR_LOCAL).workspace_dir,
                                                        'ltr/' + checkpoint)
    files = ltr_checkpoints.checkpoints_in(folder, TRAINING_NET_TYPE)
    if not files:
        raise FileNotFoundError('no {}_ep*.pth.tar checkpoint in {}'.format(TRAINING_NET_TYPE, folder))
    return os.path.abspath(files[-1])


def student_from_checkpoint(checkpoint_path: str) -> nn.Module:
    """Rebuilds the student DiMPnet of a training checkpoint from its constructor and loads its weights (strictly:
    every weight of the student must be there). The checkpoint is read without running pickled code, and the
    constructor rebuilt from the ltr.models allow-list (:mod:`ltr_plugins.network_files`)."""
    state = unpickle_network_file(checkpoint_path)
    net_type = state.get('net_type') if isinstance(state, dict) else None
    if net_type != TRAINING_NET_TYPE:
        raise ValueError('{} is {}, not an MKDNet training checkpoint ({}){}'.format(
            checkpoint_path, 'a {} checkpoint'.format(net_type) if net_type else 'no ltr checkpoint',
            TRAINING_NET_TYPE,
            ': it is already a tracking network' if net_type and state.get('constructor') is not None else ''))
    net_info = state.get('net_info') if isinstance(state.get('net_info'), dict) else {}
    if net_info.get('student_constructor') is None:
        raise ValueError('{} does not record the student\'s constructor'.format(checkpoint_path))
    constructor = rebuild_constructor(net_info['student_constructor'], checkpoint_path,
                                      "net_info['student_constructor']")
    if 'backbone_pretrained' in constructor.kwds:
        constructor.kwds['backbone_pretrained'] = False   # the weights come from the checkpoint: no download
    student = constructor.get()
    student.load_state_dict({key[len(STUDENT_PREFIX):]: value for key, value in state['net'].items()
                             if key.startswith(STUDENT_PREFIX)})
    student.constructor = constructor
    student.info = {'exported_from': checkpoint_path, 'epoch': state.get('epoch'), 'init': net_info.get('init')}
    return student


def export_student(checkpoint: str, output: str) -> str:
    """Writes the student of ``checkpoint`` (see :func:`resolve_checkpoint`) as the tracking network ``output``;
    returns its path."""
    checkpoint_path = resolve_checkpoint(checkpoint)
    student = student_from_checkpoint(checkpoint_path)
    return save_tracking_network(student, output, net_info=student.info)
