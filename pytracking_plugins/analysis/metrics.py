"""LaTOT's three scores (paper, section V-A), vectorised over whole benchmarks, under the paper protocol and the
toolkit protocol (:func:`evaluate_toolkit_concatenated`; the two side by side in :mod:`.protocol`).

Per sequence, then averaged over sequences: PR, the share of frames with a centre error of at most 5 px; NPR, the
area under the normalised precision curve (error per axis over the ground truth's size, t = 0, 0.01, ..., 0.50); SR,
the area under the success curve (IoU > t, t = 0, 0.05, ..., 1). Geometry and frame rules are pytracking's
(``extract_results.py``, ``calc_seq_err_robust``), but invalid ground truth (not all of ``x, y, w, h > 0``, or not
visible) is left out of all three scores alike, where pytracking's NPR counts it a success. The first frame counts,
with the ground truth as prediction; a predicted box without size takes the previous one; a sequence without a valid
frame has no score (NaN). Comparisons allow 1e-9, so that two-decimal edge cases land where the definition puts them.
"""
from typing import List, NamedTuple, Optional, Sequence

import numpy as np

from ltr_plugins.common.boxes import box_present

PR_THRESHOLD = 5.0
# Exact decimal thresholds (k / 100 rather than an accumulated arange step).
PRECISION_THRESHOLDS = np.arange(51, dtype=np.float64)                 # px: the precision plot's x axis
NORM_PRECISION_THRESHOLDS = np.arange(51, dtype=np.float64) / 100.0    # 0, 0.01, ..., 0.50
SUCCESS_THRESHOLDS = np.arange(21, dtype=np.float64) / 20.0            # 0, 0.05, ..., 1
PR_INDEX = int(np.flatnonzero(PRECISION_THRESHOLDS == PR_THRESHOLD)[0])
TOLERANCE = 1e-9
# The toolkit protocol ranks normalised precision at 0.20: rank index 21 of 0:0.01:0.5, as the LaTOT authors
# answered (ZYB0726/MKDNet issue #7).
TOOLKIT_NPR_THRESHOLD = 0.20
TOOLKIT_NPR_INDEX = int(np.flatnonzero(NORM_PRECISION_THRESHOLDS == TOOLKIT_NPR_THRESHOLD)[0])
TOOLKIT_EPS = float(np.finfo(np.float64).eps)    # MATLAB's eps: eval_tracker's denominator, plot_draw_save's filter


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """``start:step:stop`` with MATLAB's values, which are not ``start + k * step``: the first half counts up from
    ``start``, the second half back from ``stop`` and the middle is ``(start + stop) / 2`` (the algorithm MathWorks
    publishes as ``colonop.m``; general case, ``step > 0``). ``0:0.05:1`` thus holds 0.15000000000000002 and
    0.6499999999999999 where ``k / 20`` gives 0.15 and 0.65: an IoU between them passes one and not the other."""
    tolerance = 2.0 * TOOLKIT_EPS * max(abs(start), abs(stop))
    count = int(np.floor((stop - start) / step + 0.5))        # MATLAB's round, for a positive quotient
    if start + count * step - stop > tolerance:
        count -= 1
    last = start + count * step
    if last - stop > -tolerance:
        last = stop
    values = np.empty(count + 1)
    half = np.arange(count // 2 + 1, dtype=np.float64)
    values[:count // 2 + 1] = start + half * step
    values[count - np.arange(count // 2 + 1)] = last - half * step
    if count % 2 == 0:
        values[count // 2] = (start + last) / 2
    return values


# The LaSOT toolkit's thresholds (eval_tracker.m): 0:0.05:1 by MATLAB's colon; 0:50; (0:50) / 100 (k / 100, as
# NORM_PRECISION_THRESHOLDS).
TOOLKIT_SUCCESS_THRESHOLDS = matlab_colon(0.0, 0.05, 1.0)


class Curves(NamedTuple):
    """Per-sequence curves: shares of the sequence's valid frames, NaN rows for sequences without valid frames."""
    precision: np.ndarray         # [S, 51] centre error <= PRECISION_THRESHOLDS (px)
    norm_precision: np.ndarray    # [S, 51] normalised centre error <= NORM_PRECISION_THRESHOLDS
    success: np.ndarray           # [S, 21] IoU > SUCCESS_THRESHOLDS
    num_valid: np.ndarray         # [S] frames in each sequence's denominator (paper: valid frames; toolkit: all)
    repaired: np.ndarray          # [S] predictions the toolkit protocol replaced (paper protocol: 0)
    cut_lines: np.ndarray         # [S] result lines beyond the annotation the toolkit protocol cut (paper: 0)


class Scores(NamedTuple):
    PR: np.ndarray
    NPR: np.ndarray
    SR: np.ndarray
    NPR_AUC: Optional[np.ndarray] = None     # toolkit protocol: the normalised precision's area (its NPR: at 0.20)


def valid_ground_truth(gt: np.ndarray, visible: Optional[np.ndarray] = None) -> np.ndarray:
    """pytracking's rule: a present box (finite, positive size) whose x and y are > 0 too, and the target visible
    when visibility is given."""
    with np.errstate(invalid='ignore'):
        valid = box_present(gt) & (gt[:, 0] > 0.0) & (gt[:, 1] > 0.0)
    if visible is not None:
        valid &= np.asarray(visible, dtype=bool)
    return valid


def check_predictions(pred: np.ndarray) -> None:
    """Raises ValueError for NaN / infinite values or negative sizes (the readers report file and line first)."""
    bad = ~np.all(np.isfinite(pred), axis=1) | np.any(pred[:, 2:] < 0, axis=1)
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        raise ValueError('invalid prediction at frame {} (1-based): {} -- NaN, infinite or negative size'.format(
            frame + 1, pred[frame].tolist()))


def _prepare(pred: np.ndarray, gt: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """First frame of every sequence := ground truth; zero-size predictions := the previous frame's prediction."""
    pred = pred.copy()
    pred[starts] = gt[starts]
    has_box = (pred[:, 2] != 0) & (pred[:, 3] != 0)
    has_box[starts] = True      # carry-forward never crosses into the previous sequence
    last_box = np.maximum.accumulate(np.where(has_box, np.arange(len(pred)), 0))
    return pred[last_box]


def frame_errors(pred: np.ndarray, gt: np.ndarray):
    """Per-frame (centre error, normalised centre error, IoU) of prepared predictions; garbage where gt invalid."""
    # Column-wise on contiguous copies: each operation then streams one array, about twice as fast as on [N, 4].
    px, py, pw, ph = np.ascontiguousarray(pred.T)
    gx, gy, gw, gh = np.ascontiguousarray(gt.T)
    dx = (px + 0.5 * pw) - (gx + 0.5 * gw)
    dy = (py + 0.5 * ph) - (gy + 0.5 * gh)
    with np.errstate(divide='ignore', invalid='ignore'):
        centre = np.sqrt(dx * dx + dy * dy)
        nx, ny = dx / gw, dy / gh
        normalised = np.sqrt(nx * nx + ny * ny)
        iw = np.minimum(px + pw, gx + gw) - np.maximum(px, gx)
        ih = np.minimum(py + ph, gy + gh) - np.maximum(py, gy)
        intersection = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
        iou = intersection / (pw * ph + gw * gh - intersection)
    return centre, normalised, iou


def _per_sequence_counts(bins: np.ndarray, sequence_ids: np.ndarray, num_sequences: int, num_bins: int):
    flat = np.bincount(sequence_ids * num_bins + bins, minlength=num_sequences * num_bins)
    return flat.reshape(num_sequences, num_bins)


def _curves(centre: np.ndarray, normalised: np.ndarray, iou: np.ndarray, sequence_ids: np.ndarray,
            num_sequences: int, denominator: np.ndarray, tolerance: float = TOLERANCE,
            success_thresholds: np.ndarray = SUCCESS_THRESHOLDS):
    """(precision, norm_precision, success) curves of the counted frames (``sequence_ids`` says whose each is),
    as shares of ``denominator`` per sequence (NaN rows where it is 0); comparisons with ``tolerance``."""
    # Each frame falls in one bin: the first threshold it meets (precision) or the number of thresholds it beats
    # (success). Per-sequence histograms of the bins, accumulated, are the curves: O(frames), no loops.
    def precision_curve(errors, thresholds):
        first_met = np.searchsorted(thresholds, errors - tolerance, side='left')
        counts = _per_sequence_counts(first_met, sequence_ids, num_sequences, len(thresholds) + 1)
        return np.cumsum(counts, axis=1)[:, :-1]

    beaten = np.searchsorted(success_thresholds, iou - tolerance, side='left')
    counts = _per_sequence_counts(beaten, sequence_ids, num_sequences, len(success_thresholds) + 1)
    counted = np.bincount(sequence_ids, minlength=num_sequences)
    success = counted[:, None] - np.cumsum(counts, axis=1)[:, :-1]
    with np.errstate(invalid='ignore', divide='ignore'):
        share = np.where(denominator > 0, denominator, np.nan)[:, None]
        return (precision_curve(centre, PRECISION_THRESHOLDS) / share,
                precision_curve(normalised, NORM_PRECISION_THRESHOLDS) / share, success / share)


def _check_shapes(pred: np.ndarray, gt: np.ndarray, lengths: np.ndarray) -> None:
    if pred.shape != gt.shape or pred.ndim != 2 or pred.shape[1] != 4 or lengths.sum() != len(gt):
        raise ValueError('predictions {} and ground truth {} must both be [sum(lengths) = {}, 4]'.format(
            pred.shape, gt.shape, int(lengths.sum())))
    if np.any(lengths <= 0):
        raise ValueError('every sequence needs at least one frame')


def evaluate_concatenated(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, lengths: Sequence[int]) -> Curves:
    """Curves of many sequences whose frames are concatenated (``lengths`` frames each), in one vectorised pass.

    ``valid`` is the ground-truth validity (:func:`valid_ground_truth`); predictions are checked here too.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    _check_shapes(pred, gt, lengths)
    check_predictions(pred)
    num_sequences = len(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    centre, normalised, iou = frame_errors(_prepare(pred, gt, starts), gt)
    sequence_ids = np.repeat(np.arange(num_sequences), lengths)[valid]
    num_valid = np.bincount(sequence_ids, minlength=num_sequences)
    precision, norm_precision, success = _curves(centre[valid], normalised[valid], iou[valid], sequence_ids,
                                                 num_sequences, num_valid)
    none = np.zeros(num_sequences, dtype=np.int64)
    return Curves(precision, norm_precision, success, num_valid, none, none.copy())


# The LaSOT evaluation toolkit's semantics ---------------------------------------------------------------------------

def toolkit_bad_predictions(pred: np.ndarray, gt: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Frames whose prediction the toolkit replaces by the previous frame's: any NaN, or width or height <= 0, on a
    frame (not a sequence's first) whose ground truth has no NaN (``calc_seq_err_robust``)."""
    with np.errstate(invalid='ignore'):
        bad = np.isnan(pred).any(axis=1) | (pred[:, 2] <= 0) | (pred[:, 3] <= 0)
    bad &= ~np.isnan(gt).any(axis=1)
    bad[starts] = False
    return bad


def toolkit_frame_errors(pred: np.ndarray, gt: np.ndarray):
    """Per-frame (centre error, normalised centre error, overlap) in the toolkit's own arithmetic, operation for
    operation (``calc_seq_err_robust.m``, ``calc_rect_int.m``): centres ``x + (w - 1) / 2``, each divided by the
    ground truth's size before the difference when normalised; the overlap from right = left + w - 1, widths
    ``min(right) - max(left) + 1``, MATLAB's ``min``/``max`` ignoring a NaN. A box with itself can so get an overlap
    of 1 + 2e-16, which the threshold 1 counts."""
    px, py, pw, ph = np.ascontiguousarray(pred.T)
    gx, gy, gw, gh = np.ascontiguousarray(gt.T)
    with np.errstate(divide='ignore', invalid='ignore'):
        pcx, pcy = px + (pw - 1.0) / 2.0, py + (ph - 1.0) / 2.0
        gcx, gcy = gx + (gw - 1.0) / 2.0, gy + (gh - 1.0) / 2.0
        dx, dy = pcx - gcx, pcy - gcy
        centre = np.sqrt(dx * dx + dy * dy)
        ndx, ndy = pcx / gw - gcx / gw, pcy / gh - gcy / gh
        normalised = np.sqrt(ndx * ndx + ndy * ndy)
        p_right, p_top = px + pw - 1.0, py + ph - 1.0
        g_right, g_top = gx + gw - 1.0, gy + gh - 1.0
        iw = np.fmax(0.0, np.fmin(p_right, g_right) - np.fmax(px, gx) + 1.0)
        ih = np.fmax(0.0, np.fmin(p_top, g_top) - np.fmax(py, gy) + 1.0)
        intersection = iw * ih
        overlap = intersection / (pw * ph + gw * gh - intersection)
    return centre, normalised, overlap


def evaluate_toolkit_concatenated(pred: np.ndarray, gt: np.ndarray, absent: np.ndarray,
                                  lengths: Sequence[int]) -> Curves:
    """Curves of concatenated sequences as the LaSOT evaluation toolkit computes them (``utils/eval_tracker.m``,
    ``utils/calc_seq_err_robust.m``, ``utils/plot_draw_save.m``), with LaTOT's thresholds:

    - the toolkit's arithmetic (:func:`toolkit_frame_errors`), its thresholds (:data:`TOOLKIT_SUCCESS_THRESHOLDS`)
      and exact comparisons (no tolerance); shares are counts / (frames + eps), as ``eval_tracker.m`` divides;
    - a bad prediction (:func:`toolkit_bad_predictions`) takes the previous frame's prediction, in frame order and
      *before* the first frame is replaced by the ground truth (frame 2 may inherit the raw first line);
    - frames flagged absent are left out of the numerator; the denominator is every annotation row;
    - ground truth that is not all-positive (``x, y, w, h > 0``; NaN is not): centre errors -1 (a success at every
      precision threshold), overlap -1 (a failure at every success threshold);
    - a NaN error or overlap (a NaN prediction inherited from the first line) is a failure;
    - a sequence whose curve is 0 at every threshold gets a NaN row for that curve (left out of that tracker's
      mean, as ``plot_draw_save`` drops it).

    ``repaired`` counts the replaced predictions per sequence (``cut_lines`` is the caller's: 0 here).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    absent = np.asarray(absent, dtype=bool)
    lengths = np.asarray(lengths, dtype=np.int64)
    _check_shapes(pred, gt, lengths)
    if absent.shape != (len(gt),):
        raise ValueError('{} absent flags for {} frames'.format(absent.shape, len(gt)))
    num_sequences = len(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    sequence_of_frame = np.repeat(np.arange(num_sequences), lengths)
    bad = toolkit_bad_predictions(pred, gt, starts)
    last_good = np.maximum.accumulate(np.where(~bad, np.arange(len(pred)), 0))
    pred = pred[last_good]
    pred[starts] = gt[starts]
    centre, normalised, iou = toolkit_frame_errors(pred, gt)
    with np.errstate(invalid='ignore'):
        gt_positive = np.all(gt > 0, axis=1)
    centre[~gt_positive] = -1.0
    normalised[~gt_positive] = -1.0
    iou[~gt_positive | np.isnan(iou)] = -1.0      # a NaN overlap passes no threshold (NaN > t is false)
    counted = ~absent
    precision, norm_precision, success = _curves(centre[counted], normalised[counted], iou[counted],
                                                 sequence_of_frame[counted], num_sequences,
                                                 lengths + TOOLKIT_EPS, tolerance=0.0,
                                                 success_thresholds=TOOLKIT_SUCCESS_THRESHOLDS)
    for curve in (precision, norm_precision, success):
        curve[~(curve.sum(axis=1) > TOOLKIT_EPS)] = np.nan
    return Curves(precision, norm_precision, success, lengths.copy(),
                  np.bincount(sequence_of_frame[bad], minlength=num_sequences).astype(np.int64),
                  np.zeros(num_sequences, dtype=np.int64))


def evaluate_sequences(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                       visibles: Optional[Sequence[Optional[np.ndarray]]] = None) -> Curves:
    """Curves of a list of sequences (predictions, ground truth and optional visibility per sequence)."""
    if len(preds) != len(gts):
        raise ValueError('{} predictions for {} ground truths'.format(len(preds), len(gts)))
    if visibles is None:
        visibles = [None] * len(gts)
    for index, (p, g) in enumerate(zip(preds, gts)):
        if np.shape(p) != np.shape(g):
            raise ValueError('sequence {}: prediction shape {} differs from ground truth shape {}'.format(
                index, np.shape(p), np.shape(g)))
    gts = [np.asarray(g, dtype=np.float64).reshape(-1, 4) for g in gts]
    valid = np.concatenate([valid_ground_truth(g, v) for g, v in zip(gts, visibles)])
    return evaluate_concatenated(np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 4) for p in preds]),
                                 np.concatenate(gts), valid, [len(g) for g in gts])


def scores_from_curves(curves: Curves) -> Scores:
    """Per-sequence PR (precision at 5 px), NPR (mean of the normalised curve), SR (mean of the success curve)."""
    return Scores(PR=curves.precision[:, PR_INDEX], NPR=curves.norm_precision.mean(axis=1),
                  SR=curves.success.mean(axis=1))


def toolkit_scores_from_curves(curves: Curves) -> Scores:
    """The toolkit protocol's per-sequence scores: PR at 5 px, NPR at 0.20, SR and NPR_AUC the curves' means."""
    return Scores(PR=curves.precision[:, PR_INDEX], NPR=curves.norm_precision[:, TOOLKIT_NPR_INDEX],
                  SR=curves.success.mean(axis=1), NPR_AUC=curves.norm_precision.mean(axis=1))


def toolkit_overall(curves: Curves, mask: Optional[np.ndarray] = None) -> dict:
    """The toolkit protocol's scores of one tracker over the (masked) sequences, in ``plot_draw_save.m``'s order:
    each curve averaged over the sequences whose row is kept (not 0 everywhere), then read at its threshold (PR at
    5 px, NPR at 0.20) or averaged over the thresholds (SR, NPR_AUC); sums are sequential, as a loop adds."""
    def mean_curve(curve: np.ndarray) -> np.ndarray:
        rows = curve if mask is None else curve[mask]
        rows = rows[~np.isnan(rows).any(axis=1)]
        if not len(rows):
            return np.full(curve.shape[1], np.nan)
        return np.add.accumulate(rows, axis=0)[-1] / len(rows)

    def mean(values: np.ndarray) -> float:
        return float(np.add.accumulate(values)[-1] / len(values))

    precision, norm, success = (mean_curve(c) for c in (curves.precision, curves.norm_precision, curves.success))
    return {'PR': float(precision[PR_INDEX]), 'NPR': float(norm[TOOLKIT_NPR_INDEX]), 'SR': mean(success),
            'NPR_AUC': mean(norm)}


def average(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean over sequences, leaving out sequences without a score (NaN); NaN when none has one."""
    values = np.asarray(values, dtype=np.float64)
    counts = np.sum(~np.isnan(values), axis=axis)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(counts > 0, np.nansum(values, axis=axis) / np.maximum(counts, 1), np.nan)


def sequence_scores(pred: np.ndarray, gt: np.ndarray, visible: Optional[np.ndarray] = None) -> Scores:
    """PR, NPR and SR of one sequence (scalars in 0-1 arrays of shape [1])."""
    return scores_from_curves(evaluate_sequences([pred], [gt], [visible]))


__all__: List[str] = ['PR_THRESHOLD', 'PRECISION_THRESHOLDS', 'NORM_PRECISION_THRESHOLDS', 'SUCCESS_THRESHOLDS',
                      'TOLERANCE', 'Curves', 'Scores', 'valid_ground_truth', 'check_predictions', 'frame_errors',
                      'evaluate_concatenated', 'evaluate_toolkit_concatenated', 'toolkit_bad_predictions',
                      'evaluate_sequences', 'scores_from_curves', 'toolkit_scores_from_curves', 'average',
                      'sequence_scores', 'TOOLKIT_NPR_THRESHOLD', 'TOOLKIT_NPR_INDEX', 'TOOLKIT_SUCCESS_THRESHOLDS',
                      'matlab_colon', 'toolkit_frame_errors', 'toolkit_overall']
