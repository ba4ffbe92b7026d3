"""The demo's three trainings (``python -m pytracking_plugins.demo``): a small Super-DiMP teacher trained from scratch,
MKDNet's student distilled from it on degraded crops, and the baseline student trained on the same degraded crops
without distillation -- on synthetic tiny-object sequences, sized to finish on a CPU in minutes.

Everything else is MKDNet's recipe (``_recipe.paper``: Super-DiMP's data pipeline and losses, Eq. 11, RDM,
degradation) with the sizes of the demo. The demo hands its sizes over in the ltr environment it sets up for the
training (``settings.env.demo``, a dict, see :data:`REQUIRED_KEYS`); the train settings ``demo_teacher``,
``demo_mkdnet`` and ``demo_baseline`` are therefore run by the demo, not by hand.

Differences from the paper's recipe, all for a network trained from scratch in minutes:

* the backbone is ResNet-18 (to layer3) with no frozen layer, and the whole network is trained (one Adam group per
  part: backbone, classifier, IoU-net);
* the teacher is trained like Super-DiMP, from random weights, on the original crops; both students start from it;
* crops are ``feature_sz * 16`` pixels, and the degradation's target size is the paper's 16 px scaled by
  ``crop / 352``, so the student's targets are as small relative to the crop as in the paper.
"""
import copy
from typing import Any, Dict, Tuple

import torch
import torch.optim as optim
import ltr.models.loss as ltr_losses
import ltr.models.loss.kl_regression as klreg_losses

from ltr_plugins import distillation as kd
from ltr_plugins.actors.mkdnet import MKDNetActor
from ltr_plugins.export_mkdnet import student_from_checkpoint
from ltr_plugins.models.degradation import build_degradation
from ltr_plugins.models.discriminator import build_discriminators, roi_feature_shapes
from ltr_plugins.models.super_dimp import build_super_dimp
from ltr_plugins.models.teacher_student import FrozenTeacher, MKDNetStudent
from ltr_plugins.train_settings.mkdnet import _recipe as recipe
from ltr_plugins.trainers import JointOptimizer, MKDNetTrainer

ROLES = ('teacher', 'mkdnet', 'baseline')
PAPER_CROP = 352            # Super-DiMP's crop size, in which the paper degrades targets to 16 px
REQUIRED_KEYS = ('train_dir', 'backbone', 'feature_sz', 'batch_size', 'epochs', 'iterations_per_epoch',
                 'lr_step', 'learning_rates', 'seed', 'max_gap')
NO_DISTILLATION = dict(gen=0.0, cons=0.0, dis=0.0, score_d=0.0, iou_d=0.0)


def demo_sizes(settings, role: str) -> Dict[str, Any]:
    """The demo's sizes for ``role``: ``settings.env.demo`` (set by the demo), checked."""
    demo = getattr(settings.env, 'demo', None)
    if not isinstance(demo, dict):
        raise RuntimeError('the train setting mkdnet/demo_{} is run by the demo (python -m pytracking_plugins.demo), '
                           'which sets settings.env.demo; it has no meaning on its own'.format(role))
    missing = [key for key in REQUIRED_KEYS if key not in demo]
    if role != 'teacher' and 'teacher_checkpoint' not in demo:
        missing.append('teacher_checkpoint')
    if missing:
        raise KeyError('settings.env.demo lacks {}'.format(missing))
    return demo


def configure(settings, role: str) -> None:
    """MKDNet's recipe with the demo's sizes for ``role`` (teacher, mkdnet or baseline)."""
    if role not in ROLES:
        raise ValueError('role must be one of {}, not {!r}'.format(ROLES, role))
    recipe.paper(settings)
    demo = demo_sizes(settings, role)
    settings.description = 'Demo {}: ResNet-18 Super-DiMP on synthetic tiny objects.'.format(role)
    settings.demo_role = role
    settings.backbone = demo['backbone']
    settings.batch_size = demo['batch_size']
    settings.num_workers = demo.get('num_workers', 0)
    settings.feature_sz = demo['feature_sz']
    settings.output_sz = settings.feature_sz * 16
    settings.max_gap = demo['max_gap']
    settings.num_train_frames = demo.get('frames_per_sample', settings.num_train_frames)
    settings.num_test_frames = demo.get('frames_per_sample', settings.num_test_frames)
    settings.proposals_per_frame = demo.get('proposals_per_frame', 128)
    settings.num_epochs = demo['epochs'][role]
    settings.samples_per_epoch = demo['batch_size'] * demo['iterations_per_epoch']
    settings.lr_step = demo['lr_step'][role]
    settings.lr_gamma = 0.2
    settings.learning_rates = dict(demo['learning_rates'][role])
    settings.discriminator_lr = demo['learning_rates'][role].get('discriminator', settings.discriminator_lr)
    settings.synthetic_latot_dir = demo['train_dir']
    settings.train_datasets = {'synthetic_latot': 1}
    settings.val_datasets = {}
    settings.seed = demo['seed']
    settings.fail_safe = False          # a failure must stop the demo, not retry
    settings.print_interval = demo.get('print_interval', settings.print_interval)
    settings.degrade_target_size = recipe_degrade_target(settings.output_sz)
    settings.teacher_checkpoint = demo.get('teacher_checkpoint')
    if role == 'teacher':
        settings.degrade = False
        settings.loss_weight.update(NO_DISTILLATION)
    elif role == 'baseline':
        settings.loss_weight.update(NO_DISTILLATION)


def recipe_degrade_target(crop_size: int) -> float:
    """The paper's 16 px degradation target (in a 352 px crop) scaled to ``crop_size``."""
    return 16.0 * crop_size / PAPER_CROP


def build_networks(settings) -> Tuple[MKDNetStudent, Any]:
    """The network to train and the fixed teacher (None unless a distillation term is on): the teacher role starts
    from random weights; the students start from the teacher's final checkpoint."""
    torch.manual_seed(settings.seed)
    if settings.demo_role == 'teacher':
        net = build_super_dimp(backbone_pretrained=False, feature_sz=settings.feature_sz, backbone=settings.backbone,
                               frozen_backbone_layers=())
        source = 'random initialisation (the demo\'s teacher is trained from scratch)'
    else:
        net = student_from_checkpoint(settings.teacher_checkpoint)
        source = settings.teacher_checkpoint
    active = kd.active_distillation_terms(settings.loss_weight)
    teacher = FrozenTeacher(copy.deepcopy(net)) if active['any'] else None
    discriminators = None
    if active['gen'] or active['dis']:
        discriminators = build_discriminators(roi_feature_shapes(net.bb_regressor))
    return MKDNetStudent(net, discriminators, info={'init': source}), teacher


def build_actor(settings) -> MKDNetActor:
    net, teacher = build_networks(settings)
    objective = {'bb_ce': klreg_losses.KLRegression(),
                 'test_clf': ltr_losses.LBHinge(threshold=settings.hinge_threshold)}
    return MKDNetActor(net=net, objective=objective, loss_weight=settings.loss_weight, teacher=teacher,
                       degradation=build_degradation(settings), score_iterates=settings.score_distill_iterates)


def build_optimizer(settings, actor: MKDNetActor) -> Tuple[JointOptimizer, optim.lr_scheduler.StepLR]:
    """Adam over the whole network (backbone, classifier, IoU-net groups) with StepLR; the discriminators' own Adam."""
    student, lr = actor.net, settings.learning_rates
    dimp = student.net
    student_optimizer = optim.Adam([
        {'params': dimp.feature_extractor.parameters(), 'lr': lr['backbone']},
        {'params': dimp.classifier.parameters(), 'lr': lr['classifier']},
        {'params': dimp.bb_regressor.parameters(), 'lr': lr['bb_regressor']}], lr=lr['classifier'])
    discriminator_optimizer = None
    if student.discriminators is not None:
        discriminator_optimizer = optim.Adam(student.discriminators.parameters(), lr=settings.discriminator_lr)
    lr_scheduler = optim.lr_scheduler.StepLR(student_optimizer, step_size=settings.lr_step, gamma=settings.lr_gamma)
    return JointOptimizer({'student': student_optimizer, 'discriminators': discriminator_optimizer}), lr_scheduler


def train(settings, role: str) -> None:
    """Configures ``role`` and trains it with ltr's trainer (resuming from this setting's latest checkpoint)."""
    configure(settings, role)
    recipe.portable_env(settings)
    loaders = recipe.build_loaders(settings)
    actor = build_actor(settings)
    optimizer, lr_scheduler = build_optimizer(settings, actor)
    trainer = MKDNetTrainer(actor, loaders, optimizer, settings, lr_scheduler)
    trainer.train(settings.num_epochs, load_latest=True, fail_safe=settings.fail_safe)
