"""MKDNet's parameter files (``run_tracker.py mkdnet <name>``).

Your own parameter files go into ``workspace/parameter/mkdnet/`` of the plugin's folder (git-ignored, so the
plugin's checkout stays clean): pytracking finds them there by name as if they were in this folder. A name that
exists here wins.
"""
import os

_PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
USER_FOLDER = os.path.join(_PROJECT, 'workspace', 'parameter', 'mkdnet')
__path__.append(USER_FOLDER)
