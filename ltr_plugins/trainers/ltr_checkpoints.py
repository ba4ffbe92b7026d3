"""Where ltr's trainer keeps its checkpoints, and telling an intact one from a damaged one.

This is the plugin's one adapter onto ltr behaviour that ltr does not publish as an interface; it relies on
``BaseTrainer.save_checkpoint`` / ``load_checkpoint`` (ltr/trainers/base_trainer.py) writing and finding a run's
checkpoints as ``<workspace_dir>/checkpoints/<settings.project_path>/<net type>_ep<epoch, 4 digits>.pth.tar``, with
``torch.save`` (a zip archive). ``tests/test_mkdnet_trainer.py`` fails if ltr changes that.
"""
import glob
import os
import re
import zipfile
from typing import List, Optional

_EPOCH = re.compile(r'_ep(\d+)\.pth\.tar$')
CORRUPT_SUFFIX = '.corrupt'


def checkpoint_dir(settings) -> str:
    """The folder of this run's checkpoints."""
    return os.path.join(os.path.expanduser(settings.env.workspace_dir), 'checkpoints', settings.project_path)


def checkpoint_paths(settings, net_type: str = '*') -> List[str]:
    """This run's checkpoints, oldest first (the last one is the one ``load_checkpoint()`` resumes from)."""
    return sorted(glob.glob(os.path.join(glob.escape(checkpoint_dir(settings)), net_type + '_ep*.pth.tar')))


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
