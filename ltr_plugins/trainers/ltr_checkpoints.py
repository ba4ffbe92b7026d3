"""Where ltr's trainer keeps its checkpoints, and telling an intact one from a damaged one.

This is the plugin's one adapter onto ltr behaviour that ltr does not publish as an interface; it relies on
``BaseTrainer.save_checkpoint`` / ``load_checkpoint`` (ltr/trainers/base_trainer.py) writing and finding a run's
checkpoints as ``<workspace_dir>/checkpoints/<settings.project_path>/<net type>_ep<epoch, 4 digits>.pth.tar``, with
``torch.save`` (a zip archive). ``tests/test_mkdnet_trainer.py`` fails if ltr changes that.

Beside a run's folder the plugin keeps ``<folder>.lock`` (held while a training of that setting runs, so that a
second one stops instead of overwriting its checkpoints) and ``<folder>.validation.json`` (each epoch's validation
loss, which names the best checkpoint that ``settings.keep_checkpoints`` keeps).
"""
import fcntl
import glob
import json
import math
import os
import re
import zipfile
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

from ltr_plugins.common.atomic_files import write_text

_EPOCH = re.compile(r'_ep(\d+)\.pth\.tar$')
CORRUPT_SUFFIX = '.corrupt'


def setting_checkpoint_dir(workspace_dir: str, project_path: str) -> str:
    """The folder of the checkpoints of the train setting ``project_path`` (``ltr/<module>/<name>``)."""
    return os.path.join(os.path.expanduser(workspace_dir), 'checkpoints', project_path)


def checkpoint_dir(settings) -> str:
    """The folder of this run's checkpoints."""
    return setting_checkpoint_dir(settings.env.workspace_dir, settings.project_path)


def checkpoints_in(folder: str, net_type: str = '*') -> List[str]:
    """The checkpoints in ``folder``, oldest first (the last one is the one ``load_checkpoint()`` resumes from)."""
    return sorted(glob.glob(os.path.join(glob.escape(folder), net_type + '_ep*.pth.tar')))


def checkpoint_paths(settings, net_type: str = '*') -> List[str]:
    """This run's checkpoints, oldest first."""
    return checkpoints_in(checkpoint_dir(settings), net_type)


def checkpoint_epoch(path: str) -> int:
    match = _EPOCH.search(os.path.basename(path))
    if match is None:
        raise ValueError('{} is not named as ltr names checkpoints (<net type>_ep<epoch>.pth.tar)'.format(path))
    return int(match.group(1))


def latest_epoch(settings, intact: bool = False) -> int:
    """The epoch of the latest checkpoint, or of the latest intact one (0 when there is none)."""
    for path in reversed(checkpoint_paths(settings)):
        if not intact or damage(path) is None:
            return checkpoint_epoch(path)
    return 0


def damage(path: str) -> Optional[str]:
    """Why ``path`` is not an intact ``torch.save`` archive (truncated, not a zip, a member failing its CRC), or
    None when it is. Reads the file without unpickling anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return '{}: {}'.format(type(error).__name__, error)
    if bad_member is not None:
        return 'member {} fails its CRC check'.format(bad_member)
    return None


def move_aside(path: str) -> str:
    """Renames a damaged checkpoint so that ltr no longer finds it (``<path>.corrupt``, numbered if taken)."""
    target, number = path + CORRUPT_SUFFIX, 1
    while os.path.exists(target):
        number += 1
        target = '{}{}.{}'.format(path, CORRUPT_SUFFIX, number)
    os.replace(path, target)
    return target


# ---------------------------------------------------------------------------------------- one training at a time
class TrainingLocked(RuntimeError):
    """Another process trains the same setting (it holds the lock of its checkpoint folder)."""


@contextmanager
def training_lock(settings) -> Iterator[str]:
    """Holds ``<checkpoint folder>.lock`` while the block runs; :class:`TrainingLocked` naming the folder and the
    process holding it when another training of the same setting runs. The lock is the kernel's (``flock``): it goes
    with the process, so a killed training leaves nothing to clean up."""
    folder = checkpoint_dir(settings)
    path = folder + '.lock'
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(handle, 64).decode('ascii', 'replace').strip() or 'unknown'
        os.close(handle)
        raise TrainingLocked('another training of {} is running (process {}) and writes its checkpoints to {}: wait '
                             'for it to end or stop it; two trainings of one setting would overwrite each other\'s '
                             'checkpoints'.format(settings.project_path, holder, folder)) from None
    try:
        os.ftruncate(handle, 0)
        os.write(handle, '{}\n'.format(os.getpid()).encode('ascii'))
        yield path
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


# ------------------------------------------------------------------------------ keeping the last N and the best
def validation_file(settings) -> str:
    return checkpoint_dir(settings) + '.validation.json'


def read_validation_losses(settings) -> Dict[int, float]:
    """``{epoch: validation loss}`` recorded so far (empty when none, or when the file is not what
    :func:`record_validation_loss` writes: it only names the best checkpoint, and is rebuilt as training goes on)."""
    try:
        with open(validation_file(settings)) as f:
            recorded = json.load(f)['epochs']
        return {int(epoch): float(loss) for epoch, loss in recorded.items() if math.isfinite(float(loss))}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def record_validation_loss(settings, epoch: int, loss: float, stat: str) -> None:
    """Adds ``epoch``'s validation ``loss`` (the statistic ``stat``) to the record beside the checkpoint folder."""
    losses = {e: value for e, value in read_validation_losses(settings).items() if e < epoch}
    losses[epoch] = float(loss)
    text = json.dumps({'statistic': stat, 'epochs': {str(e): losses[e] for e in sorted(losses)}}, indent=1)
    write_text(validation_file(settings), text + '\n')


def check_keep_checkpoints(value) -> Optional[int]:
    """``settings.keep_checkpoints``: None (keep every checkpoint, ltr's behaviour) or a whole number >= 1."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError('settings.keep_checkpoints = {!r}: give the number of latest checkpoints to keep (1 or more; '
                     'the best one is kept too), or None to keep them all'.format(value))


def prune_checkpoints(settings, net_type: str, keep: int) -> List[str]:
    """Removes this run's checkpoints but the latest ``keep`` and the one with the lowest recorded validation loss;
    returns the removed paths."""
    paths = checkpoint_paths(settings, net_type)
    kept = set(paths[-keep:])
    losses = read_validation_losses(settings)
    existing = {checkpoint_epoch(p): p for p in paths}
    scored = [epoch for epoch in losses if epoch in existing]
    if scored:
        kept.add(existing[min(scored, key=lambda epoch: (losses[epoch], epoch))])
    removed = [p for p in paths if p not in kept]
    for path in removed:
        os.remove(path)
    return removed
