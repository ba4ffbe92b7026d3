"""A few MKDNet iterations on the CPU on synthetic tiny-object sequences: checks that training runs end to end
(every loss term, checkpointing, resuming), in a minute or two, with no dataset and no downloaded weights.

Teacher and student are randomly initialised (the log says so); crops are 128 px instead of 352 and the batch is 2
per process (the smallest the IoU-net's BatchNorm allows; under torchrun the global batch is 2 x the processes).
The sequences are written with ltr_plugins.synthetic into <workspace_dir>/smoke/latot the first time.

An epoch is two training iterations and one validation iteration. The first run trains epochs 1-2; every further
run resumes from the latest checkpoint of this setting and trains one epoch more.
"""
import os

from ltr_plugins.train_settings.mkdnet import _recipe as recipe
from ltr_plugins.trainers import distributed, ltr_checkpoints

FIRST_RUN_EPOCHS = 2
NUM_SEQUENCES = 4
NUM_FRAMES = 40
IMAGE_SIZE = (320, 180)


def configure(settings) -> None:
    recipe.paper(settings)
    settings.description = 'MKDNet smoke test: random initialisation, synthetic data, a few iterations.'
    settings.init = 'random'
    settings.random_init_reason = 'smoke test'
    processes = distributed.world_size()
    settings.batch_size = 2 * processes
    settings.num_workers = 0
    settings.feature_sz = 8
    settings.output_sz = settings.feature_sz * 16
    settings.max_gap = 30
    settings.num_epochs = max(FIRST_RUN_EPOCHS, latest_checkpoint_epoch(settings) + 1)
    settings.samples_per_epoch = 4 * processes
    settings.val_samples_per_epoch = 2 * processes
    settings.val_epoch_interval = 1
    settings.synthetic_latot_dir = os.path.join(settings.env.workspace_dir, 'smoke', 'latot')
    settings.train_datasets = {'synthetic_latot': 1}
    settings.val_datasets = {'synthetic_latot': 1}
    settings.log_every_iteration = ('Loss/', 'RDM/', 'Dis/')
    settings.fail_safe = False      # a smoke test must fail loudly, not retry


def latest_checkpoint_epoch(settings) -> int:
    """The epoch of the latest intact checkpoint, the one the trainer resumes from (0 when there is none)."""
    if not getattr(settings, 'project_path', None):
        return 0
    return ltr_checkpoints.latest_epoch(settings, intact=True)


def write_synthetic_sequences(root: str) -> None:
    """Writes the smoke sequences (named from the LaTOT train split, so ltr's LaTOT dataset reads them) unless a
    previous run did."""
    from ltr_plugins import latot_data, synthetic
    names = latot_data.split_sequence_names('train')[:NUM_SEQUENCES]
    if all(os.path.isfile(os.path.join(root, name, name + '.txt')) for name in names):
        return
    print('Writing {} synthetic sequences to {}'.format(len(names), root))
    synthetic.write_dataset(root, names=names, num_frames=NUM_FRAMES, image_size=IMAGE_SIZE, seed=0, overwrite=True)


def run(settings) -> None:
    distributed.init_from_env(settings)
    configure(settings)
    with distributed.main_process_first():
        if distributed.is_main_process():
            write_synthetic_sequences(settings.synthetic_latot_dir)
    recipe.train(settings)
