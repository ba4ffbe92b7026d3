"""The demo's baseline: the student trained on the same degraded crops from the same initialisation, no distillation.
Run by ``python -m pytracking_plugins.demo`` (see _demo_recipe)."""
from ltr_plugins.train_settings.mkdnet import _demo_recipe


def run(settings) -> None:
    _demo_recipe.train(settings, 'baseline')
