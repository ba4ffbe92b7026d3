"""ltr's trainer, as MKDNet needs it: two optimizers stepped as one, exact resume, RDM logged every iteration.

``LTRTrainer`` runs the loop unchanged (forward, ``optimizer.zero_grad()``, ``loss.backward()``, ``optimizer.step()``,
checkpoint every epoch, ``load_latest`` resume, fail-safe restart on a NaN/inf loss). MKDNet adds to it only:

* :class:`JointOptimizer`: the student's Adam (with the StepLR schedule) and the discriminators' own Adam (constant
  learning rate) behind the one optimizer interface the trainer drives. Both step after the single backward pass of
  the actor's loss (see ltr_plugins.actors.mkdnet), and the trainer's checkpoint field ``'optimizer'`` holds both
  states, so pytracking's own save/load covers the discriminators' optimizer too.
* :class:`MKDNetTrainer`: re-seeds Python, NumPy and torch at the start of every epoch from ``settings.seed`` and
  the epoch number, so that a run resumed with ``load_latest`` from the checkpoint of epoch e repeats epoch e + 1
  exactly as an uninterrupted run does (same samples, crops, proposals and degradations); writes the stats named by
  ``settings.log_every_iteration`` to tensorboard at every iteration (ltr writes epoch averages only); flushes
  tensorboard every epoch; says which epoch a run resumed from; and does not reload, after a finished run, the
  checkpoint it has just written (ltr's retry loop asks for that nine times).
"""
import random
from typing import Dict, Mapping, Optional

import numpy as np
import torch
from ltr.trainers import LTRTrainer


class JointOptimizer:
    """Named torch optimizers that ltr's trainer drives as one (zero_grad, step, state_dict, load_state_dict).

    Each keeps its own hyper-parameters and state; a learning-rate scheduler is attached to the one it schedules
    (``optimizers['student']`` in MKDNet). Optimizers given as None are left out (the baseline has no
    discriminators).
    """

    def __init__(self, optimizers: Mapping[str, Optional[torch.optim.Optimizer]]):
        self.optimizers: Dict[str, torch.optim.Optimizer] = {name: opt for name, opt in optimizers.items()
                                                            if opt is not None}
        if not self.optimizers:
            raise ValueError('no optimizer given')

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
        for opt in self.optimizers.values():
            opt.step()

    def state_dict(self) -> Dict[str, dict]:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: Mapping[str, dict]) -> None:
        if set(state) != set(self.optimizers):
            raise KeyError('checkpoint holds optimizer states {} but this run has {}'.format(
                sorted(state), sorted(self.optimizers)))
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


def seed_everything(seed: int, epoch: int) -> None:
    """Seeds Python, NumPy and torch (CPU and CUDA) from (seed, epoch); DataLoader workers derive their seeds from
    torch's generator when their iterator starts, so they follow."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]))
    torch.manual_seed(int(state[0]) << 32 | int(state[1]))


class MKDNetTrainer(LTRTrainer):
    """``LTRTrainer`` with per-epoch seeding, per-iteration tensorboard scalars and a resume message (see above)."""

    def __init__(self, actor, loaders, optimizer, settings, lr_scheduler=None, freeze_backbone_bn_layers=False):
        super().__init__(actor, loaders, optimizer, settings, lr_scheduler, freeze_backbone_bn_layers)
        self._iteration = 0
        # The epoch whose checkpoint the in-memory state equals (None while an epoch is changing it).
        self._state_is_checkpoint_of: Optional[int] = None

    def train_epoch(self) -> None:
        seed = getattr(self.settings, 'seed', None)
        if seed is not None:
            seed_everything(seed, self.epoch)
        super().train_epoch()
        for writer in self.tensorboard_writer.writer.values():
            writer.flush()

    def cycle_dataset(self, loader) -> None:
        self._iteration = 0
        self._state_is_checkpoint_of = None
        super().cycle_dataset(loader)

    def _update_stats(self, new_stats, batch_size, loader) -> None:
        super()._update_stats(new_stats, batch_size, loader)
        self._iteration += 1
        prefixes = tuple(getattr(self.settings, 'log_every_iteration', ()) or ())
        if not prefixes:
            return
        step = (self.epoch - 1) * len(loader) + self._iteration
        writer = self.tensorboard_writer.writer[loader.name]
        for name, value in new_stats.items():
            if name.startswith(prefixes):
                writer.add_scalar('Iteration/' + name, value, step)

    def save_checkpoint(self) -> None:
        super().save_checkpoint()
        self._state_is_checkpoint_of = self.epoch

    def load_checkpoint(self, checkpoint=None, fields=None, ignore_fields=None, load_constructor=False):
        """ltr's load, skipped when it would reload the checkpoint just written from the state still in memory.

        ``BaseTrainer.train`` calls ``load_checkpoint()`` again after every (re)try, also after a run that finished;
        reloading then changes nothing and costs seconds per checkpoint. After a crash inside an epoch the state in
        memory is not a checkpoint's, so it is reloaded as ltr does.
        """
        if checkpoint is None and fields is None and self._state_is_checkpoint_of is not None \
                and self._state_is_checkpoint_of == self.epoch:
            return True
        loaded = super().load_checkpoint(checkpoint, fields, ignore_fields, load_constructor)
        if loaded:
            self._state_is_checkpoint_of = self.epoch
            print('Resumed from the checkpoint of epoch {} in {}/{}.'.format(
                self.epoch, self._checkpoint_dir, self.settings.project_path))
        return loaded
