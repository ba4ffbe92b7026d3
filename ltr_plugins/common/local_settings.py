"""pytracking's two ``local.py`` files read without ever rewriting them.

pytracking's ``env_settings()`` (``ltr/admin/environment.py``, ``pytracking/evaluation/environment.py``) writes its
default ``local.py`` over the file whenever importing it fails, for any reason: one syntax error and the user's
paths are gone. :func:`load_local_settings` reads a ``local.py`` the same way but reports a broken one with its
file and line and leaves it as it is; patch ``11-keep-broken-local-py`` makes pytracking's own ``env_settings()``
raise :func:`local_file_error` instead of overwriting an existing file.
"""
import importlib
import importlib.util
import os
import sys
import traceback
from typing import Optional, Tuple

# (module, the callable in it that returns the settings) of ltr's and pytracking's local.py.
LTR_LOCAL: Tuple[str, str] = ('ltr.admin.local', 'EnvironmentSettings')
PYTRACKING_LOCAL: Tuple[str, str] = ('pytracking.evaluation.local', 'local_env_settings')


class LocalSettingsError(RuntimeError):
    """A ``local.py`` that is missing, does not import or whose settings fail; ``path`` and ``line`` (None when
    unknown) say where, ``reason`` what."""

    def __init__(self, path: str, line: Optional[int], reason: str, fix: str, missing: bool = False):
        where = '{}, line {}'.format(path, line) if line else path
        super().__init__('{}: {}; {}'.format(where, reason, fix))
        self.path, self.line, self.reason, self.fix, self.missing = path, line, reason, fix, missing


def _same_file(a: Optional[str], b: str) -> bool:
    return bool(a) and os.path.abspath(a) == os.path.abspath(b)


def error_line(path: str, error: BaseException) -> Optional[int]:
    """The line of ``path`` where ``error`` arose: a syntax error's line, else the innermost traceback frame in it."""
    if isinstance(error, SyntaxError) and _same_file(error.filename, path):
        return error.lineno
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if _same_file(frame.filename, path)]
    return frames[-1].lineno if frames else None


def local_file_error(path: str, error: BaseException) -> LocalSettingsError:
    """The error for a ``local.py`` that exists but cannot give its settings: file, line, cause and fix."""
    line = error_line(path, error)
    if isinstance(error, SyntaxError):
        reason = 'SyntaxError: {}'.format(error.msg)
    else:
        reason = '{}: {}'.format(type(error).__name__, error)
    fix = 'correct {} (it was left as it is)'.format('line {}'.format(line) if line else 'the file')
    return LocalSettingsError(path, line, reason, fix)


def local_file_path(module_name: str) -> str:
    """Where ``module_name``'s ``local.py`` is (or would be): next to its package's ``__init__.py``."""
    package_name, _, leaf = module_name.rpartition('.')
    package = importlib.import_module(package_name)
    return os.path.join(os.path.dirname(os.path.abspath(package.__file__)), leaf + '.py')


def load_local_settings(module_name: str, factory: str) -> object:
    """``<module_name>.<factory>()`` -- what pytracking's ``env_settings()`` returns -- without writing anything.

    A module already in ``sys.modules`` (a stand-in put there for one process) is used as it is. A
    missing, unimportable or failing file raises :class:`LocalSettingsError` naming it (and the line).
    """
    module = sys.modules.get(module_name)
    path = getattr(module, '__file__', None) or local_file_path(module_name)
    if module is None:
        if importlib.util.find_spec(module_name) is None:
            raise LocalSettingsError(path, None, 'missing', 'run install.sh, which writes it (or copy one from '
                                     'settings/local_templates/)', missing=True)
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            raise local_file_error(path, error) from None
    try:
        return getattr(module, factory)()
    except Exception as error:
        raise local_file_error(path, error) from None
