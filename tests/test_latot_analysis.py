"""The LaTOT analysis end to end: pytracking result folders and external ones, the command, the report, the JSON,
the cache, every bad input, and pytracking's own analysis tools on LaTOT.

The data: the 165 sequences of the official test split, synthetic (small frames, 20-40 frames each, with the
generator's attribute flags); results written by pytracking's own writer and as external folders.
"""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from conftest import PROJECT_ROOT, pytracking_settings
from ltr_plugins import latot_attributes, latot_data, synthetic
from pytracking_plugins.analysis import cache as C
from pytracking_plugins.analysis import latot, report
from pytracking_plugins.analysis.results import ResultsError, ResultSource
from pytracking_plugins.environment import pytracking_local_module

TEST_NAMES = latot_data.split_sequence_names('test')


def _install_env(monkeypatch, paths):
    """pytracking's env_settings() -> ``paths`` (in this process, as run_script does for a subprocess)."""
    module = pytracking_local_module(paths)
    monkeypatch.setitem(sys.modules, module.__name__, module)


def perturbed(gt: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    pred = gt.copy()
    present = (gt[:, 2] > 0) & (gt[:, 3] > 0)
    pred[~present] = gt[0]                 # trackers keep a box where the target is absent
    pred[:, :2] += rng.normal(0, level, (len(gt), 2))
    pred[:, 2:] *= np.exp(rng.normal(0, 0.1 * level, (len(gt), 2)))
    return np.round(pred, 2)


class Data:
    """The dataset, the settings, and result folders of five trackers (three pytracking runs, two external)."""

    def __init__(self, base: str):
        self.workspace = os.path.join(base, 'workspace')
        self.root = os.path.join(base, 'latot')
        self.settings = pytracking_settings(self.workspace, latot_path=self.root)
        synthetic.write_dataset(self.root, names=TEST_NAMES, num_frames=(20, 40), image_size=(96, 72),
                                target_size=(4, 12), seed=0, jobs=2)
        self.gt = {n: latot_data.read_sequence_annotation(self.root, n) for n in TEST_NAMES}
        self.external = {'Commas': os.path.join(base, 'published', 'Commas'),
                         'Spaces': os.path.join(base, 'published', 'Spaces')}
        self.predictions = {}

    def write_pytracking_results(self):
        """Runs 0-2 of tracker 'latot_toy', written by pytracking's own _save_tracker_output."""
        from pytracking.evaluation import get_dataset, trackerlist
        from pytracking.evaluation.running import _save_tracker_output
        sequences = get_dataset('latot_test')
        for run_id, tracker in enumerate(trackerlist('latot_toy', 'default', range(3))):
            rng = np.random.default_rng(run_id)
            for sequence in sequences:
                boxes = perturbed(self.gt[sequence.name], 1.0 + run_id, rng)
                self.predictions[(tracker.results_dir, sequence.name)] = boxes
                _save_tracker_output(sequence, tracker, {'target_bbox': boxes.tolist()})

    def write_external_results(self):
        rng = np.random.default_rng(10)
        for (label, folder), delimiter in zip(self.external.items(), (',', ' ')):
            os.makedirs(folder)
            for name in TEST_NAMES:
                boxes = perturbed(self.gt[name], 2.5, rng)
                self.predictions[(folder, name)] = boxes
                np.savetxt(os.path.join(folder, name + '.txt'), boxes, fmt='%.2f', delimiter=delimiter)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    data = Data(str(tmp_path_factory.mktemp('latot_analysis')))
    with pytest.MonkeyPatch.context() as patch:
        _install_env(patch, data.settings)
        data.write_pytracking_results()
    data.write_external_results()
    return data


@pytest.fixture
def env(data, monkeypatch):
    _install_env(monkeypatch, data.settings)
    return data


def trackers():
    from pytracking.evaluation import trackerlist
    return trackerlist('latot_toy', 'default', range(3))


def reference_scores(gt: np.ndarray, pred: np.ndarray):
    """The protocol frame by frame in plain Python, straight from the definitions (no numpy vectorisation)."""
    boxes, previous = [], None
    for i, p in enumerate(pred):
        box = list(gt[0]) if i == 0 else (previous if p[2] == 0 or p[3] == 0 else list(p))
        boxes.append(box)
        previous = box
    pr = npr = sr = valid = 0
    for g, p in zip(gt, boxes):
        if not all(v > 0 for v in g):
            continue
        valid += 1
        dx = (p[0] + p[2] / 2) - (g[0] + g[2] / 2)
        dy = (p[1] + p[3] / 2) - (g[1] + g[3] / 2)
        pr += (dx * dx + dy * dy) ** 0.5 <= 5 + 1e-9
        nd = ((dx / g[2]) ** 2 + (dy / g[3]) ** 2) ** 0.5
        npr += sum(nd <= k / 100 + 1e-9 for k in range(51)) / 51
        iw = max(0.0, min(p[0] + p[2], g[0] + g[2]) - max(p[0], g[0]))
        ih = max(0.0, min(p[1] + p[3], g[1] + g[3]) - max(p[1], g[1]))
        iou = iw * ih / (p[2] * p[3] + g[2] * g[3] - iw * ih)
        sr += sum(iou > k / 20 + 1e-9 for k in range(21)) / 21
    return pr / valid, npr / valid, sr / valid


# The module -------------------------------------------------------------------------------------------------------

def test_pytracking_and_external_results_mixed(env, tmp_path):
    sources = trackers() + [env.external['Commas'], ResultSource(env.external['Spaces'], 'Spaced out')]
    evaluation = latot.evaluate(sources, 'latot_test', output_dir=str(tmp_path), verbose=False)
    assert evaluation.labels == ['latot_toy_default_000', 'latot_toy_default_001', 'latot_toy_default_002',
                                 'Commas', 'Spaced out']
    assert evaluation.sequences == TEST_NAMES
    folders = [t.results_dir for t in trackers()] + [env.external['Commas'], env.external['Spaces']]
    for label, folder in zip(evaluation.labels, folders):
        per_sequence = evaluation.sequence_scores(label)
        for i in range(0, 165, 16):
            name = TEST_NAMES[i]
            expected = reference_scores(env.gt[name], env.predictions[(folder, name)])
            got = (per_sequence.PR[i], per_sequence.NPR[i], per_sequence.SR[i])
            np.testing.assert_allclose(got, expected, atol=1e-12, err_msg='{} {}'.format(label, name))
        overall = evaluation.scores()[label]
        assert overall['SR'] == pytest.approx(np.mean(per_sequence.SR))
    # More noise, lower scores: the runs were written with noise 1, 2, 3 px.
    assert [label for label in evaluation.ranking('PR') if label.startswith('latot_toy')] == evaluation.labels[:3]


def test_merge_runs_averages_the_runs(env, tmp_path):
    separate = latot.evaluate(trackers(), 'latot_test', output_dir=str(tmp_path), verbose=False)
    merged = latot.evaluate(trackers(), 'latot_test', output_dir=str(tmp_path), merge_runs=True, verbose=False)
    assert merged.labels == ['latot_toy_default']
    assert merged.trackers[0]['run_id'] == [0, 1, 2]
    np.testing.assert_allclose(merged.curves['latot_toy_default'].success,
                               np.mean([separate.curves[label].success for label in separate.labels], axis=0))


def test_attribute_scores_use_the_flag_files(env, tmp_path):
    evaluation = latot.evaluate([env.external['Commas']], 'latot_test', output_dir=str(tmp_path), verbose=False)
    flags = {n: latot_attributes.read_flag_file(os.path.join(env.root, n, 'attributes.txt')) for n in TEST_NAMES}
    per_sequence = evaluation.sequence_scores('Commas').SR
    for attribute, scores in evaluation.attribute_scores().items():
        members = [i for i, n in enumerate(TEST_NAMES) if flags[n][attribute]]
        assert scores['Commas']['SR'] == pytest.approx(np.mean(per_sequence[members]))
    assert set(evaluation.attribute_scores()) == {a for a in latot_attributes.ATTRIBUTES
                                                  if any(f[a] for f in flags.values())}


# The command, its report and its JSON -----------------------------------------------------------------------------

_DRIVER = r'''
import json, os, runpy, sys
from pytracking_plugins.environment import use_local_settings
use_local_settings(pytracking=json.loads(os.environ['LATOT_TEST_SETTINGS']))
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
'''


def run_command(module: str, args, settings) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` in a subprocess, with pytracking's settings for that process only."""
    return subprocess.run([sys.executable, '-c', _DRIVER, module] + list(args), cwd=PROJECT_ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300,
                          env=dict(os.environ, LATOT_TEST_SETTINGS=json.dumps(settings), MPLBACKEND='Agg'))


def test_command_end_to_end(env, tmp_path):
    json_path = str(tmp_path / 'scores.json')
    result = run_command('pytracking_plugins.analysis.latot', [
        '--dataset', 'latot_test', '--tracker', 'latot_toy', 'default', '0-1', '--label', 'Toy',
        '--results', env.external['Commas'], '--label', 'Published', '--results', env.external['Spaces'],
        '--report-name', 'e2e', '--json', json_path], env.settings)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The ranked table, the intervals' note, the paired comparisons, then Table V.
    table = out[out.index('#  Tracker'):out.index('± half the width')].strip().splitlines()
    assert table[0].split() == ['#', 'Tracker', 'PR', 'NPR', 'SR']
    rows = [line.split() for line in table[2:]]
    comparisons = out[out.index('Paired comparisons'):out.index('Success rate (SR) per attribute')].splitlines()
    assert comparisons[1].split()[:3] == ['Pair', 'Difference', '95%'] and len(comparisons) == 3 + 3 + 1
    assert [row[0] for row in rows] == ['1', '2', '3', '4']
    assert sorted(row[1] for row in rows) == ['Published', 'Spaces', 'Toy_000', 'Toy_001']
    # Each score is printed with half its 95 % interval: '0.413 ± 0.021'.
    assert all(row[3] == row[6] == row[9] == '±' and len(row) == 11 for row in rows)
    assert [float(row[8]) for row in rows] == sorted((float(row[8]) for row in rows), reverse=True)
    report_dir = os.path.join(env.settings['result_plot_path'], 'e2e')
    expected = ['precision_plot', 'norm_precision_plot', 'success_plot', 'attributes_plot']
    for stem in expected:
        with open(os.path.join(report_dir, stem + '.png'), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        with open(os.path.join(report_dir, stem + '.pdf'), 'rb') as f:
            assert f.read(5) == b'%PDF-'
    names = set(os.listdir(report_dir))
    assert {'report.md', 'per_sequence.csv', 'summary.txt', C.CACHE_FILE_NAME} <= names
    assert not [n for n in names if n.endswith('.tmp')]
    markdown = open(os.path.join(report_dir, 'report.md')).read()
    for stem in expected:
        assert '({}.png)'.format(stem) in markdown and '({}.pdf)'.format(stem) in markdown
    assert '| # | Tracker | SV | FM | OV | IV | CM | MB | BC | SO | PO | FO | AM | LI |' in markdown
    assert markdown.count('| 1 | {} |'.format(rows[0][1])) == 2          # overall and Table V
    with open(os.path.join(report_dir, 'per_sequence.csv')) as f:
        csv_lines = f.read().splitlines()
    assert len(csv_lines) == 166
    assert csv_lines[0].startswith('sequence,category,frames,valid_frames,attributes,Toy_000 PR')

    # The JSON holds every score and agrees with the module.
    with open(json_path) as f:
        scores = json.load(f)
    sources = latot.pytracking_sources('latot_toy', 'default', [0, 1], 'Toy') + [
        latot.folder_source(env.external['Commas'], 'Published'), latot.folder_source(env.external['Spaces'])]
    # The command finds pytracking's results where trackerlist's Trackers keep them.
    assert [s.directory for s in sources[:2]] == [t.results_dir for t in trackers()[:2]]
    evaluation = latot.evaluate(sources, 'latot_test', report_name='e2e', verbose=False)
    assert scores['dataset']['name'] == 'latot_test' and scores['dataset']['num_sequences'] == 165
    assert scores['dataset']['num_frames'] == sum(len(g) for g in env.gt.values())
    assert scores['protocol']['thresholds']['success'] == [k / 20 for k in range(21)]
    assert [t['label'] for t in scores['trackers']] == ['Toy_000', 'Toy_001', 'Published', 'Spaces']
    assert scores['trackers'][0]['kind'] == 'pytracking' and scores['trackers'][0]['run_id'] == 0
    assert scores['ranking']['SR'] == [row[1] for row in rows] and scores['overall'][rows[0][1]]['rank'] == 1
    for label, values in evaluation.scores().items():
        assert scores['overall'][label] == dict(values, rank=scores['ranking']['SR'].index(label) + 1)
        assert len(scores['curves'][label]['norm_precision']) == 51
    for attribute, per_tracker in evaluation.attribute_scores().items():
        assert scores['per_attribute'][attribute]['available'] is True
        assert scores['per_attribute'][attribute]['scores']['Spaces'] == per_tracker['Spaces']
    name = TEST_NAMES[7]
    entry = scores['per_sequence'][name]
    assert entry['num_frames'] == len(env.gt[name]) and entry['category'] == latot_data.sequence_category(name)
    per_sequence = evaluation.sequence_scores('Published')
    assert entry['scores']['Published'] == {m: getattr(per_sequence, m)[7] for m in ('PR', 'NPR', 'SR')}
    assert set(entry['attributes']) == {a for a, v in latot_attributes.read_flag_file(
        os.path.join(env.root, name, 'attributes.txt')).items() if v}


def test_command_reports_bad_input_without_traceback(env, tmp_path):
    result = run_command('pytracking_plugins.analysis.latot', ['--results', str(tmp_path / 'absent')], env.settings)
    assert result.returncode == 2
    assert result.stderr.strip() == 'error: Results folder {} does not exist'.format(tmp_path / 'absent')


def test_results_root_and_per_sequence_printing(env, tmp_path, capsys):
    code = latot.main(['--results-root', os.path.dirname(env.external['Commas']), '--output-dir', str(tmp_path),
                       '--no-plots', '--per-sequence'])
    out = capsys.readouterr().out
    assert code == 0
    assert 'Success rate (SR) per sequence:' in out and TEST_NAMES[-1] in out
    assert 'Commas' in out and 'Spaces' in out
    assert not [p for p in os.listdir(str(tmp_path)) if p.endswith('.png')]


def test_scores_are_printed_before_a_write_failure(env, tmp_path):
    """An output folder that cannot be created or written: the scores are printed, then one line names it."""
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    output = blocker / 'report'
    result = run_command('pytracking_plugins.analysis.latot', [
        '--results', env.external['Commas'], '--output-dir', str(output), '--no-plots'], env.settings)
    assert result.returncode == 1
    assert '1  Commas' in result.stdout and 'Success rate (SR) per attribute' in result.stdout
    error, = result.stderr.strip().splitlines()
    assert error.startswith('error: cannot write the report into {}: '.format(output))

    # With --no-report the JSON elsewhere is still written; the unwritable cache only costs a note.
    json_path = tmp_path / 'scores.json'
    result = run_command('pytracking_plugins.analysis.latot', [
        '--results', env.external['Commas'], '--output-dir', str(output), '--no-report', '--json', str(json_path)],
        env.settings)
    assert result.returncode == 0, result.stderr
    assert '1  Commas' in result.stdout
    assert json.loads(json_path.read_text())['ranking']['SR'] == ['Commas']
    note, = result.stderr.strip().splitlines()
    assert note.startswith('Could not write the analysis cache into {}: '.format(output))

    # A JSON file that cannot be written (its name is taken by a folder): printed scores, one line, status 1.
    taken = tmp_path / 'taken.json'
    taken.mkdir()
    result = run_command('pytracking_plugins.analysis.latot', [
        '--results', env.external['Commas'], '--output-dir', str(tmp_path / 'out'), '--no-report',
        '--json', str(taken)], env.settings)
    assert result.returncode == 1 and '1  Commas' in result.stdout
    error, = result.stderr.strip().splitlines()
    assert error.startswith('error: cannot write taken.json into {}: '.format(tmp_path))


def test_json_folder_must_exist_unless_inside_the_output_folder(env, tmp_path, capsys):
    missing = tmp_path / 'no' / 'such'
    with pytest.raises(SystemExit) as exit_info:
        latot.main(['--results', env.external['Commas'], '--output-dir', str(tmp_path / 'out'), '--no-report',
                    '--json', str(missing / 'x.json')])
    assert exit_info.value.code == 2 and not missing.exists()
    assert 'argument --json: the folder {} does not exist'.format(missing) in capsys.readouterr().err
    inside = tmp_path / 'out' / 'json' / 'x.json'
    assert latot.main(['--results', env.external['Commas'], '--output-dir', str(tmp_path / 'out'), '--no-report',
                       '--json', str(inside)]) == 0
    assert json.loads(inside.read_text())['ranking']['SR'] == ['Commas']


@pytest.mark.parametrize('args, message', [
    (['--label', 'X'], '--label names the --tracker or --results given just before it'),
    (['--tracker', 'a'], '--tracker takes NAME PARAMETER'),
    (['--tracker', 'a', 'b', '0', 'd'], "Run ids 'd'"),
    (['--tracker', 'a', 'b', '1-x'], "Run ids '1-x'"),
    ([], 'give at least one --tracker, --results or --results-root'),
    (['--results', '.', '--label', 'A', '--label', 'B'], '--label given twice'),
    (['--results', '.', '--dataset', 'otb', '--latot-path', '.'], 'apply to the LaTOT datasets only'),
])
def test_command_line_errors(args, message, capsys):
    assert latot.build_parser().parse_args(['--tracker', 'a', 'b', '0', '2-3']).sources[0]['run_ids'] == [0, 2, 3]
    with pytest.raises(SystemExit) as exit_info:
        latot.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# The cache --------------------------------------------------------------------------------------------------------

def _copy_results(env, tmp_path):
    folder = str(tmp_path / 'Mine')
    os.makedirs(folder)
    for name in TEST_NAMES:
        with open(os.path.join(env.external['Commas'], name + '.txt')) as f:
            text = f.read()
        with open(os.path.join(folder, name + '.txt'), 'w') as f:
            f.write(text)
    return folder


def test_cache_is_used_and_follows_every_change(env, tmp_path):
    folder = _copy_results(env, tmp_path)
    output = str(tmp_path / 'report')
    first = latot.evaluate([folder], 'latot_test', output_dir=output, verbose=False)
    cache_path = os.path.join(output, C.CACHE_FILE_NAME)
    cache = C.CurveCache.load(cache_path)
    (key, entry), = cache.entries.items()

    # Unchanged inputs are answered from the cache: a planted value comes back.
    cache.put(key, entry._replace(success=np.zeros_like(entry.success)))
    cache.save()
    assert latot.evaluate([folder], 'latot_test', output_dir=output, verbose=False).scores()['Mine']['SR'] == 0
    forced = latot.evaluate([folder], 'latot_test', output_dir=output, force_evaluation=True, verbose=False)
    assert forced.scores() == first.scores()

    # A result file changed in place (same size, same second): recomputed.
    path = os.path.join(folder, TEST_NAMES[3] + '.txt')
    lines = open(path).read().splitlines()
    x = lines[5].split(',')
    x[0] = '{:.2f}'.format(float(x[0]) + (5 if float(x[0]) < 50 else -5))
    if len(','.join(x)) != len(lines[5]):
        x[0] = x[0][:len(lines[5].split(',')[0])]
    lines[5] = ','.join(x)
    stat_before = os.stat(path)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.utime(path, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    changed = latot.evaluate([folder], 'latot_test', output_dir=output, verbose=False)
    assert changed.sequence_scores('Mine').SR[3] != first.sequence_scores('Mine').SR[3]
    assert changed.scores() == latot.evaluate([folder], 'latot_test', output_dir=output, force_evaluation=True,
                                              verbose=False).scores()

    # Another tracker adds an entry; the ground truth is part of every key (a different dataset view: new keys).
    latot.evaluate([folder, env.external['Spaces']], 'latot_test', output_dir=output, verbose=False)
    assert len(C.CurveCache.load(cache_path).entries) == 3
    assert not [n for n in os.listdir(output) if n.endswith('.tmp')]


@pytest.mark.parametrize('content', [b'not a cache', b'PK\x03\x04 truncated zip', 'npy', 'wrong format',
                                     'object array'])
def test_unreadable_cache_is_ignored_with_a_line(env, tmp_path, capsys, content):
    path = os.path.join(str(tmp_path), C.CACHE_FILE_NAME)
    if content == 'npy':
        with open(path, 'wb') as f:
            np.save(f, np.zeros(3))
    elif content == 'wrong format':
        with open(path, 'wb') as f:
            np.savez(f, format=np.array([1]), keys=np.array([], dtype='<U40'))
    elif content == 'object array':
        with open(path, 'wb') as f:
            np.savez(f, format=np.array([C.CACHE_FORMAT]), keys=np.array([{'a': 1}], dtype=object))
    else:
        with open(path, 'wb') as f:
            f.write(content)
    evaluation = latot.evaluate([env.external['Commas']], 'latot_test', output_dir=str(tmp_path))
    assert 0 < evaluation.scores()['Commas']['SR'] < 1
    assert 'Ignoring the analysis cache {}: '.format(path) in capsys.readouterr().err
    assert len(C.CurveCache.load(path).entries) == 1          # rewritten, valid


class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: a file appears if any code reads the cache with pickle."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_planted_pickle_never_runs(env, tmp_path):
    output = tmp_path / 'report'
    output.mkdir()
    marker = tmp_path / 'pwned'
    payload = pickle.dumps({'format': 1, 'entries': _Payload(str(marker))})
    for name in ('latot_eval_data.pkl', C.CACHE_FILE_NAME):      # the old cache path and the current one
        (output / name).write_bytes(payload)
    result = run_command('pytracking_plugins.analysis.latot', [
        '--results', env.external['Commas'], '--output-dir', str(output), '--no-plots'], env.settings)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert 'Ignoring the analysis cache {}'.format(output / C.CACHE_FILE_NAME) in result.stderr
    assert '1  Commas' in result.stdout
    assert len(C.CurveCache.load(str(output / C.CACHE_FILE_NAME)).entries) == 1
    evaluation = latot.evaluate([env.external['Commas']], 'latot_test', output_dir=str(output), verbose=False)
    assert 0 < evaluation.scores()['Commas']['SR'] < 1 and not marker.exists()


def _forge(path: str, change) -> None:
    """Rewrites the cache at ``path`` with ``change(key, curves) -> (key, curves, digest or None)`` applied to its
    entry, as someone editing the npz would (digest None: the old one is kept)."""
    cache = C.CurveCache.load(path)
    (key, curves), = cache.entries.items()
    new_key, forged, digest = change(key, curves)
    arrays = {'format': np.array([C.CACHE_FORMAT]), 'keys': np.array([new_key], dtype='<U40'),
              'digests': np.array([digest or C.entry_digest(key, curves)], dtype='<U40')}
    for field, value in forged._asdict().items():
        arrays['entry0_' + field] = np.asarray(value, dtype=np.int64 if field in C._COUNT_FIELDS else np.float64)
    with open(path, 'wb') as f:
        np.savez(f, **arrays)


FORGERIES = {
    # The case: valid shapes, SR 7.5, the digest recomputed too.
    'out of range': (lambda key, c: (key, c._replace(success=np.full_like(c.success, 7.5)), C.entry_digest(
        key, c._replace(success=np.full_like(c.success, 7.5)))), 'success value 7.5 outside [0, 1]'),
    'edited value': (lambda key, c: (key, c._replace(success=c.success * 0.5), None),
                     'its values do not match its digest'),
    'not frame counts': (lambda key, c: (key, c._replace(success=c.success * 0.999), C.entry_digest(
        key, c._replace(success=c.success * 0.999))), 'success values that are not frame counts of their sequences'),
    'partly NaN': (lambda key, c: (key, c._replace(precision=np.where(np.arange(51) == 3, np.nan, c.precision)),
                                   C.entry_digest(key, c._replace(precision=np.where(np.arange(51) == 3, np.nan,
                                                                                     c.precision)))),
                   'precision curve partly NaN'),
}


@pytest.mark.parametrize('forgery', sorted(FORGERIES))
def test_a_forged_cache_entry_is_recomputed_with_one_line(forgery, env, tmp_path):
    output = str(tmp_path / 'report')
    reference = latot.evaluate([env.external['Commas']], 'latot_test', output_dir=output, verbose=False)
    path = os.path.join(output, C.CACHE_FILE_NAME)
    change, reason = FORGERIES[forgery]
    _forge(path, change)
    result = run_command('pytracking_plugins.analysis.latot', [
        '--results', env.external['Commas'], '--output-dir', output, '--no-plots', '--json',
        str(tmp_path / 'scores.json')], env.settings)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        'Ignoring 1 of the 1 entries of the analysis cache {} (entry 0: {}); their scores are recomputed and the '
        'file rewritten'.format(path, reason)]
    with open(str(tmp_path / 'scores.json')) as f:
        assert json.load(f)['overall']['Commas']['SR'] == reference.scores()['Commas']['SR']
    assert len(C.CurveCache.load(path).entries) == 1                         # rewritten, valid


def test_a_cache_entry_for_other_frame_counts_is_not_used(env, tmp_path, capsys):
    """A key that matches, with values made for other denominators (a forged or foreign file): recomputed."""
    output = str(tmp_path / 'report')
    reference = latot.evaluate([env.external['Commas']], 'latot_test', output_dir=output, verbose=False)
    path = os.path.join(output, C.CACHE_FILE_NAME)

    def fewer_frames(key, curves):
        forged = curves._replace(num_valid=curves.num_valid * 2, precision=curves.precision / 2,
                                 norm_precision=curves.norm_precision / 2, success=curves.success / 2)
        return key, forged, C.entry_digest(key, forged)
    _forge(path, fewer_frames)
    capsys.readouterr()
    evaluation = latot.evaluate([env.external['Commas']], 'latot_test', output_dir=output, verbose=False)
    assert evaluation.scores() == reference.scores()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith('Ignoring entry ') and line.endswith(
        'of the analysis cache {}: it was made for other frame counts than these sequences have; its scores are '
        'recomputed'.format(path))


# Bad results ------------------------------------------------------------------------------------------------------

def test_missing_results_are_listed_unless_skipped(env, tmp_path):
    folder = _copy_results(env, tmp_path)
    for name in TEST_NAMES[10:14]:
        os.remove(os.path.join(folder, name + '.txt'))
    with pytest.raises(ResultsError) as error:
        latot.evaluate([folder, env.external['Spaces']], 'latot_test', output_dir=str(tmp_path), verbose=False)
    message = str(error.value)
    assert 'Mine: 4 of 165 sequences missing in {}: {}'.format(folder, ', '.join(TEST_NAMES[10:14])) in message
    assert 'Spaces' not in message and '--skip-missing' in message
    evaluation = latot.evaluate([folder, env.external['Spaces']], 'latot_test', output_dir=str(tmp_path),
                                skip_missing=True, verbose=False)
    assert evaluation.sequences == TEST_NAMES[:10] + TEST_NAMES[14:]        # left out for every tracker
    assert evaluation.to_dict()['dataset']['skipped_sequences'] == {'Mine': TEST_NAMES[10:14]}


@pytest.mark.parametrize('change, message', [
    (lambda lines: lines[:-1], r'{path}: \d+ boxes, but the sequence has \d+ frames'),
    (lambda lines: lines + ['1,2,3,4'], r'{path}: \d+ boxes, but the sequence has \d+ frames'),
    (lambda lines: lines[:2] + ['1,2,3'] + lines[3:], '{path}, line 3: expected four numbers x,y,w,h'),
    (lambda lines: lines[:2] + ['1,2,3,4,5'] + lines[3:], '{path}, line 3: expected four numbers x,y,w,h'),
    (lambda lines: lines[:4] + ['nan,nan,nan,nan'] + lines[5:], r'{path}, line 5: invalid box nan,nan,nan,nan'),
    (lambda lines: [''] + lines[:3] + ['1,2,-3,4'] + lines[4:], r'{path}, line 5: invalid box 1,2,-3,4'),
    (lambda lines: ['187.92,210.26,0,4.41'] + lines[1:],
     r'{path}, line 1: invalid first-frame box 187.92,210.26,0,4.41'),
    (lambda lines: ['', '0,0,0,0'] + lines[1:], r'{path}, line 2: invalid first-frame box 0,0,0,0'),
    # Python's float() reads '1_0' as 10 and other scripts' digits as numbers: neither is a box file's number.
    (lambda lines: lines[:2] + ['1_0,2,3,4'] + lines[3:], "{path}, line 3: expected four numbers x,y,w,h, got "
                                                          "'1_0,2,3,4'"),
    (lambda lines: lines[:2] + ['\u0661,2,3,4'] + lines[3:], '{path}, line 3: expected four numbers x,y,w,h'),
    # An empty line among the boxes: the count is off, and the message says where.
    (lambda lines: lines[:4] + [''] + lines[5:], r'{path}: \d+ boxes, but the sequence has \d+ frames \(one x,y,w,h '
                                                 r'line per frame is needed; line 5 is empty; write 0,0,0,0 for a '
                                                 r'frame without a box\)'),
])
def test_bad_result_files_name_file_and_line(env, tmp_path, change, message):
    folder = _copy_results(env, tmp_path)
    path = os.path.join(folder, TEST_NAMES[2] + '.txt')
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, 'w') as f:
        f.write('\n'.join(change(lines)) + '\n')
    with pytest.raises(ResultsError, match=message.format(path=path)):
        latot.evaluate([folder], 'latot_test', output_dir=str(tmp_path), verbose=False)


def test_a_result_path_that_is_no_file_is_named_with_what_it_is(env, tmp_path):
    """A folder, a symbolic link loop or a dangling link where a result file should be is not 'missing'."""
    folder = _copy_results(env, tmp_path)
    paths = [os.path.join(folder, name + '.txt') for name in TEST_NAMES[:3]]
    for path in paths:
        os.remove(path)
    os.mkdir(paths[0])
    os.symlink(paths[1], paths[1])
    os.symlink(str(tmp_path / 'nowhere.txt'), paths[2])
    with pytest.raises(ResultsError) as error:
        latot.evaluate([folder], 'latot_test', output_dir=str(tmp_path), skip_missing=True, verbose=False)
    assert str(error.value) == (
        "3 result paths exist but are no result file: {}: a folder, not a result file; {}: a symbolic link loop; "
        "{}: a symbolic link to {}, which does not exist (each must be the sequence's x,y,w,h text file)".format(
            paths[0], paths[1], paths[2], tmp_path / 'nowhere.txt'))
    result = run_command('pytracking_plugins.analysis.latot', ['--results', folder, '--output-dir',
                                                               str(tmp_path / 'report')], env.settings)
    assert result.returncode == 2 and result.stderr == 'error: {}\n'.format(error.value)


def test_a_result_path_that_is_a_pipe_is_named(env, tmp_path):
    folder = _copy_results(env, tmp_path)
    path = os.path.join(folder, TEST_NAMES[4] + '.txt')
    os.remove(path)
    os.mkfifo(path)                  # reading it would wait forever
    with pytest.raises(ResultsError, match="^1 result path exists but is no result file: {}: not a regular file "
                                           r"\(each must be".format(path)):
        latot.evaluate([folder], 'latot_test', output_dir=str(tmp_path), verbose=False)


@pytest.mark.parametrize('value', ['100000000', '1e8', '0', '-5', 'many'])
def test_bootstrap_resamples_are_bounded(value, env, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        latot.main(['--results', env.external['Commas'], '--bootstrap-resamples', value, '--output-dir',
                    str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "argument --bootstrap-resamples: {!r}: give a whole number from 1 to 100000 (default 1000)".format(value))
    with pytest.raises(ValueError, match=r'^bootstrap resamples 100000001: give a whole number from 1 to 100000'):
        latot.evaluate([env.external['Commas']], 'latot_test', output_dir=str(tmp_path),
                       bootstrap_resamples=100000001)


def test_names_that_are_not_utf8_work_end_to_end(env, tmp_path):
    """A results folder, an output folder and a JSON file whose names are not UTF-8, with plots, printing to a strict
    UTF-8 stream: the label shows U+FFFD, the paths keep their bytes, every file is written."""
    base = os.fsencode(str(tmp_path))
    results = os.fsdecode(base + b'/Res\xff')
    os.rename(_copy_results(env, tmp_path), results)
    output = os.fsdecode(base + b'/out\xfe')
    json_path = os.path.join(output, os.fsdecode(b's\xfd.json'))
    args = [sys.executable, '-c', _DRIVER, 'pytracking_plugins.analysis.latot', '--results', results,
            '--output-dir', output, '--json', json_path]
    for run in range(2):                                               # the second from the cache
        result = subprocess.run(args, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=300, env=dict(os.environ, LATOT_TEST_SETTINGS=json.dumps(env.settings),
                                                      MPLBACKEND='Agg', PYTHONIOENCODING='utf-8:strict'))
        assert result.returncode == 0, result.stderr.decode('utf-8', 'replace')
        assert result.stderr == b''
        assert '1  Res\ufffd ' in result.stdout.decode('utf-8', 'surrogateescape')
        assert b'  ' + os.fsencode(json_path) + b'\n' in result.stdout            # its bytes, as they are on disk
    with open(json_path) as f:
        exported = json.load(f)
    assert list(exported['overall']) == ['Res\ufffd']
    assert exported['trackers'][0]['results_dir'] == results
    assert {'success_plot.png', 'success_plot.pdf', 'report.md', C.CACHE_FILE_NAME} <= set(os.listdir(output))
    with open(os.path.join(output, 'report.md'), 'rb') as f:
        assert 'Res\ufffd'.encode('utf-8') in f.read()


def test_labels_must_be_unique(env, tmp_path):
    with pytest.raises(ResultsError, match='Two trackers share the label'):
        latot.evaluate([env.external['Commas'], ResultSource(env.external['Spaces'], 'Commas')], 'latot_test',
                       output_dir=str(tmp_path), verbose=False)


# Report pieces ----------------------------------------------------------------------------------------------------

def test_unavailable_attributes_are_reported(env, tmp_path):
    """A LaTOT root without flag files: SV/FM/OV derived, the other nine shown as unavailable everywhere."""
    root = str(tmp_path / 'plain')
    for name in TEST_NAMES[:6]:
        os.makedirs(os.path.join(root, name))
        for entry in ('img', name + '.txt'):
            os.symlink(os.path.join(env.root, name, entry), os.path.join(root, name, entry))
    evaluation = latot.evaluate([env.external['Commas']], 'latot_test', root=root, allow_missing=True,
                                output_dir=str(tmp_path), verbose=False)
    assert len(evaluation.sequences) == 6
    info = evaluation.to_dict()['per_attribute']
    assert info['IV']['available'] is False and 'no flag for 6 of 6 sequences' in info['IV']['reason']
    assert info['IV']['scores'] is None and info['FM']['available'] is True
    table = report.attribute_table(evaluation)
    assert table.splitlines()[2].split()[-9:] == ['n/a'] * 9
    written = report.write_report(evaluation, str(tmp_path / 'report'), plots=False)
    markdown = open(written[-1]).read()
    assert 'Unavailable attributes: IV CM MB BC SO PO FO AM LI' in markdown


# pytracking's own analysis on LaTOT -------------------------------------------------------------------------------

@pytest.mark.filterwarnings('ignore:__array_wrap__:DeprecationWarning')  # pytracking's radar, torch + numpy 2
def test_pytracking_analysis_tools_work_on_latot(env, capsys):
    import matplotlib
    matplotlib.use('Agg')
    from pytracking.analysis.plot_results import (plot_attributes_radar, plot_results, print_results,
                                                  print_results_per_attribute)
    from pytracking.evaluation import get_dataset, get_dataset_attributes

    dataset = get_dataset('latot_test')
    print_results(trackers(), dataset, 'pyt_latot', plot_types=('success', 'prec', 'norm_prec'),
                  exclude_invalid_frames=True)
    plot_results(trackers(), dataset, 'pyt_latot', plot_types=('success', 'prec', 'norm_prec'),
                 exclude_invalid_frames=True)
    plot_dir = os.path.join(env.settings['result_plot_path'], 'pyt_latot')
    assert {'success_plot.pdf', 'precision_plot.pdf', 'norm_precision_plot.pdf'} <= set(os.listdir(plot_dir))

    attribute_sets = get_dataset_attributes('latot_test')
    long_sets = get_dataset_attributes('latot_test', mode='long')
    ours = latot.evaluate(trackers(), 'latot_test', report_name='ours', verbose=False)
    assert list(attribute_sets) == list(ours.attribute_scores())
    assert list(long_sets) == [latot_attributes.LONG_NAMES[a] for a in attribute_sets]
    scores, names = print_results_per_attribute(trackers(), attribute_sets, 'pyt_latot_attributes',
                                                exclude_invalid_frames=True)
    plot_attributes_radar(trackers(), attribute_sets, 'pyt_latot_attributes', exclude_invalid_frames=True)
    assert os.path.isfile(os.path.join(env.settings['result_plot_path'], 'pyt_latot_attributes', 'radar_plot.pdf'))
    assert names == ['latot_toy_default_000', 'latot_toy_default_001', 'latot_toy_default_002']
    printed = capsys.readouterr().out
    assert all(a in printed for a in attribute_sets)
    # pytracking's AUC equals our SR, but for its IoU-above-1 rounding at t = 1 (at most the first frame).
    slack = 1 / 21 / min(len(env.gt[n]) for n in TEST_NAMES) + 1e-6
    for attribute, values in scores.items():
        for label, value in zip(names, values.tolist()):
            assert abs(value / 100 - ours.attribute_scores()[attribute][label]['SR']) <= slack


def test_results_root_errors_and_attribute_maps(env, tmp_path):
    with pytest.raises(ResultsError, match='Results root .* has no tracker folders'):
        latot.folder_sources_under(str(tmp_path))
    with pytest.raises(ResultsError, match='Results root .* does not exist'):
        latot.folder_sources_under(str(tmp_path / 'absent'))
    from pytracking.evaluation import get_dataset
    sequences = list(get_dataset('latot_test'))[:4]
    flags = {s.name: latot_attributes.unavailable() for s in sequences[:3]}
    with pytest.raises(ValueError, match='attributes: no flags for 1 of 4 sequences'):
        latot.evaluate([env.external['Commas']], sequences, attributes=flags, output_dir=str(tmp_path))
    flags[sequences[3].name] = dict(latot_attributes.unavailable(), FO=True)
    for name in flags:
        flags[name]['FO'] = flags[name]['FO'] or False
    evaluation = latot.evaluate([env.external['Commas']], sequences, attributes=flags, output_dir=str(tmp_path))
    assert evaluation.dataset_name == 'latot' and list(evaluation.attribute_scores()) == ['FO']
    assert evaluation.attribute_counts()['FO'] == 1 and not evaluation.attributes['IV'].available
