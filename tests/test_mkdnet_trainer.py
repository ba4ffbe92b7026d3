"""MKDNetTrainer on ltr's real trainer with a tiny network: the ltr behaviour the plugin relies on (checkpoint
layout and format, tensorboard files per loader, the per-epoch loop), damaged checkpoints, and failures that must
end the run with an error instead of "Finished training!".
"""
import glob
import os
import types

import pytest
import torch
import torch.nn as nn
from ltr.actors import BaseActor
from ltr.data import LTRLoader
from ltr.trainers import LTRTrainer
from pytracking import TensorDict

from ltr_plugins.trainers import JointOptimizer, MKDNetTrainer, ltr_checkpoints
from ltr_plugins.trainers.mkdnet import MAX_ATTEMPTS, TrainingFailed

SAMPLES, BATCH = 8, 4


class Pairs(torch.utils.data.Dataset):
    """Fixed (x, y) pairs of a linear map, as TensorDicts like ltr's processing returns."""

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(SAMPLES, 3, generator=generator)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def __len__(self):
        return SAMPLES

    def __getitem__(self, index):
        return TensorDict({'x': self.x[index], 'y': self.y[index]})


class RegressionActor(BaseActor):
    """Squared error of a linear layer; raises from call number ``fail_from`` on (a crash inside an epoch)."""

    def __init__(self, net, fail_from=None):
        super().__init__(net, objective=None)
        self.calls, self.fail_from, self.on_stats = 0, fail_from, None

    def __call__(self, data):
        self.calls += 1
        if self.fail_from is not None and self.calls >= self.fail_from:
            raise RuntimeError('injected failure {}'.format(self.calls))
        loss = ((self.net(data['x']) - data['y']) ** 2).mean()
        stats = {'Loss/total': loss.item()}
        if self.on_stats is not None:
            self.on_stats(stats)
        return loss, stats


def make_trainer(workspace, trainer_class=MKDNetTrainer, fail_from=None):
    env = types.SimpleNamespace(workspace_dir=workspace, tensorboard_dir=os.path.join(workspace, 'tensorboard'))
    settings = types.SimpleNamespace(env=env, project_path='ltr/tiny/run', module_name='tiny', script_name='run',
                                     description='', print_interval=1, print_stats=None, use_gpu=False,
                                     device='cpu', seed=1, log_every_iteration=('Loss/',))
    torch.manual_seed(0)
    actor = RegressionActor(nn.Linear(3, 1), fail_from)
    sgd = torch.optim.SGD(actor.net.parameters(), lr=0.1)
    optimizer = JointOptimizer({'student': sgd})
    scheduler = torch.optim.lr_scheduler.StepLR(sgd, step_size=10)
    loader = LTRLoader('train', Pairs(), training=True, batch_size=BATCH, num_workers=0, shuffle=True)
    return trainer_class(actor, [loader], optimizer, settings, scheduler)


# ------------------------------------------------------------------------------------- the ltr behaviour relied on

def test_ltr_writes_and_finds_checkpoints_where_the_adapter_says(tmp_path):
    """ltr_plugins.trainers.ltr_checkpoints: ltr's own trainer saves where checkpoint_paths looks, as an archive that
    damage() accepts, and its load_checkpoint() picks the last of them."""
    trainer = make_trainer(str(tmp_path), trainer_class=LTRTrainer)
    for epoch in (1, 2):
        trainer.epoch = epoch
        trainer.save_checkpoint()
    paths = ltr_checkpoints.checkpoint_paths(trainer.settings, 'Linear')
    assert [os.path.basename(p) for p in paths] == ['Linear_ep0001.pth.tar', 'Linear_ep0002.pth.tar']
    assert ltr_checkpoints.checkpoint_paths(trainer.settings) == paths
    assert all(ltr_checkpoints.damage(p) is None for p in paths)
    assert ltr_checkpoints.latest_epoch(trainer.settings) == 2
    trainer.epoch = 0
    assert trainer.load_checkpoint() and trainer.epoch == 2


def test_ltr_opens_tensorboard_files_per_loader_only(tmp_path):
    """A process that does not write gives LTRTrainer no loaders (MKDNetTrainer on torchrun ranks other than 0): it
    then opens no tensorboard file; with a loader it opens one at construction."""
    def event_files(workspace):
        return glob.glob(os.path.join(workspace, 'tensorboard', '**', 'events.*'), recursive=True)

    with_loader = make_trainer(str(tmp_path / 'a'), trainer_class=LTRTrainer)
    assert len(event_files(str(tmp_path / 'a'))) == 1
    settings = make_trainer(str(tmp_path / 'b'), trainer_class=LTRTrainer).settings
    for path in event_files(str(tmp_path / 'b')):
        os.remove(path)
    LTRTrainer(with_loader.actor, [], with_loader.optimizer, settings, with_loader.lr_scheduler)
    assert event_files(str(tmp_path / 'b')) == []


def test_training_logs_every_iteration_and_checkpoints_every_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    trainer = make_trainer(str(tmp_path))
    trainer.train(2, load_latest=True, fail_safe=True)
    assert ltr_checkpoints.latest_epoch(trainer.settings) == 2
    accumulator = EventAccumulator(os.path.join(str(tmp_path), 'tensorboard', 'ltr', 'tiny', 'run', 'train'))
    accumulator.Reload()
    steps = [event.step for event in accumulator.Scalars('Iteration/Loss/total')]
    assert steps == [1, 2, 3, 4]               # two iterations per epoch, two epochs


# ------------------------------------------------------------------------------------------- damage and failure

def test_a_truncated_latest_checkpoint_is_named_moved_aside_and_the_previous_one_used(tmp_path, capsys):
    workspace = str(tmp_path)
    make_trainer(workspace).train(3, load_latest=True)
    epoch1, epoch2, epoch3 = ltr_checkpoints.checkpoint_paths(make_trainer(workspace).settings)
    reference = torch.load(epoch3, weights_only=False)
    os.remove(epoch3)
    with open(epoch2, 'r+b') as f:
        f.truncate(os.path.getsize(epoch2) // 2)
    capsys.readouterr()

    trainer = make_trainer(workspace)
    trainer.train(3, load_latest=True, fail_safe=True)
    out = capsys.readouterr().out
    assert 'Checkpoint {} is damaged'.format(epoch2) in out
    assert 'moved it aside to {}.corrupt'.format(epoch2) in out
    assert 'Resumed from the checkpoint of epoch 1 in {}, the latest intact one.'.format(epoch1) in out
    assert 'Training crashed' not in out and out.rstrip().endswith('Finished training!')
    assert os.path.isfile(epoch2 + '.corrupt')
    retrained = torch.load(epoch3, weights_only=False)
    assert all(torch.equal(retrained['net'][k], reference['net'][k]) for k in reference['net'])


def test_every_checkpoint_damaged_starts_over_and_says_so(tmp_path, capsys):
    workspace = str(tmp_path)
    make_trainer(workspace).train(1)
    (only,) = ltr_checkpoints.checkpoint_paths(make_trainer(workspace).settings)
    with open(only, 'wb') as f:
        f.write(b'not a checkpoint')
    capsys.readouterr()
    make_trainer(workspace).train(1, load_latest=True)
    out = capsys.readouterr().out
    assert 'Checkpoint {} is damaged'.format(only) in out and 'No matching checkpoint file found (none intact)' in out
    assert ltr_checkpoints.damage(only) is None                                     # epoch 1 trained again


def test_an_intact_checkpoint_that_does_not_load_is_an_error_naming_it(tmp_path):
    workspace = str(tmp_path)
    make_trainer(workspace).train(1)
    (path,) = ltr_checkpoints.checkpoint_paths(make_trainer(workspace).settings)
    state = torch.load(path, weights_only=False)
    state['net'] = {'weight': torch.zeros(5, 5)}
    torch.save(state, path)
    with pytest.raises(RuntimeError, match='cannot resume from checkpoint {}'.format(path)):
        make_trainer(workspace).train(2, load_latest=True)


def test_repeated_failures_end_with_the_last_error_never_with_success(tmp_path, capsys):
    trainer = make_trainer(str(tmp_path), fail_from=3)              # epoch 1 passes, epoch 2 fails every time
    with pytest.raises(TrainingFailed, match='failed {} times in a row'.format(MAX_ATTEMPTS)) as failure:
        trainer.train(3, load_latest=True, fail_safe=True)
    assert 'injected failure' in str(failure.value) and isinstance(failure.value.__cause__, RuntimeError)
    out = capsys.readouterr().out
    assert 'Finished training!' not in out
    assert out.count('Training crashed at epoch 2') == MAX_ATTEMPTS - 1
    assert out.count('Resumed from the checkpoint of epoch 1') == MAX_ATTEMPTS - 1
    assert ltr_checkpoints.latest_epoch(trainer.settings) == 1


def test_without_fail_safe_the_first_failure_is_raised(tmp_path, capsys):
    with pytest.raises(RuntimeError, match='injected failure 1$'):
        make_trainer(str(tmp_path), fail_from=1).train(2, fail_safe=False)
    assert 'Finished training!' not in capsys.readouterr().out


def test_the_command_line_exits_non_zero_after_repeated_failures(tmp_path):
    """What the user sees: ``python -c`` standing in for run_training.py, whose train setting ends in
    ``trainer.train``: a non-zero exit status and the last error on standard error."""
    import subprocess
    import sys
    code = ('import sys; sys.path.insert(0, {tests!r}); import test_mkdnet_trainer as t; '
            't.make_trainer({ws!r}, fail_from=1).train(2, load_latest=True, fail_safe=True)').format(
                tests=os.path.dirname(os.path.abspath(__file__)), ws=str(tmp_path))
    result = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert result.returncode != 0
    assert 'TrainingFailed: training failed {} times in a row'.format(MAX_ATTEMPTS) in result.stderr
    assert 'injected failure' in result.stderr and 'Finished training!' not in result.stdout


def test_fp16_steps_through_the_grad_scaler_and_checkpoints_its_state():
    """settings.mixed_precision = 'fp16': the loss is scaled for backward, the joint optimizer unscales before
    stepping (the step equals float32's to fp16 rounding), skips a step with inf gradients, and its checkpointed
    state includes the scaler's."""
    from ltr_plugins.trainers.precision import MixedPrecision
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    nets = {mode: nn.Linear(3, 1) for mode in (None, 'fp16')}
    nets['fp16'].load_state_dict(nets[None].state_dict())
    for mode, net in nets.items():
        precision = MixedPrecision(mode, 'cpu')
        if precision.scaler is not None:        # the default 2 ** 16 overflows this problem's fp16 gradients at first
            precision.scaler = torch.amp.GradScaler('cpu', init_scale=256.0)
        optimizer = JointOptimizer({'student': torch.optim.SGD(net.parameters(), lr=0.1)}, precision.scaler)
        with precision.autocast():
            loss = ((net(x) - y) ** 2).mean()
        optimizer.zero_grad()
        precision.scale(loss).backward()
        optimizer.step()
    assert torch.allclose(nets['fp16'].weight, nets[None].weight, atol=2e-3)
    assert not torch.equal(nets['fp16'].weight, nets[None].weight)          # it did run in fp16

    state = optimizer.state_dict()
    assert set(state) == {'student', 'grad_scaler'} and state['grad_scaler']['scale'] == 256.0
    before = nets['fp16'].weight.detach().clone()
    nets['fp16'].weight.grad = torch.full_like(before, float('inf'))
    optimizer.step()                                                     # skipped, and the scale backs off
    assert torch.equal(nets['fp16'].weight, before) and optimizer.grad_scaler.get_scale() == 128.0
    optimizer.load_state_dict(state)
    assert optimizer.grad_scaler.get_scale() == 256.0
    with pytest.raises(KeyError, match='grad_scaler'):
        JointOptimizer({'student': torch.optim.SGD(nets[None].parameters(), lr=0.1)}).load_state_dict(state)
