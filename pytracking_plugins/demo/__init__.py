"""The demo: trains its own trackers on synthetic tiny objects and compares them (see :mod:`.pipeline`)."""
from pytracking_plugins.demo.pipeline import main

__all__ = ['main']
