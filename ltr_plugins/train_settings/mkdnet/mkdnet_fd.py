"""MKDNet-FD (Table IV): feature-level distillation only (L_gen, L_cons and the discriminators)."""
from ltr_plugins.train_settings.mkdnet import _recipe as recipe


def configure(settings) -> None:
    recipe.paper(settings)
    settings.description = 'MKDNet-FD: feature-level distillation only (Table IV).'
    settings.loss_weight.update(score_d=0.0, iou_d=0.0)


def run(settings) -> None:
    configure(settings)
    recipe.train(settings)
