"""Makes pytracking's PrRoIPool import path resolve to the plugin's implementation.

pytracking imports ``PrRoIPool2D`` from ``ltr.external.PreciseRoIPooling.pytorch.prroi_pool``, a git submodule
holding a CUDA-only extension that most checkouts do not even populate. The virtual environment's
``pytracking_plugins.pth`` imports this module at interpreter start-up; it installs a finder that answers that one
module path (and the submodule's two inner modules) with a re-export of :mod:`ltr_plugins.prroi_pool`, so no
pytracking file needs changing. When the submodule *is* populated, :mod:`ltr_plugins.prroi_pool` still uses its
CUDA kernels for CUDA tensors; it loads them from the submodule's files under a private name, not through this path.

This module must stay cheap to import: it runs in every Python process of the environment.
"""
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Optional, Sequence

PRROI_PACKAGE = 'ltr.external.PreciseRoIPooling.pytorch.prroi_pool'
_PRROI_PARENT = PRROI_PACKAGE.rsplit('.', 1)[0]
_IMPLEMENTATION = 'ltr_plugins.prroi_pool'
# The submodule's own layout: prroi_pool/__init__.py re-exports prroi_pool/prroi_pool.py and prroi_pool/functional.py.
_ALIASED = {PRROI_PACKAGE, PRROI_PACKAGE + '.prroi_pool', PRROI_PACKAGE + '.functional'}


class _ReExportLoader(importlib.abc.Loader):
    """Fills the aliased module with the public names of the implementation (same objects, not copies)."""

    def __init__(self, is_package: bool):
        self.is_package = is_package

    def create_module(self, spec):
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        implementation = importlib.import_module(_IMPLEMENTATION)
        for name in implementation.__all__:
            setattr(module, name, getattr(implementation, name))
        module.__all__ = list(implementation.__all__)
        module.__doc__ = 'Alias of {} installed by the MKDNet plugin.'.format(_IMPLEMENTATION)
        if self.is_package:
            module.__path__ = []


class _EmptyPackageLoader(importlib.abc.Loader):
    """Stands in for ``...PreciseRoIPooling.pytorch`` when the submodule folder is empty."""

    def create_module(self, spec):
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []


class PrRoIPoolFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target=None):
        if fullname in _ALIASED:
            return importlib.machinery.ModuleSpec(fullname, _ReExportLoader(fullname == PRROI_PACKAGE),
                                                  is_package=fullname == PRROI_PACKAGE)
        if fullname == _PRROI_PARENT and importlib.machinery.PathFinder.find_spec(fullname, path) is None:
            return importlib.machinery.ModuleSpec(fullname, _EmptyPackageLoader(), is_package=True)
        return None


def install() -> None:
    """Puts the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, PrRoIPoolFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, PrRoIPoolFinder())


install()
