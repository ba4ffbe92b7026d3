"""Baseline for the ablation (Table IV): the Super-DiMP student trained exactly as MKDNet -- same degraded data,
same initialisation, schedule and learning rates -- with no distillation at all (so no teacher is built)."""
from ltr_plugins.train_settings.mkdnet import _recipe as recipe


def configure(settings) -> None:
    recipe.paper(settings)
    settings.description = 'Baseline: Super-DiMP fine-tuned on the degraded crops, without distillation.'
    settings.loss_weight.update(gen=0.0, cons=0.0, dis=0.0, score_d=0.0, iou_d=0.0)


def run(settings) -> None:
    configure(settings)
    recipe.train(settings)
