"""LaTOT's PR / NPR / SR against hand computations, and against pytracking's own ``extract_results``."""
import os

import numpy as np
import pytest

from conftest import pytracking_settings
from pytracking_plugins.analysis import metrics

SQUARE = [10.0, 10.0, 10.0, 10.0]   # centre (15, 15)


def _scores(pred, gt, visible=None):
    s = metrics.sequence_scores(np.asarray(pred, float), np.asarray(gt, float), visible)
    return float(s.PR[0]), float(s.NPR[0]), float(s.SR[0])


def test_hand_computed_sequence():
    """Seven frames; expected values counted by hand (see the comments)."""
    gt = [SQUARE,            # f0: first frame -> prediction replaced: error 0, IoU 1
          SQUARE,            # f1: centre off by (3, 4) = 5 px exactly
          SQUARE,            # f2: no box -> f1's box again
          [0, 0, 0, 0],      # f3: target absent -> excluded
          [0, 5, 10, 10],    # f4: x == 0 -> invalid by pytracking's rule -> excluded
          SQUARE,            # f5: box twice as wide: centre off by 5 px, IoU exactly 0.5
          SQUARE]            # f6: centre off by 6 px, IoU 0.25
    pred = [[50, 50, 3, 3], [13, 14, 10, 10], [0, 0, 0, 0], [1, 1, 5, 5], [1, 6, 10, 10], [10, 10, 20, 10],
            [16, 10, 10, 10]]
    pr, npr, sr = _scores(pred, gt)
    # Valid frames f0 f1 f2 f5 f6. PR: errors 0, 5, 5, 5, 6 -> 4 of 5 within 5 px (the edge included).
    assert pr == pytest.approx(4 / 5, abs=1e-15)
    # NPR: normalised errors 0, 0.5, 0.5, 0.5, 0.6 -> thresholds met out of 51: 51, 1, 1, 1, 0.
    assert npr == pytest.approx(54 / (51 * 5), abs=1e-15)
    # SR: IoU 1, 42/158, 42/158, 0.5, 0.25 -> thresholds beaten (IoU > t) out of 21: 20, 6, 6, 10, 5.
    assert sr == pytest.approx(47 / (21 * 5), abs=1e-15)


def test_curves_of_the_hand_computed_sequence():
    curves = metrics.evaluate_sequences([np.array([[0, 0, 5, 5], [13, 14, 10, 10]], float)],
                                        [np.array([SQUARE, SQUARE], float)])
    assert curves.num_valid.tolist() == [2]
    # Precision: frame 0 meets every threshold, frame 1 (5 px) from 5 px on.
    assert curves.precision[0, :5].tolist() == [0.5] * 5 and curves.precision[0, 5:].tolist() == [1.0] * 46
    assert curves.norm_precision[0, :50].tolist() == [0.5] * 50 and curves.norm_precision[0, 50] == 1.0
    # Success: IoU 1 beats t < 1 only; IoU 42/158 = 0.266 beats t <= 0.25.
    assert curves.success[0].tolist() == [1.0] * 6 + [0.5] * 14 + [0.0]


def test_pr_edge_survives_binary_rounding():
    """Two-decimal boxes exactly 5 px apart whose float distance exceeds 5 still count (and 5.01 px does not)."""
    found = 0
    for x_cents in range(1, 2000, 13):
        for y_cents in range(1, 3000, 37):
            x, y = x_cents / 100.0, y_cents / 100.0
            gt = np.array([[x, y, 6.41, 8.13]] * 2)
            pred = gt.copy()
            pred[1, :2] = round(x + 3.0, 2), round(y + 4.0, 2)
            naive = np.hypot(*((pred[1, :2] + pred[1, 2:] / 2) - (gt[1, :2] + gt[1, 2:] / 2)))
            if naive > 5.0 and found < 20:
                found += 1
                assert _scores(pred, gt)[0] == 1.0
                pred[1, 1] = round(y + 4.01, 2)
                assert _scores(pred, gt)[0] == 0.5
    assert found == 20, 'too few binary-rounding cases in the grid: widen it'


def test_success_is_strict_and_threshold_one_is_never_beaten():
    gt = np.array([SQUARE, SQUARE])
    identical = _scores(gt.copy(), gt)[2]
    assert identical == pytest.approx(20 / 21)       # IoU 1 beats 0..0.95, not 1
    half = np.array([SQUARE, [10, 10, 20, 10]], float)
    curves = metrics.evaluate_sequences([half], [gt])
    assert curves.success[0, 10] == 0.5              # IoU == 0.5 is not > 0.5
    assert curves.success[0, 9] == 1.0               # but is > 0.45


def test_no_box_keeps_the_previous_box_and_the_first_frame_is_the_ground_truth():
    gt = np.array([SQUARE] * 4)
    pred = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [40, 40, 10, 10], [7, 7, 0, 3]], float)
    curves = metrics.evaluate_sequences([pred], [gt])
    # Frames 0 and 1 score as the ground truth (frame 1 keeps frame 0's replaced box); frame 3 keeps frame 2's.
    assert curves.precision[0, 0] == 0.5
    assert curves.success[0, 0] == 0.5


def test_no_box_never_carries_across_sequences():
    gt = [np.array([SQUARE] * 2), np.array([SQUARE] * 2)]
    pred = [np.array([SQUARE, [40, 40, 10, 10]]), np.array([[60, 60, 10, 10], [0, 0, 0, 0]])]
    curves = metrics.evaluate_sequences(pred, gt)
    assert curves.success[:, 0].tolist() == [0.5, 1.0]


def test_invisible_frames_are_excluded():
    gt = np.array([SQUARE] * 3)
    pred = np.array([SQUARE, [40, 40, 10, 10], SQUARE], float)
    assert _scores(pred, gt, visible=np.array([True, False, True])) == (1.0, 1.0, pytest.approx(20 / 21))


def test_sequences_weigh_the_same_and_unscorable_ones_are_left_out():
    gt = [np.array([SQUARE] * 2), np.array([SQUARE] * 10), np.array([[0, 0, 0, 0]] * 3)]
    far = [40, 40, 10, 10]
    pred = [np.array([SQUARE, far], float), np.array([SQUARE] * 10, float), np.zeros((3, 4))]
    scores = metrics.scores_from_curves(metrics.evaluate_sequences(pred, gt))
    assert scores.PR.tolist()[:2] == [0.5, 1.0] and np.isnan(scores.PR[2])
    assert float(metrics.average(scores.PR)) == 0.75          # not the frame-pooled 11/12


@pytest.mark.parametrize('bad', [[np.nan, 1, 2, 2], [1, 1, -2, 2], [1, np.inf, 2, 2]])
def test_invalid_predictions_are_errors(bad):
    with pytest.raises(ValueError, match='frame 2'):
        metrics.sequence_scores(np.array([SQUARE, bad], float), np.array([SQUARE, SQUARE]))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match='shape'):
        metrics.evaluate_sequences([np.zeros((3, 4))], [np.zeros((2, 4))])


# Against pytracking's extract_results ------------------------------------------------------------------------------

@pytest.fixture
def pytracking_env(use_pytracking_settings, workspace):
    """pytracking's env_settings() for this test only (the same settings run_script would give a subprocess)."""
    return use_pytracking_settings(pytracking_settings(workspace))


def _random_sequences(rng, count, absent):
    from pytracking.evaluation.data import Sequence
    sequences, predictions = [], []
    for k in range(count):
        n = int(rng.integers(5, 60))
        centre = 200 + np.cumsum(rng.normal(0, 3, (n, 2)), axis=0)
        size = rng.uniform(3, 20, (n, 2))
        gt = np.round(np.hstack([centre - size / 2, size]), 2)
        if absent:
            gt[rng.random(n) < 0.15] = 0.0
            gt[0] = np.round([190, 190, 8, 6], 2)
        pred = np.round(gt + np.hstack([rng.normal(0, 3, (n, 2)), rng.normal(0, 1, (n, 2))]), 2)
        pred[:, 2:] = np.abs(pred[:, 2:])
        pred[rng.random(n) < 0.1] = 0.0
        pred[:2] = gt[0]         # pytracking carries zero boxes before replacing frame 0; keep frames 0-1 boxed
        visible = (gt[:, 2] > 0) & (gt[:, 3] > 0)
        sequences.append(Sequence('seq{}'.format(k), ['f'] * n, 'latot', gt, target_visible=visible))
        predictions.append(pred)
    return sequences, predictions


@pytest.mark.parametrize('absent', [False, True])
def test_curves_match_pytracking_extract_results(pytracking_env, absent):
    """Same curves as pytracking (exclude_invalid_frames=True), with two documented differences only.

    - success at t = 1: pytracking's IoU of a box with itself can round to 1 + 2e-16 > 1, so it sometimes counts
      the first frame there; no IoU exceeds 1 here;
    - normalised precision with absent frames: pytracking counts them as hits (error -1); they are excluded here.
    """
    from pytracking.analysis.extract_results import extract_results
    from pytracking.evaluation import Tracker
    from pytracking_plugins.analysis.scoring import evaluate

    rng = np.random.default_rng(3 if absent else 4)
    sequences, predictions = _random_sequences(rng, 25, absent)
    tracker = Tracker('latot_metrics_test', 'default')
    os.makedirs(tracker.results_dir)
    for sequence, pred in zip(sequences, predictions):
        np.savetxt(os.path.join(tracker.results_dir, sequence.name + '.txt'), pred, fmt='%.2f', delimiter='\t')

    theirs = extract_results([tracker], sequences, 'cmp', exclude_invalid_frames=True, verbose=False)
    ours = evaluate([tracker], sequences, report_name='cmp', verbose=False).curves['latot_metrics_test_default']

    np.testing.assert_allclose(np.array(theirs['ave_success_rate_plot_center'])[:, 0], ours.precision, atol=1e-6)
    np.testing.assert_allclose(np.array(theirs['ave_success_rate_plot_overlap'])[:, 0, :20], ours.success[:, :20],
                               atol=1e-6)
    assert np.all(ours.success[:, 20] == 0)
    norm = np.array(theirs['ave_success_rate_plot_center_norm'])[:, 0]
    if absent:
        assert np.all(norm >= ours.norm_precision - 1e-6) and np.any(norm > ours.norm_precision + 1e-3)
    else:
        np.testing.assert_allclose(norm, ours.norm_precision, atol=1e-6)
