"""ltr's trainer, as MKDNet needs it: two optimizers stepped as one, per-epoch seeds, distributed training, and a
fail-safe that never reports success after a failure.

``LTRTrainer`` runs each epoch unchanged; MKDNet adds, through ltr's public methods, :class:`JointOptimizer` (the
student's Adam with its StepLR schedule and the discriminators' Adam as one optimizer, both stepped after the actor's
single backward pass, both states in the checkpoint) and :class:`MKDNetTrainer`, which re-seeds every epoch from
``settings.seed``, the epoch and the rank (a resumed run repeats an uninterrupted one), logs every iteration, wraps
the student in DDP under torchrun (rank 0 alone writes), holds the setting's lock, and resumes from the latest intact
checkpoint without running pickled code; with ``fail_safe`` a crash restarts from it, up to ``MAX_ATTEMPTS`` attempts,
and the last failure ends the run with its error. Settings: docs/training.md.
"""
import contextlib
import os
import random
import sys
import traceback
from typing import Dict, Iterator, Mapping, Optional

import numpy as np
import torch
from ltr.admin import multigpu
from ltr.trainers import LTRTrainer

from ltr_plugins.network_files import trusted_loading
from ltr_plugins.trainers import data_path, distributed, ltr_checkpoints

# Tries of a fail-safe run (ltr's BaseTrainer.train makes ten).
MAX_ATTEMPTS = 10
# The statistic that names the best checkpoint (settings.keep_checkpoints): the validation loader's total loss.
BEST_LOADER, BEST_STAT = 'val', 'Loss/total'


class JointOptimizer:
    """Named torch optimizers that ltr's trainer drives as one (zero_grad, step, state_dict, load_state_dict).

    Each keeps its own hyper-parameters and state; a learning-rate scheduler is attached to the one it schedules
    (``optimizers['student']`` in MKDNet). Optimizers given as None are left out (the baseline has no
    discriminators). With a ``grad_scaler`` (fp16 training), ``step`` unscales the gradients, skips the step of an
    optimizer whose gradients hold an inf or NaN, and updates the scale, as ``torch.amp.GradScaler`` prescribes.
    """

    def __init__(self, optimizers: Mapping[str, Optional[torch.optim.Optimizer]],
                 grad_scaler: Optional[torch.amp.GradScaler] = None):
        self.optimizers: Dict[str, torch.optim.Optimizer] = {name: opt for name, opt in optimizers.items()
                                                            if opt is not None}
        if not self.optimizers:
            raise ValueError('no optimizer given')
        self.grad_scaler = grad_scaler

    def __getitem__(self, name: str) -> torch.optim.Optimizer:
        return self.optimizers[name]

    def __repr__(self) -> str:
        return 'JointOptimizer({})'.format(', '.join('{}={}'.format(n, type(o).__name__)
                                                    for n, o in self.optimizers.items()))

    @property
    def param_groups(self):
        return [group for opt in self.optimizers.values() for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        if self.grad_scaler is None:
            for opt in self.optimizers.values():
                opt.step()
            return
        for opt in self.optimizers.values():
            self.grad_scaler.step(opt)
        self.grad_scaler.update()

    def state_dict(self) -> Dict[str, dict]:
        state = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        if self.grad_scaler is not None:
            state['grad_scaler'] = self.grad_scaler.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, dict]) -> None:
        expected = set(self.optimizers) | ({'grad_scaler'} if self.grad_scaler is not None else set())
        if set(state) != expected:
            raise KeyError('checkpoint holds optimizer states {} but this run has {} (settings.mixed_precision '
                           'adds grad_scaler for fp16)'.format(sorted(state), sorted(expected)))
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])
        if self.grad_scaler is not None:
            self.grad_scaler.load_state_dict(state['grad_scaler'])


def seed_everything(seed: int, epoch: int, rank: Optional[int] = None) -> None:
    """Seeds Python, NumPy and torch (CPU and CUDA) from (seed, epoch[, rank]); DataLoader workers derive their
    seeds from torch's generator when their iterator starts, so they follow. ``rank`` None (a single process) gives
    the seeds of earlier versions."""
    entropy = [int(seed), int(epoch)] + ([int(rank)] if rank is not None else [])
    state = np.random.SeedSequence(entropy).generate_state(2)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]))
    torch.manual_seed(int(state[0]) << 32 | int(state[1]))


# The epoch number validation is seeded with, every epoch (no training epoch is numbered 0).
VALIDATION_SEED_EPOCH = 0


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Restores Python's, NumPy's and torch's random state after the block."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


class TrainingFailed(RuntimeError):
    """Raised when a fail-safe run has failed on every attempt; its cause is the last error."""


class _NoTensorboard:
    """Stands in for ltr's TensorboardWriter on the processes that do not write (torchrun ranks other than 0)."""
    writer: Dict[str, object] = {}

    def write_info(self, *args) -> None:
        pass

    def write_epoch(self, *args, **kwargs) -> None:
        pass


class MKDNetTrainer(LTRTrainer):
    """``LTRTrainer`` with per-epoch seeding, per-iteration tensorboard scalars, distributed training and the retry
    policy of the module docstring."""

    def __init__(self, actor, loaders, optimizer, settings, lr_scheduler=None, freeze_backbone_bn_layers=False):
        writes = distributed.is_main_process()
        # LTRTrainer opens one tensorboard event file per loader it is given, at construction: a process that does
        # not write gets none (its loaders are set right after). BaseTrainer makes the checkpoint folder when it is
        # missing: rank 0 first, so that the others find it.
        with distributed.main_process_first():
            super().__init__(actor, loaders if writes else [], optimizer, settings, lr_scheduler,
                             freeze_backbone_bn_layers)
        self.loaders = loaders
        if not writes:
            self.tensorboard_writer = _NoTensorboard()
        self._loader = None
        self._iteration = 0
        # ltr's loop copies each batch with a blocking data.to(device): cycle_dataset hands it DeviceBatches instead
        self.copy_batches, self.move_data_to_gpu = self.move_data_to_gpu, False
        actor.on_stats = self._log_iteration
        if distributed.is_initialized():
            actor.distribute(trained=[p for group in optimizer.param_groups for p in group['params']],
                             sync_batchnorm=bool(getattr(settings, 'sync_batchnorm', False)))

    # ------------------------------------------------------------------------------------------------ the loop

    def train(self, max_epochs: int, load_latest: bool = False, fail_safe: bool = True) -> None:
        """Trains up to epoch ``max_epochs``, resuming from the latest intact checkpoint when ``load_latest``; only one
        training of a setting at a time (the main process holds the lock of its checkpoint folder)."""
        ltr_checkpoints.check_keep_checkpoints(getattr(self.settings, 'keep_checkpoints', None))
        if not distributed.is_main_process() or getattr(self.settings.env, 'workspace_dir', None) is None:
            self._train(max_epochs, load_latest, fail_safe)
            return
        with ltr_checkpoints.training_lock(self.settings):
            self._train(max_epochs, load_latest, fail_safe)

    def _train(self, max_epochs: int, load_latest: bool, fail_safe: bool) -> None:
        attempts = MAX_ATTEMPTS if fail_safe and not distributed.is_initialized() else 1
        if load_latest:
            self.resume()
        for attempt in range(1, attempts + 1):
            try:
                for epoch in range(self.epoch + 1, max_epochs + 1):
                    self.epoch = epoch
                    self.train_epoch()
                    if self.lr_scheduler is not None:
                        self.lr_scheduler.step()
                    if getattr(self.settings.env, 'workspace_dir', None) is not None:
                        self.save_checkpoint()
                break
            except Exception as error:
                if attempt == attempts:
                    if attempts == 1:
                        raise
                    raise TrainingFailed('training failed {} times in a row (settings.fail_safe); the last error '
                                         'was at epoch {}: {}: {}'.format(attempts, self.epoch, type(error).__name__,
                                                                         error)) from error
                print('Training crashed at epoch {} (attempt {} of {}):'.format(self.epoch, attempt, attempts))
                traceback.print_exc(file=sys.stdout)
                print('Restarting from the latest checkpoint ...')
                self.resume()
        print('Finished training!')

    def resume(self) -> bool:
        """Loads the latest intact checkpoint of this run (False when there is none: training starts at epoch 1, with
        the weights in memory, as ltr's retry does).

        Damaged checkpoints (truncated, not an archive, a failed CRC) are named and moved aside, newest first, by
        rank 0 before any process loads. A checkpoint that is intact but does not load (another network, other
        optimizers) is an error naming it: loading it again would fail again.
        """
        net_type = type(self.actor.net.module if multigpu.is_multi_gpu(self.actor.net) else self.actor.net).__name__
        moved = []
        with distributed.main_process_first():
            if distributed.is_main_process():
                for path in reversed(ltr_checkpoints.checkpoint_paths(self.settings, net_type)):
                    reason = ltr_checkpoints.damage(path)
                    if reason is None:
                        break
                    moved.append(path)
                    print('Checkpoint {} is damaged ({}); moved it aside to {}.'.format(
                        path, reason, ltr_checkpoints.move_aside(path)))
        paths = ltr_checkpoints.checkpoint_paths(self.settings, net_type)
        if not paths:
            print('No matching checkpoint file found' + (' (none intact)' if moved else ''))
            self.epoch = 0
            return False
        path = paths[-1]
        print('Resuming from {}{}'.format(path, '' if trusted_loading() else
                                          ' (read as data: nothing the file holds is run)'), flush=True)
        try:
            super().load_checkpoint(path)
        except Exception as error:
            raise RuntimeError('cannot resume from checkpoint {}: {}: {} (to resume from the checkpoint before it, '
                               'move this file out of {})'.format(path, type(error).__name__, error,
                                                                 os.path.dirname(path))) from error
        print('Resumed from the checkpoint of epoch {} in {}{}.'.format(
            self.epoch, path, ', the latest intact one' if moved else ''))
        return True

    # ----------------------------------------------------------------------------------------- one epoch, logging

    def train_epoch(self) -> None:
        seed = getattr(self.settings, 'seed', None)
        if seed is not None:
            seed_everything(seed, self.epoch, distributed.rank() if distributed.is_initialized() else None)
        super().train_epoch()
        for writer in self.tensorboard_writer.writer.values():
            writer.flush()

    def cycle_dataset(self, loader) -> None:
        self._loader, self._iteration = loader, 0
        seed = getattr(self.settings, 'seed', None)
        rank = [distributed.rank()] if distributed.is_initialized() else []
        if seed is not None:   # seeds the samples of loaders whose workers outlive the epoch (persistent_workers)
            data_path.set_epoch(loader, [seed, self.epoch if loader.training else VALIDATION_SEED_EPOCH] + rank)
        batches = data_path.DeviceBatches(loader, self.device) if self.copy_batches else loader
        if loader.training or seed is None:
            super().cycle_dataset(batches)
            return
        # Validation draws the same samples (and degradations) at every epoch, so its curve compares epochs; the
        # random state of training is left as it was.
        with preserved_random_state():
            seed_everything(seed, VALIDATION_SEED_EPOCH, rank[0] if rank else None)
            super().cycle_dataset(batches)

    def _log_iteration(self, stats: Mapping[str, float]) -> None:
        self._iteration += 1
        prefixes = tuple(getattr(self.settings, 'log_every_iteration', ()) or ())
        if not prefixes or self._loader is None or not distributed.is_main_process():
            return
        step = (self.epoch - 1) * len(self._loader) + self._iteration
        writer = self.tensorboard_writer.writer[self._loader.name]
        for name, value in stats.items():
            if name.startswith(prefixes):
                writer.add_scalar('Iteration/' + name, value, step)

    def save_checkpoint(self) -> None:
        """ltr's checkpoint (main process only); then the epoch's validation loss is recorded and, with
        ``settings.keep_checkpoints``, older checkpoints are removed."""
        restore = getattr(self.actor, 'restore_skipped_buffers', None)
        if restore is not None:
            restore()                   # an fp16 step skipped last must not leave its statistics in the file
        if not distributed.is_main_process():
            return
        super().save_checkpoint()
        meter = (self.stats.get(BEST_LOADER) or {}).get(BEST_STAT)
        if meter is not None and getattr(meter, 'has_new_data', False) and meter.history:
            ltr_checkpoints.record_validation_loss(self.settings, self.epoch, meter.history[-1],
                                                   '{} {}'.format(BEST_LOADER, BEST_STAT))
        keep = getattr(self.settings, 'keep_checkpoints', None)
        if keep is not None:
            net = self.actor.net.module if multigpu.is_multi_gpu(self.actor.net) else self.actor.net
            for path in ltr_checkpoints.prune_checkpoints(self.settings, type(net).__name__, keep):
                print('Removed {} (settings.keep_checkpoints = {} keeps the latest {} and the best by validation '
                      'loss)'.format(path, keep, keep))
