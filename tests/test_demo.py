"""The demo end to end on its smallest preset: data, three trainings, tracking, report, animation; then reuse."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pytracking_plugins.demo import pipeline, presets

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLES = ('teacher', 'mkdnet', 'baseline')


def run_demo(folder: str, *extra: str) -> str:
    result = subprocess.run([sys.executable, '-m', 'pytracking_plugins.demo', '--preset', 'test', '--folder', folder,
                             *extra], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('demo'))
    return folder, run_demo(folder)


def read_boxes(path: str) -> np.ndarray:
    with open(path) as handle:
        return np.array([line.replace(',', ' ').split() for line in handle if line.strip()], dtype=float)


def test_every_artefact_is_written(demo_run):
    folder, output = demo_run
    paths = pipeline.Paths(folder)
    preset = presets.PRESETS['test']
    for role in ROLES:
        assert os.path.isfile(os.path.join(paths.networks, 'demo_{}.pth.tar'.format(role)))
        assert os.listdir(pipeline.checkpoint_dir(paths, role))
    for name in ('report.md', 'scores.json', 'per_sequence.csv', 'success_plot.png', 'precision_plot.png'):
        assert os.path.isfile(os.path.join(paths.report, name)), name
    with open(os.path.join(paths.report, 'report.md')) as handle:
        report = handle.read()
    assert '](animation/tracking.gif)' in report and '](animation/tracking_strip.png)' in report
    with Image.open(os.path.join(paths.report, 'animation', 'tracking.gif')) as gif:
        assert gif.n_frames == preset.test_frames
    with Image.open(os.path.join(paths.report, 'animation', 'tracking_strip.png')) as strip:
        assert strip.height > strip.width
    for row in (pipeline.INITIAL_BOX_LABEL, *pipeline.LABELS.values()):
        assert row in output


def test_trackers_move_away_from_the_initial_box(demo_run):
    folder, _ = demo_run
    paths = pipeline.Paths(folder)
    names = sorted(os.listdir(paths.initial_box))
    assert len(names) == presets.PRESETS['test'].test_sequences
    for role in ROLES:
        differs = []
        for name in names:
            initial = read_boxes(os.path.join(paths.initial_box, name))
            tracked = read_boxes(os.path.join(paths.tracker_results(role), name))
            assert tracked.shape == initial.shape
            differs.append(not np.allclose(tracked, initial, atol=0.01))
        assert any(differs), role


def test_scores_have_the_four_rows(demo_run):
    folder, _ = demo_run
    with open(os.path.join(pipeline.Paths(folder).report, 'scores.json')) as handle:
        text = json.dumps(json.load(handle))
    for row in (pipeline.INITIAL_BOX_LABEL, *pipeline.LABELS.values()):
        assert row in text


def test_second_run_reuses_every_step(demo_run):
    folder, _ = demo_run
    paths = pipeline.Paths(folder)
    network = os.path.join(paths.networks, 'demo_teacher.pth.tar')
    before = os.stat(network).st_mtime_ns
    output = run_demo(folder)
    for step in ('train data', 'test data', 'train teacher', 'train mkdnet', 'train baseline', 'track teacher',
                 'track mkdnet', 'track baseline', 'initial box', 'animation'):
        assert '] {} -- reused'.format(step) in output, step
    assert 'Training:' not in output
    assert os.stat(network).st_mtime_ns == before


def test_a_changed_setting_redoes_only_what_depends_on_it(tmp_path):
    progress = pipeline.Progress(['a', 'b'])
    steps = pipeline.Steps(pipeline.Paths(str(tmp_path)), progress)
    calls = []
    output = tmp_path / 'b_output'
    for config in ({'lr': 1}, {'lr': 1}, {'lr': 2}):
        progress.done = 0
        key_a = pipeline.step_key('a', {'n': 1})
        steps.run('a', key_a, lambda: calls.append('a'))
        key_b = pipeline.step_key('b', config, [key_a])
        steps.run('b', key_b, lambda: (calls.append('b'), output.write_text(str(config))), [str(output)])
    assert calls == ['a', 'b', 'b']
    assert output.read_text() == str({'lr': 2})


def test_bad_override_names_the_setting():
    with pytest.raises(ValueError, match='teacher_epochs'):
        presets.apply_overrides(presets.PRESETS['cpu'], ['teacher_epochs=many'])
    with pytest.raises(ValueError, match='NAME=VALUE'):
        presets.apply_overrides(presets.PRESETS['cpu'], ['no_such_size=3'])
    assert presets.apply_overrides(presets.PRESETS['cpu'], ['feature_sz=8']).crop_size == 128


def test_roles_train_as_the_paper_compares_them():
    import types
    import ltr.admin.settings as ltr_settings
    from ltr_plugins import distillation as kd
    from ltr_plugins.train_settings.mkdnet import _demo_recipe
    preset = presets.PRESETS['cpu']
    configured = {}
    for role in ROLES:
        settings = ltr_settings.Settings()
        settings.env = types.SimpleNamespace(demo=dict(preset.training_sizes(role), train_dir='data', seed=0,
                                                       teacher_checkpoint='teacher.pth.tar'))
        _demo_recipe.configure(settings, role)
        configured[role] = settings
    teacher, mkdnet, baseline = (configured[role] for role in ROLES)
    assert not teacher.degrade and not kd.active_distillation_terms(teacher.loss_weight)['any']
    assert mkdnet.degrade and baseline.degrade
    assert mkdnet.degrade_target_size == baseline.degrade_target_size == 16 * preset.crop_size / 352
    assert mkdnet.loss_weight == kd.PAPER_LOSS_WEIGHTS
    assert not kd.active_distillation_terms(baseline.loss_weight)['any']
    assert baseline.learning_rates == mkdnet.learning_rates and baseline.num_epochs == mkdnet.num_epochs
    with pytest.raises(RuntimeError, match='settings.env.demo'):
        settings = ltr_settings.Settings()
        settings.env = types.SimpleNamespace()
        _demo_recipe.configure(settings, 'teacher')
