"""The miniature experiment end to end on its smallest preset (mkdnet-demo, mkdnet-ablation): data, the teacher, the
students, tracking, report; then reuse, a changed student size, and what the steps may delete."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pytracking_plugins.demo import ablation, presets
from pytracking_plugins.demo import report as report_module
from pytracking_plugins.demo.experiment import INITIAL_BOX_LABEL, LABELS, Experiment, Paths, label
from pytracking_plugins.demo.steps import MARK, FolderError, Steps, claim_folder, step_key

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_command(module: str, folder: str, *extra: str, expect: int = 0) -> str:
    result = subprocess.run([sys.executable, '-m', module, '--preset', 'test', '--folder', folder, *extra],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == expect, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('demo'))
    return folder, run_command('pytracking_plugins.demo', folder)


def read_boxes(path: str) -> np.ndarray:
    with open(path) as handle:
        return np.array([line.replace(',', ' ').split() for line in handle if line.strip()], dtype=float)


def test_every_artefact_is_written(demo_run):
    folder, output = demo_run
    paths = Paths(folder)
    preset = presets.PRESETS['test']
    for variant, seed in (('teacher', None), ('baseline', 0), ('mkdnet', 0)):
        assert os.path.isfile(os.path.join(paths.network_folder(seed), 'miniature_{}.pth.tar'.format(variant)))
        assert os.listdir(paths.checkpoints(variant, seed))
    for name in ('report.md', 'scores.json', 'scores_per_seed.json', 'per_sequence.csv', 'success_plot.png',
                 'training/teacher_curves.png', 'training/student_curves.png', 'training/student_validation.png'):
        assert os.path.isfile(os.path.join(paths.report, name)), name
    with open(os.path.join(paths.report, 'report.md')) as handle:
        report = handle.read()
    for section in ('## Against the baseline', '| MKDNet |', 'Run-to-run spread: one seed here; in ',
                    "## The teacher's training",
                    "## The students' training", '](animation/tracking.gif)', '](animation/tracking_strip.png)'):
        assert section in report, section
    with Image.open(os.path.join(paths.report, 'animation', 'tracking.gif')) as gif:
        assert gif.n_frames == preset.test_frames
    assert 'Report: ' in output and 'Total time' in output


def test_trackers_move_away_from_the_initial_box(demo_run):
    folder, _ = demo_run
    paths = Paths(folder)
    names = sorted(os.listdir(paths.initial_box))
    assert len(names) == presets.PRESETS['test'].test_sequences
    for variant, seed in (('teacher', None), ('baseline', 0), ('mkdnet', 0)):
        differs = []
        for name in names:
            initial = read_boxes(os.path.join(paths.initial_box, name))
            tracked = read_boxes(os.path.join(paths.tracker_results(variant, seed), name))
            assert tracked.shape == initial.shape
            differs.append(not np.allclose(tracked, initial, atol=0.01))
        assert any(differs), variant


def test_scores_agree_with_the_per_sequence_scores_and_the_comparison(demo_run):
    folder, _ = demo_run
    paths = Paths(folder)
    with open(os.path.join(paths.report, 'scores_per_seed.json')) as handle:
        per_seed = json.load(handle)
    rows = [INITIAL_BOX_LABEL, LABELS['teacher'], label('baseline', 0), label('mkdnet', 0)]
    assert sorted(per_seed['overall']) == sorted(rows)
    sequences = per_seed['per_sequence']
    for row in rows:
        values = [sequences[name]['scores'][row]['SR'] for name in sequences]
        assert per_seed['overall'][row]['SR'] == pytest.approx(np.mean(values), abs=1e-12), row
        assert 0 <= per_seed['overall'][row]['SR'] <= 1
    with open(os.path.join(paths.report, 'scores.json')) as handle:
        merged = json.load(handle)
    assert merged['overall'][LABELS['mkdnet']]['SR'] == pytest.approx(per_seed['overall'][label('mkdnet', 0)]['SR'])
    difference = per_seed['overall'][label('mkdnet', 0)]['SR'] - per_seed['overall'][label('baseline', 0)]['SR']
    with open(os.path.join(paths.report, 'report.md')) as handle:
        against = handle.read().split('## Against the baseline')[1]
    row = next(line for line in against.splitlines() if line.startswith('| MKDNet |'))
    assert row.split('|')[4].split()[0] == '{:+.3f}'.format(difference)


def test_second_run_reuses_every_step(demo_run):
    folder, _ = demo_run
    paths = Paths(folder)
    network = os.path.join(paths.networks, 'miniature_teacher.pth.tar')
    before = os.stat(network).st_mtime_ns
    output = run_command('pytracking_plugins.demo', folder)
    experiment = Experiment(folder, presets.PRESETS['test'], ('baseline', 'mkdnet'), 'mkdnet-demo')
    for step in experiment.step_names():
        assert '] {} -- reused'.format(step) in output, step
    assert 'Training:' not in output and 'Finished training' not in output
    assert os.stat(network).st_mtime_ns == before


def test_a_changed_student_size_retrains_the_students_not_the_teacher(demo_run):
    folder, _ = demo_run
    paths = Paths(folder)
    teacher = os.path.join(paths.networks, 'miniature_teacher.pth.tar')
    before = os.stat(teacher).st_mtime_ns
    output = run_command('pytracking_plugins.demo', folder, '--set', 'student_epochs=2')
    assert '] train teacher -- reused' in output and '] track teacher -- reused' in output
    for run in ('baseline_seed0', 'mkdnet_seed0'):
        assert '] train {}  ('.format(run) in output and '] track {}  ('.format(run) in output
    assert os.stat(teacher).st_mtime_ns == before
    assert sorted(os.listdir(paths.checkpoints('mkdnet', 0)))[-1].endswith('_ep0002.pth.tar')


def test_the_ablation_runs_every_variant_and_seed(tmp_path):
    output = run_command('pytracking_plugins.demo.ablation', str(tmp_path))
    preset = ablation.ablation_preset('test')
    experiment = Experiment(str(tmp_path), preset, ablation.VARIANTS, 'mkdnet-ablation')
    assert len(experiment.students()) == 5 * preset.seeds
    with open(os.path.join(experiment.paths.report, 'report.md')) as handle:
        report = handle.read()
    for variant in ('fd', 'sd', 'ioud', 'mkdnet'):
        row = next(line for line in report.split('## Against the baseline')[1].splitlines()
                   if line.startswith('| {} |'.format(LABELS[variant])))
        assert len(row.split('|')[5].split(',')) == preset.seeds       # one SR difference per seed
    assert 'sequences' in report and 'Report: ' in output
    spread = next(line for line in output.splitlines() if line.startswith('Run-to-run spread: over this run'))
    # A demo (one seed per variant) quotes the spread this ablation measured, with the same number and variant.
    demo = Experiment(str(tmp_path / 'demo'), presets.PRESETS['test'], ('baseline', 'mkdnet'), 'mkdnet-demo')
    quoted = report_module.spread_line(None, demo, str(tmp_path))
    assert quoted.startswith("Run-to-run spread: one seed here; in your mkdnet-ablation ({}, {} seeds), a variant's SR "
                             'moved by up to '.format(tmp_path, preset.seeds))
    assert quoted.split('moved by up to ')[1] == spread.split('moved by up to ')[1]


def test_a_demo_without_an_ablation_quotes_the_projects_recorded_run(tmp_path):
    with open(report_module.RECORDED_SPREAD) as handle:
        recorded = json.load(handle)
    demo = Experiment(str(tmp_path), presets.PRESETS['test'], ('baseline', 'mkdnet'), 'mkdnet-demo')
    assert report_module.spread_line(None, demo, str(tmp_path / 'no ablation')) == (
        "Run-to-run spread: one seed here; in the project's mkdnet-ablation run ({}, {}; {} seeds), a variant's SR "
        'moved by up to {:.3f} from seed to seed ({}: {}); a difference smaller than that between two single runs '
        'says nothing.'.format(recorded['date'], recorded['machine'], len(recorded['seed_means']), recorded['spread'],
                               recorded['variant'], ', '.join('{:.3f}'.format(v) for v in recorded['seed_means'])))
    assert recorded['spread'] == pytest.approx(max(recorded['seed_means']) - min(recorded['seed_means']))


def test_training_targets_are_ordinary_sized_and_test_targets_tiny(tmp_path):
    from ltr_plugins import latot_data, synthetic
    experiment = Experiment(str(tmp_path), presets.PRESETS['cpu'], ('baseline', 'mkdnet'), 'mkdnet-demo')
    sides = {}
    for split in ('train', 'test'):
        config = experiment._data_config(split)
        names = latot_data.split_sequence_names(split)[:config['sequences']]
        root = str(tmp_path / split)
        synthetic.write_dataset(root, names=names, num_frames=config['frames'], image_size=config['image_size'],
                                target_size=config['target_size'], seed=config['seed'], images=False)
        boxes = np.concatenate([latot_data.read_boxes(latot_data.annotation_path(root, name)) for name in names])
        present = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        sides[split] = np.sqrt(boxes[present, 2] * boxes[present, 3])
    assert np.median(sides['train']) >= 3 * np.median(sides['test'])
    assert np.mean(sides['test']) < 22                               # LaTOT's tiny-object criterion
    assert presets.PRESETS['cpu'].degrade_target_size == pytest.approx(np.median(sides['test']), rel=0.15)


def test_a_folder_the_demo_did_not_make_is_refused_untouched(tmp_path):
    (tmp_path / 'data' / 'test').mkdir(parents=True)
    precious = tmp_path / 'data' / 'test' / 'precious.txt'
    precious.write_text('mine')
    output = run_command('pytracking_plugins.demo', str(tmp_path), expect=2)
    assert str(tmp_path) in output and '--adopt-folder' in output
    assert sorted(os.listdir(tmp_path)) == ['data'] and precious.read_text() == 'mine'


def test_a_redone_step_deletes_only_its_own_files(tmp_path):
    claim_folder(str(tmp_path), 'test')
    output = tmp_path / 'out'
    steps = Steps(str(tmp_path))

    def write(text):
        output.mkdir(exist_ok=True)
        (output / 'result.txt').write_text(text)

    steps.run('a', step_key('a', {'n': 1}), lambda: write('1'), [str(output)])
    (output / 'precious.txt').write_text('mine')
    assert steps.run('a', step_key('a', {'n': 1}), lambda: write('x'), [str(output)])          # reused
    assert (output / 'result.txt').read_text() == '1'
    (output / 'result.txt').unlink()
    assert not steps.run('a', step_key('a', {'n': 2}), lambda: None, [str(output)])           # redone
    assert sorted(os.listdir(output)) == ['precious.txt']


def test_a_broken_step_record_names_its_file(tmp_path):
    claim_folder(str(tmp_path), 'test')
    steps = Steps(str(tmp_path))
    record = steps.record_path('train teacher')
    with open(record, 'w') as handle:
        handle.write('{"key": ')
    with pytest.raises(FolderError, match='train_teacher.json.*Delete it'):
        steps.run('train teacher', 'k', lambda: None)
    assert os.path.isfile(os.path.join(str(tmp_path), MARK))


def test_bad_overrides_name_the_setting():
    with pytest.raises(ValueError, match='teacher_epochs'):
        presets.apply_overrides(presets.PRESETS['cpu'], ['teacher_epochs=many'])
    with pytest.raises(ValueError, match='NAME=VALUE'):
        presets.apply_overrides(presets.PRESETS['cpu'], ['no_such_size=3'])
    with pytest.raises(ValueError, match='teacher_lr'):
        presets.apply_overrides(presets.PRESETS['cpu'], ['teacher_lr=nan'])
    with pytest.raises(ValueError, match='image_width'):
        presets.apply_overrides(presets.PRESETS['cpu'], ['train_target_max=200'])
    with pytest.raises(ValueError, match='mixed_precision'):
        presets.apply_overrides(presets.PRESETS['cpu'], ['mixed_precision=fp8'])
    assert presets.apply_overrides(presets.PRESETS['cpu'], ['feature_sz=8']).crop_size == 128


def test_variants_train_as_the_paper_compares_them():
    import types
    from ltr_plugins import distillation as kd
    from ltr_plugins.train_settings.mkdnet import miniature
    preset = presets.PRESETS['cpu']
    configured = {}
    for variant in ('teacher', 'baseline', 'fd', 'sd', 'ioud', 'mkdnet'):
        sizes = preset.teacher_sizes(0) if variant == 'teacher' else preset.student_sizes(variant, 1)
        sizes.update(train_dir='train', val_dir='val', teacher_checkpoint='teacher')
        settings = types.SimpleNamespace(env=types.SimpleNamespace(), miniature=sizes)
        miniature.configure(settings)
        configured[variant] = settings
    teacher, baseline, mkdnet = configured['teacher'], configured['baseline'], configured['mkdnet']
    assert not teacher.degrade and teacher.init == 'random'
    assert not kd.active_distillation_terms(teacher.loss_weight)['any']
    assert not kd.active_distillation_terms(baseline.loss_weight)['any'] and baseline.monitor_teacher
    assert mkdnet.loss_weight == kd.PAPER_LOSS_WEIGHTS
    for variant, on in (('fd', {'gen', 'cons', 'dis'}), ('sd', {'score_d'}), ('ioud', {'iou_d'})):
        active = kd.active_distillation_terms(configured[variant].loss_weight)
        assert {k for k in ('gen', 'cons', 'dis', 'score_d', 'iou_d') if active[k]} == on, variant
    for variant in ('baseline', 'fd', 'sd', 'ioud', 'mkdnet'):
        student = configured[variant]
        assert student.degrade and student.degrade_target_size == preset.degrade_target_size
        assert student.init == 'checkpoint' and student.init_checkpoint == 'teacher'
        assert (student.learning_rates, student.num_epochs, student.seed) == (
            baseline.learning_rates, baseline.num_epochs, 1)
    with pytest.raises(RuntimeError, match='settings.miniature'):
        miniature.configure(types.SimpleNamespace(env=types.SimpleNamespace()))
    # --set mixed_precision=bf16 reaches the recipe's settings, which build_actor turns into bf16 autocast
    # (tests/test_ddp.py trains a step of the recipe's actor in bf16); 'none' is float32.
    for mode, expected in (('bf16', 'bf16'), ('fp16', 'fp16'), ('none', None)):
        sizes = dataclasses.replace(preset, mixed_precision=mode).student_sizes('mkdnet', 0)
        sizes.update(train_dir='train', val_dir='val', teacher_checkpoint='teacher')
        settings = types.SimpleNamespace(env=types.SimpleNamespace(), miniature=sizes)
        miniature.configure(settings)
        assert settings.mixed_precision == expected
    assert miniature.run.__code__.co_names == ('configure', 'recipe', 'train')   # the shared recipe, nothing else
