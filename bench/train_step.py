"""Benchmark: one MKDNet training step against one stock Super-DiMP training step, same batch, device and sizes.

    .venv/bin/python bench/train_step.py [--device cpu|cuda] [--batch-size N] [--feature-sz 22] [--steps 5]
                                         [--warmup 1] [--max-ratio 1.45] [--mixed-precision bf16|fp16]

A step is the actor's forward and losses, ``zero_grad``, ``backward`` and the optimizer step(s): ``KLDiMPActor`` on
Super-DiMP against ``MKDNetActor`` as the ``mkdnet`` setting builds it, random weights, one synthetic batch for both.
Rounds run the two back to back and the medians are compared (on the CPU process CPU time too). The teacher's extra
forward sets a floor under the ratio, printed beside it; ``--max-ratio`` makes the exit status 1 above it.
``--mixed-precision`` also times both in that precision and prints mixed / float32.
"""
import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
import types

import torch
from torch.utils.benchmark import Timer

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT_ROOT)

import ltr.actors.tracking as tracking_actors  # noqa: E402
import ltr.models.loss as ltr_losses  # noqa: E402
import ltr.models.loss.kl_regression as klreg_losses  # noqa: E402

from ltr_plugins.train_settings.mkdnet import _recipe as recipe  # noqa: E402
from ltr_plugins.train_settings.mkdnet import smoke  # noqa: E402
from ltr_plugins.trainers.precision import MixedPrecision  # noqa: E402

TARGET_RATIO = 1.45


def make_settings(work: str, batch_size: int, feature_sz: int) -> types.SimpleNamespace:
    env = types.SimpleNamespace(workspace_dir=work, tensorboard_dir=os.path.join(work, 'tensorboard'),
                                pretrained_networks=os.path.join(work, 'pretrained_networks'), latot_dir='')
    settings = types.SimpleNamespace(env=env)
    recipe.paper(settings)                       # MKDNet's losses, weights, degradation, optimizers
    settings.init = 'random'
    settings.random_init_reason = 'benchmark'
    settings.batch_size = batch_size
    settings.num_workers = 0
    settings.feature_sz = feature_sz
    settings.output_sz = feature_sz * 16
    settings.max_gap = 30
    settings.samples_per_epoch = batch_size
    settings.synthetic_latot_dir = os.path.join(work, 'latot')
    settings.train_datasets = {'synthetic_latot': 1}
    settings.val_datasets = {}
    return settings


def stock_super_dimp(net: torch.nn.Module):
    """KLDiMPActor and Adam exactly as ltr/train_settings/dimp/super_dimp.py sets them up."""
    actor = tracking_actors.KLDiMPActor(
        net=net, objective={'bb_ce': klreg_losses.KLRegression(), 'test_clf': ltr_losses.LBHinge(threshold=0.05)},
        loss_weight={'bb_ce': 0.01, 'test_clf': 100, 'test_init_clf': 100, 'test_iter_clf': 400})
    optimizer = torch.optim.Adam([{'params': net.classifier.filter_initializer.parameters(), 'lr': 5e-5},
                                  {'params': net.classifier.filter_optimizer.parameters(), 'lr': 5e-4},
                                  {'params': net.classifier.feature_extractor.parameters(), 'lr': 5e-5},
                                  {'params': net.bb_regressor.parameters(), 'lr': 1e-3},
                                  {'params': net.feature_extractor.layer3.parameters(), 'lr': 2e-5}], lr=2e-4)
    return actor, optimizer


def timed_step(actor, optimizer, data, device: torch.device, precision: MixedPrecision = None):
    """(wall seconds, process CPU seconds, peak CUDA memory in bytes or 0) of one training step.

    ``precision`` is for the stock actor, which knows none: its forward runs under the autocast, and fp16 scales the
    loss and steps through the scaler. The MKDNet actor and its JointOptimizer carry their own (``actor.precision``).
    """
    precision = precision or MixedPrecision(None, device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    with precision.autocast():
        loss, _ = actor(data)
    optimizer.zero_grad()
    precision.scale(loss).backward()
    if precision.scaler is not None:
        precision.scaler.step(optimizer)
        precision.scaler.update()
    else:
        optimizer.step()
    peak = 0
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    return time.perf_counter() - start, time.process_time() - start_cpu, peak


def teacher_timer(actor, data) -> Timer:
    """torch.utils.benchmark's Timer of the MKDNet actor's teacher forward alone, as the actor calls it (float32),
    in torch's current number of threads (the Timer's own default is one)."""
    return Timer("actor.teacher(train_imgs=data['train_images'], test_imgs=data['test_images'], "
                 "train_bb=data['train_anno'], test_proposals=data['test_proposals'])",
                 globals={'actor': actor, 'data': data}, num_threads=torch.get_num_threads())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='sequences per batch (default: 20, as Super-DiMP, on CUDA; 2 on the CPU)')
    parser.add_argument('--feature-sz', type=int, default=22, help='crop = 16 x this (default: Super-DiMP\'s 352 px)')
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--max-ratio', type=float, default=None)
    parser.add_argument('--mixed-precision', choices=('bf16', 'fp16'), default=None,
                        help='also time both networks in this mixed precision')
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.batch_size is None:
        args.batch_size = 20 if device.type == 'cuda' else 2
    torch.backends.cudnn.benchmark = True      # as ltr/run_training.py sets it
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as work:
        settings = make_settings(work, args.batch_size, args.feature_sz)
        smoke.write_synthetic_sequences(settings.synthetic_latot_dir)
        data = next(iter(recipe.build_loaders(settings)[0])).to(device)

        mkdnet_actor = recipe.build_actor(settings)
        mkdnet_optimizer, _ = recipe.build_optimizer(settings, mkdnet_actor)
        stock_actor, stock_optimizer = stock_super_dimp(copy.deepcopy(mkdnet_actor.net.net))
        for actor in (stock_actor, mkdnet_actor):
            actor.to(device)
            actor.train(True)

        runs = {'super_dimp': (stock_actor, stock_optimizer), 'mkdnet': (mkdnet_actor, mkdnet_optimizer)}
        if args.mixed_precision:
            # The MKDNet actor switches precision through its own MixedPrecision, the stock one through timed_step's
            # (PrRoIPool computes in float32 under autocast by itself).
            mkdnet_actor.precision = MixedPrecision(None, device)
            mixed = MixedPrecision(args.mixed_precision, device)
            mixed_mkdnet = copy.copy(mkdnet_actor)
            mixed_mkdnet.precision = mixed
            mixed_mkdnet_optimizer = copy.copy(mkdnet_optimizer)
            mixed_mkdnet_optimizer.grad_scaler = mixed.scaler
            runs.update({'super_dimp_' + args.mixed_precision: (stock_actor, stock_optimizer, mixed),
                         'mkdnet_' + args.mixed_precision: (mixed_mkdnet, mixed_mkdnet_optimizer)})
        for _ in range(args.warmup):
            for run in runs.values():
                timed_step(*run[:2], data, device, *run[2:])
        times = {name: [] for name in runs}
        teacher_forward, teacher_times = teacher_timer(mkdnet_actor, data), []
        for _ in range(args.steps):
            for name, run in runs.items():
                times[name].append(timed_step(*run[:2], data, device, *run[2:]))
            teacher_times.append(teacher_forward.timeit(1).times[0])   # after the Timer's own warm-up runs
    return report(args, device, times, teacher_times)


def report(args, device: torch.device, times: dict, teacher_times: list) -> int:
    """Prints the figures; the exit status (1 where the ratio is above ``--max-ratio``)."""
    wall = {name: statistics.median(t[0] for t in values) for name, values in times.items()}
    cpu = {name: statistics.median(t[1] for t in values) for name, values in times.items()}
    ratio = wall['mkdnet'] / wall['super_dimp']
    print('device: {} ({} threads)   batch: {} sequences x (3 train + 3 test) frames, {} px crops, 128 proposals'
          .format(device, torch.get_num_threads(), args.batch_size, args.feature_sz * 16))
    fastest = {name: min(t[0] for t in values) for name, values in times.items()}
    for name in times:
        print('{:<11} median {:.3f} s/step   fastest {:.3f}   steps: {}'.format(
            name, wall[name], fastest[name], ' '.join('{:.3f}'.format(t[0]) for t in times[name])))
    print('ratio of the fastest steps (least disturbed by other load): {:.3f}'.format(
        fastest['mkdnet'] / fastest['super_dimp']))
    if device.type == 'cpu':
        print('process CPU time per step (median): super_dimp {:.3f} s, mkdnet {:.3f} s, ratio {:.3f}'.format(
            cpu['super_dimp'], cpu['mkdnet'], cpu['mkdnet'] / cpu['super_dimp']))
    if device.type == 'cuda':
        print('peak memory per step: ' + ',  '.join('{} {:.2f} GiB'.format(name, max(t[2] for t in values) / 2 ** 30)
                                                     for name, values in times.items()))
    if args.mixed_precision:
        mode = args.mixed_precision
        for name in ('super_dimp', 'mkdnet'):
            print('{} {} / float32 step time: {:.3f}'.format(name, mode, wall[name + '_' + mode] / wall[name]))
        print('ratio mkdnet / super_dimp in {}: {:.3f}'.format(mode, wall['mkdnet_' + mode] /
                                                               wall['super_dimp_' + mode]))
    teacher = statistics.median(teacher_times)
    floor = (wall['super_dimp'] + teacher) / wall['super_dimp']
    beyond = wall['mkdnet'] - wall['super_dimp'] - teacher
    print('teacher forward alone (no grad), median {:.3f} s: floor (super_dimp step + teacher forward) / super_dimp '
          'step = {:.3f}; the mkdnet step beyond that: {:+.3f} s'.format(teacher, floor, beyond))
    print('ratio mkdnet / super_dimp: {:.3f}  (target <= {})'.format(ratio, TARGET_RATIO))
    if args.max_ratio is not None and ratio > args.max_ratio:
        print('FAIL: ratio above --max-ratio {}'.format(args.max_ratio))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
