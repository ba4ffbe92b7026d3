"""A DiMP tracking network's inference graphs (:mod:`.graphs`) written as ONNX and checked against PyTorch: the
work of ``mkdnet-export --onnx``.

Each graph is exported with PyTorch's exporter (``torch.onnx.export``, ``dynamo=True``: ``torch.export`` and
onnxscript), with a dynamic batch axis and the crop size fixed. Then every graph runs in onnxruntime and in PyTorch
on the same inputs at batch sizes :data:`CHECK_BATCHES` (random crops, the PyTorch backbone's features of them,
random boxes), and every output must agree within :data:`RELATIVE_TOLERANCE` of its largest magnitude plus
:data:`ABSOLUTE_TOLERANCE`; the differences are printed and recorded in the manifest, which is written last.
"""
import contextlib
import io
import os
import warnings
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch

from ltr_plugins.common.atomic_files import atomic_path
from pytracking_plugins.deploy.graphs import Graph, example_inputs, inference_graphs
from pytracking_plugins.deploy.manifest import (FORMAT, MANIFEST_NAME, VERSION, file_sha256, write_manifest)
from pytracking_plugins.deploy.onnx_runtime import create_session, import_onnx_module, run_session

CHECK_BATCHES = (1, 3)
EXPORT_BATCH = 2          # torch.export specialises an axis of size 0 or 1: an example batch of 2 keeps it dynamic
MAX_BATCH = 1024
RELATIVE_TOLERANCE = 1e-4
ABSOLUTE_TOLERANCE = 1e-6


class ExportCheckFailed(RuntimeError):
    """onnxruntime's outputs differ from PyTorch's beyond the tolerance; no manifest was written."""


def export_graph(graph: Graph, inputs: Dict[str, torch.Tensor], path: str, opset: int = None) -> None:
    """Writes ``graph`` as the ONNX file ``path`` (one file, weights inside), batch dynamic."""
    args = tuple(inputs[name] for name in graph.inputs)
    batch = torch.export.Dim('batch', min=1, max=MAX_BATCH)
    exporter_output = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(exporter_output):
        # One batch axis shared by all inputs: the exporter notes that it names it once.
        warnings.filterwarnings('ignore', message='# The axis name')
        program = torch.onnx.export(graph.module, args, dynamo=True, external_data=False, verbose=False,
                                    input_names=list(graph.inputs), output_names=list(graph.outputs),
                                    dynamic_shapes=tuple({0: batch} for _ in args), opset_version=opset)
    with atomic_path(path) as temporary:
        program.save(temporary, external_data=False)


def _shapes(values) -> List[Dict[str, Any]]:
    """Names and shapes of an ONNX graph's inputs or outputs; a dynamic axis by its name."""
    return [{'name': value.name, 'shape': [dim.dim_param or dim.dim_value
                                           for dim in value.type.tensor_type.shape.dim]} for value in values]


def graph_record(graph: Graph, path: str) -> Dict[str, Any]:
    """The manifest's entry of an exported graph: file, hash, inputs and outputs as the ONNX file declares them."""
    onnx = import_onnx_module('onnx', 'mkdnet-export --onnx')
    model = onnx.load(path)
    onnx.checker.check_model(model)
    record = {'file': os.path.basename(path), 'sha256': file_sha256(path), 'inputs': _shapes(model.graph.input),
              'outputs': _shapes(model.graph.output)}
    names = ([v['name'] for v in record['inputs']], [v['name'] for v in record['outputs']])
    if names != (list(graph.inputs), list(graph.outputs)):
        raise RuntimeError('the exporter named the inputs and outputs of {} {}, not {}'.format(
            path, names, (list(graph.inputs), list(graph.outputs))))
    record['opset'] = next(entry.version for entry in model.opset_import if entry.domain in ('', 'ai.onnx'))
    return record


def check_graphs(graphs: Sequence[Graph], paths: Dict[str, str], crop_size: Tuple[int, int],
                 log: Callable[[str], None]) -> Dict[str, Any]:
    """Runs every graph in onnxruntime and PyTorch at batch sizes :data:`CHECK_BATCHES`; returns the largest
    differences per output. ExportCheckFailed when one exceeds the tolerance."""
    results, failures = {}, []
    sessions = {graph.name: create_session(paths[graph.name]) for graph in graphs}
    for batch in CHECK_BATCHES:
        inputs = example_inputs(graphs, crop_size, batch, seed=batch)
        for graph in graphs:
            args = [inputs[name] for name in graph.inputs]
            with torch.no_grad():
                expected = graph.reference(*[arg.clone() for arg in args])
            expected = expected if isinstance(expected, tuple) else (expected,)
            actual = run_session(sessions[graph.name], args)
            for name, want, got in zip(graph.outputs, expected, actual):
                entry = results.setdefault('{}/{}'.format(graph.name, name), {
                    'max_abs_difference': 0.0, 'max_abs_value': 0.0})
                entry['max_abs_difference'] = max(entry['max_abs_difference'], float((got - want).abs().max()))
                entry['max_abs_value'] = max(entry['max_abs_value'], float(want.abs().max()))
    log('onnxruntime against PyTorch (batch sizes {}; tolerance {:.0e} of the largest |PyTorch| value + {:.0e}):'
        .format(', '.join(map(str, CHECK_BATCHES)), RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE))
    for output, entry in results.items():
        tolerance = RELATIVE_TOLERANCE * entry['max_abs_value'] + ABSOLUTE_TOLERANCE
        entry['tolerance'] = tolerance
        relative = entry['max_abs_difference'] / entry['max_abs_value'] if entry['max_abs_value'] else 0.0
        ok = entry['max_abs_difference'] <= tolerance
        log('  {:<45} max |difference| {:.2e}  max |value| {:.2e}  ratio {:.1e}  tolerance {:.2e}  {}'.format(
            output, entry['max_abs_difference'], entry['max_abs_value'], relative, tolerance,
            'ok' if ok else 'FAILED'))
        if not ok:
            failures.append(output)
    if failures:
        raise ExportCheckFailed('onnxruntime differs from PyTorch beyond the tolerance in {}; no manifest written'
                                .format(', '.join(failures)))
    return {'batch_sizes': list(CHECK_BATCHES), 'relative_tolerance': RELATIVE_TOLERANCE,
            'absolute_tolerance': ABSOLUTE_TOLERANCE, 'outputs': results}


def export_onnx(network_file: str, folder: str, crop_size: Tuple[int, int], opset: int = None,
                log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Exports the inference graphs of the tracking network ``network_file`` for crops of ``crop_size`` (height,
    width) into ``folder`` (created; a previous export's manifest is removed first), checks them, writes the manifest;
    returns it."""
    onnxruntime = import_onnx_module('onnxruntime', 'mkdnet-export --onnx (its check)')
    onnx = import_onnx_module('onnx', 'mkdnet-export --onnx')
    onnxscript = import_onnx_module('onnxscript', 'mkdnet-export --onnx (PyTorch\'s exporter)')
    from pytracking_plugins.features.net_wrappers import MKDNetNetwork
    wrapper = MKDNetNetwork(os.path.abspath(network_file), use_gpu=False)
    wrapper.initialize()
    graphs = inference_graphs(wrapper)
    crop_size = tuple(int(v) for v in crop_size)
    os.makedirs(folder, exist_ok=True)
    if os.path.exists(os.path.join(folder, MANIFEST_NAME)):
        os.remove(os.path.join(folder, MANIFEST_NAME))
    inputs = example_inputs(graphs, crop_size, EXPORT_BATCH, seed=0)
    paths, records = {}, {}
    for graph in graphs:
        paths[graph.name] = os.path.join(folder, graph.name + '.onnx')
        export_graph(graph, inputs, paths[graph.name], opset)
        records[graph.name] = graph_record(graph, paths[graph.name])
        log('{}: {} -> {}'.format(paths[graph.name], *(', '.join('{} {}'.format(v['name'], v['shape']) for v in
                                                                 records[graph.name][side])
                                                       for side in ('inputs', 'outputs'))))
    check = check_graphs(graphs, paths, crop_size, log)
    check['onnxruntime'] = onnxruntime.__version__
    manifest = {
        'format': FORMAT, 'version': VERSION,
        'network': {'file': os.path.basename(network_file), 'sha256': file_sha256(network_file)},
        'crop_size': list(crop_size),
        'opset': records['backbone']['opset'],
        'preprocessing': {'image_format': wrapper.image_format, 'input_range': [0, 255],
                          'mean': wrapper._mean.flatten().tolist(), 'std': wrapper._std.flatten().tolist()},
        'layers': {'classification': list(wrapper.net.classification_layer),
                   'bb_regressor': list(wrapper.net.bb_regressor_layer)},
        'graphs': records,
        'exported_with': {'torch': torch.__version__, 'onnx': onnx.__version__, 'onnxscript': onnxscript.__version__},
        'check': check,
    }
    write_manifest(folder, manifest)
    return manifest
