"""MKDNet's train settings (``run_training.py mkdnet <name>``).

Your own train settings go into ``workspace/train_settings/mkdnet/`` of the plugin's folder (git-ignored, so the
plugin's checkout stays clean): ltr finds them there by name as if they were in this folder. A name that exists
here wins.
"""
import os

_PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
USER_FOLDER = os.path.join(_PROJECT, 'workspace', 'train_settings', 'mkdnet')
__path__.append(USER_FOLDER)
