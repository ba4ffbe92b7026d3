"""Training curves of an experiment's networks, read from the tensorboard logs ltr's trainer writes, and plotted.

ltr writes each loader's epoch averages (``<tensorboard>/<loader>/``, tag = statistic, step = epoch) and the plugin's
trainer every iteration's statistics (tag ``Iteration/<statistic>``, in the train loader's folder).
"""
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

Curve = Tuple[np.ndarray, np.ndarray]       # steps, values

# The validation loss has flattened when, over its last FLAT_EPOCHS epochs, its least-squares trend falls by less
# than FLAT_SLOPE of their mean per epoch (it no longer improves; the epoch-to-epoch noise of a small network trained
# on small batches is left to the plot).
FLAT_EPOCHS = 5
FLAT_SLOPE = 0.02


def read_scalars(folder: str) -> Dict[str, Curve]:
    """Every scalar in the tensorboard event files of ``folder``: ``{tag: (steps, values)}`` (empty when none)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    if not os.path.isdir(folder):
        return {}
    accumulator = EventAccumulator(folder, size_guidance={'scalars': 0})
    accumulator.Reload()
    curves = {}
    for tag in accumulator.Tags().get('scalars', []):
        events = accumulator.Scalars(tag)
        curves[tag] = (np.array([e.step for e in events]), np.array([e.value for e in events], dtype=np.float64))
    return curves


def epoch_curves(tensorboard: str, loader: str) -> Dict[str, Curve]:
    """The epoch averages of one loader ('train' or 'val')."""
    return {tag: curve for tag, curve in read_scalars(os.path.join(tensorboard, loader)).items()
            if not tag.startswith('Iteration/')}


def iteration_curves(tensorboard: str) -> Dict[str, Curve]:
    """Every training iteration's statistics, by statistic name."""
    return {tag[len('Iteration/'):]: curve for tag, curve in read_scalars(os.path.join(tensorboard, 'train')).items()
            if tag.startswith('Iteration/')}


def trend(values: Sequence[float], epochs: int = FLAT_EPOCHS) -> Optional[float]:
    """The least-squares slope of the last ``epochs`` values per epoch, relative to their mean (None when fewer)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < epochs:
        return None
    last = values[-epochs:]
    return float(np.polyfit(np.arange(epochs), last, 1)[0] / abs(last.mean()))


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean over ``window`` iterations (shorter at the start)."""
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(values) + 1) - starts)


def plot_panels(panels: Sequence[Tuple[str, Mapping[str, Curve]]], path: str, xlabel: str, smoothing: int = 1,
                columns: int = 2, log_panels: Sequence[int] = ()) -> str:
    """One figure of line plots: ``panels`` are (title, {legend: curve}), those numbered in ``log_panels`` on a
    logarithmic scale; saved as ``path`` (PNG)."""
    from pytracking_plugins.analysis.plots import save_figure
    import matplotlib.pyplot as plt
    rows = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.2 * rows), squeeze=False)
    for number, (axis, (title, curves)) in enumerate(zip(axes.flat, panels)):
        if number in log_panels:
            axis.set_yscale('log', nonpositive='mask')
        for legend, (steps, values) in curves.items():
            axis.plot(steps, smooth(values, smoothing), label=legend, linewidth=1.2)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
        if curves:
            axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    figure.tight_layout()
    save_figure(figure, path, dpi=110)
    plt.close(figure)
    return path


def labelled(curves: Mapping[str, Mapping[str, Curve]], statistic: str) -> Dict[str, Curve]:
    """``{legend: curve}`` of one statistic from several runs' curves (``{legend: {statistic: curve}}``)."""
    return {legend: run[statistic] for legend, run in curves.items() if statistic in run}


def statistics_with(prefix: str, curves: Mapping[str, Mapping[str, Curve]]) -> List[str]:
    """The statistics starting with ``prefix`` that any run logged, sorted."""
    return sorted({name for run in curves.values() for name in run if name.startswith(prefix)})
