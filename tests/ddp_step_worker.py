"""One MKDNet training step in one process of a torchrun-style group, for tests/test_ddp.py.

    python tests/ddp_step_worker.py LATOT_ROOT WORKSPACE OUTPUT

Run alone (no WORLD_SIZE) it is the single-process step over the whole batch; with RANK/WORLD_SIZE/MASTER_ADDR/
MASTER_PORT set, every process takes its share of the same global batch (the sequences rank * b ... rank * b + b - 1)
and steps through its DistributedDataParallel wrapper. Rank 0 saves the student's parameters and gradients after the
step, and the statistics, to OUTPUT. The step is plain SGD over the parameter groups of the recipe's optimizers:
Adam's first step divides every gradient by its own magnitude, which turns float noise in near-zero gradient
elements into whole steps; SGD keeps the parameters as close as the gradients are.

The step is made free of what legitimately differs between the two: BatchNorm layers are in eval mode (in training
mode they normalise with each process's own share of the batch, as in any DDP run without SyncBatchNorm), and the
degradation scales every crop by its own box with one upsampling mode (the paper's default draws one factor from the
mean box of each process's share).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_mkdnet_training import mkdnet_parts, paper_settings  # noqa: E402

from ltr_plugins.train_settings.mkdnet import _recipe as recipe  # noqa: E402
from ltr_plugins.trainers import JointOptimizer, distributed  # noqa: E402
from ltr_plugins.trainers.mkdnet import seed_everything  # noqa: E402

GLOBAL_BATCH = 2
SGD_LR = 0.01


def share(data, rank: int, processes: int):
    """This process's sequences of the global batch (dim 1 of every tensor)."""
    per_process = GLOBAL_BATCH // processes
    return data.apply(lambda t: t[:, rank * per_process:(rank + 1) * per_process] if isinstance(t, torch.Tensor)
                      else t)


def main(latot_root: str, workspace: str, output: str) -> None:
    torch.set_num_threads(1)
    settings = paper_settings(workspace, latot_root)
    settings.batch_size = GLOBAL_BATCH
    settings.degrade_per_image = True
    settings.degrade_up_modes = ('bilinear',)
    seed_everything(0, 0)           # ltr's samplers draw from Python's and NumPy's generators too
    data = next(iter(recipe.build_loaders(settings)[0]))      # the same global batch in every process

    distributed.init_from_env(settings)
    actor, adam = mkdnet_parts(settings)
    optimizer = JointOptimizer({name: torch.optim.SGD([{'params': g['params']} for g in opt.param_groups],
                                                                 lr=SGD_LR)
                                for name, opt in adam.optimizers.items()})
    actor.train(True)
    for module in actor.net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    if distributed.is_initialized():
        actor.distribute(trained=[p for group in optimizer.param_groups for p in group['params']])
        data = share(data, distributed.rank(), distributed.world_size())

    loss, stats = actor(data)
    optimizer.zero_grad()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in actor.net.named_parameters() if p.grad is not None}
    optimizer.step()
    if distributed.is_main_process():
        torch.save({'params': {name: p.detach().clone() for name, p in actor.net.named_parameters()},
                    'grads': grads, 'stats': stats, 'sequences': data['train_images'].shape[1]}, output)


if __name__ == '__main__':
    main(*sys.argv[1:4])
