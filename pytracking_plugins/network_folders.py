"""Where pytracking's network files are: ``settings.network_path`` of ``pytracking/evaluation/local.py`` (one folder
or a list). :func:`network_folders` is the one place that reads it: the tracker's network wrapper, the export
command, the demo and the doctor all ask it. Reading a file is :mod:`ltr_plugins.network_files`."""
import os
from typing import List


def network_folders() -> List[str]:
    """pytracking's network folders (``settings.network_path`` in pytracking/evaluation/local.py), absolute, in
    order, without duplicates; empty when local.py is missing (a broken one is an error naming its line)."""
    from ltr_plugins.common.local_settings import PYTRACKING_LOCAL, LocalSettingsError, load_local_settings
    try:
        folders = load_local_settings(*PYTRACKING_LOCAL).network_path
    except LocalSettingsError as error:
        if error.missing:
            return []
        raise
    folders = list(folders) if isinstance(folders, (list, tuple)) else [folders]
    unique = []
    for folder in folders:
        folder = os.path.abspath(os.path.expanduser(folder)) if folder else ''
        if folder and folder not in unique:
            unique.append(folder)
    return unique


def pytracking_local_file() -> str:
    """pytracking's ``local.py``, for messages."""
    import pytracking.evaluation
    return os.path.join(os.path.dirname(os.path.abspath(pytracking.evaluation.__file__)), 'local.py')


def find_network_file(net_path: str, how_to_get: str = '', what: str = 'Network file') -> str:
    """The network file ``net_path`` resolves to, as pytracking's ``NetWrapper`` resolves it (an absolute path as is,
    else in each network folder); FileNotFoundError naming every place looked, then ``how_to_get``. ``what='ONNX
    folder'`` (or any name ending in 'folder') looks for a folder instead."""
    exists = os.path.isdir if what.endswith('folder') else os.path.isfile
    net_path = os.path.expanduser(net_path)
    if os.path.isabs(net_path):
        if exists(net_path):
            return net_path
        message = '{} {} does not exist.'.format(what, net_path)
    else:
        candidates = [os.path.join(folder, net_path) for folder in network_folders()]
        for candidate in candidates:
            if exists(candidate):
                return candidate
        message = ('{} {} not found: looked for {} (the network folder is settings.network_path in {}).'
                   .format(what, net_path, ' and '.join(candidates) or 'it in no folder', pytracking_local_file()))
    raise FileNotFoundError(' '.join(filter(None, [message, how_to_get])))
