"""The demo's MKDNet: the student distilled from the demo's teacher on degraded crops (Eq. 11 with RDM).
Run by ``python -m pytracking_plugins.demo`` (see _demo_recipe)."""
from ltr_plugins.train_settings.mkdnet import _demo_recipe


def run(settings) -> None:
    _demo_recipe.train(settings, 'mkdnet')
