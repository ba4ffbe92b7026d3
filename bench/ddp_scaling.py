"""Benchmark: MKDNet training throughput (samples per second) against the number of DistributedDataParallel processes.

    .venv/bin/python bench/ddp_scaling.py [--processes 1 2 4] [--device cpu|cuda] [--batch-per-process 2]
                                          [--feature-sz 8] [--steps 3] [--warmup 1]

For each N it starts N processes as torchrun would and times full training steps of the ``mkdnet`` recipe on one
batch per process (weak scaling: the global batch grows with N); samples per second use the slowest process's time
and are printed with their ratio to one process. On the CPU each process runs ``--threads-per-process`` threads
(default 1: a core plays a GPU), so the ratio reads as the scaling efficiency on GPUs; a shared machine lowers it.
"""
import argparse
import os
import socket
import sys
import tempfile
import time

import torch
import torch.multiprocessing as mp

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT_ROOT)

from bench.train_step import make_settings  # noqa: E402
from ltr_plugins.train_settings.mkdnet import _recipe as recipe  # noqa: E402
from ltr_plugins.train_settings.mkdnet import smoke  # noqa: E402
from ltr_plugins.trainers import distributed  # noqa: E402
from ltr_plugins.trainers.mkdnet import seed_everything  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def worker(rank: int, processes: int, port: int, args, work: str, results) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(processes), LOCAL_WORLD_SIZE=str(processes))
    if args.device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
        torch.set_num_threads(args.threads_per_process)
    settings = make_settings(work, args.batch_per_process, args.feature_sz)
    settings.use_gpu = args.device == 'cuda'
    seed_everything(0, 0, rank)
    data = next(iter(recipe.build_loaders(settings)[0]))        # one process's batch, built before joining
    if processes > 1:
        distributed.init_from_env(settings)
    else:
        settings.device = torch.device(args.device)
    device = recipe.training_device(settings)
    data = data.to(device)
    actor = recipe.build_actor(settings)
    optimizer, _ = recipe.build_optimizer(settings, actor)
    actor.to(device)
    actor.train(True)
    if processes > 1:
        actor.distribute(trained=[p for group in optimizer.param_groups for p in group['params']])

    def step() -> None:
        loss, _ = actor(data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    if processes > 1:
        torch.distributed.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    results.put((rank, time.perf_counter() - start))
    if processes > 1:
        torch.distributed.destroy_process_group()


def measure(processes: int, args, work: str) -> float:
    """Samples per second of ``processes`` DDP processes."""
    context = mp.get_context('spawn')
    results = context.SimpleQueue()
    mp.start_processes(worker, args=(processes, free_port(), args, work, results), nprocs=processes, join=True,
                       start_method='spawn')
    seconds = max(results.get()[1] for _ in range(processes))
    return processes * args.batch_per_process * args.steps / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--processes', type=int, nargs='+', default=None,
                        help='process counts (default: 1 2 on the CPU, 1 2 4 ... up to the GPUs on CUDA)')
    parser.add_argument('--batch-per-process', type=int, default=2, help='sequences per process and step (>= 2)')
    parser.add_argument('--feature-sz', type=int, default=8, help='crop = 16 x this (default: the smoke\'s 128 px)')
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--threads-per-process', type=int, default=1, help='torch threads per CPU process')
    parser.add_argument('--warmup', type=int, default=1)
    args = parser.parse_args()
    if args.processes is None:
        if args.device == 'cuda':
            gpus = torch.cuda.device_count()
            args.processes = [n for n in (1, 2, 4, 8) if n <= gpus]
        else:
            args.processes = [1, 2]
    if args.device == 'cuda' and max(args.processes) > torch.cuda.device_count():
        parser.error('{} processes need as many GPUs; {} visible'.format(max(args.processes),
                                                                         torch.cuda.device_count()))
    if 1 not in args.processes:
        args.processes = [1] + args.processes

    load = ' '.join('{:.1f}'.format(v) for v in os.getloadavg())
    with tempfile.TemporaryDirectory() as work:
        smoke.write_synthetic_sequences(make_settings(work, 2, args.feature_sz).synthetic_latot_dir)
        rates = {n: measure(n, args, work) for n in sorted(set(args.processes))}

    backend = 'nccl' if args.device == 'cuda' else 'gloo'
    where = ('{} CPU cores, {} thread(s) per process'.format(os.cpu_count(), args.threads_per_process)
             if args.device == 'cpu' else '{} GPUs'.format(torch.cuda.device_count()))
    print('MKDNet DDP training throughput ({}, {}; {} sequences per process, {} px crops, {} steps after {} '
          'warm-up; load averages before: {})'.format(backend, where, args.batch_per_process, args.feature_sz * 16,
                                                      args.steps, args.warmup, load))
    print('{:>9}  {:>10}  {:>16}'.format('processes', 'samples/s', 'ratio to 1 proc'))
    for n, rate in rates.items():
        print('{:>9}  {:>10.2f}  {:>16.2f}'.format(n, rate, rate / rates[1]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
