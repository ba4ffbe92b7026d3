"""LaTOT analysis for pytracking.

- :mod:`.latot` -- the LaTOT protocol (PR at 5 px, NPR, SR; per attribute, per sequence), its plots, report and JSON;
  ``python -m pytracking_plugins.analysis.latot``
- :mod:`.stats` -- Table I statistics and the tiny-object criterion; ``python -m pytracking_plugins.analysis.stats``
- :mod:`.metrics` (definitions, vectorised), :mod:`.results` (result folders), :mod:`.scoring` (scoring, cache),
  :mod:`.plots`, :mod:`.report`, :mod:`.files` (atomic writes)
"""
