"""The sizes of the miniature experiment (``mkdnet-demo``, ``mkdnet-ablation``): named presets, and ``NAME=VALUE``
overrides of their fields.

The data follow the paper's setup: training and validation sequences whose targets are ordinary-sized (LaSOT-like,
tens of pixels), test sequences whose targets are tiny (LaTOT-like: under 22 px on average). The students see the
training crops degraded until the mean target has ``degrade_target_size`` pixels, the test targets' median side.

``not_found_threshold`` is 0 at 96-px crops: Super-DiMP's 0.25 is set for a converged classifier on 22-cell score
maps; the miniature's briefly trained classifiers on 6-cell maps peak lower, and with 0.25 the box would rarely move.
"""
import dataclasses
import os
from typing import Dict, List, Sequence, Tuple

from ltr_plugins.synthetic.spec import min_image_side

MIXED_PRECISION = ('none', 'bf16', 'fp16')
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_folder(command: str) -> str:
    """Where ``mkdnet-demo`` ('demo') and ``mkdnet-ablation`` ('ablation') write without ``--folder``."""
    return os.path.join(PROJECT_ROOT, 'workspace', command)


@dataclasses.dataclass(frozen=True)
class Preset:
    """Every size of the experiment. Training lengths are ltr epochs of ``iterations_per_epoch`` batches."""
    train_sequences: int            # synthetic training sequences (names from the LaTOT train split)
    train_frames: int               # frames per training sequence
    val_sequences: int              # validation sequences, drawn like the training ones (other names and seeds)
    val_iterations: int             # validation batches per epoch (the same samples every epoch)
    test_sequences: int             # synthetic test sequences (names from the LaTOT test split)
    test_frames: int                # frames per test sequence
    image_width: int                # synthetic frame size, pixels
    image_height: int
    train_target_min: float         # target sides of the training and validation sequences, pixels
    train_target_max: float
    test_target_min: float          # target sides of the test sequences, pixels
    test_target_max: float
    degrade_target_size: float      # the students' degradation: mean target side after shrinking, pixels
    backbone: str                   # 'resnet18' (to layer3, from scratch) or 'resnet50'
    feature_sz: int                 # classifier feature map size; crops are feature_sz * 16 pixels
    batch_size: int
    iterations_per_epoch: int
    teacher_epochs: int
    teacher_lr: float               # Adam, whole network; x0.2 after teacher_lr_step epochs
    teacher_lr_step: int
    student_epochs: int             # every student (MKDNet, the baseline, the ablation's variants)
    student_lr: float
    student_lr_step: int
    max_gap: int                    # frames between the train and test frames of a training sample
    frames_per_sample: int          # train frames and test frames per training sample (Super-DiMP: 3 and 3)
    proposals_per_frame: int        # IoU-net box proposals per test frame (Super-DiMP: 128)
    not_found_threshold: float      # tracking: a score peak below this keeps the last box (Super-DiMP: 0.25)
    seeds: int                      # students trained per variant (seeds 0 .. seeds-1)
    mixed_precision: str = 'none'   # 'none', 'bf16' or 'fp16' (settings.mixed_precision of every training)
    print_interval: int = 25        # ltr's progress line every this many batches

    @property
    def crop_size(self) -> int:
        return self.feature_sz * 16

    def image_size(self) -> Tuple[int, int]:
        return self.image_width, self.image_height

    def tracking_info(self) -> Dict:
        """What the miniature parameter files read (``miniature.json`` next to the networks)."""
        return {'image_sample_size': self.crop_size, 'target_not_found_threshold': self.not_found_threshold}

    def teacher_sizes(self, seed: int) -> Dict:
        """The sizes the teacher's training reads (``settings.miniature``); its reuse depends on nothing else."""
        return dict(variant='teacher', epochs=self.teacher_epochs, lr=self.teacher_lr, lr_step=self.teacher_lr_step,
                    seed=seed, **self._network_sizes())

    def student_sizes(self, variant: str, seed: int) -> Dict:
        """The sizes a student's training reads: its variant and seed, and the students' schedule."""
        return dict(variant=variant, epochs=self.student_epochs, lr=self.student_lr, lr_step=self.student_lr_step,
                    seed=seed, degrade_target_size=self.degrade_target_size, **self._network_sizes())

    def _network_sizes(self) -> Dict:
        return dict(backbone=self.backbone, feature_sz=self.feature_sz, batch_size=self.batch_size,
                    iterations_per_epoch=self.iterations_per_epoch, val_iterations=self.val_iterations,
                    max_gap=self.max_gap, frames_per_sample=self.frames_per_sample,
                    proposals_per_frame=self.proposals_per_frame, print_interval=self.print_interval,
                    mixed_precision=None if self.mixed_precision == 'none' else self.mixed_precision)


_CPU = dict(train_sequences=32, train_frames=60, val_sequences=8, val_iterations=6, test_sequences=16, test_frames=50,
            image_width=640, image_height=360, train_target_min=24.0, train_target_max=72.0, test_target_min=4.0,
            test_target_max=14.0, degrade_target_size=7.5, backbone='resnet18', feature_sz=6, batch_size=8,
            iterations_per_epoch=25, teacher_epochs=16, teacher_lr=1e-3, teacher_lr_step=11, student_epochs=4,
            student_lr=2e-4, student_lr_step=3, max_gap=30, frames_per_sample=2, proposals_per_frame=32,
            not_found_threshold=0.0, seeds=1)

PRESETS: Dict[str, Preset] = {
    # A 2-core laptop CPU: the demo in under a quarter of an hour.
    'cpu': Preset(**_CPU),
    # Super-DiMP's 352-px crops and more data and training (hours on one GPU; not measured here).
    'gpu': Preset(**dict(_CPU, train_sequences=400, train_frames=150, val_sequences=40, val_iterations=25,
                         test_sequences=40, test_frames=200, feature_sz=22, batch_size=16, iterations_per_epoch=500,
                         teacher_epochs=40, teacher_lr_step=30, student_epochs=15, student_lr_step=10, max_gap=50,
                         frames_per_sample=3, proposals_per_frame=128, not_found_threshold=0.25, print_interval=50)),
    # The suite's smallest run through every step (its scores mean nothing).
    'test': Preset(**dict(_CPU, train_sequences=3, train_frames=24, val_sequences=2, val_iterations=1,
                          test_sequences=2, test_frames=12, image_width=320, image_height=180, feature_sz=4,
                          train_target_min=16.0, train_target_max=40.0, test_target_max=10.0, degrade_target_size=6.0,
                          batch_size=2, iterations_per_epoch=2, teacher_epochs=2, teacher_lr_step=1, student_epochs=1,
                          student_lr_step=1, max_gap=10, proposals_per_frame=16, print_interval=1)),
}


def field_names() -> List[str]:
    return [field.name for field in dataclasses.fields(Preset)]


def apply_overrides(preset: Preset, overrides: Sequence[str]) -> Preset:
    """``preset`` with ``NAME=VALUE`` overrides (``--set``); an unknown name or a bad value is an error naming it."""
    changes = {}
    types = {field.name: field.type for field in dataclasses.fields(Preset)}
    for item in overrides:
        name, sep, text = item.partition('=')
        name = name.strip()
        if not sep or name not in types:
            raise ValueError('--set {!r}: expected NAME=VALUE with NAME one of {}'.format(item, ', '.join(types)))
        kind = types[name]
        try:
            value = kind(text)
        except ValueError:
            raise ValueError('--set {}: {!r} is not a valid {}'.format(name, text, kind.__name__)) from None
        if kind is float and value != value:
            raise ValueError('--set {}: must be a number, not {}'.format(name, text))
        if kind in (int, float) and (value < 0 or (value == 0 and name != 'not_found_threshold')):
            raise ValueError('--set {}: must be positive, not {}'.format(name, text))
        changes[name] = value
    result = dataclasses.replace(preset, **changes)
    check(result)
    return result


def check(preset: Preset) -> None:
    """Refuses sizes the pipeline cannot run with, naming the setting."""
    if preset.backbone not in ('resnet18', 'resnet50'):
        raise ValueError("backbone must be 'resnet18' or 'resnet50', not {!r}".format(preset.backbone))
    if preset.mixed_precision not in MIXED_PRECISION:
        raise ValueError('mixed_precision must be one of {}, not {!r}'.format(', '.join(MIXED_PRECISION),
                                                                             preset.mixed_precision))
    if preset.batch_size < 2:
        raise ValueError('batch_size must be at least 2 (the IoU-net\'s BatchNorm needs it)')
    if preset.train_frames < 2 or preset.test_frames < 2:
        raise ValueError('train_frames and test_frames must be at least 2')
    for split in ('train', 'test'):
        low, high = getattr(preset, split + '_target_min'), getattr(preset, split + '_target_max')
        if not 1 <= low <= high:
            raise ValueError('{0}_target_min and {0}_target_max must satisfy 1 <= min <= max, got {1} and {2}'.format(
                split, low, high))
        need = min_image_side(high)
        if min(preset.image_width, preset.image_height) < need:
            raise ValueError('image_width and image_height must be at least {} for {}_target_max = {:g}'.format(
                need, split, high))
