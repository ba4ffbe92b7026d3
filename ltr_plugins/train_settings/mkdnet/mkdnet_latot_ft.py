"""MKDNet trained with the LaTOT train split added to LaSOT, GOT-10k and TrackingNet (the setting of Table VI)."""
from ltr_plugins.train_settings.mkdnet import _recipe as recipe


def configure(settings) -> None:
    recipe.paper(settings)
    settings.description = 'MKDNet with the LaTOT train split added to its training data (Table VI).'
    settings.train_datasets['latot_train'] = 1


def run(settings) -> None:
    configure(settings)
    recipe.train(settings)
