"""The toolkit protocol (the LaSOT evaluation toolkit's semantics with LaTOT's thresholds) against hand-worked
numbers, every difference from the paper protocol, absent flags, repairs, and the bootstrap intervals.

Expected numbers are counted by hand in the comments; a frame-by-frame plain-Python transcription of the toolkit's
rules (:func:`toolkit_reference`) checks the vectorised code on random data with every quirk to 1e-9.
"""
import json
import math
import os
import re
import sys

import numpy as np
import pytest

from conftest import pytracking_settings
from ltr_plugins import latot_data, synthetic
from pytracking_plugins.analysis import latot, metrics, uncertainty
from pytracking_plugins.analysis.protocol import Protocol
from pytracking_plugins.analysis.results import ResultsError
from ltr_plugins.common.boxes import box_present
from pytracking_plugins.environment import pytracking_local_module

SQUARE = [10.0, 10.0, 10.0, 10.0]   # centre (15, 15)
NAN = [float('nan')] * 4


def toolkit(pred, gt, absent=None):
    gt = np.asarray(gt, float)
    absent = np.zeros(len(gt), bool) if absent is None else np.asarray(absent, bool)
    curves = metrics.evaluate_toolkit_concatenated(np.asarray(pred, float), gt, absent, [len(gt)])
    scores = metrics.toolkit_scores_from_curves(curves)
    return {m: float(getattr(scores, m)[0]) for m in ('PR', 'NPR', 'SR', 'NPR_AUC')}, curves


def paper(pred, gt, visible=None):
    scores = metrics.sequence_scores(np.asarray(pred, float), np.asarray(gt, float), visible)
    return {m: float(getattr(scores, m)[0]) for m in ('PR', 'NPR', 'SR')}


# The paper's hand-computed sequence (tests/test_latot_metrics.py), under both protocols.
GT = [SQUARE,            # f0: first frame -> the ground truth: error 0, IoU 1
      SQUARE,            # f1: centre off by (3, 4) = 5 px, normalised 0.5, IoU 42/158
      SQUARE,            # f2: no box -> f1's box (both protocols)
      [0, 0, 0, 0],      # f3: target absent, written 0,0,0,0
      [0, 5, 10, 10],    # f4: x == 0 (clipped at the left border)
      SQUARE,            # f5: twice as wide: 5 px, normalised 0.5, IoU 0.5
      SQUARE]            # f6: 6 px, normalised 0.6, IoU 0.25
PRED = [[50, 50, 3, 3], [13, 14, 10, 10], [0, 0, 0, 0], [1, 1, 5, 5], [1, 6, 10, 10], [10, 10, 20, 10],
        [16, 10, 10, 10]]


def test_ground_truth_not_all_positive_and_the_denominator():
    """Toolkit: f3 and f4 stay in the denominator (7), with centre error -1 (hits at every precision threshold) and
    overlap -1 (misses at every success threshold). Paper: both excluded (denominator 5)."""
    scores, curves = toolkit(PRED, GT)
    # PR at 5 px: f0 f1 f2 f3 f4 f5 hit, f6 (6 px) misses -> 6/7 (paper: 4/5).
    assert scores['PR'] == pytest.approx(6 / 7, abs=1e-15)
    # NPR at 0.20: f0 (0), f3, f4 (-1) hit; 0.5, 0.5, 0.5, 0.6 miss -> 3/7.
    assert scores['NPR'] == pytest.approx(3 / 7, abs=1e-15)
    # NPR_AUC: thresholds met of 51: 51, 0, 0, 51, 51, 1, 0 -> 154/357 (paper's NPR: 54/255). f1 and f2 are 0.5
    # on paper, but 0.5000000000000001 in the toolkit's arithmetic (17.5/10 - 14.5/10 = 0.30000000000000004), which
    # t = 0.50 does not count; f5's 1.95 - 1.45 is 0.5 and counts.
    assert scores['NPR_AUC'] == pytest.approx(154 / 357, abs=1e-15)
    # SR: thresholds beaten of 21: 20, 6, 6, 0, 0, 10, 5 -> 47/147 (paper: 47/105).
    assert scores['SR'] == pytest.approx(47 / 147, abs=1e-15)
    assert curves.num_valid.tolist() == [7] and curves.repaired.tolist() == [1]      # f2
    assert paper(PRED, GT) == pytest.approx({'PR': 4 / 5, 'NPR': 54 / 255, 'SR': 47 / 105}, abs=1e-15)


def test_absent_flags_leave_the_numerator_only():
    """f3 flagged absent: a failure at every threshold under the toolkit (denominator still 7); the paper protocol
    excludes it (it already did: its box is 0,0,0,0), and flagging a valid frame excludes that one too."""
    absent = [False, False, False, True, False, False, False]
    scores, _ = toolkit(PRED, GT, absent)
    assert scores['PR'] == pytest.approx(5 / 7, abs=1e-15)
    assert scores['NPR'] == pytest.approx(2 / 7, abs=1e-15)
    assert scores['NPR_AUC'] == pytest.approx(103 / 357, abs=1e-15)     # 154 less f3's 51
    assert scores['SR'] == pytest.approx(47 / 147, abs=1e-15)
    assert paper(PRED, GT, ~np.asarray(absent)) == paper(PRED, GT)
    # Flag f6 (the 6 px frame) instead: toolkit PR unchanged (f6 missed anyway), SR loses its 5 -> 42/147;
    # paper: denominator 4, PR 4/4, SR (20 + 6 + 6 + 10) / 84.
    absent = [False] * 6 + [True]
    scores, _ = toolkit(PRED, GT, absent)
    assert (scores['PR'], scores['SR']) == pytest.approx((6 / 7, 42 / 147), abs=1e-15)
    visible = ~np.asarray(absent)
    assert paper(PRED, GT, visible)['PR'] == 1.0
    assert paper(PRED, GT, visible)['SR'] == pytest.approx(42 / 84, abs=1e-15)


def test_repairs_happen_before_the_first_frame_is_replaced():
    """Frame 2 inherits the raw first line (0,0,0,0, which the paper protocol refuses), not the ground truth."""
    gt = [SQUARE, SQUARE, SQUARE]
    pred = [[0, 0, 0, 0],           # f0: replaced by the ground truth for scoring only
            NAN,                    # f1: NaN -> takes f0's *raw* box 0,0,0,0: 21.2 px off, IoU 0
            [13, 14, 10, 10]]       # f2: 5 px, normalised 0.5, IoU 42/158
    scores, curves = toolkit(pred, gt)
    assert curves.repaired.tolist() == [1]
    assert scores['PR'] == pytest.approx(2 / 3, abs=1e-15)          # f0, f2
    assert scores['NPR'] == pytest.approx(1 / 3, abs=1e-15)         # f0
    # f1's error is sqrt(15^2 + 15^2) = 21.21 px: met from 22 px on (29 of 51 thresholds) -- its curve shows it.
    assert curves.precision[0, 21] == pytest.approx(2 / 3) and curves.precision[0, 22] == pytest.approx(1.0)
    assert scores['SR'] == pytest.approx((20 + 0 + 6) / 63, abs=1e-15)
    # Had the ground truth been carried (the paper protocol's order), frame 2 would score IoU 1 and PR 3/3.
    with pytest.raises(ValueError, match='frame 2'):
        paper(pred, gt)


@pytest.mark.parametrize('bad', [[13, 14, -10, 10], [13, 14, 10, 0], [np.nan, 14, 10, 10]])
def test_nan_and_non_positive_sizes_take_the_previous_prediction(bad):
    """A chain of bad predictions keeps the last good one: f2 and f3 both become f1's box (5 px, IoU 42/158)."""
    gt = [SQUARE] * 4
    scores, curves = toolkit([SQUARE, [13, 14, 10, 10], bad, bad], gt)
    assert curves.repaired.tolist() == [2]
    assert scores['PR'] == 1.0 and scores['NPR'] == pytest.approx(1 / 4, abs=1e-15)
    assert scores['SR'] == pytest.approx((20 + 3 * 6) / 84, abs=1e-15)


def test_no_repair_where_the_ground_truth_has_nan():
    """The toolkit repairs only where the ground truth row has no NaN: f1 keeps its NaN (its error is -1 anyway),
    and f2's zero box then inherits that NaN, a failure at every threshold."""
    gt = [SQUARE, NAN, SQUARE]
    scores, curves = toolkit([SQUARE, NAN, [0, 0, 0, 0]], gt)
    assert curves.repaired.tolist() == [1]
    assert scores['PR'] == pytest.approx(2 / 3, abs=1e-15) and scores['NPR'] == pytest.approx(2 / 3, abs=1e-15)
    assert scores['NPR_AUC'] == pytest.approx(2 / 3, abs=1e-15)
    assert scores['SR'] == pytest.approx(20 / 63, abs=1e-15)


def test_sequences_with_an_all_zero_curve_leave_that_mean_only():
    """Sequence B: its first ground truth has y == 0 (overlap -1) and its second frame is missed, so its success
    curve is 0 everywhere: left out of SR's mean, while its precision (the -1 frame hits) stays in. Sequence C is
    flagged absent throughout: left out of every mean."""
    a_gt, a_pred = [SQUARE, SQUARE], [SQUARE, [13, 14, 10, 10]]
    b_gt, b_pred = [[10, 0, 10, 10], SQUARE], [[10, 0, 10, 10], [60, 60, 10, 10]]
    c_gt, c_pred = [SQUARE, SQUARE], [SQUARE, SQUARE]
    curves = metrics.evaluate_toolkit_concatenated(np.asarray(a_pred + b_pred + c_pred, float),
                                                   np.asarray(a_gt + b_gt + c_gt, float),
                                                   np.array([0, 0, 0, 0, 1, 1], bool), [2, 2, 2])
    scores = metrics.toolkit_scores_from_curves(curves)
    assert np.isnan(curves.success[1]).all() and not np.isnan(curves.precision[1]).any()
    assert np.isnan(curves.precision[2]).all() and np.isnan(curves.success[2]).all()
    # A: PR 2/2, SR (20 + 6)/42; B: PR 1/2 (the -1 frame).
    assert float(metrics.average(scores.PR)) == pytest.approx((1.0 + 0.5) / 2, abs=1e-15)
    assert float(metrics.average(scores.SR)) == pytest.approx(26 / 42, abs=1e-15)


# 0:0.05:1 as MATLAB holds it (its colon counts the second half down from 1; 0:0.1:1 likewise holds
# 0.30000000000000004): the values eval_tracker.m compares overlaps with.
MATLAB_OVERLAP_THRESHOLDS = [0.0, 0.05, 0.1, 0.15000000000000002, 0.2, 0.25, 0.30000000000000004, 0.35000000000000003,
                             0.4, 0.45, 0.5, 0.55, 0.6, 0.6499999999999999, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]
EPS = 2.0 ** -52


def _matlab_min(a, b):      # MATLAB's min / max ignore a NaN argument
    return b if math.isnan(a) else a if math.isnan(b) else min(a, b)


def _matlab_max(a, b):
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


def calc_rect_int(a, b):
    """calc_rect_int.m for one pair of rows, statement by statement."""
    left_a, bottom_a = a[0], a[1]
    right_a, top_a = left_a + a[2] - 1, bottom_a + a[3] - 1
    left_b, bottom_b = b[0], b[1]
    right_b, top_b = left_b + b[2] - 1, bottom_b + b[3] - 1
    tmp = (_matlab_max(0.0, _matlab_min(right_a, right_b) - _matlab_max(left_a, left_b) + 1)
           * _matlab_max(0.0, _matlab_min(top_a, top_b) - _matlab_max(bottom_a, bottom_b) + 1))
    area_a, area_b = a[2] * a[3], b[2] * b[3]
    return tmp / (area_a + area_b - tmp)


def toolkit_reference(pred, gt, absent):
    """The LaSOT toolkit on one sequence in plain Python floats (IEEE doubles, as MATLAB's), statement by statement:
    calc_seq_err_robust.m (repairs, first frame, absent rows removed, centres, overlaps), eval_tracker.m (counts
    over MATLAB's thresholds, / (len_all + eps)). Returns the three curves (None where plot_draw_save drops the
    row) and the number of repaired predictions."""
    n = len(gt)
    results = [list(p) for p in pred[:n]]
    repaired = 0
    for i in range(1, n):
        r, r_anno = results[i], gt[i]
        if (any(math.isnan(v) for v in r) or r[2] <= 0 or r[3] <= 0) and not any(math.isnan(v) for v in r_anno):
            results[i] = results[i - 1]
            repaired += 1
    rect_mat = results
    rect_mat[0] = list(gt[0])
    rows = [(rect_mat[i], gt[i]) for i in range(n) if not absent[i]]
    errors, norm_errors, coverage = [], [], []
    for r, g in rows:
        center = (r[0] + (r[2] - 1) / 2, r[1] + (r[3] - 1) / 2)
        center_gt = (g[0] + (g[2] - 1) / 2, g[1] + (g[3] - 1) / 2)
        if all(v > 0 for v in g):
            dx, dy = center[0] - center_gt[0], center[1] - center_gt[1]
            errors.append(math.sqrt(dx * dx + dy * dy))
            nx, ny = center[0] / g[2] - center_gt[0] / g[2], center[1] / g[3] - center_gt[1] / g[3]
            norm_errors.append(math.sqrt(nx * nx + ny * ny))
            coverage.append(calc_rect_int(r, g))
        else:
            errors.append(-1.0)
            norm_errors.append(-1.0)
            coverage.append(-1.0)
    len_all = n + EPS
    precision = [sum(e <= k for e in errors) / len_all for k in range(51)]
    normalised = [sum(e <= k / 100 for e in norm_errors) / len_all for k in range(51)]
    success = [sum(o > t for o in coverage) / len_all for t in MATLAB_OVERLAP_THRESHOLDS]
    kept = [curve if sum(curve) > EPS else None for curve in (precision, normalised, success)]
    return kept, repaired


def plot_draw_save(rows):
    """plot_draw_save.m's score of one tracker: the kept rows averaged per threshold, then the curve's mean (AUC) or
    its value at a threshold."""
    rows = [row for row in rows if row is not None]
    bb = [sum(column) / len(rows) for column in zip(*rows)]
    return bb


def reference_scores(per_sequence):
    """``{'PR', 'NPR', 'SR', 'NPR_AUC'}`` of one tracker from :func:`toolkit_reference`'s curves."""
    precision, normalised, success = (plot_draw_save([curves[k] for curves in per_sequence]) for k in range(3))
    return {'PR': precision[5], 'NPR': normalised[20], 'SR': sum(success) / len(success),
            'NPR_AUC': sum(normalised) / len(normalised)}


def reference_sequence_scores(curves):
    precision, normalised, success = curves
    return dict(PR=precision and precision[5], NPR=normalised and normalised[20],
                NPR_AUC=normalised and sum(normalised) / 51, SR=success and sum(success) / 21)


def quirky_sequence(rng, n):
    gt = np.round(np.column_stack([rng.uniform(0, 60, (n, 2)), rng.uniform(2, 15, (n, 2))]), 2)
    gt[rng.random(n) < 0.1] = 0.0                           # absent targets written 0,0,0,0
    gt[rng.random(n) < 0.05, 0] = 0.0                       # clipped at the left border
    pred = np.round(gt + rng.normal(0, 3, (n, 4)), 2)
    pred[rng.random(n) < 0.05] = np.nan
    pred[rng.random(n) < 0.05, 2] *= -1
    pred[rng.random(n) < 0.05, 3] = 0.0
    absent = rng.random(n) < 0.1
    return pred, gt, absent


def test_vectorised_toolkit_equals_the_frame_by_frame_rules():
    rng = np.random.default_rng(7)
    sequences = [quirky_sequence(rng, int(n)) for n in rng.integers(1, 60, size=40)]
    sequences.append((np.zeros((3, 4)), np.zeros((3, 4)), np.zeros(3, bool)))      # every frame not all-positive
    sequences.append((np.ones((2, 4)), np.ones((2, 4)), np.ones(2, bool)))         # every frame absent
    curves = metrics.evaluate_toolkit_concatenated(np.concatenate([s[0] for s in sequences]),
                                                   np.concatenate([s[1] for s in sequences]),
                                                   np.concatenate([s[2] for s in sequences]),
                                                   [len(s[1]) for s in sequences])
    for index, (pred, gt, absent) in enumerate(sequences):
        expected, repaired = toolkit_reference(pred.tolist(), gt.tolist(), absent.tolist())
        assert curves.repaired[index] == repaired
        for kind, reference in zip(('precision', 'norm_precision', 'success'), expected):
            got = getattr(curves, kind)[index]
            if reference is None:
                assert np.isnan(got).all(), (index, kind)
            else:
                assert got.tolist() == reference, (index, kind)          # bit for bit


# Absent flags on disk ---------------------------------------------------------------------------------------------

def test_read_absent_flags_forms_and_errors(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'absent'))
    os.makedirs(os.path.join(root, 'bird1'))
    assert latot_data.read_absent_flags(root, 'bird1', 3) is None
    with open(os.path.join(root, 'absent', 'bird1.txt'), 'w') as f:
        f.write('0\n1\n0\n')
    assert latot_data.read_absent_flags(root, 'bird1', 3).tolist() == [False, True, False]
    with open(os.path.join(root, 'bird1', 'absent.txt'), 'w') as f:
        f.write('0,1,0\n')
    assert latot_data.read_absent_flags(root, 'bird1', 3).tolist() == [False, True, False]
    with pytest.raises(latot_data.LaTOTFormatError, match='bird1.txt: 3 absent flags, but .*bird1.txt has 2 boxes'):
        latot_data.read_absent_flags(root, 'bird1', 2)
    with open(os.path.join(root, 'bird1', 'absent.txt'), 'w') as f:
        f.write('0 0 0')
    with pytest.raises(latot_data.LaTOTFormatError, match='differ; keep one'):
        latot_data.read_absent_flags(root, 'bird1', 3)
    with open(os.path.join(root, 'bird1', 'absent.txt'), 'w') as f:
        f.write('0 2 0')
    with pytest.raises(latot_data.LaTOTFormatError, match=r"absent.txt: absent flags must be 0 or 1, got '2'"):
        latot_data.read_absent_flags(root, 'bird1', 3)


# End to end on LaTOT-layout data ------------------------------------------------------------------------------------

NAMES = latot_data.split_sequence_names('test')[:4]


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
    """Four sequences with absent flags (three in the toolkit's folder, one beside its annotation), a clean results
    folder and one with every quirk the toolkit repairs."""
    base = str(tmp_path_factory.mktemp('toolkit'))
    root = os.path.join(base, 'latot')
    synthetic.write_dataset(root, names=NAMES, num_frames=(20, 30), image_size=(64, 48), target_size=(4, 10),
                            seed=3, jobs=1)
    rng = np.random.default_rng(5)
    gts, absent = {}, {}
    os.makedirs(os.path.join(root, 'absent'))
    for index, name in enumerate(NAMES):
        gt = latot_data.read_sequence_annotation(root, name)
        gt[2] = 0.0                                           # an unflagged 0,0,0,0 frame
        gt[3, 1] = 0.0                                        # y == 0
        np.savetxt(latot_data.annotation_path(root, name), gt, fmt='%.2f', delimiter=',')
        flags = ~box_present(gt)
        flags[2] = False
        flags[rng.choice(np.arange(4, len(gt)), 2, replace=False)] = True
        path = os.path.join(root, name, 'absent.txt') if index == 3 else os.path.join(root, 'absent', name + '.txt')
        np.savetxt(path, flags.astype(int), fmt='%d')
        gts[name], absent[name] = gt, flags
    clean, quirky = os.path.join(base, 'Clean'), os.path.join(base, 'Quirky')
    os.makedirs(clean)
    os.makedirs(quirky)
    predictions = {}
    for name in NAMES:
        gt = gts[name]
        pred = np.round(np.where(box_present(gt)[:, None], gt, SQUARE) + rng.normal(0, 2, gt.shape) * [1, 1, 0, 0],
                        2)
        np.savetxt(os.path.join(clean, name + '.txt'), pred, fmt='%.2f', delimiter=',')
        bad = pred.copy()
        bad[0] = 0.0                                          # a raw first line without a box
        bad[1] = np.nan
        bad[5, 2] = -bad[5, 2]
        if name == NAMES[0]:
            bad = np.vstack([bad, bad[-2:]])                  # two lines too many
        with open(os.path.join(quirky, name + '.txt'), 'w') as f:
            f.write('\n'.join(','.join('nan' if np.isnan(v) else '{:.2f}'.format(v) for v in box) for box in bad))
        predictions[name] = {'Clean': pred, 'Quirky': bad}
    return dict(base=base, root=root, gts=gts, absent=absent, clean=clean, quirky=quirky, predictions=predictions,
                settings=pytracking_settings(os.path.join(base, 'workspace'), latot_path=root))


def _env(monkeypatch, settings):
    module = pytracking_local_module(settings)
    monkeypatch.setitem(sys.modules, module.__name__, module)


def test_dataset_exposes_absent_flags_as_target_visible(layout, monkeypatch):
    _env(monkeypatch, layout['settings'])
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset
    for sequence in LaTOTDataset('test', allow_missing=True).get_sequence_list():
        expected = box_present(layout['gts'][sequence.name]) & ~layout['absent'][sequence.name]
        assert np.asarray(sequence.target_visible).tolist() == expected.tolist()


def test_toolkit_command_gives_the_toolkit_numbers(layout, monkeypatch, tmp_path, capsys):
    _env(monkeypatch, layout['settings'])
    json_path = str(tmp_path / 'toolkit.json')
    status = latot.main(['--dataset', 'latot_test', '--allow-missing-sequences', '--protocol', 'toolkit',
                         '--results', layout['clean'], '--results', layout['quirky'],
                         '--output-dir', str(tmp_path / 'report'), '--json', json_path, '--no-plots'])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert err.splitlines() == [
        "Warning: Quirky: the toolkit protocol replaced 8 prediction(s) in 4 sequence(s) by the previous frame's (NaN "
        'or width/height <= 0), in {0}: {1}.txt (2 frames), {2}.txt (2 frames), {3}.txt (2 frames), {4}.txt (2 '
        'frames); and cut 1 result file(s) longer than the annotation (2 line(s)), in {0}: {1}.txt (2 lines)'.format(
            layout['quirky'], *NAMES)]
    assert 'Clean:' not in err and 'Warning' not in out
    with open(json_path) as f:
        scores = json.load(f)
    assert scores['protocol']['protocol'] == 'toolkit'
    quirky_files = [os.path.join(layout['quirky'], name + '.txt') for name in NAMES]
    assert scores['repairs']['Quirky'] == {'frames_repaired': 8, 'sequences_repaired': 4, 'files_cut': 1,
                                           'lines_cut': 2, 'repaired_files': dict.fromkeys(quirky_files, 2),
                                           'cut_files': {quirky_files[0]: 2}}
    for label in ('Clean', 'Quirky'):
        per_sequence = [toolkit_reference(layout['predictions'][n][label].tolist(), layout['gts'][n].tolist(),
                                          layout['absent'][n].tolist())[0] for n in NAMES]
        assert scores['overall'][label] == dict(reference_scores(per_sequence), rank=scores['overall'][label]['rank'])
    assert len(scores['paired_comparisons']['NPR_AUC']) == 1
    report = open(tmp_path / 'report' / 'report.md').read()
    assert 'Protocol: **toolkit**' in report and 'NPR_AUC' in report and '### Repaired results' in report
    header = [line for line in out.splitlines() if line.startswith('#  Tracker')][0]
    assert header.split() == ['#', 'Tracker', 'PR', 'NPR', 'SR', 'NPR_AUC']


def test_both_protocols_in_one_json(layout, monkeypatch, tmp_path, capsys):
    _env(monkeypatch, layout['settings'])
    json_path = str(tmp_path / 'both.json')
    status = latot.main(['--dataset', 'latot_test', '--allow-missing-sequences', '--protocol', 'both',
                         '--results', layout['clean'], '--output-dir', str(tmp_path / 'report'), '--json', json_path,
                         '--no-plots', '--bootstrap-resamples', '50'])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.count('± half the width') == 2 and 'LaTOT protocol (paper)' in out and 'LaSOT-toolkit semantics' in out
    with open(json_path) as f:
        exported = json.load(f)['protocols']
    assert sorted(exported) == ['paper', 'toolkit'] and exported['toolkit']['bootstrap']['resamples'] == 50
    paper_only = latot.evaluate([layout['clean']], 'latot_test', allow_missing=True, use_cache=False, verbose=False)
    assert exported['paper']['overall']['Clean'] == dict(paper_only.scores()['Clean'], rank=1)
    assert 'Protocol: **toolkit**' in open(tmp_path / 'report' / 'toolkit_protocol' / 'report.md').read()
    assert 'Protocol: **paper**' in open(tmp_path / 'report' / 'report.md').read()


def test_paper_protocol_keeps_its_errors_and_its_numbers(layout, monkeypatch, tmp_path):
    _env(monkeypatch, layout['settings'])
    with pytest.raises(ResultsError, match=re.escape(os.path.join(layout['quirky'], NAMES[0] + '.txt')) +
                       r': \d+ boxes, but the sequence has \d+ frames'):
        latot.evaluate([layout['quirky']], 'latot_test', allow_missing=True, use_cache=False, verbose=False)
    evaluation = latot.evaluate([layout['clean']], 'latot_test', allow_missing=True, use_cache=False, verbose=False)
    assert evaluation.metrics == ('PR', 'NPR', 'SR')
    visible = [box_present(layout['gts'][n]) & ~layout['absent'][n] for n in NAMES]
    expected = metrics.scores_from_curves(metrics.evaluate_sequences(
        [layout['predictions'][n]['Clean'] for n in NAMES], [layout['gts'][n] for n in NAMES], visible))
    for metric in ('PR', 'NPR', 'SR'):
        assert evaluation.scores()['Clean'][metric] == float(metrics.average(getattr(expected, metric)))
    # The same folder under the toolkit differs (absent and 0,0,0,0 frames count), and caches apart.
    cache_dir = str(tmp_path / 'cache')
    toolkit_evaluation = latot.evaluate([layout['clean']], 'latot_test', allow_missing=True, output_dir=cache_dir,
                                        protocol='toolkit', verbose=False)
    paper_evaluation = latot.evaluate([layout['clean']], 'latot_test', allow_missing=True, output_dir=cache_dir,
                                      verbose=False)
    assert paper_evaluation.scores() == evaluation.scores()
    assert toolkit_evaluation.scores()['Clean']['PR'] != evaluation.scores()['Clean']['PR']
    # The repair counts come back from the cache with the curves.
    first = latot.evaluate([layout['quirky']], 'latot_test', allow_missing=True, output_dir=cache_dir,
                           protocol='toolkit', verbose=False)
    cached = latot.evaluate([layout['quirky']], 'latot_test', allow_missing=True, output_dir=cache_dir,
                            protocol='toolkit', verbose=False)
    quirky_files = [os.path.join(layout['quirky'], name + '.txt') for name in NAMES]
    assert cached.repairs == first.repairs == {'Quirky': {
        'frames_repaired': 8, 'sequences_repaired': 4, 'files_cut': 1, 'lines_cut': 2,
        'repaired_files': dict.fromkeys(quirky_files, 2), 'cut_files': {quirky_files[0]: 2}}}
    assert cached.scores() == first.scores()
    with pytest.raises(ValueError, match="Unknown protocol 'matlab'"):
        latot.evaluate([layout['clean']], 'latot_test', allow_missing=True, protocol='matlab')


# The bootstrap --------------------------------------------------------------------------------------------------

def test_resampled_means_by_hand():
    """Two resamples of three sequences, counted by hand; a NaN sequence is left out of its tracker's mean."""
    counts = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    values = np.array([[0.2, 0.5, 0.8], [0.1, np.nan, 0.4]])
    means = uncertainty.resampled_means(values, counts)
    assert means.ravel().tolist() == pytest.approx([0.3, 0.8, 0.1, 0.4], abs=1e-15)
    drawn = uncertainty.resample_counts(5, 200, seed=1)
    assert drawn.shape == (200, 5) and (drawn.sum(axis=1) == 5).all()


def test_bootstrap_is_seeded_and_covers_the_estimate():
    rng = np.random.default_rng(0)
    values = np.clip(rng.normal([[0.6], [0.55], [0.3]], 0.2, (3, 80)), 0, 1)
    values[1, :5] = np.nan
    labels = ['A', 'B', 'C']
    first = uncertainty.Uncertainty(labels, values, uncertainty.resample_counts(80, 1000, seed=4))
    again = uncertainty.Uncertainty(labels, values, uncertainty.resample_counts(80, 1000, seed=4))
    other = uncertainty.Uncertainty(labels, values, uncertainty.resample_counts(80, 1000, seed=5))
    assert first.intervals() == again.intervals() and first.intervals() != other.intervals()
    for i, label in enumerate(labels):
        low, high = first.intervals()[label]
        estimate = float(metrics.average(values[i]))
        assert low < estimate < high and 0.0 < high - low < 0.2
    itself = first.compare('B', 'B')
    assert (itself.difference, itself.interval, itself.wins_a, itself.wins_b, itself.ties) == (0.0, (0.0, 0.0), 0,
                                                                                               0, 75)
    a_c = first.compare('A', 'C')
    assert a_c.difference == pytest.approx(float(np.mean(values[0]) - np.mean(values[2])), abs=1e-12)
    assert a_c.interval[0] > 0 and a_c.wins_a + a_c.wins_b + a_c.ties == 80
    assert a_c.wins_a == int(np.sum(values[0] > values[2]))


def test_intervals_in_the_table_and_json(layout, monkeypatch):
    _env(monkeypatch, layout['settings'])
    evaluation = latot.evaluate([layout['clean'], layout['quirky']], 'latot_test', allow_missing=True,
                                use_cache=False, protocol='toolkit', verbose=False, bootstrap_resamples=300,
                                bootstrap_seed=2)
    assert evaluation.protocol is Protocol.TOOLKIT
    table = latot.overall_table(evaluation)
    row = [line for line in table.splitlines() if 'Clean' in line][0]
    low, high = evaluation.intervals()['Clean']['SR']
    assert '{:.3f} ± {:.3f}'.format(evaluation.scores()['Clean']['SR'], (high - low) / 2) in row
    exported = evaluation.to_dict()
    assert exported['bootstrap']['resamples'] == 300 and exported['bootstrap']['seed'] == 2
    assert exported['confidence_intervals']['Clean']['SR'] == [low, high]
    pair = exported['paired_comparisons']['SR'][0]
    assert (pair['a'], pair['b']) == ('Clean', 'Quirky') and pair['wins_a'] + pair['wins_b'] + pair['ties'] == 4


# The toolkit's arithmetic ------------------------------------------------------------------------------------------

def test_matlab_colon_thresholds():
    assert metrics.TOOLKIT_SUCCESS_THRESHOLDS.tolist() == MATLAB_OVERLAP_THRESHOLDS
    assert metrics.matlab_colon(0.0, 0.1, 1.0)[3] == 0.30000000000000004           # MATLAB's (0:0.1:1)(4)
    assert metrics.matlab_colon(0.0, 1.0, 50.0).tolist() == list(range(51))


def _first_boxes_above_one(count):
    """Two-decimal boxes (inside a 64x48 frame) whose overlap with themselves is above 1 in calc_rect_int.m."""
    found = []
    for x, w in ((x / 100, w / 100) for x in range(101, 3000, 37) for w in range(201, 1500, 53)):
        box = [x, round(x + 1.13, 2), w, round(w + 0.71, 2)]
        if calc_rect_int(box, box) > 1.0:
            found.append(box)
        if len(found) == count:
            return found
    raise AssertionError('no such box')


def test_toolkit_protocol_equals_the_toolkit_where_an_identical_box_overlaps_above_one(tmp_path, monkeypatch,
                                                                                       capsys):
    """First frames whose box, scored against itself, gives MATLAB an overlap of 1 + ulp: the toolkit counts them at
    the threshold 1, and so does the toolkit protocol -- its scores equal the toolkit's statement-by-statement
    transcription exactly; the paper protocol (IoU exactly 1, not above 1) does not count them."""
    names = NAMES[:3]
    root = str(tmp_path / 'latot')
    synthetic.write_dataset(root, names=names, num_frames=12, image_size=(64, 48), target_size=(4, 10), seed=4,
                            jobs=1)
    rng = np.random.default_rng(11)
    results = str(tmp_path / 'Tracker')
    os.makedirs(results)
    truth, predictions = {}, {}
    for name, first in zip(names, _first_boxes_above_one(len(names))):
        gt = latot_data.read_sequence_annotation(root, name)
        gt[0] = first
        gt[1] = first            # the tracker reports the same box on frame 2 too: 1 + ulp there as well
        np.savetxt(latot_data.annotation_path(root, name), gt, fmt='%.2f', delimiter=',')
        pred = np.round(gt + rng.normal(0, 1, gt.shape) * [1, 1, 0, 0], 2)
        pred[1] = first
        np.savetxt(os.path.join(results, name + '.txt'), pred, fmt='%.2f', delimiter=',')
        truth[name], predictions[name] = latot_data.read_sequence_annotation(root, name), pred
    _env(monkeypatch, pytracking_settings(str(tmp_path / 'workspace'), latot_path=root))
    json_path = str(tmp_path / 'toolkit.json')
    assert latot.main(['--dataset', 'latot_test', '--allow-missing-sequences', '--protocol', 'toolkit', '--results',
                       results, '--output-dir', str(tmp_path / 'report'), '--json', json_path, '--no-plots']) == 0
    capsys.readouterr()
    with open(json_path) as f:
        overall = json.load(f)['overall']['Tracker']
    per_sequence = [toolkit_reference(predictions[n].tolist(), truth[n].tolist(), [False] * len(truth[n]))[0]
                    for n in names]
    assert all(curves[2][20] == 2 / 12 for curves in per_sequence)         # two frames above 1 in each sequence
    assert overall == dict(reference_scores(per_sequence), rank=1)          # exactly the toolkit's numbers
    paper = latot.evaluate([results], 'latot_test', allow_missing=True, use_cache=False, verbose=False)
    assert all(curves.tolist()[20] == 0.0 for curves in paper.curves['Tracker'].success)
    toolkit = latot.evaluate([results], 'latot_test', allow_missing=True, use_cache=False, verbose=False,
                             protocol='toolkit')
    assert toolkit.curves['Tracker'].success[:, 20].tolist() == [2 / 12] * 3
