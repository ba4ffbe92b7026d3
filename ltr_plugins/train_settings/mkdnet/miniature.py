"""The paper's experiment in miniature, as ``mkdnet-demo`` and ``mkdnet-ablation`` train it: a Super-DiMP teacher
trained from scratch on synthetic sequences with ordinary-sized targets, then students that start from it and train
on the same sequences degraded so that their targets look as tiny as the test split's (Table IV's variants).

The caller gives the sizes in ``settings.miniature`` (the keys of :data:`REQUIRED_KEYS`, for a student also
:data:`STUDENT_KEYS`) and the variant in ``settings.miniature['variant']``; :func:`train` trains as ``run_training.py``
would, with the variant's Eq. 11 weights. It departs from the paper only so as to learn in minutes on a CPU: a
ResNet-18 trained whole (one Adam group per part), labels as wide in cells as Super-DiMP's at 22, the teacher from
random weights, the degradation's target size at the test targets' median side, validation on a split like the
training one, and every student logs its distance to the teacher (``settings.monitor_teacher``).
"""
import importlib
import os
import types
from typing import Any, Dict, Mapping

from ltr_plugins.models.super_dimp import FEATURE_SZ
from ltr_plugins.train_settings.mkdnet import _recipe as recipe

# Variant -> the paper's train setting whose Eq. 11 weights it keeps ('teacher': Super-DiMP's loss alone).
VARIANTS = {'teacher': 'baseline', 'baseline': 'baseline', 'fd': 'mkdnet_fd', 'sd': 'mkdnet_sd',
            'ioud': 'mkdnet_ioud', 'mkdnet': 'mkdnet'}
REQUIRED_KEYS = ('variant', 'train_dir', 'val_dir', 'backbone', 'feature_sz', 'batch_size', 'epochs',
                 'iterations_per_epoch', 'val_iterations', 'lr', 'lr_step', 'seed', 'max_gap', 'frames_per_sample',
                 'proposals_per_frame')
STUDENT_KEYS = ('teacher_checkpoint', 'degrade_target_size')
PROJECT_PATH = 'ltr/mkdnet/miniature'    # as run_training.py names it
LOGGED_EVERY_ITERATION = ('Loss/', 'Eq11/', 'RDM/', 'Distance/', 'Dis/', 'Teacher/', 'AMP/')


def sizes_of(settings) -> Dict[str, Any]:
    """``settings.miniature``, checked."""
    sizes = getattr(settings, 'miniature', None)
    if not isinstance(sizes, Mapping):
        raise RuntimeError('the train setting mkdnet/miniature trains what mkdnet-demo and mkdnet-ablation ask for '
                           '(settings.miniature holds their sizes); it has no meaning on its own')
    missing = [key for key in REQUIRED_KEYS if key not in sizes]
    if sizes.get('variant') != 'teacher':
        missing += [key for key in STUDENT_KEYS if key not in sizes]
    if missing:
        raise KeyError('settings.miniature lacks {}'.format(missing))
    if sizes['variant'] not in VARIANTS:
        raise ValueError('settings.miniature["variant"] must be one of {}, not {!r}'.format(
            ', '.join(VARIANTS), sizes['variant']))
    return dict(sizes)


def configure(settings) -> None:
    """The paper setting of the variant, with the miniature's sizes and departures (module docstring)."""
    sizes = sizes_of(settings)
    variant = sizes['variant']
    importlib.import_module('ltr_plugins.train_settings.mkdnet.' + VARIANTS[variant]).configure(settings)
    settings.description = 'Miniature {}: ResNet-18 Super-DiMP on synthetic sequences.'.format(variant)
    settings.backbone = sizes['backbone']
    settings.frozen_backbone_layers = ()
    settings.feature_sz = sizes['feature_sz']
    settings.output_sz = settings.feature_sz * 16
    # Super-DiMP's labels are Gaussians 0.92 cells wide on its 22-cell score maps (1/4 of the target); on smaller maps
    # 1/4 of the target would be narrower than a cell, so the width in cells is kept instead.
    settings.output_sigma_factor = 0.25 * FEATURE_SZ / settings.feature_sz
    settings.batch_size = sizes['batch_size']
    settings.num_workers = 0
    settings.max_gap = sizes['max_gap']
    settings.num_train_frames = settings.num_test_frames = sizes['frames_per_sample']
    settings.proposals_per_frame = sizes['proposals_per_frame']
    settings.num_epochs = sizes['epochs']
    settings.samples_per_epoch = sizes['batch_size'] * sizes['iterations_per_epoch']
    settings.lr_step, settings.lr_gamma = sizes['lr_step'], 0.2
    settings.learning_rates = {'backbone': sizes['lr'], 'classifier': sizes['lr'], 'bb_regressor': sizes['lr']}
    settings.synthetic_latot_dir, settings.synthetic_latot_val_dir = sizes['train_dir'], sizes['val_dir']
    settings.train_datasets = {'synthetic_latot': 1}
    settings.val_datasets = {'synthetic_latot_val': 1}
    settings.val_samples_per_epoch = sizes['batch_size'] * sizes['val_iterations']
    settings.val_epoch_interval = 1
    settings.seed = sizes['seed']
    settings.mixed_precision = sizes.get('mixed_precision')
    settings.print_interval = sizes.get('print_interval', settings.print_interval)
    settings.log_every_iteration = LOGGED_EVERY_ITERATION
    settings.fail_safe = False          # a failure must stop the demo, not retry
    settings.keep_checkpoints = 1       # the latest (students resume from it, the export reads it) and the best
    if variant == 'teacher':
        settings.init = 'random'
        settings.random_init_reason = "the miniature's teacher is trained from scratch"
        settings.degrade = False
    else:
        settings.init = 'checkpoint'
        settings.init_checkpoint = sizes['teacher_checkpoint']
        settings.degrade_target_size = float(sizes['degrade_target_size'])
        settings.monitor_teacher = True


def run(settings) -> None:
    configure(settings)
    recipe.train(settings)


def train(workspace_dir: str, sizes: Mapping[str, Any], cudnn_benchmark: bool = False) -> None:
    """Trains one variant as ``run_training.py mkdnet miniature`` would, with its checkpoints and tensorboard logs
    under ``workspace_dir`` and the sizes ``sizes``; reads no local.py (the caller's folders are all it needs)."""
    import cv2
    import torch.backends.cudnn
    cv2.setNumThreads(0)                # as run_training.py does
    torch.backends.cudnn.benchmark = cudnn_benchmark
    env = types.SimpleNamespace(workspace_dir=workspace_dir, tensorboard_dir=os.path.join(workspace_dir, 'tensorboard'),
                                pretrained_networks='')
    settings = types.SimpleNamespace(env=env, use_gpu=True, module_name='mkdnet', script_name='miniature',
                                     project_path=PROJECT_PATH, miniature=dict(sizes))
    run(settings)
