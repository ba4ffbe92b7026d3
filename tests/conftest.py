"""Shared helpers: the installed pytracking, isolated environment settings and synthetic LaTOT data.

Scripts run through :func:`run_script`: pytracking's own script, in a subprocess of the project's Python, with
``ltr.admin.local`` / ``pytracking.evaluation.local`` supplied for that process only, so tests never read or write
the user's workspace.
"""
import json
import os
import subprocess
import sys
from typing import Dict, List, Optional

import pytest

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytracking_root() -> str:
    import ltr
    return os.path.dirname(os.path.dirname(os.path.abspath(ltr.__file__)))


LTR_SETTING_NAMES = ('workspace_dir', 'tensorboard_dir', 'pretrained_networks', 'pregenerated_masks', 'lasot_dir',
                     'got10k_dir', 'trackingnet_dir', 'coco_dir', 'lvis_dir', 'sbd_dir', 'imagenet_dir',
                     'imagenetdet_dir', 'ecssd_dir', 'hkuis_dir', 'msra10k_dir', 'davis_dir', 'youtubevos_dir',
                     'lasot_candidate_matching_dataset_path', 'latot_dir')

_DRIVER = r'''
import json, os, runpy, sys
from pytracking_plugins.environment import use_local_settings
spec = json.loads(os.environ['PLUGIN_TEST_SCRIPT'])
sys.argv = [spec['script']] + spec['args']
sys.path.insert(0, os.path.dirname(spec['script']))
use_local_settings(pytracking=spec['pytracking'], ltr=spec['ltr'])
runpy.run_path(spec['script'], run_name='__main__')
'''


def ltr_settings(workspace: str, **paths: str) -> Dict[str, str]:
    settings = {name: '' for name in LTR_SETTING_NAMES}
    settings.update(workspace_dir=workspace, tensorboard_dir=os.path.join(workspace, 'tensorboard'),
                    pretrained_networks=os.path.join(workspace, 'pretrained_networks'))
    settings.update(paths)
    return settings


def pytracking_settings(workspace: str, **paths: str) -> Dict[str, str]:
    settings = dict(network_path=os.path.join(workspace, 'networks'),
                    results_path=os.path.join(workspace, 'tracking_results'),
                    segmentation_path=os.path.join(workspace, 'segmentation_results'),
                    result_plot_path=os.path.join(workspace, 'result_plots'))
    settings.update(paths)
    return settings


def run_script(script: str, args: List[str], *, pytracking: Optional[Dict[str, str]] = None,
               ltr: Optional[Dict[str, str]] = None, timeout: float = 600,
               check: bool = True) -> subprocess.CompletedProcess:
    """Runs ``<pytracking root>/<script>`` (e.g. 'pytracking/run_tracker.py') as its command line would."""
    path = os.path.join(pytracking_root(), script)
    env = dict(os.environ, PLUGIN_TEST_SCRIPT=json.dumps(dict(script=path, args=list(args), pytracking=pytracking,
                                                              ltr=ltr)))
    result = subprocess.run([sys.executable, '-c', _DRIVER], cwd=os.path.dirname(path), env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError('{} {} failed ({}):\n{}'.format(script, ' '.join(args), result.returncode,
                                                              result.stdout[-6000:]))
    return result


def states_equal(a, b) -> bool:
    """Whether two checkpoint states (nested dicts, lists and tensors) are equal, tensors bit for bit."""
    import torch
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(states_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(states_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture
def workspace(tmp_path) -> str:
    path = tmp_path / 'workspace'
    path.mkdir()
    return str(path)


@pytest.fixture
def use_pytracking_settings(monkeypatch):
    """Points this test process's pytracking env_settings() at the given paths (undone after the test)."""
    from pytracking_plugins.environment import pytracking_local_module

    def use(paths: Dict[str, str]) -> Dict[str, str]:
        module = pytracking_local_module(paths)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        return paths
    return use


class SyntheticLaTOT:
    """A LaTOT-layout folder with every test-split sequence (so ``latot_test`` loads) and a few train sequences.

    One test sequence (``tracked_sequence``) is long enough to track; the other test sequences have two frames
    only, to keep generation fast. The train sequences are long enough for ltr's samplers.
    """
    tracked_frames = 12
    train_frames = 40
    num_train_sequences = 4

    def __init__(self, root: str):
        from ltr_plugins import latot_data, synthetic
        self.root = root
        test_names = latot_data.split_sequence_names('test')
        self.tracked_sequence = test_names[0]
        self.train_sequences = latot_data.split_sequence_names('train')[:self.num_train_sequences]
        synthetic.write_dataset(root, names=[self.tracked_sequence], num_frames=self.tracked_frames, seed=1)
        synthetic.write_dataset(root, names=test_names[1:], num_frames=2, seed=2)
        synthetic.write_dataset(root, names=self.train_sequences, num_frames=self.train_frames, seed=3)

    def first_box(self, name: str):
        from ltr_plugins import latot_data
        return latot_data.read_sequence_annotation(self.root, name)[0]


@pytest.fixture(scope='session')
def synthetic_latot(tmp_path_factory) -> SyntheticLaTOT:
    return SyntheticLaTOT(str(tmp_path_factory.mktemp('latot')))
