"""The demo's sizes: named presets, and ``NAME=VALUE`` overrides of their fields.

Why ``not_found_threshold`` is 0 on the small presets: Super-DiMP's labels are Gaussians of 1/24 of the crop; on
a 6-cell score map (96-px crops) that is a quarter of a cell, so a label's peak sampled on the grid is about 0.35, not
about 0.9 as on Super-DiMP's 22 cells, and a briefly trained classifier's peaks are lower still. With
Super-DiMP's 0.25 every frame would count as "target not found" and the box would never move.

``cpu`` (the default) is sized to finish on a 2-core laptop CPU in about a quarter of an hour; ``gpu`` trains longer on
more data with the paper's crop size (hours on one GPU; not measured here); ``test`` is the
suite's smallest run through every step (its scores mean nothing).
"""
import dataclasses
from typing import Dict, List, Sequence, Tuple


@dataclasses.dataclass(frozen=True)
class Preset:
    """Every size of the demo. Training lengths are ltr epochs of ``iterations_per_epoch`` batches."""
    train_sequences: int            # synthetic training sequences (names from the LaTOT train split)
    train_frames: int               # frames per training sequence
    test_sequences: int             # synthetic test sequences (names from the LaTOT test split)
    test_frames: int                # frames per test sequence
    image_width: int                # synthetic frame size, pixels
    image_height: int
    backbone: str                   # 'resnet18' (to layer3, from scratch) or 'resnet50'
    feature_sz: int                 # classifier feature map size; crops are feature_sz * 16 pixels
    batch_size: int
    iterations_per_epoch: int
    teacher_epochs: int
    student_epochs: int             # MKDNet and the baseline
    teacher_lr: float               # Adam, whole network; x0.2 for the last epochs (lr_step)
    student_lr: float
    teacher_lr_step: int            # epochs before the learning rate drops
    student_lr_step: int
    max_gap: int                    # frames between the train and test frames of a training sample
    frames_per_sample: int          # train frames and test frames per training sample (Super-DiMP: 3 and 3)
    proposals_per_frame: int        # IoU-net box proposals per test frame (Super-DiMP: 128)
    not_found_threshold: float      # tracking: a score peak below this keeps the last box (Super-DiMP: 0.25)
    print_interval: int = 10        # ltr's progress line every this many batches

    @property
    def crop_size(self) -> int:
        return self.feature_sz * 16

    def tracking_info(self) -> Dict:
        """What the demo parameter files read (``demo.json`` next to the networks)."""
        return {'image_sample_size': self.crop_size, 'target_not_found_threshold': self.not_found_threshold}

    def training_sizes(self, role: str) -> Dict:
        """What the demo train settings read from ``settings.env.demo`` (see ``_demo_recipe``)."""
        epochs = {'teacher': self.teacher_epochs, 'mkdnet': self.student_epochs, 'baseline': self.student_epochs}
        steps = {'teacher': self.teacher_lr_step, 'mkdnet': self.student_lr_step, 'baseline': self.student_lr_step}
        lr = self.teacher_lr if role == 'teacher' else self.student_lr
        return dict(backbone=self.backbone, feature_sz=self.feature_sz, batch_size=self.batch_size,
                    epochs=epochs, iterations_per_epoch=self.iterations_per_epoch, lr_step=steps,
                    learning_rates={role: {'backbone': lr, 'classifier': lr, 'bb_regressor': lr}},
                    max_gap=self.max_gap, frames_per_sample=self.frames_per_sample,
                    proposals_per_frame=self.proposals_per_frame, print_interval=self.print_interval)


PRESETS: Dict[str, Preset] = {
    'cpu': Preset(train_sequences=24, train_frames=60, test_sequences=8, test_frames=80, image_width=640,
                  image_height=360, backbone='resnet18', feature_sz=6, batch_size=8, iterations_per_epoch=25,
                  teacher_epochs=10, student_epochs=4, teacher_lr=1e-3, student_lr=2e-4, teacher_lr_step=8,
                  student_lr_step=3, max_gap=30, frames_per_sample=2, proposals_per_frame=32,
                  not_found_threshold=0.0),
    'gpu': Preset(train_sequences=400, train_frames=150, test_sequences=40, test_frames=200, image_width=640,
                  image_height=360, backbone='resnet18', feature_sz=22, batch_size=16, iterations_per_epoch=500,
                  teacher_epochs=30, student_epochs=15, teacher_lr=1e-3, student_lr=2e-4, teacher_lr_step=20,
                  student_lr_step=10, max_gap=50, frames_per_sample=3, proposals_per_frame=128,
                  not_found_threshold=0.25, print_interval=50),
    'test': Preset(train_sequences=3, train_frames=24, test_sequences=2, test_frames=12, image_width=320,
                   image_height=180, backbone='resnet18', feature_sz=4, batch_size=2, iterations_per_epoch=2,
                   teacher_epochs=1, student_epochs=1, teacher_lr=1e-3, student_lr=2e-4, teacher_lr_step=1,
                   student_lr_step=1, max_gap=10, frames_per_sample=2, proposals_per_frame=16,
                   not_found_threshold=0.0, print_interval=1),
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
    if preset.batch_size < 2:
        raise ValueError('batch_size must be at least 2 (the IoU-net\'s BatchNorm needs it)')
    if preset.train_frames < 2 or preset.test_frames < 2:
        raise ValueError('train_frames and test_frames must be at least 2')


def image_size(preset: Preset) -> Tuple[int, int]:
    return preset.image_width, preset.image_height
