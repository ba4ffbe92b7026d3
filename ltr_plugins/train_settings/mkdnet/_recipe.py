"""MKDNet's training recipe, shared by the train settings of this folder (each one is a few lines on top of it).

``paper(settings)`` sets every knob as the paper trains MKDNet (sections IV.C-D, V.A) on top of Super-DiMP's data
pipeline (ltr/train_settings/dimp/super_dimp.py), which MKDNet keeps; ``train(settings)`` builds the data, the
networks, the actor and the optimizers from those settings and runs ltr's trainer. The ``build_*`` functions are the
steps of ``train``, usable on their own (tests, benchmarks, notebooks).

This module is not a train setting itself (hence the underscore): run ``run_training.py mkdnet mkdnet`` etc.
"""
import copy
import os
import sys
import types
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.optim as optim
from ltr import MultiGPU
from ltr.admin import multigpu
from ltr.data import LTRLoader, processing, sampler
import ltr.data.transforms as tfm
import ltr.models.loss as ltr_losses
import ltr.models.loss.kl_regression as klreg_losses

from ltr_plugins import distillation as kd
from ltr_plugins.actors.mkdnet import MKDNetActor
from ltr_plugins.models.degradation import build_degradation
from ltr_plugins.models.discriminator import build_discriminators, roi_feature_shapes
from ltr_plugins.export_mkdnet import resolve_checkpoint, student_from_checkpoint
from ltr_plugins.models.super_dimp import SUPER_DIMP_FROZEN_LAYERS, build_super_dimp
from ltr_plugins.models.teacher_student import (FrozenTeacher, MKDNetStudent, find_super_dimp_checkpoint,
                                                load_super_dimp)
from ltr_plugins.trainers import JointOptimizer, MKDNetTrainer, data_path, distributed
from ltr_plugins.trainers.precision import MixedPrecision, set_tf32


def paper(settings) -> None:
    """MKDNet as the paper trains it. Variants change a few of these after calling this."""
    settings.description = ('MKDNet (Tiny Object Tracking: A Large-scale Dataset and A Baseline): a Super-DiMP '
                            'student on degraded crops distilled from a fixed Super-DiMP teacher at the feature, '
                            'score and IoU levels, gated by the reliable distillation measure.')

    # Super-DiMP's data pipeline (crops, jitter, labels, proposals), unchanged. batch_size and samples_per_epoch
    # are global: under torchrun each process loads 1/WORLD_SIZE of them (ltr_plugins.trainers.distributed).
    settings.batch_size = 20
    settings.num_workers = 8
    settings.multi_gpu = False
    settings.print_interval = 1
    settings.normalize_mean = [0.485, 0.456, 0.406]
    settings.normalize_std = [0.229, 0.224, 0.225]
    settings.search_area_factor = 6.0
    settings.output_sigma_factor = 1 / 4
    settings.target_filter_sz = 4
    settings.feature_sz = 22
    settings.output_sz = settings.feature_sz * 16
    settings.center_jitter_factor = {'train': 3, 'test': 5.5}
    settings.scale_jitter_factor = {'train': 0.25, 'test': 0.5}
    settings.hinge_threshold = 0.05
    settings.num_train_frames = 3
    settings.num_test_frames = 3
    settings.max_gap = 200

    # Data (paper V.A and IV.D): 50 epochs of 20000 samples from the LaSOT, GOT-10k and TrackingNet train splits.
    # Dataset names: see DATASETS below; the number is the sampling weight.
    settings.num_epochs = 50
    settings.samples_per_epoch = 20000
    settings.train_datasets = {'lasot': 1, 'got10k_vottrain': 1, 'trackingnet': 1}
    # Validation as Super-DiMP validates (the paper does not say).
    settings.val_datasets = {'got10k_votval': 1}
    settings.val_samples_per_epoch = 10000
    settings.val_epoch_interval = 5

    # Teacher and student both start from the official Super-DiMP checkpoint (settings.teacher_checkpoint, when
    # set before calling this, names it; otherwise super_dimp.pth.tar is looked up in the environment's folders).
    settings.init = 'super_dimp'
    settings.teacher_checkpoint = getattr(settings, 'teacher_checkpoint', None)

    # Degradation of the student's crops (ltr_plugins.models.degradation).
    settings.degrade = True
    settings.degrade_target_size = 16
    settings.degrade_down_mode = 'bicubic'
    settings.degrade_up_modes = ('nearest', 'bilinear')
    settings.degrade_per_image = False
    settings.degrade_antialias = True

    # Eq. 11 (ltr_plugins.distillation): alpha 100, beta 0.01, gamma 5, delta 2, eta 0.1; a 0 switches a term off.
    settings.loss_weight = dict(kd.PAPER_LOSS_WEIGHTS)
    settings.score_distill_iterates = (-1,)     # the final classifier score map

    # Adam per module group, StepLR(15, 0.2) (paper V.A); the discriminators' own Adam has no schedule.
    settings.learning_rates = {'filter_initializer': 5e-5, 'filter_optimizer': 5e-4, 'classifier_features': 5e-5,
                               'layer3': 5e-5, 'bb_regressor': 5e-4}
    settings.discriminator_lr = 5e-4
    settings.lr_step = 15
    settings.lr_gamma = 0.2

    settings.seed = 1                               # per-epoch seeding: resume repeats what a full run does
    settings.mixed_precision = None                 # or 'bf16' / 'fp16' (ltr_plugins.trainers.precision)
    # The data path on CUDA (ltr_plugins.trainers.data_path, precision, distributed; docs/training.md): pinned
    # batches copied without blocking; the others change numbers and are off.
    settings.pin_memory = True
    settings.persistent_workers = False             # True: workers live for the run, every sample seeded
    settings.allow_tf32 = None                      # None: PyTorch's defaults; True / False: TF32 on / off
    settings.sync_batchnorm = False                 # torchrun on GPUs: BatchNorm over the global batch
    settings.log_every_iteration = ('Loss/', 'RDM/')
    settings.fail_safe = True


# Training datasets by name; each factory takes the settings (the paths come from ltr/admin/local.py).
def dataset_dir(settings, setting: str, dataset: str) -> str:
    """``settings.env.<setting>``, or an error naming the setting, ltr's local.py and the fix when it is not an
    existing folder (ltr's datasets fail on it with a bare ``FileNotFoundError: ''``)."""
    path = getattr(settings.env, setting, '')
    if path and os.path.isdir(os.path.expanduser(path)):
        return os.path.expanduser(path)
    local = getattr(sys.modules.get('ltr.admin.local'), '__file__', None) or 'ltr/admin/local.py'
    raise FileNotFoundError(
        '{} {} in {}: set it to your {} folder (this setting trains on {}; `run_training.py mkdnet smoke` trains on '
        'synthetic data without any dataset).'.format(
            setting, 'is not set' if not path else '= {!r} is not a folder'.format(path), local, dataset,
            ', '.join(settings.train_datasets)))


def _lasot(settings):
    from ltr.dataset import Lasot
    return Lasot(dataset_dir(settings, 'lasot_dir', 'LaSOT'), split='train')


def _got10k(split: str) -> Callable:
    def make(settings):
        from ltr.dataset import Got10k
        return Got10k(dataset_dir(settings, 'got10k_dir', 'GOT-10k'), split=split)
    return make


def _trackingnet(settings):
    from ltr.dataset import TrackingNet
    return TrackingNet(dataset_dir(settings, 'trackingnet_dir', 'TrackingNet'), set_ids=list(range(4)))


def _latot_train(settings):
    from ltr_plugins.dataset import LaTOT
    return LaTOT(settings.env.latot_dir, split='train')


def _synthetic_latot(settings):
    from ltr_plugins.dataset import LaTOT
    return LaTOT(settings.synthetic_latot_dir, split='train', allow_missing=True)


def _synthetic_latot_val(settings):
    from ltr_plugins.dataset import LaTOT
    return LaTOT(settings.synthetic_latot_val_dir, split='train', allow_missing=True)


DATASETS: Dict[str, Callable] = {
    'lasot': _lasot,
    'got10k_vottrain': _got10k('vottrain'),
    'got10k_votval': _got10k('votval'),
    'trackingnet': _trackingnet,
    'latot_train': _latot_train,
    'synthetic_latot': _synthetic_latot,   # smoke, miniature: synthetic sequences in settings.synthetic_latot_dir
    'synthetic_latot_val': _synthetic_latot_val,   # miniature: ... in settings.synthetic_latot_val_dir
}


def build_processing(settings, training: bool) -> processing.KLDiMPProcessing:
    """Super-DiMP's KLDiMPProcessing (train: with colour jitter and flips; val: without jitter)."""
    transform_joint = tfm.Transform(tfm.ToGrayscale(probability=0.05), tfm.RandomHorizontalFlip(probability=0.5))
    normalize = tfm.Normalize(mean=settings.normalize_mean, std=settings.normalize_std)
    if training:
        transform = tfm.Transform(tfm.ToTensorAndJitter(0.2), tfm.RandomHorizontalFlip(probability=0.5), normalize)
    else:
        transform = tfm.Transform(tfm.ToTensor(), normalize)
    output_sigma = settings.output_sigma_factor / settings.search_area_factor
    proposal_params = {'boxes_per_frame': getattr(settings, 'proposals_per_frame', 128), 'gt_sigma': (0.05, 0.05),
                       'proposal_sigma': [(0.05, 0.05), (0.5, 0.5)]}
    label_params = {'feature_sz': settings.feature_sz, 'sigma_factor': output_sigma,
                    'kernel_sz': settings.target_filter_sz}
    return processing.KLDiMPProcessing(search_area_factor=settings.search_area_factor, output_sz=settings.output_sz,
                                       center_jitter_factor=settings.center_jitter_factor,
                                       scale_jitter_factor=settings.scale_jitter_factor, crop_type='inside_major',
                                       max_scale_change=1.5, mode='sequence', proposal_params=proposal_params,
                                       label_function_params=label_params, label_density_params=label_params,
                                       transform=transform, joint_transform=transform_joint)


def _sampler(settings, datasets: Dict[str, float], samples_per_epoch: int, training: bool) -> sampler.DiMPSampler:
    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown:
        raise KeyError('unknown dataset name(s) {}; known: {}'.format(unknown, sorted(DATASETS)))
    return sampler.DiMPSampler([DATASETS[name](settings) for name in datasets], list(datasets.values()),
                               samples_per_epoch=samples_per_epoch, max_gap=settings.max_gap,
                               num_test_frames=settings.num_test_frames, num_train_frames=settings.num_train_frames,
                               processing=build_processing(settings, training))


def build_loaders(settings) -> List[LTRLoader]:
    """The train loader and, when ``settings.val_datasets`` is not empty, the validation loader (this process's
    share of the global batch and epoch under torchrun)."""
    batch_size = distributed.per_process(settings.batch_size, 'batch_size')
    options = data_path.loader_options(settings, training_device(settings))
    loaders = [data_path.build_loader(
        'train', _sampler(settings, settings.train_datasets,
                          distributed.per_process(settings.samples_per_epoch, 'samples_per_epoch'), True),
        training=True, batch_size=batch_size, num_workers=settings.num_workers, shuffle=True, drop_last=True,
        stack_dim=1, **options)]
    if settings.val_datasets:
        val_samples = distributed.per_process(settings.val_samples_per_epoch, 'val_samples_per_epoch')
        loaders.append(data_path.build_loader(
            'val', _sampler(settings, settings.val_datasets, val_samples, False), training=False,
            batch_size=batch_size, num_workers=settings.num_workers, shuffle=False, drop_last=True,
            epoch_interval=settings.val_epoch_interval, stack_dim=1, **options))
    return loaders


def build_networks(settings) -> Tuple[MKDNetStudent, Optional[FrozenTeacher]]:
    """The student (with discriminators when an adversarial term is on) and the fixed teacher, both initialised from
    the same weights (:func:`initial_network`). The teacher is built when a distillation term needs it, or when
    ``settings.monitor_teacher`` asks for the student-teacher distances of a student trained without distillation.

    With ``settings.seed``, the random initialisations (discriminators; everything in a smoke run) are drawn from
    that seed, in a forked RNG: the global RNG is left as it was. Every torchrun process builds the same networks.
    """
    seed = getattr(settings, 'seed', None)
    if seed is None and distributed.is_initialized():
        raise ValueError('settings.seed is None: under torchrun every process must build the same teacher, so a '
                         'seed is needed')
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        return _build_networks(settings)


def initial_network(settings) -> Tuple[torch.nn.Module, str]:
    """The Super-DiMP network training starts from, and where it came from, by ``settings.init``:

    * ``'super_dimp'``: the official Super-DiMP checkpoint (:func:`find_super_dimp_checkpoint`);
    * ``'checkpoint'``: the student of the MKDNet training checkpoint ``settings.init_checkpoint`` (a file, or a
      folder whose latest checkpoint is used), rebuilt from the constructor it records;
    * ``'random'``: random weights, built on ``settings.backbone`` with ``settings.frozen_backbone_layers``; only
      with ``settings.random_init_reason`` saying why (a smoke test, a network trained from scratch).
    """
    if settings.init == 'super_dimp':
        source = find_super_dimp_checkpoint(settings)
        return load_super_dimp(source, settings.feature_sz), source
    if settings.init == 'checkpoint':
        source = resolve_checkpoint(settings.init_checkpoint)
        return student_from_checkpoint(source), source
    if settings.init == 'random':
        reason = getattr(settings, 'random_init_reason', None)
        if not reason:
            raise ValueError("settings.init = 'random' starts from random weights: set settings.random_init_reason "
                             "to say why (a smoke test, a network trained from scratch)")
        net = build_super_dimp(backbone_pretrained=False, feature_sz=settings.feature_sz,
                               search_area_factor=settings.search_area_factor,
                               output_sigma_factor=settings.output_sigma_factor,
                               backbone=getattr(settings, 'backbone', 'resnet50'),
                               frozen_backbone_layers=getattr(settings, 'frozen_backbone_layers',
                                                              SUPER_DIMP_FROZEN_LAYERS))
        return net, 'random initialisation ({})'.format(reason)
    raise ValueError("settings.init must be 'super_dimp', 'checkpoint' or 'random', not {!r}".format(settings.init))


def _build_networks(settings) -> Tuple[MKDNetStudent, Optional[FrozenTeacher]]:
    active = kd.active_distillation_terms(settings.loss_weight)
    student, source = initial_network(settings)
    if settings.init == 'random':
        print('MKDNet: RANDOM INITIALISATION ({}): no trained network is loaded.'.format(
            settings.random_init_reason))
    else:
        print('MKDNet: initialised from {}'.format(source))
    discriminators = None
    if active['gen'] or active['dis']:
        discriminators = build_discriminators(roi_feature_shapes(student.bb_regressor))
    with_teacher = active['any'] or getattr(settings, 'monitor_teacher', False)
    teacher = FrozenTeacher(copy.deepcopy(student)) if with_teacher else None
    return MKDNetStudent(student, discriminators, info={'init': source}), teacher


def build_actor(settings) -> MKDNetActor:
    """The actor with its networks (wrapped for multi-GPU training when ``settings.multi_gpu``)."""
    net, teacher = build_networks(settings)
    if settings.multi_gpu:
        # dim=1: the sequence dimension of every input and output (see ltr_plugins.models.teacher_student).
        net = MultiGPU(net, dim=1)
        teacher = MultiGPU(teacher, dim=1) if teacher is not None else None
    objective = {'bb_ce': klreg_losses.KLRegression(),
                 'test_clf': ltr_losses.LBHinge(threshold=settings.hinge_threshold)}
    return MKDNetActor(net=net, objective=objective, loss_weight=settings.loss_weight, teacher=teacher,
                       degradation=build_degradation(settings), score_iterates=settings.score_distill_iterates,
                       precision=MixedPrecision(getattr(settings, 'mixed_precision', None), training_device(settings)))


def training_device(settings) -> torch.device:
    """The device ltr's trainer will use: ``settings.device`` (set per process under torchrun), else its default."""
    device = getattr(settings, 'device', None)
    if device is not None:
        return torch.device(device)
    return torch.device('cuda:0' if torch.cuda.is_available() and getattr(settings, 'use_gpu', True) else 'cpu')


# The student's Adam has one parameter group per entry of settings.learning_rates: the entry's name -> the part of
# the DiMPnet it trains. The paper's groups (V.A) are the first five; a network trained whole uses the last three.
PARAMETER_GROUPS = {'filter_initializer': 'classifier.filter_initializer',
                    'filter_optimizer': 'classifier.filter_optimizer',
                    'classifier_features': 'classifier.feature_extractor',
                    'layer3': 'feature_extractor.layer3',
                    'bb_regressor': 'bb_regressor',
                    'backbone': 'feature_extractor',
                    'classifier': 'classifier'}


def student_parameter_groups(dimp: torch.nn.Module, learning_rates: Dict[str, float]) -> List[Dict]:
    """Adam's parameter groups from ``settings.learning_rates`` (see :data:`PARAMETER_GROUPS`); an unknown name or
    two groups sharing a parameter is an error naming the setting."""
    groups, owner = [], {}
    for name, lr in learning_rates.items():
        if name not in PARAMETER_GROUPS:
            raise KeyError('settings.learning_rates[{!r}]: unknown part; known: {}'.format(
                name, ', '.join(PARAMETER_GROUPS)))
        params = list(dimp.get_submodule(PARAMETER_GROUPS[name]).parameters())
        for param in params:
            if id(param) in owner:
                raise ValueError('settings.learning_rates: {!r} and {!r} overlap ({} is part of {})'.format(
                    owner[id(param)], name, PARAMETER_GROUPS[name], PARAMETER_GROUPS[owner[id(param)]]))
            owner[id(param)] = name
        groups.append({'params': params, 'lr': lr})
    return groups


def build_optimizer(settings, actor: MKDNetActor) -> Tuple[JointOptimizer, optim.lr_scheduler.StepLR]:
    """The student's Adam (one group per entry of ``settings.learning_rates``) with its StepLR, and the
    discriminators' own Adam."""
    student = actor.net.module if multigpu.is_multi_gpu(actor.net) else actor.net
    student_optimizer = optim.Adam(student_parameter_groups(student.net, settings.learning_rates))
    discriminator_optimizer = None
    if student.discriminators is not None:
        discriminator_optimizer = optim.Adam(student.discriminators.parameters(), lr=settings.discriminator_lr)
    lr_scheduler = optim.lr_scheduler.StepLR(student_optimizer, step_size=settings.lr_step, gamma=settings.lr_gamma)
    return JointOptimizer({'student': student_optimizer, 'discriminators': discriminator_optimizer},
                          grad_scaler=actor.precision.scaler), lr_scheduler


def portable_env(settings) -> None:
    """Replaces ``settings.env`` by a plain namespace with the same values.

    ltr's trainer pickles the settings into every checkpoint. ``settings.env`` is an instance of the
    ``EnvironmentSettings`` class of the user's ltr/admin/local.py, so such a checkpoint can only be unpickled where
    that very module exists (and it cannot be pickled at all when the class was made on the fly, as test harnesses
    do). The values are what the checkpoint needs; a ``SimpleNamespace`` keeps them and pickles anywhere.
    """
    settings.env = types.SimpleNamespace(**vars(settings.env))


def train(settings) -> None:
    """Builds everything from ``settings`` and trains, resuming from the latest checkpoint of this setting (under
    torchrun: one process of a DistributedDataParallel run)."""
    distributed.init_from_env(settings)
    portable_env(settings)
    set_tf32(getattr(settings, 'allow_tf32', None))
    with distributed.main_process_output():
        loaders = build_loaders(settings)    # first: a missing dataset folder fails before the networks load
        actor = build_actor(settings)
        optimizer, lr_scheduler = build_optimizer(settings, actor)
        trainer = MKDNetTrainer(actor, loaders, optimizer, settings, lr_scheduler)
        trainer.train(settings.num_epochs, load_latest=True, fail_safe=settings.fail_safe)
