"""The ONNX export of a tracking network (mkdnet-export --onnx) and the tracker's onnxruntime backend.

The demo's networks of the ``test`` preset (trained here, with mkdnet-demo) are exported and tracked with both
backends, through the real pytracking: the boxes must agree within 0.01 px on every frame of the demo's test split
(window on and off), and run_tracker.py with ``miniature_mkdnet_onnx`` must score as ``miniature_mkdnet`` within
0.001. A small random network serves the checks of what the backend refuses. Tests that need onnxruntime (or onnx
for the export) are skipped, saying so, where the onnx extra is not installed (``./install.sh --with-onnx``).
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import PROJECT_ROOT, pytracking_settings, run_script

ONNX_EXTRA = ('onnx', 'onnxscript', 'onnxruntime')
MISSING = [name for name in ONNX_EXTRA if importlib.util.find_spec(name) is None]
needs_onnx = pytest.mark.skipif(bool(MISSING), reason='the onnx extra is not installed ({} missing): '
                                'install it with ./install.sh --with-onnx'.format(', '.join(MISSING)))

BOX_TOLERANCE = 0.01        # px, every frame
SCORE_TOLERANCE = 0.001
SMALL_CROP = 64
EVERY_FRAME_NORMAL = dict(target_not_found_threshold=-float('inf'), distractor_threshold=float('inf'),
                          hard_negative_threshold=float('inf'))


def export_command(*args: str, expect: int = 0) -> str:
    result = subprocess.run([sys.executable, '-m', 'pytracking_plugins.export', *args], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == expect, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def read_manifest(folder: str) -> dict:
    with open(os.path.join(folder, 'manifest.json')) as handle:
        return json.load(handle)


# -------------------------------------------------------------------------------------------- the demo's networks
@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """The demo of the ``test`` preset (teacher, MKDNet, baseline) and the export of its MKDNet student."""
    if MISSING:
        pytest.skip('the onnx extra is not installed ({} missing): install it with ./install.sh --with-onnx'.format(
            ', '.join(MISSING)))
    from pytracking_plugins.demo.experiment import Paths
    folder = str(tmp_path_factory.mktemp('demo'))
    result = subprocess.run([sys.executable, '-m', 'pytracking_plugins.demo', '--preset', 'test', '--folder', folder],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=2400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    paths = Paths(folder)
    network = os.path.join(paths.network_folder(0), 'miniature_mkdnet.pth.tar')
    return paths, network, export_command(network, '--onnx')


def track(parameter_name: str, overrides: dict, sequences):
    """Raw boxes (no rounding) of pytracking's ``Tracker.run_sequence`` with ``mkdnet/parameter_name`` per
    sequence."""
    from pytracking.evaluation import Tracker

    class Overridden(Tracker):
        def get_parameters(self):
            params = super().get_parameters()
            for key, value in overrides.items():
                setattr(params, key, value)
            return params

    tracker = Overridden('mkdnet', parameter_name)
    return {sequence.name: np.array(tracker.run_sequence(sequence)['target_bbox'], dtype=float)
            for sequence in sequences}


@needs_onnx
def test_export_of_the_demo_network_writes_checked_graphs_and_a_manifest(demo):
    paths, network, output = demo
    folder = os.path.join(paths.network_folder(0), 'miniature_mkdnet_onnx')
    manifest = read_manifest(folder)
    from pytracking_plugins.deploy.manifest import file_sha256
    assert manifest['network'] == {'file': 'miniature_mkdnet.pth.tar', 'sha256': file_sha256(network)}
    assert manifest['crop_size'] == [SMALL_CROP, SMALL_CROP]   # miniature.json beside the network
    assert manifest['opset'] >= 17
    backbone = manifest['graphs']['backbone']
    assert backbone['inputs'] == [{'name': 'image', 'shape': ['batch', 3, SMALL_CROP, SMALL_CROP]}]
    assert [o['name'] for o in backbone['outputs']] == ['layer2', 'layer3']
    for name, graph in manifest['graphs'].items():
        assert os.path.isfile(os.path.join(folder, graph['file'])), name
        assert all(entry['shape'][0] == 'batch' for entry in graph['inputs'] + graph['outputs']), name
    check = manifest['check']
    assert check['batch_sizes'] == [1, 3] and len(check['outputs']) == 7
    for name, entry in check['outputs'].items():
        assert entry['max_abs_difference'] <= entry['tolerance'], name
        assert '{} '.format(name) in output and 'max |difference|' in output
    assert 'FAILED' not in output and 'Wrote {}'.format(folder) in output


@needs_onnx
@pytest.mark.parametrize('window', ['window', 'whole map'])
def test_both_backends_track_the_demo_test_split_alike(demo, use_pytracking_settings, window):
    """Window on: the window's IoU features in PyTorch from onnxruntime's backbone features; off: the whole map's
    from the exported IoU-feature graph."""
    from pytracking_plugins.demo.experiment import Experiment
    from pytracking_plugins.demo.presets import PRESETS
    paths = demo[0]
    experiment = Experiment(paths.folder, PRESETS['test'], ('baseline', 'mkdnet'), 'mkdnet-demo')
    use_pytracking_settings(experiment.pytracking_settings(0))
    sequences = experiment.test_dataset().get_sequence_list()
    overrides = dict(iou_window_margin=0.05 if window == 'window' else None)
    expected = track('miniature_mkdnet', overrides, sequences)
    actual = track('miniature_mkdnet_onnx', overrides, sequences)
    differences = {name: float(np.abs(actual[name] - expected[name]).max()) for name in expected}
    print('largest box difference per sequence ({}): {}'.format(window, differences))
    assert all(len(actual[s.name]) == len(s.frames) for s in sequences)
    assert max(differences.values()) <= BOX_TOLERANCE, differences


@needs_onnx
def test_run_tracker_with_the_onnx_backend_scores_as_pytorch(demo, synthetic_latot, workspace):
    """run_tracker.py with miniature_mkdnet and miniature_mkdnet_onnx (the demo's network) exits 0, and the analysis
    gives the same scores within 0.001, the result files the same boxes within 0.01 px."""
    from pytracking_plugins.analysis import latot
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset
    paths = demo[0]
    settings = pytracking_settings(workspace, network_path=paths.network_folder(0), latot_path=synthetic_latot.root)
    sequence = synthetic_latot.tracked_sequence
    for parameter in ('miniature_mkdnet', 'miniature_mkdnet_onnx'):
        run_script('pytracking/run_tracker.py', ['mkdnet', parameter, '--dataset_name', 'latot_test', '--sequence',
                                                 sequence], pytracking=settings)
    results = [os.path.join(workspace, 'tracking_results', 'mkdnet', p, sequence + '.txt')
               for p in ('miniature_mkdnet', 'miniature_mkdnet_onnx')]
    boxes = [np.loadtxt(path, delimiter='\t') for path in results]
    assert boxes[0].shape == (synthetic_latot.tracked_frames, 4)
    assert np.abs(boxes[1] - boxes[0]).max() <= BOX_TOLERANCE + 1e-9
    dataset = [s for s in LaTOTDataset('test', root=synthetic_latot.root).get_sequence_list() if s.name == sequence]
    sources = [latot.folder_source(os.path.dirname(path), label) for path, label in zip(results, ('PyTorch', 'ORT'))]
    scores = latot.evaluate(sources, dataset, output_dir=os.path.join(workspace, 'scores'), verbose=False).scores()
    for metric in ('PR', 'NPR', 'SR'):
        assert scores['ORT'][metric] == pytest.approx(scores['PyTorch'][metric], abs=SCORE_TOLERANCE), metric


# ------------------------------------------------------------------------------------- the paper's size, refusals
def write_network(path: str, seed: int, backbone: str = 'resnet18') -> str:
    """A random Super-DiMP network file: ResNet-18 for 64-px crops, or the paper's ResNet-50."""
    from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network
    torch.manual_seed(seed)
    if backbone == 'resnet50':
        return save_tracking_network(build_super_dimp(backbone_pretrained=False), path)
    return save_tracking_network(build_super_dimp(backbone_pretrained=False, backbone='resnet18',
                                                  feature_sz=SMALL_CROP // 16, frozen_backbone_layers=()), path)


def short_sequence(synthetic_latot, frames: int = 5):
    from pytracking.evaluation.data import Sequence
    from ltr_plugins import latot_data
    name = synthetic_latot.tracked_sequence
    paths = latot_data.list_frames(synthetic_latot.root, name)[:frames]
    boxes = latot_data.read_sequence_annotation(synthetic_latot.root, name)[:frames]
    return Sequence(name, paths, 'latot', boxes)


@needs_onnx
def test_the_paper_size_network_exports_for_352_px_crops_and_tracks_alike(synthetic_latot, workspace,
                                                                          use_pytracking_settings, capsys):
    """mkdnet-export mkdnet.pth.tar --onnx (a name in the network folder): mkdnet_onnx/ beside it, Super-DiMP's crop;
    the parameter files mkdnet and mkdnet_onnx then track with the same boxes."""
    from pytracking_plugins import export
    settings = use_pytracking_settings(pytracking_settings(workspace))
    network = write_network(os.path.join(settings['network_path'], 'mkdnet.pth.tar'), seed=1, backbone='resnet50')
    assert export.main(['mkdnet.pth.tar', '--onnx']) == 0
    folder = os.path.join(settings['network_path'], 'mkdnet_onnx')
    assert 'Wrote {} (opset'.format(folder) in capsys.readouterr().out
    manifest = read_manifest(folder)
    assert manifest['crop_size'] == [352, 352] and manifest['network']['file'] == os.path.basename(network)
    shapes = {o['name']: o['shape'] for o in manifest['graphs']['backbone']['outputs']}
    assert shapes == {'layer2': ['batch', 512, 44, 44], 'layer3': ['batch', 1024, 22, 22]}
    overrides = dict(EVERY_FRAME_NORMAL, use_augmentation=False, seed=0)
    sequences = [short_sequence(synthetic_latot)]
    expected = track('mkdnet', overrides, sequences)
    actual = track('mkdnet_onnx', overrides, sequences)
    name = sequences[0].name
    print('largest box difference, 352 px: {:.2g} px'.format(float(np.abs(actual[name] - expected[name]).max())))
    assert np.abs(actual[name] - expected[name]).max() <= BOX_TOLERANCE


@pytest.fixture(scope='module')
def small_export(tmp_path_factory):
    """A random ResNet-18 network for 64-px crops in a network folder, and its ONNX export beside it."""
    if MISSING:
        pytest.skip('the onnx extra is not installed ({} missing): install it with ./install.sh --with-onnx'.format(
            ', '.join(MISSING)))
    from pytracking_plugins.deploy.manifest import default_onnx_folder
    from pytracking_plugins.deploy.onnx_export import export_onnx
    network = write_network(str(tmp_path_factory.mktemp('small') / 'small.pth.tar'), seed=2)
    export_onnx(network, default_onnx_folder(network), (SMALL_CROP, SMALL_CROP), log=lambda line: None)
    return network


def small_tracker(network: str, **overrides):
    """The MKDNet tracker with mkdnet_onnx's parameters on ``network``, for 64-px crops."""
    from pytracking.parameter.mkdnet import mkdnet_onnx
    from pytracking.tracker.mkdnet import get_tracker_class
    params = mkdnet_onnx.parameters(use_gpu=False, net_path=network)
    params.image_sample_size = SMALL_CROP
    params.use_augmentation = False
    for key, value in overrides.items():
        setattr(params, key, value)
    return get_tracker_class()(params)


def initialize(tracker, synthetic_latot) -> None:
    import cv2
    sequence = short_sequence(synthetic_latot, 1)
    tracker.initialize(cv2.cvtColor(cv2.imread(sequence.frames[0]), cv2.COLOR_BGR2RGB),
                       {'init_bbox': list(map(float, sequence.ground_truth_rect[0]))})


@needs_onnx
def test_graphs_of_another_network_are_refused(small_export, synthetic_latot, tmp_path):
    import shutil
    other = write_network(str(tmp_path / 'other.pth.tar'), seed=3)
    shutil.copytree(small_export[:-len('.pth.tar')] + '_onnx', str(tmp_path / 'other_onnx'))
    with pytest.raises(ValueError, match='holds graphs of another network than .*other.pth.tar.*mkdnet-export'):
        initialize(small_tracker(other), synthetic_latot)


@needs_onnx
def test_a_changed_graph_file_is_refused(small_export, synthetic_latot, tmp_path):
    import shutil
    folder = str(tmp_path / 'changed_onnx')
    shutil.copytree(small_export[:-len('.pth.tar')] + '_onnx', folder)
    with open(os.path.join(folder, 'iou_features.onnx'), 'ab') as handle:
        handle.write(b'\0')
    with pytest.raises(ValueError, match='iou_features.onnx is not the file its manifest describes'):
        initialize(small_tracker(small_export, onnx_path=folder), synthetic_latot)


@needs_onnx
def test_another_crop_size_is_named_with_the_export_that_fits(small_export, synthetic_latot):
    with pytest.raises(ValueError, match='exported for 64x64 crops, the tracker samples 80x80.*--crop-size 80'):
        initialize(small_tracker(small_export, image_sample_size=80), synthetic_latot)


@needs_onnx
def test_a_missing_onnx_folder_says_how_to_export_it(small_export, synthetic_latot, tmp_path):
    missing = str(tmp_path / 'nowhere_onnx')
    with pytest.raises(FileNotFoundError, match='ONNX folder {} does not exist. Export it with `mkdnet-export {} '
                                                '--onnx'.format(missing, small_export)):
        initialize(small_tracker(small_export, onnx_path=missing), synthetic_latot)


def test_an_unknown_backend_is_refused(tmp_path, synthetic_latot):
    network = write_network(str(tmp_path / 'net.pth.tar'), seed=2)
    with pytest.raises(ValueError, match=r"params.backend must be one of \('pytorch', 'onnxruntime'\), not 'tensorrt'"):
        initialize(small_tracker(network, backend='tensorrt'), synthetic_latot)


def test_without_onnxruntime_tracker_and_export_say_what_to_install(tmp_path, synthetic_latot, monkeypatch, capsys):
    from pytracking_plugins import export
    from pytracking_plugins.deploy.onnx_runtime import OnnxRuntimeMissing
    network = write_network(str(tmp_path / 'net.pth.tar'), seed=2)
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)   # import onnxruntime raises ImportError
    with pytest.raises(OnnxRuntimeMissing, match="params.backend = 'onnxruntime' needs the Python package "
                                                 "onnxruntime, which is not installed .*./install.sh --with-onnx"):
        initialize(small_tracker(network), synthetic_latot)
    assert export.main([network, '--onnx']) == 1
    error = capsys.readouterr().err
    assert error.startswith('mkdnet-export: error: mkdnet-export --onnx') and './install.sh --with-onnx' in error
    assert not os.path.exists(str(tmp_path / 'net_onnx'))


@needs_onnx
def test_a_training_checkpoint_exports_its_student_then_its_graphs(tmp_path, capsys):
    from ltr_plugins.models.super_dimp import build_super_dimp
    from pytracking_plugins import export
    from pytracking_plugins.deploy.manifest import file_sha256
    torch.manual_seed(4)
    net = build_super_dimp(backbone_pretrained=False, backbone='resnet18', feature_sz=SMALL_CROP // 16,
                           frozen_backbone_layers=())
    checkpoint = str(tmp_path / 'MKDNetStudent_ep0001.pth.tar')
    torch.save({'epoch': 1, 'net_type': 'MKDNetStudent', 'constructor': None,
                'net': {'net.' + key: value for key, value in net.state_dict().items()},
                'net_info': {'student_constructor': net.constructor}}, checkpoint)
    student = str(tmp_path / 'student.pth.tar')
    assert export.main([checkpoint, '--output', student, '--onnx', '--crop-size', str(SMALL_CROP)]) == 0
    assert 'Wrote {}\n'.format(student) in capsys.readouterr().out
    manifest = read_manifest(str(tmp_path / 'student_onnx'))
    assert manifest['network'] == {'file': 'student.pth.tar', 'sha256': file_sha256(student)}
    assert export.main([student, '--output', str(tmp_path / 'again.pth.tar'), '--onnx']) == 1
    assert '--output names the network file written from a training checkpoint' in capsys.readouterr().err
