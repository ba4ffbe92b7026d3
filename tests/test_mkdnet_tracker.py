"""The MKDNet tracker: parameter files, network files (the student and the authors' release format), and
pytracking's entry points (run_tracker, run_video, run_webcam, run_experiment) on synthetic LaTOT data, on the CPU.

Networks are randomly initialised Super-DiMP networks: tracking quality is not the point here, the plumbing is.
"""
import collections
import json
import os
import pickle
import sys
import textwrap

import numpy as np
import pytest
import torch

from conftest import pytracking_root, pytracking_settings, run_script

STUDENT_SEED = 1


# --------------------------------------------------------------------------------------------------- helpers
def tracked_boxes(path: str) -> np.ndarray:
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:   # sub-pixel results: every value written with two decimals
        assert all(len(value.split('.')[1]) == 2 for value in line.split('\t')), line
    return np.loadtxt(path, delimiter='\t', ndmin=2)


def teacher_and_discriminators(student_state):
    """The rest of a release file: the teacher (other values than the student's) and the two discriminators."""
    extra = collections.OrderedDict()
    for key, value in student_state.items():
        head, rest = key.split('.', 1)
        extra['{}_t.{}'.format(head, rest)] = value + 1 if value.is_floating_point() else value.clone()
    torch.manual_seed(2)
    for name, in_features in (('feat_D1', 256 * 5 * 5), ('feat_D2', 256 * 3 * 3)):
        discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_features, 256),
                                            torch.nn.LeakyReLU(0.2), torch.nn.Linear(256, 256),
                                            torch.nn.LeakyReLU(0.2), torch.nn.Linear(256, 1))
        for key, value in discriminator.state_dict().items():
            extra['{}.{}'.format(name, key)] = value
    return extra


FORK_MODULE = 'mkdnet_fork_probe'
FORK_SOURCE = '''
"""Stands in for the authors' fork: importing it leaves a marker file next to it."""
import os
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'imported.marker'), 'a').close()


class NetConstructor:
    def __init__(self, fun_name, fun_module, args, kwds):
        self.fun_name, self.fun_module, self.args, self.kwds = fun_name, fun_module, args, kwds


class Settings:
    def __init__(self):
        self.batch_size, self.print_interval = 20, 1


class AverageMeter:
    def __init__(self):
        self.avg, self.count = 0.5, 3
'''


class ForkProbe:
    """A module the release file's pickled objects come from; it exists only while a file is written."""

    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, FORK_MODULE + '.py'), 'w') as f:
            f.write(FORK_SOURCE)
        self.marker = os.path.join(folder, 'imported.marker')

    def save(self, obj_from_module, path: str, legacy: bool = True) -> str:
        """``obj_from_module(module)`` builds the checkpoint; saved as PyTorch 1.4 wrote (legacy) or zip."""
        sys.path.insert(0, self.folder)
        try:
            module = __import__(FORK_MODULE)
            torch.save(obj_from_module(module), path, _use_new_zipfile_serialization=not legacy)
        finally:
            sys.path.remove(self.folder)
            sys.modules.pop(FORK_MODULE, None)
            if os.path.exists(self.marker):
                os.remove(self.marker)
        return path

    @property
    def was_imported(self) -> bool:
        return os.path.exists(self.marker) or FORK_MODULE in sys.modules


def ltr_checkpoint(state_dict):
    """A checkpoint shaped like ltr's trainer writes them, with objects of the fork's classes."""
    def build(fork):
        return {'epoch': 50, 'actor_type': 'MKDActor', 'net_type': 'DiMPnet', 'net': state_dict, 'net_info': None,
                'constructor': fork.NetConstructor('dimpnet50', FORK_MODULE, (), {'filter_size': 4}),
                'optimizer': {'state': {}, 'param_groups': [{'lr': 5e-5, 'params': [0, 1]}]},
                'stats': collections.OrderedDict(train=collections.OrderedDict(Loss=fork.AverageMeter())),
                'settings': fork.Settings(), 'seen': {1, 2}}
    return build


class TinyStudent(torch.nn.Module):
    """A network with the student's three top-level modules, for fast checks of the file handling."""

    def __init__(self):
        super().__init__()
        self.feature_extractor = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        self.classifier = torch.nn.Linear(4, 2)
        self.bb_regressor = torch.nn.Linear(4, 1)


@pytest.fixture(scope='module')
def student():
    """The state dict of a randomly initialised Super-DiMP network: the student in every file below."""
    from ltr_plugins.models.super_dimp import build_super_dimp
    torch.manual_seed(STUDENT_SEED)
    return build_super_dimp(backbone_pretrained=False).state_dict()


@pytest.fixture(scope='module')
def fork(tmp_path_factory):
    return ForkProbe(str(tmp_path_factory.mktemp('fork')))


@pytest.fixture(scope='module')
def release_file(student, fork, tmp_path_factory):
    """An MKDNet release file: teacher, student and discriminators in one state dict, legacy format."""
    state = collections.OrderedDict(student)
    state.update(teacher_and_discriminators(student))
    path = str(tmp_path_factory.mktemp('release') / 'mkdnet_release.pth.tar')
    return fork.save(ltr_checkpoint(state), path)


@pytest.fixture
def pytracking_env(workspace, use_pytracking_settings):
    """pytracking's local settings for in-process code: networks and results under ``workspace``."""
    values = use_pytracking_settings(pytracking_settings(workspace))
    os.makedirs(values['network_path'], exist_ok=True)
    return values


def write_student_network(path: str) -> str:
    from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network
    torch.manual_seed(STUDENT_SEED)
    return save_tracking_network(build_super_dimp(backbone_pretrained=False), path)


# A driver for pytracking's GUI scripts (run_video.py, run_webcam.py) without a display: OpenCV's window functions
# are stubbed, the webcam is a video file, the first key press resumes a paused video and, for the webcam, two
# clicks select the target. It counts DiMP.track calls and prints them.
GUI_DRIVER = '''
import json, os, runpy, sys
import cv2
spec = json.loads(os.environ['MKDNET_GUI_SPEC'])
state = {'callback': None, 'keys': 0}
record = {'tracked_frames': 0, 'boxes': []}
for name in ('namedWindow', 'resizeWindow', 'imshow', 'destroyAllWindows'):
    setattr(cv2, name, lambda *args, **kwargs: None)
def set_mouse_callback(window, callback, *args):
    state['callback'] = callback
def wait_key(delay=0):
    state['keys'] += 1
    if state['keys'] == 1 and spec['select'] is not None:
        x, y, w, h = spec['select']
        state['callback'](cv2.EVENT_LBUTTONDOWN, x, y, 0, None)
        state['callback'](cv2.EVENT_LBUTTONDOWN, x + w, y + h, 0, None)
    return 32 if state['keys'] == 1 and spec['select'] is None else -1
cv2.setMouseCallback, cv2.waitKey = set_mouse_callback, wait_key
if spec['camera'] is not None:
    video_capture = cv2.VideoCapture
    cv2.VideoCapture = lambda source, *args: video_capture(spec['camera'] if source == 0 else source, *args)
from pytracking.tracker.dimp import DiMP
dimp_track = DiMP.track
def track(self, image, info=None):
    out = dimp_track(self, image, info)
    record['tracked_frames'] += 1
    record['boxes'].append(out['target_bbox'])
    return out
DiMP.track = track
sys.argv = [spec['script']] + sys.argv[1:]
runpy.run_path(spec['script'], run_name='__main__')
print('GUI-DRIVER-RECORD ' + json.dumps(record))
'''

# A driver for run_experiment.py with an experiment module from a folder of the test (pytracking only looks in
# pytracking/experiments/).
EXPERIMENT_DRIVER = '''
import os, runpy, sys
import pytracking.experiments
pytracking.experiments.__path__.append(os.environ['MKDNET_EXPERIMENTS'])
script = os.path.join(os.environ['MKDNET_PYTRACKING'], 'pytracking', 'run_experiment.py')
sys.argv = [script] + sys.argv[1:]
runpy.run_path(script, run_name='__main__')
'''


def run_driver(folder: str, name: str, source: str, args, settings, env):
    """Runs ``source`` as the script ``<folder>/<name>.py`` through conftest's run_script (given an absolute path,
    which its os.path.join keeps), with ``env`` added to the environment."""
    path = os.path.join(folder, name + '.py')
    with open(path, 'w') as f:
        f.write(source)
    previous = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        return run_script(path, list(args), pytracking=settings)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_video(path: str, frame_paths) -> str:
    import cv2
    first = cv2.imread(frame_paths[0])
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 30, (first.shape[1], first.shape[0]))
    assert writer.isOpened(), 'OpenCV cannot write ' + path
    for frame_path in frame_paths:
        writer.write(cv2.imread(frame_path))
    writer.release()
    capture = cv2.VideoCapture(path)
    assert capture.isOpened() and capture.read()[0], 'OpenCV cannot read back ' + path
    capture.release()
    return path


# ------------------------------------------------------------------------------------------- tracker, parameters
# Every frame takes the regular path (localisation, IoU-net refinement, model update) even with random weights.
# Fewer initial samples keep it quick; both trackers get the same parameters.
EVERY_FRAME_NORMAL = dict(target_not_found_threshold=-float('inf'), distractor_threshold=float('inf'),
                          hard_negative_threshold=float('inf'), use_augmentation=False)
TRACKED_FRAMES = 4


def _track(tracker_class, synthetic_latot, **overrides):
    """Boxes of ``tracker_class`` with the ``mkdnet`` parameters (on the CPU) over a synthetic sequence, and the
    tracker."""
    import cv2
    from pytracking.parameter.mkdnet import mkdnet
    from ltr_plugins import latot_data
    params = mkdnet.parameters(use_gpu=False)
    for key, value in overrides.items():
        setattr(params, key, value)
    tracker = tracker_class(params)
    sequence = synthetic_latot.tracked_sequence
    frames = [cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
              for path in latot_data.list_frames(synthetic_latot.root, sequence)[:TRACKED_FRAMES + 1]]
    first_box = synthetic_latot.first_box(sequence)
    torch.manual_seed(0)   # the same augmentations and refinement jitter for both trackers
    tracker.initialize(frames[0], {'init_bbox': list(map(float, first_box))})
    boxes = [tracker.track(frame)['target_bbox'] for frame in frames[1:]]
    return np.array(boxes, dtype=float), tracker


def test_mkdnet_tracks_as_dimp_does(synthetic_latot, pytracking_env):
    """The tracker class pytracking finds for ``mkdnet`` is a DiMP, and tracks with DiMP's boxes to float rounding,
    refining them in the window (tests/test_iou_window.py: exactly DiMP's with the window off)."""
    from pytracking.tracker.dimp import DiMP
    from pytracking.tracker.mkdnet import get_tracker_class
    tracker_class = get_tracker_class()
    assert issubclass(tracker_class, DiMP)
    write_student_network(os.path.join(pytracking_env['network_path'], 'mkdnet.pth.tar'))
    stock, _ = _track(DiMP, synthetic_latot, **EVERY_FRAME_NORMAL)
    windowed, tracker = _track(tracker_class, synthetic_latot, **EVERY_FRAME_NORMAL)
    assert stock.shape == (TRACKED_FRAMES, 4)
    assert (tracker.iou_window_refinements, tracker.iou_window_redone) == (TRACKED_FRAMES, 0)
    np.testing.assert_allclose(windowed, stock, rtol=0, atol=1e-2)


def _param_values(params):
    return {key: value for key, value in vars(params).items() if key not in ('net', 'use_gpu')}


def test_mkdnet_parameters_are_super_dimps_with_the_student_network():
    from pytracking.parameter.dimp import super_dimp
    from pytracking.parameter.mkdnet import mkdnet
    from pytracking_plugins.features.net_wrappers import MKDNetNetwork

    params = mkdnet.parameters()
    assert _param_values(params) == _param_values(super_dimp.parameters())
    assert params.net_opt_iter == 10 and params.train_skipping == 20 and params.use_augmentation
    assert isinstance(params.net, MKDNetNetwork)
    assert (params.net.net_path, params.net.checkpoint_format, params.net.net) == ('mkdnet.pth.tar', 'network', None)


def test_mkdnet_release_parameters_differ_from_super_dimp_in_the_optimiser_iterations_only():
    from pytracking.parameter.dimp import super_dimp
    from pytracking.parameter.mkdnet import mkdnet_release

    params, stock = _param_values(mkdnet_release.parameters()), _param_values(super_dimp.parameters())
    changed = {key: (stock.get(key), value) for key, value in params.items() if stock.get(key) != value}
    assert changed == {'net_opt_iter': (10, 25), 'net_opt_update_iter': (2, 3), 'net_opt_hn_iter': (1, 3)}
    assert set(params) == set(stock)
    net = mkdnet_release.parameters().net
    assert (net.net_path, net.checkpoint_format) == ('mkdnet_release.pth.tar', 'release')


@pytest.mark.parametrize('parameter_name', ['mkdnet', 'mkdnet_release'])
def test_use_gpu_follows_the_machine_unless_set(parameter_name, monkeypatch):
    import importlib
    module = importlib.import_module('pytracking.parameter.mkdnet.' + parameter_name)
    for available in (False, True):
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: available)
        params = module.parameters()
        assert params.use_gpu is available and params.net.use_gpu is available
        for chosen in (False, True):
            params = module.parameters(use_gpu=chosen)
            assert params.use_gpu is chosen and params.net.use_gpu is chosen


def test_network_wrapper_asked_for_cuda_without_one_names_the_file_and_the_fix(pytracking_env, monkeypatch):
    from ltr_plugins import release_checkpoint
    from pytracking_plugins.features.net_wrappers import MKDNetNetwork
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    path = os.path.join(pytracking_env['network_path'], 'tiny.pth.tar')
    torch.save({'net': TinyStudent().state_dict()}, path)
    load = release_checkpoint.load_release_student
    monkeypatch.setattr(release_checkpoint, 'load_release_student', lambda p: load(p, net=TinyStudent()))
    wrapper = MKDNetNetwork(path, use_gpu=True, checkpoint_format='release')
    with pytest.raises(RuntimeError) as error:
        wrapper.initialize()
    assert str(error.value) == ('{}: use_gpu=True, but PyTorch sees no CUDA device; build the parameters with '
                                'use_gpu=None (CUDA when the machine has it) or use_gpu=False'.format(path))


# ------------------------------------------------------------------------------------------------ network files
@pytest.mark.parametrize('parameter_name, file_name, advice', [
    ('mkdnet', 'mkdnet.pth.tar', 'run_training.py mkdnet mkdnet'),
    ('mkdnet_release', 'mkdnet_release.pth.tar', 'released by the paper'),
])
def test_missing_network_file_says_where_it_looked_and_how_to_get_it(parameter_name, file_name, advice,
                                                                      pytracking_env):
    import importlib
    params = importlib.import_module('pytracking.parameter.mkdnet.' + parameter_name).parameters(use_gpu=False)
    with pytest.raises(FileNotFoundError) as error:
        params.net.initialize()
    message = str(error.value)
    assert file_name in message and advice in message
    assert os.path.join(os.path.abspath(pytracking_env['network_path']), file_name) in message
    assert 'settings.network_path' in message


def test_network_file_found_in_any_of_several_network_folders(workspace, use_pytracking_settings):
    from pytracking_plugins.features.net_wrappers import find_network_file
    first, second = os.path.join(workspace, 'a'), os.path.join(workspace, 'b')
    os.makedirs(second)
    open(os.path.join(second, 'mkdnet.pth.tar'), 'w').close()
    use_pytracking_settings(pytracking_settings(workspace, network_path=[first, second]))
    assert find_network_file('mkdnet.pth.tar') == os.path.join(second, 'mkdnet.pth.tar')
    with pytest.raises(FileNotFoundError) as error:
        find_network_file('other.pth.tar')
    assert os.path.join(first, 'other.pth.tar') in str(error.value)
    assert os.path.join(second, 'other.pth.tar') in str(error.value)


@pytest.mark.parametrize('content', ['fork-checkpoint', 'bare-state-dict'])
def test_student_network_file_of_the_wrong_kind_points_to_mkdnet_release(content, fork, pytracking_env):
    from pytracking.parameter.mkdnet import mkdnet
    from ltr_plugins.release_checkpoint import CheckpointError
    path = os.path.join(pytracking_env['network_path'], 'mkdnet.pth.tar')
    state = TinyStudent().state_dict()
    fork.save(ltr_checkpoint(state) if content == 'fork-checkpoint' else lambda _: state, path)
    params = mkdnet.parameters(use_gpu=False)
    with pytest.raises(CheckpointError) as error:
        params.net.initialize()
    message = str(error.value)
    assert message.startswith(path + (': refused to load: it names the Python object {}.'.format(FORK_MODULE)
                                      if content == 'fork-checkpoint' else
                                      ' is a bare state dict without a network constructor'))
    assert 'mkdnet_release' in message and not fork.was_imported


@pytest.mark.parametrize('legacy', [True, False], ids=['pytorch-1.4-format', 'zip-format'])
@pytest.mark.parametrize('container', ['ltr-checkpoint', 'net', 'state_dict', 'plain'])
def test_release_loader_reads_every_container_without_importing_the_fork(container, legacy, fork, tmp_path):
    from ltr_plugins.release_checkpoint import load_release_student
    torch.manual_seed(0)
    source = TinyStudent()
    state = collections.OrderedDict(source.state_dict())
    state.update(teacher_and_discriminators(source.state_dict()))
    build = {'ltr-checkpoint': ltr_checkpoint(state), 'net': lambda _: {'net': state},
             'state_dict': lambda _: {'state_dict': state}, 'plain': lambda _: state}[container]
    path = fork.save(build, str(tmp_path / 'release.pth.tar'), legacy=legacy)

    if container == 'ltr-checkpoint':   # what torch >= 2.6 does with it by default
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)
    net = load_release_student(path, net=TinyStudent())
    assert not fork.was_imported
    for key, value in source.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key
    assert net.info['ignored_keys_per_module'] == {'feature_extractor_t': 7, 'classifier_t': 2, 'bb_regressor_t': 2,
                                                   'feat_D1': 6, 'feat_D2': 6}


def test_unresolved_classes_are_inert_data(fork, tmp_path):
    from ltr_plugins.release_checkpoint import UnresolvedGlobal, read_checkpoint
    path = fork.save(ltr_checkpoint({'w': torch.ones(2)}), str(tmp_path / 'c.pth.tar'))
    checkpoint = read_checkpoint(path)
    constructor = checkpoint['constructor']
    assert isinstance(constructor, UnresolvedGlobal)
    assert type(constructor).qualified_name() == FORK_MODULE + '.NetConstructor'
    assert constructor.state['fun_name'] == 'dimpnet50'
    assert checkpoint['seen'] == {1, 2} and torch.equal(checkpoint['net']['w'], torch.ones(2))
    assert not fork.was_imported


def test_release_loader_resolves_no_global_that_weights_only_would_refuse():
    from ltr_plugins.release_checkpoint import _allowed_globals
    weights_only = pytest.importorskip('torch._weights_only_unpickler')
    if not hasattr(weights_only, '_get_allowed_globals'):
        pytest.skip("this torch has no torch._weights_only_unpickler._get_allowed_globals")
    allowed = {'{}.{}'.format(module, name) for module, name in _allowed_globals()}
    assert allowed <= set(weights_only._get_allowed_globals())


def _tiny_error(tmp_path, state_or_object) -> str:
    from ltr_plugins.release_checkpoint import CheckpointError, load_release_student
    path = str(tmp_path / 'bad.pth.tar')
    torch.save(state_or_object, path)
    with pytest.raises(CheckpointError) as error:
        load_release_student(path, net=TinyStudent())
    message = str(error.value)
    assert path in message
    return message


def test_release_loader_names_missing_unexpected_and_mismatched_keys(tmp_path):
    state = TinyStudent().state_dict()
    del state['classifier.bias']
    state['bb_regressor.weight'] = torch.zeros(3, 4)
    state['bb_regressor.extra.weight'] = torch.zeros(1)
    state['feat_D3.0.weight'] = torch.zeros(1)
    message = _tiny_error(tmp_path, {'net': state})
    assert 'missing 1 key(s) of Super-DiMP: classifier (1 key: bias)' in message
    assert 'unexpected 2 key(s): bb_regressor.extra (1 key: weight); feat_D3.0 (1 key: weight)' in message
    assert 'bb_regressor.weight: file (3, 4) vs Super-DiMP (1, 4)' in message


def test_release_loader_rejects_a_state_dict_of_something_else(tmp_path):
    message = _tiny_error(tmp_path, {'conv1.weight': torch.zeros(4, 3, 3, 3), 'fc.weight': torch.zeros(2, 4)})
    assert 'missing 11 key(s) of Super-DiMP: feature_extractor (all 7 keys); classifier (all 2 keys); ' \
           'bb_regressor (all 2 keys)' in message
    assert 'unexpected 2 key(s): conv1 (1 key: weight); fc (1 key: weight)' in message


@pytest.mark.parametrize('content, expected', [
    ({'epoch': 3, 'optimizer': {}}, "holds no state dict: it is a dict with keys 'epoch', 'optimizer'"),
    ({'net': torch.nn.Linear(2, 2)}, "'net' entry is an object of class torch.nn.modules.linear.Linear"),
    ([1, 2], 'holds no state dict: it is a list'),
])
def test_release_loader_explains_files_without_a_state_dict(content, expected, tmp_path):
    assert expected in _tiny_error(tmp_path, content)


def test_release_loader_rejects_a_file_that_is_no_checkpoint(tmp_path):
    from ltr_plugins.release_checkpoint import CheckpointError, read_checkpoint
    path = tmp_path / 'notes.pth.tar'
    path.write_text('not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot read .*notes.pth.tar as a torch checkpoint'):
        read_checkpoint(str(path))


def test_release_file_loads_the_student_alone_into_stock_super_dimp(release_file, student, fork, pytracking_env):
    from ltr.models.tracking.dimpnet import DiMPnet
    from pytracking.parameter.mkdnet import mkdnet_release

    params = mkdnet_release.parameters(use_gpu=False, net_path=release_file)
    params.net.initialize()
    net = params.net.net
    assert type(net) is DiMPnet and not fork.was_imported
    assert [name for name, _ in net.named_children()] == ['feature_extractor', 'classifier', 'bb_regressor']
    state = net.state_dict()
    assert list(state) == list(student)
    assert all(torch.equal(state[key], value) for key, value in student.items())   # the student, not the teacher
    assert net.constructor.fun_name == 'dimpnet50' and not net.training


def test_release_file_with_a_missing_student_key_is_a_clear_error(student, fork, tmp_path):
    from ltr_plugins.release_checkpoint import CheckpointError, load_release_student
    state = collections.OrderedDict((k, v) for k, v in student.items() if not k.startswith('bb_regressor.fc3_rt.'))
    state.update(teacher_and_discriminators(student))
    path = fork.save(ltr_checkpoint(state), str(tmp_path / 'mkdnet_release.pth.tar'))
    with pytest.raises(CheckpointError) as error:
        load_release_student(path)
    message = str(error.value)
    assert message.startswith(path + ' does not fit an MKDNet student')
    assert 'missing 7 key(s) of Super-DiMP: bb_regressor.fc3_rt (7 keys: linear.weight, linear.bias, bn.weight, ...)' \
        in message
    assert 'unexpected' not in message and 'mismatch' not in message


def test_super_dimp_backbone_alone_is_a_clear_error(student, tmp_path):
    from ltr_plugins.release_checkpoint import CheckpointError, load_release_student
    path = str(tmp_path / 'resnet50.pth')
    torch.save({k.split('.', 1)[1]: v for k, v in student.items() if k.startswith('feature_extractor.')}, path)
    with pytest.raises(CheckpointError) as error:
        load_release_student(path)
    message = str(error.value)
    assert 'missing 407 key(s) of Super-DiMP: feature_extractor (all 320 keys); classifier (all 8 keys); ' \
           'bb_regressor (all 79 keys)' in message
    assert 'unexpected 320 key(s): conv1 (1 key: weight); bn1 (5 keys: ' in message


# ---------------------------------------------------------------------------------- pytracking's entry points
def test_run_tracker_mkdnet_with_a_student_network(synthetic_latot, workspace):
    write_student_network(os.path.join(workspace, 'networks', 'mkdnet.pth.tar'))
    sequence = synthetic_latot.tracked_sequence
    result = run_script('pytracking/run_tracker.py', ['mkdnet', 'mkdnet', '--dataset_name', 'latot_test',
                                                      '--sequence', sequence],
                        pytracking=pytracking_settings(workspace, latot_path=synthetic_latot.root))
    assert 'No CUDA device' not in result.stdout   # use_gpu already follows the machine
    boxes = tracked_boxes(os.path.join(workspace, 'tracking_results', 'mkdnet', 'mkdnet', sequence + '.txt'))
    assert boxes.shape == (synthetic_latot.tracked_frames, 4) and np.isfinite(boxes).all()
    np.testing.assert_allclose(boxes[0], synthetic_latot.first_box(sequence), atol=0.005)


def test_run_tracker_mkdnet_release_with_a_release_file(synthetic_latot, workspace, release_file):
    os.makedirs(os.path.join(workspace, 'networks'))
    os.symlink(release_file, os.path.join(workspace, 'networks', 'mkdnet_release.pth.tar'))
    sequence = synthetic_latot.tracked_sequence
    result = run_script('pytracking/run_tracker.py', ['mkdnet', 'mkdnet_release', '--dataset_name', 'latot_test',
                                                      '--sequence', sequence],
                        pytracking=pytracking_settings(workspace, latot_path=synthetic_latot.root))
    assert 'FPS: ' in result.stdout
    boxes = tracked_boxes(os.path.join(workspace, 'tracking_results', 'mkdnet', 'mkdnet_release',
                                       sequence + '.txt'))
    assert boxes.shape == (synthetic_latot.tracked_frames, 4)
    np.testing.assert_allclose(boxes[0], synthetic_latot.first_box(sequence), atol=0.005)


def test_run_tracker_reports_a_release_file_that_does_not_fit(synthetic_latot, workspace, student, fork):
    removed = 'classifier.filter_optimizer.log_step_length'
    state = collections.OrderedDict((k, v) for k, v in student.items() if k != removed)
    state.update(teacher_and_discriminators(student))
    os.makedirs(os.path.join(workspace, 'networks'))
    path = fork.save(ltr_checkpoint(state), os.path.join(workspace, 'networks', 'mkdnet_release.pth.tar'))
    sequence = synthetic_latot.tracked_sequence
    result = run_script('pytracking/run_tracker.py', ['mkdnet', 'mkdnet_release', '--dataset_name', 'latot_test',
                                                      '--sequence', sequence],
                        pytracking=pytracking_settings(workspace, latot_path=synthetic_latot.root), check=False)
    assert result.returncode == 1   # a failed sequence fails the command (patch 07)
    assert 'FAILED: 1 of 1 tracker runs' in result.stdout
    assert path + ' does not fit an MKDNet student' in result.stdout
    assert 'missing 1 key(s) of Super-DiMP: classifier.filter_optimizer (1 key: log_step_length)' in result.stdout
    assert not os.path.exists(os.path.join(workspace, 'tracking_results', 'mkdnet', 'mkdnet_release',
                                           sequence + '.txt'))


VIDEO_FRAMES = 4


@pytest.mark.parametrize('script', ['run_video', 'run_webcam'])
def test_run_video_and_run_webcam(script, synthetic_latot, workspace, tmp_path):
    from ltr_plugins import latot_data
    write_student_network(os.path.join(workspace, 'networks', 'mkdnet.pth.tar'))
    sequence = synthetic_latot.tracked_sequence
    frames = latot_data.list_frames(synthetic_latot.root, sequence)[:VIDEO_FRAMES]
    video = write_video(str(tmp_path / (sequence + '.avi')), frames)
    box = [float(v) for v in synthetic_latot.first_box(sequence)]
    spec = {'script': os.path.join(pytracking_root(), 'pytracking', script + '.py'), 'camera': None, 'select': None}
    if script == 'run_video':
        args = ['mkdnet', 'mkdnet', video, '--optional_box', *map(str, box), '--save_results']
    else:
        args = ['mkdnet', 'mkdnet']
        spec.update(camera=video, select=[int(round(v)) for v in box])
    result = run_driver(str(tmp_path), 'gui_driver', GUI_DRIVER, args, pytracking_settings(workspace),
                        {'MKDNET_GUI_SPEC': json.dumps(spec)})
    record = json.loads(result.stdout.split('GUI-DRIVER-RECORD ')[1].splitlines()[0])
    if script == 'run_video':
        # A video starts paused: the first frame is tracked once more before the others (pytracking's loop).
        assert record['tracked_frames'] == VIDEO_FRAMES
        saved = os.path.join(workspace, 'tracking_results', 'mkdnet', 'mkdnet', 'video_{}_1.txt'.format(sequence))
        boxes = tracked_boxes(saved)
        assert boxes.shape == (VIDEO_FRAMES + 1, 4)
        np.testing.assert_allclose(boxes[0], box, atol=0.005)
    else:
        # Frame 1 shown, target selected, then initialised on frame 2 and tracked from frame 3 on.
        assert record['tracked_frames'] == VIDEO_FRAMES - 2
    assert np.isfinite(np.array(record['boxes'], dtype=float)).all()


def test_run_experiment_with_mkdnet(synthetic_latot, workspace, tmp_path):
    from ltr_plugins import latot_data
    write_student_network(os.path.join(workspace, 'networks', 'mkdnet.pth.tar'))
    sequence = latot_data.split_sequence_names('test')[1]   # a two-frame sequence
    experiments = tmp_path / 'experiments'
    experiments.mkdir()
    (experiments / 'mkdnet_smoke.py').write_text(textwrap.dedent('''
        from pytracking.evaluation import get_dataset, trackerlist

        def mkdnet_one_sequence():
            return trackerlist('mkdnet', 'mkdnet', range(1)), [get_dataset('latot_test')[{!r}]]
        '''.format(sequence)))
    result = run_driver(str(tmp_path), 'experiment_driver', EXPERIMENT_DRIVER, ['mkdnet_smoke', 'mkdnet_one_sequence'],
                        pytracking_settings(workspace, latot_path=synthetic_latot.root),
                        {'MKDNET_EXPERIMENTS': str(experiments), 'MKDNET_PYTRACKING': pytracking_root()})
    assert 'Running:  mkdnet_smoke  mkdnet_one_sequence' in result.stdout
    boxes = tracked_boxes(os.path.join(workspace, 'tracking_results', 'mkdnet', 'mkdnet_000', sequence + '.txt'))
    assert boxes.shape == (2, 4)
    np.testing.assert_allclose(boxes[0], synthetic_latot.first_box(sequence), atol=0.005)


def test_a_parameter_file_of_the_users_own_runs_from_the_workspace_and_leaves_the_checkout_clean(synthetic_latot,
                                                                                                 workspace):
    import subprocess
    import uuid
    from pytracking_plugins.parameter import mkdnet as parameter_package
    from ltr_plugins.train_settings import mkdnet as train_settings_package
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert parameter_package.USER_FOLDER == os.path.join(project, 'workspace', 'parameter', 'mkdnet')
    assert train_settings_package.USER_FOLDER == os.path.join(project, 'workspace', 'train_settings', 'mkdnet')
    write_student_network(os.path.join(workspace, 'networks', 'mine.pth.tar'))
    name = 'user_{}'.format(uuid.uuid4().hex[:8])
    path = os.path.join(parameter_package.USER_FOLDER, name + '.py')
    os.makedirs(parameter_package.USER_FOLDER, exist_ok=True)
    with open(path, 'w') as handle:
        handle.write('from pytracking.parameter.mkdnet import mkdnet\n\n\ndef parameters():\n'
                     "    return mkdnet.parameters(net_path='mine.pth.tar')\n")
    try:
        sequence = synthetic_latot.tracked_sequence
        run_script('pytracking/run_tracker.py',
                   ['mkdnet', name, '--dataset_name', 'latot_test', '--sequence', sequence],
                   pytracking=pytracking_settings(workspace, latot_path=synthetic_latot.root))
        boxes = tracked_boxes(os.path.join(workspace, 'tracking_results', 'mkdnet', name, sequence + '.txt'))
        assert boxes.shape == (synthetic_latot.tracked_frames, 4)
        status = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all', '--', path],
                                cwd=project, capture_output=True, text=True)
        assert status.returncode != 0 or status.stdout == ''       # ignored (or not a git checkout at all)
    finally:
        os.remove(path)
