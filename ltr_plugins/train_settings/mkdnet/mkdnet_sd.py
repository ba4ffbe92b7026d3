"""MKDNet-SD (Table IV): score-level distillation only (L_score-d)."""
from ltr_plugins.train_settings.mkdnet import _recipe as recipe


def configure(settings) -> None:
    recipe.paper(settings)
    settings.description = 'MKDNet-SD: score-level distillation only (Table IV).'
    settings.loss_weight.update(gen=0.0, cons=0.0, dis=0.0, iou_d=0.0)


def run(settings) -> None:
    configure(settings)
    recipe.train(settings)
