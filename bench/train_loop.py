"""Benchmark: MKDNet's real training loop -- loader, copies, step, checkpoint, resume -- timed, with its host syncs.

    .venv/bin/python bench/train_loop.py [--device cuda|cpu] [--iterations 8] [--batch-size N] [--feature-sz 22]
                                         [--backbone resnet50] [--num-workers 4] [--mixed-precision fp16|bf16|none]
                                         [--max-syncs N]

What ``run_training.py mkdnet <setting>`` runs, on synthetic sequences with random weights, then a second run resumed
from epoch 1's checkpoint. Printed: seconds and host syncs per iteration in epoch 2 (on CUDA from a profiler trace,
on the CPU from ``SimulatedCuda``), and the resumed run against the uninterrupted one. Exit status 1 when the syncs
exceed ``--max-syncs`` or the resume does not go on from the checkpoint.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import types

import torch

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT_ROOT)
sys.path.insert(0, os.path.join(PROJECT_ROOT, 'tests'))

from test_host_syncs import TRAINING_STEP_BUDGET  # noqa: E402

from ltr_plugins.host_syncs import SimulatedCuda, format_summary, profiled_syncs  # noqa: E402
from ltr_plugins.train_settings.mkdnet import _recipe as recipe  # noqa: E402
from ltr_plugins.train_settings.mkdnet import smoke  # noqa: E402
from ltr_plugins.trainers import MKDNetTrainer, ltr_checkpoints  # noqa: E402

# fp16: the gradient scaler reads whether each of the two optimizers' gradients overflowed, the actor its scale.
FP16_SCALER_SYNCS = 3


def make_settings(work: str, args, workspace: str) -> types.SimpleNamespace:
    env = types.SimpleNamespace(workspace_dir=os.path.join(work, workspace),
                                tensorboard_dir=os.path.join(work, workspace, 'tensorboard'),
                                pretrained_networks=os.path.join(work, 'networks'), latot_dir='')
    settings = types.SimpleNamespace(env=env, project_path='ltr/mkdnet/bench_loop', module_name='mkdnet',
                                     script_name='bench_loop', use_gpu=args.device == 'cuda',
                                     device=torch.device(args.device))
    recipe.paper(settings)
    settings.init, settings.random_init_reason = 'random', 'benchmark'
    settings.backbone = args.backbone
    settings.batch_size, settings.num_workers = args.batch_size, args.num_workers
    settings.feature_sz = args.feature_sz
    settings.output_sz = args.feature_sz * 16
    settings.max_gap = 30
    settings.samples_per_epoch = args.iterations * args.batch_size
    settings.synthetic_latot_dir = os.path.join(work, 'latot')
    settings.train_datasets, settings.val_datasets = {'synthetic_latot': 1}, {}
    settings.mixed_precision = None if args.mixed_precision == 'none' else args.mixed_precision
    settings.print_interval = args.iterations
    settings.fail_safe = False
    return settings


class MeasuredTrainer(MKDNetTrainer):
    """MKDNet's trainer; with ``measure``, it times the loop of training epoch 2 and counts its host syncs. On the
    CPU the loops then run under one ``SimulatedCuda``, the trainer's device and the actor's tensors on its
    simulated GPU."""

    def __init__(self, *args, measure: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.count_from = 2 if measure else float('inf')
        self.seconds, self.syncs, self.iterations, self.simulation = [], {}, 0, None
        if measure and self.device.type == 'cpu':
            self.simulation = SimulatedCuda()
            self.simulation.device(self.actor.net)
            self.simulation.device(self.actor.teacher)
            self.device = torch.device('cuda', 0)

    def cycle_dataset(self, loader) -> None:
        counted = loader.training and self.epoch >= self.count_from
        if self.simulation is not None:
            with self.simulation:
                self.simulation.clear()
                self._timed(super().cycle_dataset, loader, counted)
            if counted:
                self.syncs = {'SimulatedCuda': self.simulation.syncs}
            return
        if not counted:
            super().cycle_dataset(loader)
            return
        activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=activities) as profile:
            self._timed(super().cycle_dataset, loader, counted)
        self.syncs = profiled_syncs(profile)

    def _timed(self, cycle, loader, counted: bool) -> None:
        start = time.perf_counter()
        cycle(loader)
        if self.simulation is None:
            torch.cuda.synchronize()
        if counted:
            self.seconds.append(time.perf_counter() - start)
            self.iterations += len(loader)


def build_trainer(settings, measure: bool) -> MeasuredTrainer:
    loaders = recipe.build_loaders(settings)
    actor = recipe.build_actor(settings)
    optimizer, lr_scheduler = recipe.build_optimizer(settings, actor)
    return MeasuredTrainer(actor, loaders, optimizer, settings, lr_scheduler, measure=measure)


def compare_runs(uninterrupted: MeasuredTrainer, resumed: MeasuredTrainer) -> float:
    """The largest difference of any student or discriminator weight after epoch 2."""
    a, b = uninterrupted.actor.net.state_dict(), resumed.actor.net.state_dict()
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', choices=('cuda', 'cpu'), default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--iterations', type=int, default=8, help='training iterations per epoch (default 8)')
    parser.add_argument('--batch-size', type=int, default=None, help='default: 20 on CUDA (Super-DiMP), 2 on the CPU')
    parser.add_argument('--feature-sz', type=int, default=None, help='crop = 16 x this (default 22 on CUDA, 8 on CPU)')
    parser.add_argument('--backbone', default=None, help='resnet50 (default on CUDA) or resnet18 (on the CPU)')
    parser.add_argument('--num-workers', type=int, default=None, help='loader workers (default 4 on CUDA, 1 on CPU)')
    parser.add_argument('--mixed-precision', choices=('fp16', 'bf16', 'none'), default='fp16')
    parser.add_argument('--max-syncs', type=float, default=None)
    args = parser.parse_args()
    cuda = args.device == 'cuda'
    for name, on_cuda, on_cpu in (('batch_size', 20, 2), ('feature_sz', 22, 8), ('backbone', 'resnet50', 'resnet18'),
                                  ('num_workers', 4, 1)):
        if getattr(args, name) is None:
            setattr(args, name, on_cuda if cuda else on_cpu)
    if args.max_syncs is None:
        args.max_syncs = TRAINING_STEP_BUDGET + (FP16_SCALER_SYNCS if args.mixed_precision == 'fp16' else 0)
    return args


def main() -> int:
    args = parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('--device cuda: no CUDA device on this machine', file=sys.stderr)
        return 2
    if args.device == 'cpu':
        os.environ.setdefault('PRROI_POOL_BACKEND', 'torch')   # 'auto' would try Triton on the simulated GPU
    torch.backends.cudnn.benchmark = True      # as ltr/run_training.py sets it
    with tempfile.TemporaryDirectory(prefix='train_loop_') as work:
        first = make_settings(work, args, 'first')
        smoke.write_synthetic_sequences(first.synthetic_latot_dir)
        uninterrupted = build_trainer(first, measure=True)
        uninterrupted.train(2, load_latest=False, fail_safe=False)

        second = make_settings(work, args, 'second')
        os.makedirs(ltr_checkpoints.checkpoint_dir(second))
        shutil.copy(ltr_checkpoints.checkpoint_paths(first)[0], ltr_checkpoints.checkpoint_dir(second))
        resumed = build_trainer(second, measure=False)
        resumed.train(2, load_latest=True, fail_safe=False)
        went_on = ltr_checkpoints.latest_epoch(second) == 2 and resumed.epoch == 2
        difference = compare_runs(uninterrupted, resumed)
        scales = [t.optimizer.grad_scaler.get_scale() if t.optimizer.grad_scaler is not None else None
                  for t in (uninterrupted, resumed)]
    return report(args, uninterrupted, went_on, difference, scales)


def report(args, trainer: MeasuredTrainer, went_on: bool, difference: float, scales) -> int:
    device = torch.cuda.get_device_name(0) if args.device == 'cuda' else 'CPU, simulating a GPU'
    syncs = sum(trainer.syncs.values()) / max(trainer.iterations, 1)
    print('device: {}   batch {} x (3 train + 3 test) frames, {}-px crops, {}, {}, {} loader workers{}'.format(
        device, args.batch_size, args.feature_sz * 16, args.backbone, args.mixed_precision, args.num_workers,
        ', pinned batches' if trainer.loaders[0].pin_memory else ''))
    print('epoch 2: {} iterations in {:.2f} s: {:.3f} s per iteration'.format(
        trainer.iterations, sum(trainer.seconds), sum(trainer.seconds) / max(trainer.iterations, 1)))
    print('host syncs per training iteration: {:.1f} (target <= {:g}; {})'.format(
        syncs, args.max_syncs, ', '.join('{} {}'.format(k, v) for k, v in sorted(trainer.syncs.items()))))
    mismatches = trainer.simulation.count('mismatch') if trainer.simulation is not None else 0
    if trainer.simulation is not None:
        print(format_summary(trainer.simulation, limit=8))
        print('operations that would raise on CUDA (host and device tensors mixed): {}'.format(mismatches))
    print('resumed from epoch 1\'s checkpoint: trained epoch 2: {}; gradient scaler scale {} (uninterrupted {}); '
          'largest weight difference to the uninterrupted run {:.3g}{}'.format(
              'yes' if went_on else 'NO', scales[1], scales[0], difference,
              '' if args.device == 'cuda' else ' (must be 0 on the CPU)'))
    failed = ['operations mixing host and device tensors'] if mismatches else []
    if syncs > args.max_syncs:
        failed.append('host syncs per iteration above {:g}'.format(args.max_syncs))
    if not went_on or scales[0] != scales[1] or (args.device == 'cpu' and difference != 0):
        failed.append('the resumed run does not go on from the checkpoint')
    for reason in failed:
        print('FAIL: ' + reason)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
