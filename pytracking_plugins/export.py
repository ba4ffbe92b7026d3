"""``mkdnet-export``: MKDNet's student from a training checkpoint as a tracking network (``mkdnet.pth.tar``); with
``--onnx``, a tracking network's inference graphs as ONNX files for deployment.

    mkdnet-export CHECKPOINT [--output PATH]                          (or: python -m pytracking_plugins.export)
    mkdnet-export SOURCE --onnx [DIR] [--crop-size N] [--opset N]

CHECKPOINT is a training checkpoint, a folder of them (the latest is used) or a train setting ``module/name`` (its
latest checkpoint in the ltr workspace); the output defaults to pytracking's network folder. With ``--onnx``, SOURCE
is a tracking network file (a path, or a name in the network folder) or a checkpoint as above, whose student is
written first; the graphs and ``manifest.json`` go to DIR, after a check of onnxruntime against PyTorch.
"""
import argparse
import json
import os
import sys
from typing import Optional, Sequence

from ltr_plugins.export_mkdnet import export_student
from pytracking_plugins.network_folders import find_network_file, network_folders, pytracking_local_file

DEFAULT_NAME = 'mkdnet.pth.tar'
MINIATURE_INFO = 'miniature.json'   # pytracking_plugins.demo.tracking_parameters.INFO_FILE


def default_output_path() -> str:
    """``mkdnet.pth.tar`` in pytracking's (first) network folder."""
    folders = network_folders()
    if not folders:
        raise RuntimeError('no network folder: set settings.network_path in {}, or give the output path '
                           '(--output)'.format(pytracking_local_file()))
    return os.path.join(folders[0], DEFAULT_NAME)


def tracking_network(source: str, output: Optional[str]) -> str:
    """The tracking network file to export as ONNX: ``source`` itself when it is one (a path, or a name in the
    network folder), else the student of the training checkpoint ``source``, written to ``output`` first."""
    from ltr_plugins.network_files import MKDNET_TRAINING_NET_TYPE, unpickle_network_file
    path = os.path.expanduser(source)
    if not os.path.isfile(path) and not os.path.isabs(path) and network_folders():
        try:
            path = find_network_file(path)
        except FileNotFoundError:
            pass
    if os.path.isfile(path):
        state = unpickle_network_file(path)
        if not (isinstance(state, dict) and state.get('net_type') == MKDNET_TRAINING_NET_TYPE):
            if output is not None:
                raise ValueError('--output names the network file written from a training checkpoint; {} is already '
                                 'a tracking network'.format(path))
            return os.path.abspath(path)
    written = export_student(source, output or default_output_path())
    print('Wrote {}'.format(written))
    return written


def default_crop_size(network_file: str) -> int:
    """``image_sample_size`` of ``miniature.json`` beside the network file, else Super-DiMP's."""
    info = os.path.join(os.path.dirname(network_file), MINIATURE_INFO)
    if os.path.isfile(info):
        with open(info) as handle:
            size = json.load(handle).get('image_sample_size')
        if not isinstance(size, int) or size <= 0:
            raise ValueError('{}: image_sample_size must be a positive integer'.format(info))
        return size
    from pytracking.parameter.dimp import super_dimp
    return super_dimp.parameters().image_sample_size


def export_onnx_files(source: str, folder: Optional[str], output: Optional[str], crop_size: Optional[int],
                      opset: Optional[int]) -> str:
    """``mkdnet-export SOURCE --onnx [DIR]``: returns the ONNX folder written."""
    from pytracking_plugins.deploy.manifest import default_onnx_folder
    from pytracking_plugins.deploy.onnx_export import export_onnx
    network_file = tracking_network(source, output)
    folder = os.path.abspath(folder or default_onnx_folder(network_file))
    size = crop_size or default_crop_size(network_file)
    print('Exporting {} for {}x{} crops to {}'.format(network_file, size, size, folder))
    manifest = export_onnx(network_file, folder, (size, size), opset)
    print('Wrote {} (opset {}, manifest.json)'.format(folder, manifest['opset']))
    return folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='mkdnet-export', description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument('checkpoint', metavar='SOURCE',
                        help='training checkpoint file, folder, or train setting "module/name"; with --onnx also a '
                             'tracking network file')
    parser.add_argument('--output', '-o', default=None,
                        help='output file (default: {} in pytracking\'s network folder)'.format(DEFAULT_NAME))
    parser.add_argument('--onnx', nargs='?', const='', default=None, metavar='DIR',
                        help='write the ONNX graphs to DIR (default: <network name>_onnx beside the network file)')
    parser.add_argument('--crop-size', type=int, default=None, metavar='N',
                        help='with --onnx: crop side in pixels (default: miniature.json beside the network, else 352)')
    parser.add_argument('--opset', type=int, default=None, help="with --onnx: ONNX opset (default: the exporter's)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.onnx is None:
        if args.crop_size is not None or args.opset is not None:
            parser.error('--crop-size and --opset apply to --onnx only')
        print('Wrote {}'.format(export_student(args.checkpoint, args.output or default_output_path())))
        return 0
    if args.crop_size is not None and args.crop_size <= 0:
        parser.error('--crop-size must be positive')
    from ltr_plugins.network_files import NetworkFileError
    from pytracking_plugins.deploy.manifest import ManifestError
    from pytracking_plugins.deploy.onnx_export import ExportCheckFailed
    from pytracking_plugins.deploy.onnx_runtime import OnnxRuntimeMissing
    try:
        export_onnx_files(args.checkpoint, args.onnx or None, args.output, args.crop_size, args.opset)
    except (OnnxRuntimeMissing, ExportCheckFailed, ManifestError, NetworkFileError, FileNotFoundError,
            ValueError) as error:
        print('mkdnet-export: error: {}'.format(error), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
