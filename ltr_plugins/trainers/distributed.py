"""Distributed data-parallel training under ``torchrun``: the process group, who writes, and what is averaged.

``torchrun --nproc_per_node N run_training.py mkdnet <setting>`` starts N copies of pytracking's entry point. The
train setting calls :func:`init_from_env` first, which joins the process group (NCCL with a GPU, gloo on the CPU)
and puts each process on its own GPU (``LOCAL_RANK``); :func:`main_process_output` silences the standard output of
every process but rank 0. Without ``WORLD_SIZE > 1`` every helper is the identity. ``settings.batch_size`` and
``settings.samples_per_epoch`` are global (:func:`per_process` gives each process its share), each process draws its
own samples from its own seeds, and only rank 0 writes checkpoints and logs (docs/training.md).
"""
import contextlib
import datetime
import os
from typing import Dict, Iterable, Iterator

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

# How long a process waits for the others at a collective before failing (the default is 30 minutes).
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=10)


def requested() -> bool:
    """True when this process was started by torchrun (or the like) as one of several."""
    return int(os.environ.get('WORLD_SIZE', '1')) > 1


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main_process() -> bool:
    return rank() == 0


def device() -> torch.device:
    """This process's device: its own GPU (``LOCAL_RANK``) when it has CUDA, else the CPU."""
    if torch.cuda.is_available():
        return torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')))
    return torch.device('cpu')


def init_from_env(settings=None) -> bool:
    """Joins the process group that torchrun's environment describes (once; later calls do nothing).

    Sets ``settings.device`` to this process's device, which ltr's trainer then uses. Returns True when the run is
    distributed.
    """
    if not requested():
        return False
    if not is_initialized():
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
        if backend == 'nccl':
            torch.cuda.set_device(device())
        dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
        if is_main_process():
            print('Distributed training: {} processes ({}), batch size and samples per epoch are global.'.format(
                world_size(), backend))
    if settings is not None:
        settings.device = device()
    return True


def per_process(total: int, setting: str) -> int:
    """A global count (``settings.<setting>``) divided among the processes; it must divide evenly."""
    processes = world_size()
    if total % processes:
        raise ValueError('settings.{} = {} does not divide among {} processes: make it a multiple of {} (it is the '
                         'global value; each process takes 1/{} of it)'.format(setting, total, processes, processes,
                                                                              processes))
    return total // processes


@contextlib.contextmanager
def main_process_output() -> Iterator[None]:
    """Standard output of the block from rank 0 only: the other processes' is sent to ``os.devnull`` until the
    block ends (a single process prints as usual)."""
    if is_main_process():
        yield
        return
    with open(os.devnull, 'w') as devnull, contextlib.redirect_stdout(devnull):
        yield


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. writes shared data), the other processes after it has finished."""
    if not is_initialized():
        yield
        return
    if not is_main_process():
        dist.barrier()
    yield
    if is_main_process():
        dist.barrier()


def mean_over_processes(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over all processes (a new tensor; ``values`` itself when not distributed).

    With equally sized shares it is the value of the global batch for per-batch means: the losses, RDM's inputs,
    the logged statistics. A NaN on any process makes the result NaN on every process, so they all stop together.
    """
    if not is_initialized():
        return values
    reduced = values.detach().clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced / world_size()


def mean_stats_over_processes(stats: Dict[str, float], on: torch.device) -> Dict[str, float]:
    """Every logged statistic averaged over the processes (one collective for all; keys in the same order)."""
    if not is_initialized() or not stats:
        return stats
    names = list(stats)      # the same keys in the same order on every process (the same code ran)
    values = mean_over_processes(torch.tensor([float(stats[n]) for n in names], dtype=torch.float64, device=on))
    return dict(zip(names, values.tolist()))


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with its BatchNorm layers replaced by SyncBatchNorm, in place (``settings.sync_batchnorm``): in
    training mode they normalise over the global batch, all processes together, instead of each process's share.
    The layers keep their parameters and buffers (the same tensors), so the state dict, the optimizers and the
    checkpoints are unchanged; in eval mode, and in a single process, they compute what BatchNorm does. SyncBatchNorm
    runs on CUDA only."""
    first = next(module.parameters())
    if first.device.type != 'cuda':
        raise ValueError('settings.sync_batchnorm = True needs the GPUs of a torchrun run (NCCL); this process trains '
                         'on {}: set it to False'.format(first.device))
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if converted is not module:
        raise TypeError('sync_batchnorm converts the layers inside a module, not a BatchNorm layer itself')
    return module


def wrap(module: nn.Module, trained: Iterable[nn.Parameter], find_unused_parameters: bool = False,
         sync_batch_norm: bool = False) -> DistributedDataParallel:
    """``module`` in DistributedDataParallel, synchronising exactly the parameters in ``trained`` (and, with
    ``sync_batch_norm``, the BatchNorm statistics: :func:`sync_batchnorm`).

    DDP all-reduces the gradient of every parameter that requires one and waits for each of them; those no
    optimizer steps (Super-DiMP's layer4 and fc, which its forward never runs) are set not to require gradients
    first, so they cost no communication and are not reported as unused. ``module`` must be on its device.
    """
    trained_ids = {id(p) for p in trained}
    for parameter in module.parameters():
        if id(parameter) not in trained_ids:
            parameter.requires_grad_(False)
    if sync_batch_norm:
        sync_batchnorm(module)
    first = next(module.parameters())
    device_ids = [first.device.index] if first.device.type == 'cuda' else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters)
