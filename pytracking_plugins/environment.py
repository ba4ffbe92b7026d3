"""pytracking's and ltr's environment settings (their ``local.py`` files) for one process.

pytracking reads its paths from ``pytracking/evaluation/local.py`` and ltr from ``ltr/admin/local.py``, importing
them by module name at every ``env_settings()`` call. Putting a stand-in module under that name points one process
(the demo, a test) at other folders without touching the user's files.
"""
import sys
import types
from typing import Mapping


def pytracking_local_module(values: Mapping[str, str]) -> types.ModuleType:
    """A stand-in for ``pytracking.evaluation.local``: pytracking's defaults, with ``values`` set."""
    from pytracking.evaluation.environment import EnvSettings
    values = dict(values)

    def local_env_settings() -> EnvSettings:
        settings = EnvSettings()
        for key, value in values.items():
            setattr(settings, key, value)
        return settings

    module = types.ModuleType('pytracking.evaluation.local')
    module.local_env_settings = local_env_settings
    return module


def ltr_local_module(values: Mapping[str, str]) -> types.ModuleType:
    """A stand-in for ``ltr.admin.local`` whose ``EnvironmentSettings`` has exactly ``values``."""
    module = types.ModuleType('ltr.admin.local')
    values = dict(values)

    class EnvironmentSettings:
        def __init__(self):
            for key, value in values.items():
                setattr(self, key, value)

    # Checkpoints pickle settings.env: the class must be found under the module name it claims.
    EnvironmentSettings.__module__ = module.__name__
    module.EnvironmentSettings = EnvironmentSettings
    return module


def use_local_settings(pytracking: Mapping[str, str] = None, ltr: Mapping[str, str] = None) -> None:
    """Points this process's pytracking and/or ltr environment settings at ``pytracking`` / ``ltr`` values."""
    for values, make in ((pytracking, pytracking_local_module), (ltr, ltr_local_module)):
        if values is not None:
            module = make(values)
            sys.modules[module.__name__] = module
