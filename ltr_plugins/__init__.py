"""Training side of the MKDNet plugin for pytracking (imported as its own package)."""
