"""The LaTOT protocol as data: its version, its three scores and the description stored with every JSON export."""
from typing import Dict, Tuple

from pytracking_plugins.analysis import metrics

# Part of every cache key: bump it when a definition changes, so that no score computed the old way is reused.
PROTOCOL_VERSION = 1
METRICS: Tuple[str, ...] = ('PR', 'NPR', 'SR')


def protocol_description() -> Dict:
    """The protocol in words and numbers (definitions: :mod:`pytracking_plugins.analysis.metrics`)."""
    return {
        'name': 'LaTOT', 'version': PROTOCOL_VERSION,
        'PR': 'share of valid frames with centre error <= {:g} px'.format(metrics.PR_THRESHOLD),
        'NPR': 'mean over t = 0, 0.01, ..., 0.50 of the share of valid frames with normalised centre error <= t '
               '(centre difference divided by the ground truth width / height per axis)',
        'SR': 'mean over t = 0, 0.05, ..., 1 of the share of valid frames with IoU > t',
        'averaging': 'per sequence, then the mean over sequences with at least one valid frame',
        'valid_frames': 'ground truth x, y, w, h all > 0 and finite, and target visible (pytracking robust rule); '
                        'invalid frames are excluded from numerator and denominator',
        'first_frame': 'counted, with the prediction replaced by the ground truth',
        'no_box': 'a prediction with zero width or height is replaced by the previous frame\'s prediction',
        'invalid_predictions': 'NaN, infinite or negative width/height, or no box (zero width/height) on the first '
                               'frame: an error naming the file and line',
        'missing_results': 'an error listing them; with skip_missing the sequence is left out for every tracker',
        'unscored_sequences': 'a sequence without a valid frame has no score (null) and is left out of averages',
        'tolerance': metrics.TOLERANCE,
        'thresholds': {'precision_px': metrics.PRECISION_THRESHOLDS.tolist(),
                       'norm_precision': metrics.NORM_PRECISION_THRESHOLDS.tolist(),
                       'success': metrics.SUCCESS_THRESHOLDS.tolist()},
    }
