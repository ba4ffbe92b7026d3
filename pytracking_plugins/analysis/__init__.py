"""LaTOT analysis for pytracking.

- :mod:`.latot` -- the LaTOT protocol (PR at 5 px, NPR, SR; per attribute, per sequence), its plots, report and JSON;
  ``python -m pytracking_plugins.analysis.latot``
- :mod:`.stats` -- Table I statistics and the tiny-object criterion; ``python -m pytracking_plugins.analysis.stats``
- :mod:`.scoring` (puts the pieces together), :mod:`.datasets` (sequences and attributes of a dataset),
  :mod:`.results` (result folders), :mod:`.metrics` (definitions, vectorised), :mod:`.cache` (curves by
  fingerprint), :mod:`.evaluation` (the result object and its JSON), :mod:`.protocol`, :mod:`.plots`, :mod:`.report`
"""
