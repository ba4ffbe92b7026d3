"""MKDNet with the released code's weighting: score-level term 4 x L1 over the first two classifier iterates,
IoU-level weight 0.05, discriminator loss x 0.25, validation on the LaTOT train split.

Only the weighting is the release's: the teacher stays fixed (own classifier, frozen BatchNorm statistics), RDM is
detached, the discriminator update order is correct and its optimizer is checkpointed, as in ``mkdnet``."""
from ltr_plugins.train_settings.mkdnet import _recipe as recipe


def configure(settings) -> None:
    recipe.paper(settings)
    settings.description = 'MKDNet with the released code\'s loss weighting (delta 4 over iterates 0-1, ' \
                           'eta 0.05, L_dis x 0.25), validated on the LaTOT train split.'
    settings.loss_weight.update(score_d=4.0, iou_d=0.05, dis=0.25)
    settings.score_distill_iterates = (0, 1)
    settings.val_datasets = {'latot_train': 1}


def run(settings) -> None:
    configure(settings)
    recipe.train(settings)
