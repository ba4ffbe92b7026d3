"""Files written whole or not at all: a temporary file in the same folder, then an atomic rename.

A writer interrupted half-way (Ctrl-C, a full disk, a crash) thus never leaves a truncated file behind that a later
run or a script would take for a finished one. The folder must exist: creating folders is the caller's decision
(a command creates its own output folder, never one a mistyped path names).
"""
import os
import tempfile
from contextlib import contextmanager
from typing import Iterator, Union

PathLike = Union[str, 'os.PathLike[str]']


@contextmanager
def atomic_path(path: PathLike) -> Iterator[str]:
    """Yields a temporary path next to ``path``; on success it replaces ``path``, on error it is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
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


def write_bytes(path: PathLike, data: bytes) -> str:
    """Writes ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as temporary:
        with open(temporary, 'wb') as f:
            f.write(data)
    return os.fspath(path)


def write_text(path: PathLike, text: str) -> str:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path. A file name in it that is not UTF-8 is
    written as its original bytes (see :mod:`.file_names`)."""
    return write_bytes(path, text.encode('utf-8', 'surrogateescape'))


def is_temporary(file_name: str) -> bool:
    """Whether a file name is one of :func:`atomic_path`'s temporaries (left behind only by a killed process)."""
    return file_name.startswith('.') and file_name.endswith('.tmp')
