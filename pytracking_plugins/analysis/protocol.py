"""The two LaTOT protocols as data: which one, its scores, and the description stored with every JSON export.

- ``paper`` (the default): the paper's text (section V-A), with pytracking's frame rules
  (:func:`metrics.evaluate_concatenated`);
- ``toolkit``: the LaSOT evaluation toolkit's semantics, from which the LaTOT authors' MATLAB toolkit, and so the
  numbers in the paper's tables, derive (:func:`metrics.evaluate_toolkit_concatenated`), with LaTOT's thresholds.
"""
from enum import Enum
from typing import Dict, Tuple, Union

from pytracking_plugins.analysis import metrics as definitions

# Part of every cache key: bump it when a definition changes, so that no score computed the old way is reused.
PROTOCOL_VERSION = 3        # 3: the toolkit protocol in the toolkit's own arithmetic


class Protocol(str, Enum):
    PAPER = 'paper'
    TOOLKIT = 'toolkit'

    @classmethod
    def parse(cls, value: Union[str, 'Protocol']) -> 'Protocol':
        try:
            return cls(value)
        except ValueError:
            raise ValueError("Unknown protocol {!r}: choose 'paper' or 'toolkit'".format(value)) from None

    @property
    def metrics(self) -> Tuple[str, ...]:
        """The scores it reports; the toolkit protocol adds the normalised precision's area (NPR_AUC)."""
        return ('PR', 'NPR', 'SR', 'NPR_AUC') if self is Protocol.TOOLKIT else ('PR', 'NPR', 'SR')

    def scores(self, curves: definitions.Curves) -> definitions.Scores:
        if self is Protocol.TOOLKIT:
            return definitions.toolkit_scores_from_curves(curves)
        return definitions.scores_from_curves(curves)

    @property
    def title(self) -> str:
        return 'LaTOT protocol' if self is Protocol.PAPER else 'LaTOT protocol, LaSOT-toolkit semantics'


METRICS: Tuple[str, ...] = Protocol.PAPER.metrics
METRIC_NAMES = {'PR': 'precision at 5 px', 'NPR': 'normalised precision', 'SR': 'success AUC',
                'NPR_AUC': 'normalised precision AUC (0-0.5)'}


def protocol_description(protocol: Union[str, Protocol] = Protocol.PAPER) -> Dict:
    """The protocol in words and numbers (definitions: :mod:`pytracking_plugins.analysis.metrics`)."""
    protocol = Protocol.parse(protocol)
    common = {
        'name': 'LaTOT', 'protocol': protocol.value, 'version': PROTOCOL_VERSION,
        'PR': 'share of frames with centre error <= {:g} px'.format(definitions.PR_THRESHOLD),
        'SR': 'mean over t = 0, 0.05, ..., 1 of the share of frames with IoU > t',
        'missing_results': 'an error listing them; with skip_missing the sequence is left out for every tracker',
        'tolerance': definitions.TOLERANCE if protocol is Protocol.PAPER else 0.0,
        'thresholds': {'precision_px': definitions.PRECISION_THRESHOLDS.tolist(),
                       'norm_precision': definitions.NORM_PRECISION_THRESHOLDS.tolist(),
                       'success': (definitions.SUCCESS_THRESHOLDS if protocol is Protocol.PAPER
                                   else definitions.TOOLKIT_SUCCESS_THRESHOLDS).tolist()},
    }
    if protocol is Protocol.PAPER:
        return dict(common, **{
            'NPR': 'mean over t = 0, 0.01, ..., 0.50 of the share of valid frames with normalised centre error <= t '
                   '(centre difference divided by the ground truth width / height per axis)',
            'averaging': 'per sequence, then the mean over sequences with at least one valid frame',
            'valid_frames': 'ground truth x, y, w, h all > 0 and finite, and target visible (not flagged absent; '
                            'pytracking robust rule); invalid frames are excluded from numerator and denominator',
            'first_frame': 'counted, with the prediction replaced by the ground truth',
            'no_box': 'a prediction with zero width or height is replaced by the previous frame\'s prediction',
            'invalid_predictions': 'NaN, infinite or negative width/height, or no box (zero width/height) on the '
                                   'first frame, or a result file of another length: an error naming the file',
            'unscored_sequences': 'a sequence without a valid frame has no score (null) and is left out of averages',
        })
    return dict(common, **{
        'source': 'LaSOT evaluation toolkit (HengLan/LaSOT_Evaluation_Toolkit: utils/calc_seq_err_robust.m, '
                  'utils/eval_tracker.m, utils/plot_draw_save.m) with LaTOT thresholds',
        'NPR': 'share of frames with normalised centre error <= {:g} (the curve at rank index {})'.format(
            definitions.TOOLKIT_NPR_THRESHOLD, definitions.TOOLKIT_NPR_INDEX + 1),
        'NPR_AUC': 'mean over t = 0, 0.01, ..., 0.50 of the normalised precision curve',
        'denominator': 'every annotation row of the sequence',
        'absent_frames': 'flagged frames are left out of the numerator only (a failure at every threshold)',
        'ground_truth_not_all_positive': 'centre error -1 (a success at every PR / NPR threshold), overlap -1 '
                                         '(a failure at every SR threshold)',
        'repairs': 'frames 2..N: a prediction with a NaN or width/height <= 0 (where the ground truth has no NaN) '
                   'takes the previous frame\'s prediction, before the first frame is replaced by the ground truth; '
                   'a result file longer than the annotation is cut; both counted per tracker',
        'averaging': 'per tracker and curve, the mean over sequences whose curve is not 0 at every threshold',
        'arithmetic': "the toolkit's, operation for operation: centres x + (w - 1) / 2, overlaps from right = x + w "
                      '- 1 (a box with itself can score 1 + 2e-16, which t = 1 counts), thresholds 0:0.05:1 as '
                      "MATLAB's colon makes them, exact comparisons, shares count / (frames + eps)",
    })
