"""The sequences a pytracking run failed on: one summary at the end of ``run_dataset``, and ``run_tracker.py``'s exit
status (patch ``07-failure-summary``).

pytracking's ``run_sequence`` prints a tracker's exception and goes on with the next sequence, so a missing network
prints the same message for every sequence of the dataset and the command still succeeds. The patched
``run_sequence`` hands the exception to :func:`sequence_failure` (which prints it in one short line) and returns its
message, and :func:`report_failures` groups the failures by message, printing each distinct cause in full once with
the number and names of the sequences it stopped.
"""
import collections
from typing import Iterable, List, Optional, Tuple

Failure = Tuple[str, str, str]   # (tracker, sequence, message)

_SHOWN_NAMES = 10
SHORT_LINE = 120     # characters of a failure's message printed while tracking (the summary has it in full)


def sequence_failure(error: BaseException) -> str:
    """The message of a sequence's failure, for :func:`report_failures`, printed in one short line (a missing network
    would otherwise print its long message for every sequence)."""
    message = '{}: {}'.format(type(error).__name__, error)
    line = message.splitlines()[0] if message.strip() else message
    print('Failed: ' + (line if len(line) <= SHORT_LINE else line[:SHORT_LINE - 3] + '...'))
    return message


def tracker_label(tracker) -> str:
    """``name parameter [run id]`` of a pytracking ``Tracker``."""
    return ' '.join(str(part) for part in (tracker.name, tracker.parameter_name, tracker.run_id) if part is not None)


def report_failures(runs: Iterable[Tuple[object, object]], outcomes: Iterable[Optional[str]]) -> List[Failure]:
    """Prints a summary of the failed (sequence, tracker) ``runs`` (an outcome that is a message, not None) and
    returns them; prints nothing when every run succeeded."""
    runs = list(runs)
    failures = [(tracker_label(tracker), seq.name, outcome)
                for (seq, tracker), outcome in zip(runs, outcomes) if outcome is not None]
    if not failures:
        return failures
    by_cause = collections.OrderedDict()
    for tracker, sequence, message in failures:
        by_cause.setdefault((tracker, message), []).append(sequence)
    print('FAILED: {} of {} tracker runs on sequences did not finish (no results written for them):'.format(
        len(failures), len(runs)))
    for (tracker, message), sequences in by_cause.items():
        shown = ', '.join(sequences[:_SHOWN_NAMES])
        if len(sequences) > _SHOWN_NAMES:
            shown += ' and {} more'.format(len(sequences) - _SHOWN_NAMES)
        print('  {}: {} sequence{} ({}): {}'.format(tracker, len(sequences), 's' if len(sequences) > 1 else '',
                                                   shown, message.replace('\n', '\n    ')))
    return failures
