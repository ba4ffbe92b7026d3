"""MKDNet as the paper trains it: feature-, score- and IoU-level distillation gated by RDM (Eq. 11)."""
from ltr_plugins.train_settings.mkdnet import _recipe as recipe


def configure(settings) -> None:
    recipe.paper(settings)


def run(settings) -> None:
    configure(settings)
    recipe.train(settings)
