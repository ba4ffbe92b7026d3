"""Output files written whole or not at all: a temporary file in the same folder, then an atomic rename.

An analysis interrupted half-way (Ctrl-C, a full disk, a crash in a plot) thus never leaves a truncated report, JSON
or cache behind that a later run or a script would take for a finished one.
"""
import os
import pickle
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path next to ``path``; on success it replaces ``path``, on error it is removed."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix='.{}.'.format(os.path.basename(path)), suffix='.tmp', dir=folder)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_text(path: str, text: str) -> str:
    with atomic_path(path) as temporary:
        with open(temporary, 'w', encoding='utf-8') as f:
            f.write(text)
    return path


def write_pickle(path: str, data: Any) -> str:
    with atomic_path(path) as temporary:
        with open(temporary, 'wb') as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def save_figure(figure, path: str, **kwargs) -> str:
    """``figure.savefig`` to ``path`` atomically (the format from the extension, since the temp name has none)."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=os.path.splitext(path)[1][1:], **kwargs)
    return path
