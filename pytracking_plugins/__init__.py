"""Tracking and evaluation side of the MKDNet plugin for pytracking."""
