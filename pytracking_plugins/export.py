"""``mkdnet-export``: MKDNet's student from a training checkpoint as a tracking network (``mkdnet.pth.tar``).

    mkdnet-export CHECKPOINT [--output PATH]        (or: python -m pytracking_plugins.export)

CHECKPOINT is a training checkpoint file (``MKDNetStudent_ep0050.pth.tar``), a folder of them (the latest is used),
or a train setting as ``module/name`` (``mkdnet/mkdnet``: the latest checkpoint of that setting in the ltr
workspace). The default output is ``mkdnet.pth.tar`` in pytracking's network folder (pytracking/evaluation/local.py).
"""
import argparse
import os
import sys
from typing import Optional, Sequence

from ltr_plugins.export_mkdnet import export_student
from pytracking_plugins.network_folders import network_folders, pytracking_local_file

DEFAULT_NAME = 'mkdnet.pth.tar'


def default_output_path() -> str:
    """``mkdnet.pth.tar`` in pytracking's (first) network folder."""
    folders = network_folders()
    if not folders:
        raise RuntimeError('no network folder: set settings.network_path in {}, or give the output path '
                           '(--output)'.format(pytracking_local_file()))
    return os.path.join(folders[0], DEFAULT_NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='mkdnet-export', description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='training checkpoint file, folder, or train setting "module/name"')
    parser.add_argument('--output', '-o', default=None,
                        help='output file (default: {} in pytracking\'s network folder)'.format(DEFAULT_NAME))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    print('Wrote {}'.format(export_student(args.checkpoint, args.output or default_output_path())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
