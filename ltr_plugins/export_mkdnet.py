"""Exports MKDNet's student from a training checkpoint as a tracking network (``mkdnet.pth.tar``).

The result is a Super-DiMP network file: the student's state dict and its ltr constructor (``dimpnet50`` with
Super-DiMP's arguments), nothing else -- no teacher, no discriminators, no optimizer state -- so pytracking's
``NetWithBackbone`` loads it as it loads ``super_dimp.pth.tar``, and it is the same size.

    python -m ltr_plugins.export_mkdnet CHECKPOINT [--output PATH]

CHECKPOINT is a training checkpoint file (``MKDNetStudent_ep0050.pth.tar``), a folder of them (the latest is used),
or a train setting as ``module/name`` (``mkdnet/mkdnet``: the latest checkpoint of that setting in the ltr
workspace). The default output is ``mkdnet.pth.tar`` in pytracking's network folder (pytracking/evaluation/local.py).
"""
import argparse
import glob
import os
import sys
from typing import Optional, Sequence

import torch.nn as nn

from ltr_plugins.models.super_dimp import save_tracking_network

TRAINING_NET_TYPE = 'MKDNetStudent'
STUDENT_PREFIX = 'net.'          # MKDNetStudent.net is the student DiMPnet
DEFAULT_NAME = 'mkdnet.pth.tar'


def resolve_checkpoint(checkpoint: str) -> str:
    """A checkpoint file from a file path, a folder (its latest ``*_ep*.pth.tar``) or ``module/name``."""
    path = os.path.expanduser(checkpoint)
    if os.path.isfile(path):
        return os.path.abspath(path)
    folder = path if os.path.isdir(path) else None
    if folder is None:
        from ltr.admin.environment import env_settings
        folder = os.path.join(env_settings().workspace_dir, 'checkpoints', 'ltr', checkpoint)
    files = sorted(glob.glob(os.path.join(folder, '{}_ep*.pth.tar'.format(TRAINING_NET_TYPE))))
    if not files:
        raise FileNotFoundError('no {}_ep*.pth.tar checkpoint in {}'.format(TRAINING_NET_TYPE, folder))
    return os.path.abspath(files[-1])


def default_output_path() -> str:
    """``mkdnet.pth.tar`` in pytracking's (first) network folder."""
    from pytracking_plugins.network_files import network_folders, pytracking_local_file
    folders = network_folders()
    if not folders:
        raise RuntimeError('no network folder: set settings.network_path in {}, or give the output path '
                           '(--output)'.format(pytracking_local_file()))
    return os.path.join(folders[0], DEFAULT_NAME)


def student_from_checkpoint(checkpoint_path: str) -> nn.Module:
    """Rebuilds the student DiMPnet of a training checkpoint from its constructor and loads its weights (strictly:
    every weight of the student must be there). The checkpoint is read without running pickled code, and the
    constructor rebuilt from the ltr.models allow-list (:mod:`pytracking_plugins.network_files`)."""
    from pytracking_plugins.network_files import rebuild_constructor, unpickle_network_file
    state = unpickle_network_file(checkpoint_path)
    net_type = state.get('net_type') if isinstance(state, dict) else None
    if net_type != TRAINING_NET_TYPE:
        raise ValueError('{} is {}, not an MKDNet training checkpoint ({}){}'.format(
            checkpoint_path, 'a {} checkpoint'.format(net_type) if net_type else 'no ltr checkpoint',
            TRAINING_NET_TYPE, ': it is already a tracking network' if net_type and state.get('constructor') is not None else ''))
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


def export_student(checkpoint: str, output: Optional[str] = None) -> str:
    """Writes the student of ``checkpoint`` (see :func:`resolve_checkpoint`) as a tracking network; returns its
    path."""
    checkpoint_path = resolve_checkpoint(checkpoint)
    student = student_from_checkpoint(checkpoint_path)
    return save_tracking_network(student, output or default_output_path(), net_info=student.info)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='training checkpoint file, folder, or train setting "module/name"')
    parser.add_argument('--output', '-o', default=None,
                        help='output file (default: {} in pytracking\'s network folder)'.format(DEFAULT_NAME))
    args = parser.parse_args(argv)
    print('Wrote {}'.format(export_student(args.checkpoint, args.output)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
