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


class ScriptedValidation(RegressionActor):
    """Training as RegressionActor; each validation call reports the next of ``losses`` as Loss/total."""

    def __init__(self, net, losses):
        super().__init__(net)
        self.losses = list(losses)

    def __call__(self, data):
        loss, stats = super().__call__(data)
        if not self.net.training:
            stats = {'Loss/total': self.losses.pop(0)}
        return loss, stats


def make_trainer(workspace, trainer_class=MKDNetTrainer, fail_from=None, validation_losses=None, **settings):
    """The tiny trainer; with ``validation_losses`` also a 'val' loader whose epochs report those losses."""
    env = types.SimpleNamespace(workspace_dir=workspace, tensorboard_dir=os.path.join(workspace, 'tensorboard'))
    settings = types.SimpleNamespace(env=env, project_path='ltr/tiny/run', module_name='tiny', script_name='run',
                                     description='', print_interval=1, print_stats=None, use_gpu=False,
                                     device='cpu', seed=1, log_every_iteration=('Loss/',), **settings)
    torch.manual_seed(0)
    if validation_losses is None:
        actor = RegressionActor(nn.Linear(3, 1), fail_from)
    else:
        actor = ScriptedValidation(nn.Linear(3, 1), validation_losses)
    sgd = torch.optim.SGD(actor.net.parameters(), lr=0.1)
    optimizer = JointOptimizer({'student': sgd})
    scheduler = torch.optim.lr_scheduler.StepLR(sgd, step_size=10)
    loaders = [LTRLoader('train', Pairs(), training=True, batch_size=BATCH, num_workers=0, shuffle=True)]
    if validation_losses is not None:
        loaders.append(LTRLoader('val', Pairs(), training=False, batch_size=SAMPLES, num_workers=0, shuffle=False))
    return trainer_class(actor, loaders, optimizer, settings, scheduler)


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


# ------------------------------------------------------------------------------- resuming without running code

class SystemCall:
    """Unpickling this object runs a shell command that creates the marker."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, ('touch {}'.format(self.marker),)


TRUST_ENV = 'PYTRACKING_TRUST_NETWORK_FILES'


def test_a_planted_checkpoint_is_refused_naming_it_and_runs_nothing(tmp_path, monkeypatch, capsys):
    """A file planted among a training's checkpoints, as the latest, with a payload: resuming names it and says why;
    nothing it pickled runs (the same for ltr's own trainer, through torch_load_legacy)."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    workspace, marker = str(tmp_path / 'workspace'), str(tmp_path / 'payload-ran')
    make_trainer(workspace).train(1)
    folder = ltr_checkpoints.checkpoint_dir(make_trainer(workspace).settings)
    planted = os.path.join(folder, 'Linear_ep0099.pth.tar')
    torch.save({'epoch': 99, 'net_type': 'Linear', 'net': {'weight': torch.zeros(1, 3)}, 'stats': SystemCall(marker)},
               planted)
    capsys.readouterr()
    with pytest.raises(RuntimeError) as error:
        make_trainer(workspace).train(100, load_latest=True)
    assert str(error.value) == (
        'cannot resume from checkpoint {0}: NetworkFileError: {0}: refused to load: it names the Python object '
        "posix.system, which a network file or training checkpoint does not need (only tensors, plain "
        "values and ltr's own records are read; nothing in the file was run). Use only files you trust; to load this "
        'one with pickle, which runs whatever it holds, set {1}=1. (to resume from the checkpoint before it, move '
        'this file out of {2})'.format(planted, TRUST_ENV, folder))
    assert capsys.readouterr().out == 'Resuming from {} (read as data: nothing the file holds is run)\n'.format(
        planted)
    with pytest.raises(Exception, match='refused to load: it names the Python object posix.system'):
        make_trainer(workspace, trainer_class=LTRTrainer).load_checkpoint()
    assert not os.path.exists(marker)


def test_resuming_rebuilds_ltr_statistics_and_announces_a_trusted_load(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    workspace = str(tmp_path)
    make_trainer(workspace).train(2)
    from ltr.admin.loading import torch_load_legacy
    from ltr.admin.stats import AverageMeter, StatValue
    (_, latest) = ltr_checkpoints.checkpoint_paths(make_trainer(workspace).settings)
    state = torch_load_legacy(latest)
    meter, rate = state['stats']['train']['Loss/total'], state['stats']['train']['LearningRate/group0']
    assert type(meter) is AverageMeter and type(rate) is StatValue
    assert len(meter.history) == 2 and rate.history == [0.1, 0.1]

    trainer = make_trainer(workspace)
    trainer.train(3, load_latest=True)
    assert len(trainer.stats['train']['Loss/total'].history) == 3
    monkeypatch.setenv(TRUST_ENV, 'yes')
    capsys.readouterr()
    make_trainer(workspace).train(3, load_latest=True)
    epoch3 = ltr_checkpoints.checkpoint_paths(make_trainer(workspace).settings)[-1]
    assert capsys.readouterr().out.splitlines()[:3] == [
        'Resuming from {}'.format(epoch3),
        'Loading the training checkpoint {} with pickle ({}=yes): the file can run code.'.format(epoch3, TRUST_ENV),
        'Resumed from the checkpoint of epoch 3 in {}.'.format(epoch3)]
    monkeypatch.setenv(TRUST_ENV, 'maybe')
    with pytest.raises(ValueError, match=r"^PYTRACKING_TRUST_NETWORK_FILES='maybe' is neither yes nor no: set it to 1 "
                                         r'\(or yes, true, on\) to load network files with pickle, or unset it$'):
        make_trainer(workspace).train(4, load_latest=True)


# ---------------------------------------------------------------------------------- one training of a setting

def test_a_second_training_of_the_same_setting_stops_naming_the_first(tmp_path):
    workspace = str(tmp_path)
    running = make_trainer(workspace)
    with ltr_checkpoints.training_lock(running.settings):
        with pytest.raises(ltr_checkpoints.TrainingLocked) as error:
            make_trainer(workspace).train(1)
    assert str(error.value) == (
        "another training of ltr/tiny/run is running (process {}) and writes its checkpoints to {}: wait for it to "
        "end or stop it; two trainings of one setting would overwrite each other's checkpoints".format(
            os.getpid(), ltr_checkpoints.checkpoint_dir(running.settings)))
    assert ltr_checkpoints.checkpoint_paths(running.settings) == []
    make_trainer(workspace).train(1)                                  # the lock went with the first
    assert ltr_checkpoints.latest_epoch(running.settings) == 1


# --------------------------------------------------------------------------------------- keep_checkpoints

def test_keep_checkpoints_keeps_the_latest_n_and_the_best(tmp_path, capsys):
    workspace = str(tmp_path)
    trainer = make_trainer(workspace, validation_losses=[5.0, 1.0, 4.0, 3.0, 2.0], keep_checkpoints=2)
    trainer.train(5)
    names = [os.path.basename(p) for p in ltr_checkpoints.checkpoint_paths(trainer.settings)]
    assert names == ['Linear_ep0002.pth.tar', 'Linear_ep0004.pth.tar', 'Linear_ep0005.pth.tar']
    folder = ltr_checkpoints.checkpoint_dir(trainer.settings)
    removed = [line for line in capsys.readouterr().out.splitlines() if line.startswith('Removed')]
    assert removed == ['Removed {}/Linear_ep{:04d}.pth.tar (settings.keep_checkpoints = 2 keeps the latest 2 and '
                       'the best by validation loss)'.format(folder, epoch) for epoch in (1, 3)]
    assert ltr_checkpoints.read_validation_losses(trainer.settings) == {1: 5.0, 2: 1.0, 3: 4.0, 4: 3.0, 5: 2.0}
    # Resumed, the record goes on: epoch 6 is the new best, and epoch 2 goes.
    resumed = make_trainer(workspace, validation_losses=[0.5], keep_checkpoints=2)
    resumed.train(6, load_latest=True)
    names = [os.path.basename(p) for p in ltr_checkpoints.checkpoint_paths(resumed.settings)]
    assert names == ['Linear_ep0005.pth.tar', 'Linear_ep0006.pth.tar']


@pytest.mark.parametrize('value', [0, -1, 2.5, True, '3'])
def test_keep_checkpoints_must_be_a_count(value, tmp_path):
    trainer = make_trainer(str(tmp_path), keep_checkpoints=value)
    with pytest.raises(ValueError) as error:
        trainer.train(1)
    assert str(error.value) == ('settings.keep_checkpoints = {!r}: give the number of latest checkpoints to keep (1 '
                                'or more; the best one is kept too), or None to keep them all'.format(value))
    assert ltr_checkpoints.checkpoint_paths(trainer.settings) == []


# ---------------------------------------------------------------------------- no upstream deprecation warnings

def test_training_and_loader_workers_print_no_deprecation_warning(tmp_path, capfd):
    """ltr's collate functions in DataLoader workers (which write to the same stderr) and its learning-rate
    logging (patch 12) warn no more; nor does importing ltr's backbones."""
    import subprocess
    import sys
    import warnings
    capfd.readouterr()
    for stack_dim in (0, 1):
        loader = LTRLoader('train', Pairs(), training=True, batch_size=BATCH, num_workers=2, stack_dim=stack_dim)
        batches = list(loader)
        assert batches[0]['x'].shape == ((BATCH, 3) if stack_dim == 0 else (3, BATCH))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        make_trainer(str(tmp_path)).train(2)
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr().err == ''
    imported = subprocess.run([sys.executable, '-W', 'error::FutureWarning', '-W', 'error::DeprecationWarning', '-c',
                               'import ltr.models.backbone'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    assert imported.returncode == 0, imported.stdout
