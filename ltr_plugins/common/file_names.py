"""File and folder names that are not UTF-8, carried end to end.

On Linux a name is bytes; Python hands a name that is not valid UTF-8 (``Res\\xff``) to the program as text with
"surrogate escapes" (``'Res\\udcff'``), which the file functions turn back into the same bytes but which cannot be
printed, encoded as UTF-8 or drawn. The plugin therefore uses such text as a path only, shows a name through
:func:`displayable` (labels, tables, plots), prints through streams that write the original bytes
(:func:`tolerate_undecodable_output`) and writes text files with the original bytes of any path in them
(:mod:`.atomic_files`).
"""
import io
import sys

REPLACEMENT = '\ufffd'


def displayable(text: str) -> str:
    """``text`` with the bytes a file name could not decode shown as U+FFFD: valid Unicode, for labels and plots."""
    return text.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')


def tolerate_undecodable_output() -> None:
    """Makes ``print`` write a path that is not UTF-8 as its original bytes instead of raising: standard output and
    error then encode with ``surrogateescape`` (what Python already does under the C locale)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == 'strict':
            stream.reconfigure(errors='surrogateescape')
