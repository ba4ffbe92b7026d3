"""Small helpers shared by both sides of the plugin (training and tracking): standard library and numpy only.

They sit at the bottom of the house, below the LaTOT data layer, so that every module can import them without
importing anything heavier (no torch, no pytracking):

- :mod:`.atomic_files` -- write a file whole or not at all;
- :mod:`.boxes` -- whether an ``x, y, w, h`` box is present (a target in the frame);
- :mod:`.local_settings` -- pytracking's ``local.py`` files read without ever being rewritten;
- :mod:`.file_names` -- names that are not UTF-8, shown and printed without failing.
"""
