"""The training data path on CUDA (ltr_plugins.trainers.data_path, precision.set_tf32, distributed.sync_batchnorm):
pinned batches copied without blocking, workers kept alive with every sample seeded, TF32 and SyncBatchNorm as
settings. Without a GPU, the copies are observed under ``SimulatedCuda`` (ltr_plugins.host_syncs)."""
import copy
import os
import shutil
import types

import pytest
import torch
from ltr.trainers import LTRTrainer
from pytracking import TensorDict

from conftest import states_equal
from test_mkdnet_trainer import RegressionActor, make_trainer
from test_mkdnet_training import mkdnet_parts, paper_settings

from ltr_plugins.host_syncs import SimulatedCuda
from ltr_plugins.train_settings.mkdnet import _recipe as recipe
from ltr_plugins.trainers import MKDNetTrainer, data_path, distributed, ltr_checkpoints
from ltr_plugins.trainers.precision import set_tf32


def test_batches_are_pinned_for_cuda_only_and_workers_kept_only_when_asked():
    settings = types.SimpleNamespace()
    assert data_path.loader_options(settings, torch.device('cuda', 0)) == {'pin_memory': True,
                                                                          'persistent_workers': False}
    assert data_path.loader_options(settings, torch.device('cpu'))['pin_memory'] is False
    settings.pin_memory, settings.persistent_workers = False, True
    assert data_path.loader_options(settings, torch.device('cuda', 0)) == {'pin_memory': False,
                                                                          'persistent_workers': True}


@pytest.mark.parametrize('trainer_class, blocking', [(LTRTrainer, True), (MKDNetTrainer, False)])
def test_the_trainer_copies_each_batch_to_the_gpu_without_blocking(tmp_path, trainer_class, blocking):
    """ltr's trainer copies with a blocking ``data.to(device)``; MKDNet's trainer hands ltr's loop the batches
    copied with ``non_blocking=True``. Both on a simulated CUDA device: two batches of two tensors."""
    trainer = make_trainer(str(tmp_path), trainer_class=trainer_class)
    trainer.epoch, trainer.device = 1, torch.device('cuda', 0)
    with SimulatedCuda() as simulation:
        simulation.device(trainer.actor.net)
        trainer.cycle_dataset(trainer.loaders[0])
    copies = [event for event in simulation.events if event.kind in ('copy', 'async_copy')]
    assert len(copies) == 4 and all(event.kind == ('copy' if blocking else 'async_copy') for event in copies)
    assert simulation.count('mismatch') == 0 and trainer.actor.calls == 2


class RandomSamples(torch.utils.data.Dataset):
    """Random draws, as ltr's samplers make them: each sample is whatever the generators give."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return TensorDict({'x': torch.randn(3), 'y': torch.rand(1)})


class RecordingActor(RegressionActor):
    def __init__(self, net):
        super().__init__(net)
        self.seen = []

    def __call__(self, data):
        self.seen.append(data['x'].clone())
        return super().__call__(data)


def persistent_trainer(workspace: str, num_workers: int) -> MKDNetTrainer:
    trainer = make_trainer(workspace)
    settings, optimizer, scheduler = trainer.settings, trainer.optimizer, trainer.lr_scheduler
    loader = data_path.build_loader('train', RandomSamples(), training=True, batch_size=4, num_workers=num_workers,
                                    shuffle=True, persistent_workers=True)
    actor = RecordingActor(trainer.actor.net)
    return MKDNetTrainer(actor, [loader], optimizer, settings, scheduler)


def test_kept_workers_draw_each_epoch_the_same_samples_whatever_the_workers_and_after_a_resume(tmp_path):
    first = persistent_trainer(str(tmp_path / 'first'), num_workers=2)
    assert isinstance(first.loaders[0], data_path.PersistentLTRLoader) and first.loaders[0].persistent_workers
    first.train(2, load_latest=True)
    epoch1, epoch2 = first.actor.seen[:2], first.actor.seen[2:]
    assert len(epoch2) == 2 and not any(torch.equal(a, b) for a, b in zip(epoch1, epoch2))

    # one worker instead of two, resumed from epoch 1's checkpoint: epoch 2 draws what it drew in the first run
    second = persistent_trainer(str(tmp_path / 'second'), num_workers=1)
    epoch1_checkpoint = ltr_checkpoints.checkpoint_paths(first.settings)[0]
    os.makedirs(ltr_checkpoints.checkpoint_dir(second.settings))
    shutil.copy(epoch1_checkpoint, ltr_checkpoints.checkpoint_dir(second.settings))
    second.train(2, load_latest=True)
    assert len(second.actor.seen) == 2 and all(torch.equal(a, b) for a, b in zip(second.actor.seen, epoch2))


def test_without_the_setting_the_loader_is_ltrs_own(synthetic_latot, tmp_path):
    settings = paper_settings(str(tmp_path), synthetic_latot.root)
    assert settings.persistent_workers is False and settings.pin_memory is True
    loader = recipe.build_loaders(settings)[0]
    assert type(loader).__name__ == 'LTRLoader' and not loader.persistent_workers
    assert loader.pin_memory is torch.cuda.is_available()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_on_a_gpu_the_batches_arrive_in_pinned_memory(synthetic_latot, tmp_path):
    settings = paper_settings(str(tmp_path), synthetic_latot.root)
    settings.num_workers = 1
    batch = next(iter(recipe.build_loaders(settings)[0]))
    assert batch['train_images'].is_pinned() and batch['test_proposals'].is_pinned()


def test_tf32_is_set_for_matrix_products_and_convolutions_or_left_as_pytorch_has_it():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        set_tf32(None)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
        set_tf32(True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        set_tf32(False)
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_sync_batchnorm_keeps_the_state_dict_the_optimizers_and_a_single_process_step(synthetic_latot, tmp_path):
    """SyncBatchNorm replaces the student's BatchNorm layers with the same tensors: the state dict (what checkpoints
    and the export hold) is unchanged, the optimizers step the same parameters, and one process computes what
    BatchNorm does. It needs CUDA (simulated here: the conversion checks the device only)."""
    settings = paper_settings(str(tmp_path), synthetic_latot.root)
    torch.manual_seed(0)
    data = next(iter(recipe.build_loaders(settings)[0]))
    actor, optimizer = mkdnet_parts(settings)
    plain_actor, plain_optimizer = copy.deepcopy((actor, optimizer))
    state = actor.net.state_dict()
    with pytest.raises(ValueError, match='settings.sync_batchnorm'):
        distributed.sync_batchnorm(actor.net)
    with SimulatedCuda() as simulation:
        simulation.device(actor.net)
        distributed.sync_batchnorm(actor.net)
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in actor.net.modules())
    assert not any(type(m) in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d) for m in actor.net.modules())
    converted = actor.net.state_dict()
    assert list(converted) == list(state)
    assert all(converted[k].data_ptr() == state[k].data_ptr() for k in state)   # the very same tensors
    for one_actor, one_optimizer in ((actor, optimizer), (plain_actor, plain_optimizer)):
        one_actor.train(True)
        torch.manual_seed(5)
        loss, _ = one_actor(data)
        one_optimizer.zero_grad()
        loss.backward()
        one_optimizer.step()
    assert states_equal(actor.net.state_dict(), plain_actor.net.state_dict())
    assert states_equal(optimizer.state_dict(), plain_optimizer.state_dict())
