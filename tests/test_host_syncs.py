"""Host syncs of a training step and of a tracked frame, counted without a GPU, against a budget.

A CUDA run waits for the device wherever the host reads a device value or copies to the device from pageable memory
(``ltr_plugins.host_syncs``). The counting runs the real code on the CPU under ``SimulatedCuda``: every tensor a
CUDA run would hold on the GPU reports ``cuda:0`` (so the code takes its CUDA paths: ``.to(device)``, ``use_gpu``,
the backends chosen by device), and each host read of such a tensor (``.item()``, ``.tolist()``, ``bool()``,
``int()``, ``float()``, ``__index__``, ``.cpu()``, boolean-mask indexing and the other aten operations that read
values inside) and each blocking copy to the device is recorded with its line. Why this rather than the ``meta``
device or ``FakeTensorMode``: those tensors have no values, so the code cannot run past its first data-dependent
branch (a sync is, by definition, where the host needs a value), and every value would have to be recorded from a
CPU run and replayed; here the values are real and the CPU run is the run. A CPU tensor's ``.item()`` is exactly
where a CUDA run syncs, provided the simulation knows which tensors would be on the device: it follows PyTorch's
placement rules (factories without a device and ``torch.tensor(data)`` on the host, results of device inputs on the
device, ...), and an operation mixing host and device tensors, which would raise on CUDA, is recorded as a
mismatch: none may occur, so the placement is checked on every operation.

PrRoIPool runs its pure-PyTorch implementation here (``PRROI_POOL_BACKEND=torch``): on a GPU, backend 'auto' runs
the Triton kernels, which make no host reads (tests/test_prroi_pool_triton.py makes any host read an error), so the
counts below are those of the pure-PyTorch fallback. What is not the plugin's code (pytracking's DiMP tracker, ltr's
networks) is counted in the totals and left as it is.
"""
import math
import os

import pytest
import torch

from test_mkdnet_training import mkdnet_parts, paper_settings

from ltr_plugins.host_syncs import SimulatedCuda, format_summary, profiled_syncs
from ltr_plugins.prroi_pool import PrRoIPool2D
from ltr_plugins.train_settings.mkdnet import _recipe as recipe
from ltr_plugins.trainers import data_path

# Budgets: host syncs (host reads + blocking copies to the device).
TRAINING_STEP_BUDGET = 20
TRACKED_FRAME_BUDGET = {'whole map': 53, 'window': 33}
OWN_CODE = ('ltr_plugins/', 'pytracking_plugins/')
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


@pytest.fixture
def pure_pytorch_pool(monkeypatch):
    monkeypatch.setenv('PRROI_POOL_BACKEND', 'torch')


def own(simulation: SimulatedCuda, kind: str, path: str = '') -> dict:
    """{function: count} of the events of ``kind`` made by the plugin's code (in ``path``)."""
    counts = {}
    for event in simulation.events:
        if event.kind == kind and event.where.startswith(OWN_CODE) and path in event.where:
            function = event.where.rsplit(' (', 1)[1][:-1]
            counts[function] = counts.get(function, 0) + 1
    return counts


def report(title: str, simulation: SimulatedCuda, budget: int, capsys) -> None:
    with capsys.disabled():
        print('\n{}: {} host syncs (budget {}): {} reads, {} blocking copies to the device; {} non-blocking copies'
              .format(title, simulation.syncs, budget, simulation.count('read'), simulation.count('copy'),
                      simulation.count('async_copy')))
        print(format_summary(simulation))


def count_pool_calls(*modules: torch.nn.Module) -> list:
    calls = []
    for module in modules:
        for pool in module.modules():
            if isinstance(pool, PrRoIPool2D):
                pool.register_forward_hook(lambda *args: calls.append(1))
    return calls


# ---------------------------------------------------------------------------------------------- the simulation
def test_simulated_cuda_records_what_a_cuda_run_syncs_on():
    with SimulatedCuda() as simulation:
        x = simulation.device(torch.arange(6.0))
        host = torch.arange(6.0)
        assert (x.device, x.is_cuda, host.device) == (torch.device('cuda', 0), True, torch.device('cpu'))
        made_there = torch.zeros(3, device=x.device)
        assert made_there.is_cuda and not torch.zeros(3).is_cuda and not torch.Tensor([1.0]).is_cuda
        x.sum().item()
        host.sum().item()                            # the host's own values: no sync
        x[x > 2]                                     # output size read on the host
        x[x > 4] = 0.0                               # one host value: a masked_fill_, no sync
        float(x[1])
        torch.arange(x[3].long())                    # read inside the operation
        x.cpu()
        torch.tensor([1.0, 2.0], device='cuda')      # blocking copy
        host.to('cuda', non_blocking=True)           # non-blocking copy
        assert host.cuda().is_cuda and not host.is_cuda
        x + host.view(2, 3).reshape(6)               # would raise on CUDA
    reads = [e.what for e in simulation.events if e.kind == 'read']
    assert reads == ['item', 'boolean-mask indexing', '__float__', '_local_scalar_dense', 'cpu() to the host']
    assert [e.what for e in simulation.events if e.kind == 'copy'] == ['tensor from host data', 'cuda() to the device']
    assert simulation.count('async_copy') == 1 and simulation.syncs == 7
    assert [e.what for e in simulation.events if e.kind == 'mismatch'] == [
        'add: host and device tensors in one operation']
    assert all(e.where.startswith('tests/test_host_syncs.py:') for e in simulation.events)


def test_the_pure_pytorch_pool_on_a_device_reads_once_per_call_and_pools_nan_outside_the_batch(pure_pytorch_pool):
    """On a device the pool's batch indices are not read: a RoI whose index lies outside the batch pools NaN (as
    in the Triton kernel), the others pool what they pool on the CPU, where such an index is an IndexError."""
    from ltr_plugins.prroi_pool import prroi_pool2d
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3, 4, 9, 9, generator=generator)
    rois = torch.tensor([[0, 1.0, 1.0, 30.0, 40.0], [2, 5.0, 6.0, 50.0, 60.0], [3, 5.0, 6.0, 50.0, 60.0],
                         [-1, 2.0, 2.0, 20.0, 20.0]])
    with pytest.raises(IndexError, match='batch indices'):
        prroi_pool2d(features, rois, 3, 3, 1 / 8)
    expected = [prroi_pool2d(features, rois[:2], 3, 3, 1 / 8), prroi_pool2d(features[:1], rois[:1], 3, 3, 1 / 8)]
    reads = []
    for maps, boxes in ((features, rois), (features[:1], rois[[0, 3]])):   # taps, then window strategy
        with SimulatedCuda() as simulation:
            simulation.device([maps, boxes])
            pooled = prroi_pool2d(maps, boxes, 3, 3, 1 / 8)
        assert simulation.count('copy', 'mismatch') == 0
        reads.append(own(simulation, 'read'))
        valid = 2 if maps.shape[0] == 3 else 1
        assert torch.equal(pooled[:valid], expected[maps.shape[0] == 1]) and torch.isnan(pooled[valid:]).all()
    assert reads == [{'_tap_sizes': 1}, {'_choose_strategy': 1}]


# -------------------------------------------------------------------------------------------- a training step
def test_a_training_step_stays_within_its_sync_budget(synthetic_latot, tmp_path, pure_pytorch_pool, capsys):
    """The real MKDNetActor (degradation, teacher, student, discriminators: the paper's Eq. 11) on a small DiMPnet
    and one batch of Super-DiMP's processing (128-px crops), copied as the trainer copies it, then backward and the
    joint optimizer's step."""
    settings = paper_settings(str(tmp_path), synthetic_latot.root)
    torch.manual_seed(0)
    batch = next(iter(recipe.build_loaders(settings)[0]))
    actor, optimizer = mkdnet_parts(settings)
    actor.train(True)
    pool_calls = count_pool_calls(actor.net, actor.teacher)
    with SimulatedCuda() as simulation:
        simulation.device(actor.net)
        simulation.device(actor.teacher)
        data = data_path.to_device(batch, 'cuda')
        loss, stats = actor(data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    report('host syncs of one MKDNet training step', simulation, TRAINING_STEP_BUDGET, capsys)
    assert math.isfinite(stats['Loss/total']) and simulation.count('mismatch') == 0
    assert simulation.syncs <= TRAINING_STEP_BUDGET
    # the batch arrives without blocking; the plugin reads the boxes once (validity and degradation), the
    # statistics once, and each PrRoIPool call's sizes once; it copies nothing to the device
    assert simulation.count('async_copy') == sum(isinstance(v, torch.Tensor) for v in batch.values())
    assert own(simulation, 'read') == {'to_host': 1, '_finish_stats': 1, '_tap_sizes': len(pool_calls)}
    assert len(pool_calls) == 10 and own(simulation, 'copy') == {}


@pytest.mark.cuda
@requires_cuda
def test_on_a_gpu_a_training_step_stays_within_its_sync_budget(synthetic_latot, tmp_path, capsys):
    """The same step on a GPU, PrRoIPool as backend 'auto' runs it there (the Triton kernels), its host syncs the
    synchronising CUDA runtime calls of a profiler trace."""
    settings = paper_settings(str(tmp_path), synthetic_latot.root)
    torch.manual_seed(0)
    batch = next(iter(recipe.build_loaders(settings)[0]))
    actor, optimizer = mkdnet_parts(settings)
    actor.to(torch.device('cuda'))
    actor.train(True)

    def step():
        loss, _ = actor(data_path.to_device(batch, torch.device('cuda')))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()   # cuDNN's and Triton's first calls choose and compile their kernels
    torch.cuda.synchronize()
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as profile:
        step()
    syncs = profiled_syncs(profile)
    with capsys.disabled():
        print('\nhost syncs of one MKDNet training step on {}: {} (budget {})'.format(
            torch.cuda.get_device_name(0), syncs, TRAINING_STEP_BUDGET))
    assert any('LaunchKernel' in event.name for event in profile.events())   # the trace holds the runtime calls
    assert sum(syncs.values()) <= TRAINING_STEP_BUDGET


# -------------------------------------------------------------------------------------------- a tracked frame
def mkdnet_tracker(network_file: str, margin):
    """The MKDNet tracker as its parameter file makes it, on a GPU (``use_gpu``), every frame on the regular path
    (localisation, refinement, memory update: the classifier's thresholds of bench/tracking_fps.py)."""
    from pytracking.parameter.mkdnet import mkdnet as mkdnet_parameters
    from pytracking.tracker.mkdnet import MKDNet
    params = mkdnet_parameters.parameters(use_gpu=False, net_path=network_file)
    params.use_gpu = True                  # the tracker's tensors on the (simulated) device
    params.target_not_found_threshold = -math.inf
    params.distractor_threshold = params.hard_negative_threshold = math.inf
    params.iou_window_margin = margin
    params.seed = 0
    tracker = MKDNet(params)
    tracker.initialize_features()          # loads the network (on the CPU: there is no GPU) ...
    params.net.use_gpu = True              # ... which the simulation puts on the device
    return tracker


@pytest.fixture(scope='module')
def sequence_and_network(tmp_path_factory):
    """Three frames of a synthetic tiny-object sequence (RGB) and a random ResNet-18 Super-DiMP network file."""
    from ltr_plugins import synthetic
    from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network
    torch.manual_seed(0)
    path = save_tracking_network(build_super_dimp(backbone_pretrained=False, backbone='resnet18'),
                                 os.path.join(str(tmp_path_factory.mktemp('net')), 'mkdnet_r18.pth.tar'))
    frames, boxes, _ = synthetic.generate_sequence(synthetic.SequenceSpec('bird1', 2), seed=3)
    return [frame[:, :, ::-1].copy() for frame in frames], boxes, path


@pytest.mark.parametrize('refinement', ['whole map', 'window'])
def test_a_tracked_frame_stays_within_its_sync_budget(sequence_and_network, refinement, pure_pytorch_pool, capsys):
    """MKDNet tracking one frame (352-px crops, ResNet-18), with the IoU refinement on the whole map (the GPU
    default) and in a window: what the frame costs in host syncs, pytracking's DiMP code included."""
    frames, boxes, network_file = sequence_and_network
    tracker = mkdnet_tracker(network_file, None if refinement == 'whole map' else 0.05)
    pool_calls = count_pool_calls(tracker.params.net.net)
    with SimulatedCuda() as simulation:
        simulation.device(tracker.params.net.net)
        tracker.initialize(frames[0], {'init_bbox': list(boxes[0])})
        simulation.clear()
        pool_calls.clear()
        tracker.track(frames[1])
    budget = TRACKED_FRAME_BUDGET[refinement]
    report('host syncs of one tracked frame, refinement on the {}'.format(refinement), simulation, budget, capsys)
    assert simulation.count('mismatch') == 0 and simulation.syncs <= budget
    assert own(simulation, 'copy') == {}
    steps = tracker.params.box_refinement_iter
    if refinement == 'window':   # one read per refinement step; the stock IoU-net never runs
        assert tracker.iou_window_refinements == 1 and not pool_calls
        assert own(simulation, 'read') == {'predict_iou': steps, 'localize_target': 1}
    else:                        # the pool reads each call's window once; two pools per step
        assert len(pool_calls) == 2 * steps
        assert own(simulation, 'read') == {'_choose_strategy': len(pool_calls), 'localize_target': 1}
