"""MKDNet training beyond one process: DistributedDataParallel on the CPU (gloo, two processes) and mixed precision.

* One DDP step over a global batch changes the student as one single-process step over that batch does.
* ``torchrun --nproc_per_node 2 run_training.py mkdnet smoke``: only rank 0 writes (files watched with an audit
  hook in every process) and prints; a second run with a damaged latest checkpoint moves it aside and resumes from
  the previous one, repeating the uninterrupted run's epoch exactly.
* A bf16 step on the CPU: PrRoIPool runs in float32 inside autocast, and the losses agree with float32's.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import states_equal, ltr_settings, pytracking_root
from test_mkdnet_training import EVERY_TERM, mkdnet_parts, paper_settings

from ltr_plugins.train_settings.mkdnet import _recipe as recipe
from ltr_plugins.trainers.mkdnet import seed_everything

TESTS = os.path.dirname(os.path.abspath(__file__))
PROCESSES = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_group(args, processes: int, env=None, timeout: float = 900):
    """Starts ``processes`` copies of ``python args`` with torchrun's environment variables; returns their results."""
    port = free_port()
    procs = []
    for rank in range(processes):
        rank_env = dict(os.environ, **(env or {}), MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                        LOCAL_RANK=str(rank), WORLD_SIZE=str(processes), LOCAL_WORLD_SIZE=str(processes),
                        OMP_NUM_THREADS='1')
        procs.append(subprocess.Popen([sys.executable] + list(args), env=rank_env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    results = [(p.communicate(timeout=timeout)[0], p.returncode) for p in procs]
    for rank, (out, code) in enumerate(results):
        assert code == 0, 'rank {} failed ({}):\n{}'.format(rank, code, out[-6000:])
    return results


# ---------------------------------------------------------------------------------------------- DDP == one process

def test_a_ddp_step_over_a_global_batch_equals_a_single_process_step(synthetic_latot, tmp_path):
    worker = os.path.join(TESTS, 'ddp_step_worker.py')
    single, ddp = str(tmp_path / 'single.pt'), str(tmp_path / 'ddp.pt')
    subprocess.run([sys.executable, worker, synthetic_latot.root, str(tmp_path / 'ws1'), single], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS='1'))
    run_group([worker, synthetic_latot.root, str(tmp_path / 'ws2'), ddp], PROCESSES)
    one, group = torch.load(single), torch.load(ddp)
    assert (one['sequences'], group['sequences']) == (2, 1)         # each process saw half of the batch

    # The logged statistics are the global batch's: the mean over the processes of their shares' values.
    assert set(EVERY_TERM) <= set(group['stats'])
    for name in EVERY_TERM:
        assert group['stats'][name] == pytest.approx(one['stats'][name], rel=1e-3, abs=1e-7), name

    # Gradients: DDP's average of the shares' gradients is the global batch's gradient, to float rounding.
    assert one['grads'].keys() == group['grads'].keys()
    assert any(k.startswith('discriminators.') for k in group['grads'])
    flat_one = torch.cat([one['grads'][k].flatten() for k in one['grads']])
    flat_group = torch.cat([group['grads'][k].flatten() for k in one['grads']])
    assert (flat_group - flat_one).norm() <= 1e-4 * flat_one.norm()
    for name, grad in one['grads'].items():
        assert (group['grads'][name] - grad).norm() <= 1e-2 * grad.norm() + 1e-12, name

    # The parameters after the step (SGD, lr 0.01 x gradients whose elements agree to about 2e-4): the same to float
    # tolerance; the untrained ones (layer4) bit-identical.
    assert one['params'].keys() == group['params'].keys()
    for name, value in one['params'].items():
        assert torch.allclose(group['params'][name], value, rtol=1e-5, atol=1e-5), name
    assert all(torch.equal(group['params'][k], one['params'][k]) for k in one['params'] if '.layer4.' in k)


# --------------------------------------------------------------------------- torchrun: who writes, and resuming

# Runs pytracking's run_training.py in one torchrun process with the test's ltr settings, its standard output in
# <logs>/stdout<rank>.txt, and every write under <watch> (open for writing, rename, mkdir, remove) recorded by an
# audit hook into <logs>/writes<rank>.json.
_RANK_DRIVER = textwrap.dedent(r'''
    import atexit, json, os, runpy, sys
    from pytracking_plugins.environment import use_local_settings
    spec = json.loads(os.environ['PLUGIN_TEST_SCRIPT'])
    rank = os.environ['RANK']
    os.dup2(os.open(os.path.join(spec['logs'], 'stdout{}.txt'.format(rank)), os.O_WRONLY | os.O_CREAT), 1)
    watch = os.path.realpath(spec['watch']) + os.sep
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    writes = []

    def under_watch(path):
        return isinstance(path, (str, bytes, os.PathLike)) and os.path.realpath(os.fsdecode(path)).startswith(watch)

    def audit(event, args):
        if event == 'open' and isinstance(args[2], int) and args[2] & WRITE_FLAGS:
            paths = [args[0]]
        elif event in ('os.rename', 'os.replace'):
            paths = [args[0], args[1]]
        elif event in ('os.mkdir', 'os.remove', 'os.rmdir'):
            paths = [args[0]]
        else:
            return
        writes.extend([event, os.fsdecode(p)] for p in paths if under_watch(p))

    def report():
        with open(os.path.join(spec['logs'], 'writes{}.json'.format(rank)), 'w') as f:
            json.dump(writes, f)

    atexit.register(report)
    sys.addaudithook(audit)
    sys.argv = [spec['script']] + spec['args']
    sys.path.insert(0, os.path.dirname(spec['script']))
    use_local_settings(ltr=spec['ltr'])
    runpy.run_path(spec['script'], run_name='__main__')
''')


def torchrun_smoke(workspace: str, logs: str):
    """``torchrun --standalone --nproc_per_node 2 run_training.py mkdnet smoke``; returns per-rank (stdout, writes)."""
    os.makedirs(logs, exist_ok=True)
    driver = os.path.join(logs, 'driver.py')
    with open(driver, 'w') as f:
        f.write(_RANK_DRIVER)
    script = os.path.join(pytracking_root(), 'ltr', 'run_training.py')
    spec = dict(script=script, args=['mkdnet', 'smoke'], ltr=ltr_settings(workspace), logs=logs, watch=workspace)
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                             '--nproc_per_node', str(PROCESSES), driver],
                            cwd=os.path.dirname(script), env=dict(os.environ, PLUGIN_TEST_SCRIPT=json.dumps(spec)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1200)
    ranks = []
    for rank in range(PROCESSES):
        with open(os.path.join(logs, 'stdout{}.txt'.format(rank))) as f:
            out = f.read()
        with open(os.path.join(logs, 'writes{}.json'.format(rank))) as f:
            ranks.append((out, json.load(f)))
    assert result.returncode == 0, '{}\n{}'.format(result.stdout[-4000:], ranks[0][0][-4000:])
    return ranks


def _checkpoints(workspace: str):
    folder = os.path.join(workspace, 'checkpoints', 'ltr', 'mkdnet', 'smoke')
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


def test_torchrun_smoke_writes_from_rank_0_only_and_resumes_past_a_damaged_checkpoint(tmp_path):
    from ltr.admin import loading

    # Run 1: two epochs on two processes.
    first = str(tmp_path / 'first')
    os.makedirs(first)
    (out0, writes0), (out1, writes1) = torchrun_smoke(first, str(tmp_path / 'logs1'))
    assert 'Distributed training: 2 processes (gloo)' in out0
    assert '[train: 1, 1 / 2]' in out0 and '[train: 2, 2 / 2]' in out0 and 'Finished training!' in out0
    assert out1.splitlines() == ['Training:  mkdnet  smoke']          # pytracking's own line, before the setting
    assert writes1 == []
    renamed = {os.path.basename(path) for event, path in writes0 if event == 'os.rename'}
    assert {'MKDNetStudent_ep0001.pth.tar', 'MKDNetStudent_ep0002.pth.tar'} <= renamed
    board = os.path.join(first, 'tensorboard', 'ltr', 'mkdnet', 'smoke')
    assert any(event == 'open' and path.startswith(board) for event, path in writes0)
    assert [os.path.basename(p) for p in _checkpoints(first)] == ['MKDNetStudent_ep0001.pth.tar',
                                                                  'MKDNetStudent_ep0002.pth.tar']

    # Run 2: epoch 1's checkpoint and a truncated epoch 2: the damaged one is named and moved aside, training resumes
    # from epoch 1 and repeats epoch 2 exactly as run 1 did (weights, BatchNorm statistics, both optimizers).
    second = str(tmp_path / 'second')
    folder = os.path.join(second, 'checkpoints', 'ltr', 'mkdnet', 'smoke')
    os.makedirs(folder)
    epoch1, epoch2 = _checkpoints(first)
    shutil.copy(epoch1, folder)
    damaged = os.path.join(folder, os.path.basename(epoch2))
    with open(epoch2, 'rb') as src, open(damaged, 'wb') as dst:
        dst.write(src.read(os.path.getsize(epoch2) // 2))
    (out0, writes0), (out1, writes1) = torchrun_smoke(second, str(tmp_path / 'logs2'))
    assert 'Checkpoint {} is damaged'.format(damaged) in out0
    assert 'moved it aside to {}.corrupt'.format(damaged) in out0
    assert 'Resumed from the checkpoint of epoch 1 in {}, the latest intact one.'.format(
        os.path.join(folder, os.path.basename(epoch1))) in out0
    assert '[train: 1,' not in out0 and '[train: 2, 2 / 2]' in out0 and '[train: 3,' not in out0
    assert out1.splitlines() == ['Training:  mkdnet  smoke'] and writes1 == []
    assert os.path.isfile(damaged + '.corrupt')
    resumed, uninterrupted = loading.torch_load_legacy(damaged), loading.torch_load_legacy(epoch2)
    assert resumed['epoch'] == uninterrupted['epoch'] == 2
    assert states_equal(resumed['net'], uninterrupted['net'])
    assert states_equal(resumed['optimizer'], uninterrupted['optimizer'])


# ------------------------------------------------------------------------------------------------ mixed precision

# bf16 keeps 8 bits of mantissa (about 2-3 significant digits); through a whole DiMP forward the losses of one batch
# agree with float32's within this relative tolerance.
BF16_LOSS_RTOL = 0.05


@pytest.fixture(scope='module')
def batch_and_settings(synthetic_latot, tmp_path_factory):
    settings = paper_settings(str(tmp_path_factory.mktemp('ws')), synthetic_latot.root)
    seed_everything(0, 0)
    return next(iter(recipe.build_loaders(settings)[0])), settings


def test_a_bf16_step_on_the_cpu_pools_in_float32_and_its_losses_agree_with_float32(batch_and_settings):
    data, settings = batch_and_settings
    stats = {}
    for mode in (None, 'bf16'):
        actor, optimizer = mkdnet_parts(settings, mixed_precision=mode)
        actor.train(True)
        torch.manual_seed(5)                      # the same degradation draw
        loss, stats[mode] = actor(data)
        optimizer.zero_grad()
        loss.backward()
        assert loss.dtype == torch.float32
        grads = [p.grad for p in actor.net.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        optimizer.step()

    for name in EVERY_TERM:
        assert stats['bf16'][name] == pytest.approx(stats[None][name], rel=BF16_LOSS_RTOL, abs=1e-4), name
    assert any(stats['bf16'][name] != stats[None][name] for name in EVERY_TERM)     # it did run in bf16

    # Inside autocast the convolutions run in bf16 and every PrRoIPool in float32.
    actor, _ = mkdnet_parts(settings, mixed_precision='bf16')
    bb = actor.net.net.bb_regressor
    seen = {}

    def record(name, get):
        def hook(module, inputs, output):
            seen.setdefault(name, get(inputs, output))           # the first call; returns None: output unchanged
        return hook

    hooks = [bb.conv3_1t.register_forward_hook(record('conv', lambda i, o: o.dtype)),
             bb.prroi_pool3t.register_forward_hook(record('pool', lambda i, o: (i[0].dtype, o.dtype)))]
    with actor.precision.autocast():
        actor.net(train_imgs=data['train_images'], test_imgs=data['test_images'], train_bb=data['train_anno'],
                  test_proposals=data['test_proposals'])
    for hook in hooks:
        hook.remove()
    # the pool is given the convolution's bf16 features and pools them in float32 by itself
    assert seen == {'conv': torch.bfloat16, 'pool': (torch.bfloat16, torch.float32)}
