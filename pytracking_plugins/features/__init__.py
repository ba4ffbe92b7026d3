"""Network wrappers for pytracking's trackers (mirrors ``pytracking/features``)."""
