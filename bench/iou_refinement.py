"""Benchmark: the IoU-net box refinement in a window against the stock one on the whole map, on one device, to
decide the MKDNet tracker's default there (``params.iou_window_margin``).

    .venv/bin/python bench/iou_refinement.py [--device cuda|cpu] [--repeats 30] [--warmup 3]

Both refine DiMP's boxes around a target a sixth of the crop by ten gradient steps through Super-DiMP's IoU-net
(random weights) on random backbone features of one 352-px crop; one refinement is ``refine_boxes`` as the tracker
calls it, from host to host, timed alternately, medians compared. Exit status 1 when the device's default
(``CPU_IOU_WINDOW_MARGIN`` on the CPU, the whole map on a GPU) takes longer than the other over ``1 - TOLERANCE``.
"""
import argparse
import os
import statistics
import sys
import time

import torch

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if PROJECT_ROOT not in sys.path:
    sys.path.insert(0, PROJECT_ROOT)

from ltr.models.bbreg.atom_iou_net import AtomIoUNet  # noqa: E402
from pytracking import TensorList  # noqa: E402
from pytracking.features.augmentation import Identity  # noqa: E402
from pytracking.parameter.dimp import super_dimp  # noqa: E402
from pytracking.tracker.dimp import DiMP  # noqa: E402
from pytracking.tracker.mkdnet import MKDNet  # noqa: E402
from pytracking.tracker.mkdnet.mkdnet import CPU_IOU_WINDOW_MARGIN  # noqa: E402

CROP = 352
TARGET = (150.0, 160.0, 58.0, 47.0)   # x, y, w, h in the crop: a sixth of it, as DiMP samples
TOLERANCE = 0.05


class IoUNetwork:
    """What DiMP's refinement reads of pytracking's network wrapper: the IoU-net and its backbone layers (the
    backbone features are given as those layers already)."""

    def __init__(self, bb_regressor: AtomIoUNet):
        self.bb_regressor = bb_regressor

    def get_backbone_bbreg_feat(self, backbone_feat):
        return TensorList(backbone_feat)


def iou_net(device: torch.device) -> AtomIoUNet:
    torch.manual_seed(0)
    net = AtomIoUNet(input_dim=(512, 1024), pred_input_dim=(256, 256), pred_inter_dim=(256, 256))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net.eval().requires_grad_(False).to(device)


def make_tracker(tracker_class, network: IoUNetwork, backbone, device: torch.device, margin='default'):
    """A DiMP or MKDNet tracker with Super-DiMP's parameters on ``device``, its IoU-net initialised by DiMP's own
    ``init_iou_net`` on the target; ``margin`` 'default' leaves MKDNet's default for the device."""
    params = super_dimp.parameters()
    params.use_gpu = device.type == 'cuda'
    params.device = device.type
    if margin != 'default':
        params.iou_window_margin = margin
    tracker = tracker_class(params)
    tracker.net = network
    tracker.img_sample_sz = torch.tensor([float(CROP), float(CROP)])
    tracker.init_sample_pos, tracker.init_sample_scale = tracker.img_sample_sz / 2 - 0.5, 1.0
    x, y, w, h = TARGET
    tracker.pos = tracker.init_sample_pos + torch.tensor([y + (h - 1) / 2, x + (w - 1) / 2]) - (CROP - 1) / 2
    tracker.target_sz = torch.tensor([h, w])
    tracker.transforms = [Identity()]
    tracker.init_iou_net(backbone)
    return tracker


def timed_refinement(tracker, backbone, boxes: torch.Tensor):
    start = time.perf_counter()
    refined, _ = tracker.refine_boxes(backbone, 0, boxes.clone())
    return time.perf_counter() - start, refined


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', choices=('cuda', 'cpu'), default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=3)
    args = parser.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('--device cuda: no CUDA device on this machine', file=sys.stderr)
        return 2
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(1)
    backbone = [torch.randn(1, 512, CROP // 8, CROP // 8, generator=generator).to(device),
                torch.randn(1, 1024, CROP // 16, CROP // 16, generator=generator).to(device)]
    network = IoUNetwork(iou_net(device))
    default = make_tracker(MKDNet, network, backbone, device).window_margin
    trackers = {'whole map': make_tracker(DiMP, network, backbone, device),
                'window': make_tracker(MKDNet, network, backbone, device, CPU_IOU_WINDOW_MARGIN)}
    target = torch.tensor(TARGET)
    jitter = (torch.rand(args.warmup + args.repeats, 9, 4, generator=generator) - 0.5) * torch.tensor(
        [6.0, 6.0, 26.0, 26.0])
    times = {name: [] for name in trackers}
    difference, moved = 0.0, 0.0
    for index in range(args.warmup + args.repeats):
        boxes = torch.cat([target.view(1, 4), target + jitter[index]])
        order = list(trackers) if index % 2 == 0 else list(reversed(trackers))
        results = {name: timed_refinement(trackers[name], backbone, boxes) for name in order}
        if index >= args.warmup:
            for name, (seconds, _) in results.items():
                times[name].append(seconds)
        difference = max(difference, float((results['window'][1] - results['whole map'][1]).abs().max()))
        moved = max(moved, float((results['whole map'][1] - boxes).abs().max()))
    return report(args, device, default, times, (difference, moved), trackers['window'].iou_window_growths)


def report(args, device: torch.device, default, times, differences, growths: int) -> int:
    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = median['window'] / median['whole map']
    name = torch.cuda.get_device_name(0) if device.type == 'cuda' else 'CPU ({} threads)'.format(
        torch.get_num_threads())
    print('device: {}; {} refinements of 10 boxes x 10 steps each way (after {} warm-up), alternating'.format(
        name, args.repeats, args.warmup))
    for label, seconds in median.items():
        print('  {:<10} median {:.2f} ms, fastest {:.2f} ms'.format(label, 1000 * seconds, 1000 * min(times[label])))
    print('  window (margin {}) / whole map = {:.3f}; a window grew {} times; the boxes moved up to {:.2g} px, the '
          'two refinements\' boxes differ by up to {:.2g} px'.format(CPU_IOU_WINDOW_MARGIN, ratio, growths,
                                                                   differences[1], differences[0]))
    faster = 'window' if ratio < 1 else 'whole map'
    current = 'whole map' if default is None else 'window'
    print('  faster on {}: the {}; MKDNet\'s default there: the {} (iou_window_margin {})'.format(
        device.type, faster, current, default))
    slower_by = ratio if current == 'whole map' else 1 / ratio
    if slower_by < 1 - TOLERANCE:
        print('FAIL: the default is the slower refinement on {} (the {} takes {:.3f} of its time): make the {} the '
              'default there (MKDNet.iou_window_margin, pytracking_plugins/tracker/mkdnet/mkdnet.py)'.format(
                  device.type, faster, slower_by, faster))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
