"""The demo's teacher: Super-DiMP on a ResNet-18, trained from scratch on the original crops.
Run by ``python -m pytracking_plugins.demo`` (see _demo_recipe)."""
from ltr_plugins.train_settings.mkdnet import _demo_recipe


def run(settings) -> None:
    _demo_recipe.train(settings, 'teacher')
