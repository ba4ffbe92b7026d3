"""The manifest of an ONNX export: ``manifest.json`` beside the graphs, plain JSON (nothing in it runs when read).

It records what the graphs were exported from and for: the network file (name and SHA-256: the tracker's online
classifier and box refinement run that file's weights in PyTorch, so the graphs must come from the same file), the
crop size, the opset, the preprocessing baked into the backbone, every graph's file (name and SHA-256) with its
inputs and outputs (names and shapes, ``"batch"`` for the dynamic axis), the versions that exported it, and the
check of onnxruntime against PyTorch. The export writes it last, after the check: a folder without it is no export.
"""
import hashlib
import json
import os
from typing import Any, Dict

from ltr_plugins.common.atomic_files import write_text
from pytracking_plugins.deploy.graphs import GRAPH_NAMES

MANIFEST_NAME = 'manifest.json'
FORMAT = 'pytracking-mkdnet-onnx'
VERSION = 1
NETWORK_SUFFIXES = ('.pth.tar', '.pth', '.tar')


class ManifestError(ValueError):
    """An ONNX folder whose manifest is missing, unreadable or does not describe its files."""


def default_onnx_folder(network_file: str) -> str:
    """The ONNX folder of a network file: its name without ``.pth.tar`` and with ``_onnx``, beside it
    (``mkdnet.pth.tar`` -> ``mkdnet_onnx``). ``mkdnet-export --onnx`` writes there by default, and the parameter files
    of the onnxruntime backend read there."""
    folder, name = os.path.split(network_file)
    for suffix in NETWORK_SUFFIXES:
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    return os.path.join(folder, name + '_onnx')


def file_sha256(path: str) -> str:
    with open(path, 'rb') as handle:
        return hashlib.file_digest(handle, 'sha256').hexdigest()


def write_manifest(folder: str, manifest: Dict[str, Any]) -> str:
    """Writes ``manifest`` (plain values) as the folder's manifest, atomically; returns its path."""
    return write_text(os.path.join(folder, MANIFEST_NAME), json.dumps(manifest, indent=2) + '\n')


def _require(condition: bool, path: str, what: str) -> None:
    if not condition:
        raise ManifestError('{}: {}; export again with mkdnet-export --onnx'.format(path, what))


def read_manifest(folder: str) -> Dict[str, Any]:
    """The manifest of the ONNX folder ``folder``, checked: this format and version, every graph named with a file
    in the folder and its inputs and outputs, the network's hash, the crop size. ManifestError names what is
    wrong."""
    path = os.path.join(folder, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise ManifestError('{} not found: {} is not an ONNX export of mkdnet-export --onnx (or the export did not '
                            'finish)'.format(path, folder))
    try:
        with open(path, encoding='utf-8') as handle:
            manifest = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError('{} is not readable JSON: {}'.format(path, error)) from None
    _require(isinstance(manifest, dict) and manifest.get('format') == FORMAT, path,
             'not a manifest of format {!r}'.format(FORMAT))
    _require(manifest.get('version') == VERSION, path, 'manifest version {!r}, this plugin reads {}'.format(
        manifest.get('version'), VERSION))
    network = manifest.get('network')
    _require(isinstance(network, dict) and isinstance(network.get('sha256'), str), path, 'no network hash')
    crop = manifest.get('crop_size')
    _require(isinstance(crop, list) and len(crop) == 2 and all(isinstance(v, int) and v > 0 for v in crop), path,
             'crop_size must be [height, width]')
    graphs = manifest.get('graphs')
    _require(isinstance(graphs, dict) and sorted(graphs) == sorted(GRAPH_NAMES), path,
             'the graphs must be {}'.format(', '.join(GRAPH_NAMES)))
    for name, graph in graphs.items():
        file_name = graph.get('file') if isinstance(graph, dict) else None
        _require(isinstance(file_name, str) and file_name == os.path.basename(file_name) and file_name, path,
                 'graph {!r} must name a file in its folder'.format(name))
        _require(os.path.isfile(os.path.join(folder, file_name)), path, 'graph {!r}: {} is missing'.format(
            name, os.path.join(folder, file_name)))
        _require(isinstance(graph.get('sha256'), str), path, 'graph {!r} has no hash'.format(name))
        for side in ('inputs', 'outputs'):
            _require(isinstance(graph.get(side), list) and all(
                isinstance(entry, dict) and isinstance(entry.get('name'), str) for entry in graph[side]), path,
                'graph {!r} must list its {}'.format(name, side))
    return manifest
