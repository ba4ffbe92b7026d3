"""Benchmark: PrRoIPool (ltr_plugins.prroi_pool) against torchvision.ops.roi_align on DiMP-shaped inputs.

Forward + backward: PrRoIPool with gradients for the features and the RoI coordinates (as DiMP's IoU-net needs),
roi_align (sampling_ratio=2, aligned=False, same boxes and output size) for the features only, which favours it.
Cases: layer2 [B, 256, 44, 44] pooled 5x5 at 1/8 and layer3 [B, 256, 22, 22] pooled 3x3 at 1/16, 3*B*128 RoIs.
Then, on one map as in DiMP's box refinement, the pure-PyTorch strategies 'taps' and 'window' for clustered and
spread boxes, and the one 'auto' picks. Busy machines slow multi-threaded ops most: check the printed load averages.

    python bench/prroi_pool.py [--batch-sizes 2 8] [--repeats 7] [--warmup 2] [--device cpu] [--threads N]
                               [--backend torch|auto|triton|cuda] [--channels 256] [--rois K] [--max-ratio 2]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ltr_plugins import prroi_pool as prroi_module  # noqa: E402
from ltr_plugins.prroi_pool import prroi_pool2d  # noqa: E402
from ltr_plugins.prroi_pool_backends import IMPLEMENTATIONS, PoolScope  # noqa: E402

CASES = [  # name, channels, map size, pooled size, spatial scale
    ('layer2', 256, 44, 5, 1 / 8),
    ('layer3', 256, 22, 3, 1 / 16),
]
IMAGE_SIZE = 352


def make_rois(num_images: int, num_rois: int, generator: torch.Generator) -> torch.Tensor:
    w = torch.rand(num_rois, generator=generator) * 190 + 10
    h = torch.rand(num_rois, generator=generator) * 190 + 10
    x1 = torch.rand(num_rois, generator=generator) * (IMAGE_SIZE - w)
    y1 = torch.rand(num_rois, generator=generator) * (IMAGE_SIZE - h)
    batch_index = (torch.arange(num_rois) * num_images // num_rois).float()
    return torch.stack([batch_index, x1, y1, x1 + w, y1 + h], 1)


def time_interleaved(fns, device: torch.device, warmup: int, repeats: int):
    """(median, min) wall time in seconds of each fn, calling them in turn every round so that a change in
    background load on the machine affects all of them alike."""
    times = [[] for _ in fns]
    for i in range(warmup + repeats):
        for fn, record in zip(fns, times):
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            if i >= warmup:
                record.append(time.perf_counter() - start)
    return [(statistics.median(record), min(record)) for record in times]


def load_average() -> str:
    try:
        return '{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())
    except OSError:
        return 'unknown'


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def strategies(device: torch.device, generator: torch.Generator, warmup: int, repeats: int) -> None:
    """Taps against window on one layer-2 map, ten boxes, gradients with respect to the boxes (as in tracking)."""
    print("strategies on one map [1, 256, 44, 44], 5x5 at 1/8, 10 boxes, forward+backward w.r.t. the boxes "
          "(median of {}); 'auto' takes 'window' up to {} x the largest bin's area".format(
              repeats, prroi_module.WINDOW_AREA_FACTOR))
    header = '{:<30} {:>14} {:>10} {:>10} {:>7} {:>7}'.format('boxes', 'window/bin', 'taps', 'window',
                                                               'ratio', 'auto')
    print(header)
    print('-' * len(header))
    features = torch.rand(1, 256, 44, 44, generator=generator).to(device)
    for size in (16, 58, 160):
        for layout in ('clustered', 'spread'):
            if layout == 'clustered':   # the refinement's: one box jittered by 5 % in position and 25 % in size
                centre = torch.full((10, 2), IMAGE_SIZE / 2) + (torch.rand(10, 2, generator=generator) - 0.5) * 0.1 * size
                sides = size * (1 + (torch.rand(10, 2, generator=generator) - 0.5) * 0.5)
            else:
                sides = torch.full((10, 2), float(size))
                centre = sides / 2 + torch.rand(10, 2, generator=generator) * (IMAGE_SIZE - sides)
            boxes = torch.cat([torch.zeros(10, 1), centre - sides / 2, centre + sides / 2], 1).to(device)
            coords = boxes[:, 1:] / 8
            with torch.no_grad():
                edges = prroi_module.bin_edges(coords, 5, 5)
            chosen = prroi_module._choose_strategy('auto', 1, edges, 44, 44)
            window = prroi_module._choose_strategy('window', 1, edges, 44, 44)
            area = (window[1] - window[0] + 1) * (window[3] - window[2] + 1)
            largest_bin = (edges.bin_size[:, 0].max() + 2) * (edges.bin_size[:, 1].max() + 2)

            def run(strategy):
                rois = boxes.clone().requires_grad_(True)
                prroi_module._prroi_pool2d_torch(features, rois, 5, 5, 1 / 8, strategy).sum().backward()

            (t_taps, _), (t_window, _) = time_interleaved([lambda: run('taps'), lambda: run('window')], device,
                                                          warmup, repeats)
            print('{:<30} {:>14.1f} {:>8.2f}ms {:>8.2f}ms {:>7.2f} {:>7}'.format(
                '{} px, {}'.format(size, layout), area / float(largest_bin), t_taps * 1e3, t_window * 1e3,
                t_window / t_taps, 'taps' if chosen == 'taps' else 'window'))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[2, 8])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--backend', default='torch', choices=list(prroi_module.BACKENDS),
                        help='PrRoIPool backend (default: torch, the pure-PyTorch implementation; triton: the Triton '
                             'kernel, on CUDA or in Triton\'s interpreter)')
    parser.add_argument('--channels', type=int, default=None, help='feature channels (default: 256)')
    parser.add_argument('--rois', type=int, default=None, help='RoIs per case (default: 3 * B * 128)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads(N) first (default: leave torch\'s default alone)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-ratio', type=float, default=None,
                        help='exit with status 1 if any prroi/roi_align ratio exceeds this')
    args = parser.parse_args()

    from torchvision.ops import roi_align
    import torchvision

    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print('torch {} / torchvision {} | {} | {} | device {}'.format(
        torch.__version__, torchvision.__version__, platform.platform(), cpu_name(), device))
    print('torch threads {} ({}) | os.cpu_count() {} | CPU capability {}'.format(
        torch.get_num_threads(), 'default, not set' if args.threads is None else 'set by --threads',
        os.cpu_count(), torch.backends.cpu.get_cpu_capability()))
    print('load average at start: {}'.format(load_average()))
    if os.environ.get('TRITON_INTERPRET', '0') not in ('', '0'):
        print('TRITON_INTERPRET is set: Triton kernels run in the interpreter on the CPU (a check, not a timing)')
    print('forward+backward, median of {} after {} warm-up, the two ops interleaved'.format(args.repeats, args.warmup))
    print('prroi (backend={!r}): grad w.r.t. features and rois | roi_align(sampling_ratio=2, aligned=False): grad '
          'w.r.t. features only (it has none for boxes)'.format(args.backend))
    header = '{:<7} {:>2} {:>6} {:>16} {:>5} {:>12} {:>16} {:>6} {:>10}'.format(
        'case', 'B', 'K', 'features', 'pool', 'prroi fw+bw', 'roi_align fw+bw', 'ratio', 'ratio(min)')
    print(header)
    print('-' * len(header))

    generator = torch.Generator().manual_seed(args.seed)
    scope = PoolScope()   # says which implementation the backend ran
    worst = 0.0
    for name, channels, size, pooled, scale in CASES:
        channels = args.channels or channels
        for batch in args.batch_sizes:
            num_rois = args.rois or 3 * batch * 128
            features = torch.rand(batch, channels, size, size, generator=generator).to(device)
            rois = make_rois(batch, num_rois, generator).to(device)
            grad_out = torch.randn(num_rois, channels, pooled, pooled, generator=generator).to(device)
            feats_p = features.clone().requires_grad_(True)
            rois_p = rois.clone().requires_grad_(True)
            feats_r = features.clone().requires_grad_(True)

            def run_prroi():
                feats_p.grad, rois_p.grad = None, None
                prroi_pool2d(feats_p, rois_p, pooled, pooled, scale, backend=args.backend,
                             scope=scope).backward(grad_out)

            def run_roi_align():
                feats_r.grad = None
                roi_align(feats_r, rois, (pooled, pooled), scale, 2, False).backward(grad_out)

            (t_prroi, min_prroi), (t_align, min_align) = time_interleaved(
                [run_prroi, run_roi_align], device, args.warmup, args.repeats)
            ratio = t_prroi / t_align
            worst = max(worst, ratio)
            print('{:<7} {:>2} {:>6} {:>16} {:>5} {:>10.1f}ms {:>14.1f}ms {:>6.2f} {:>10.2f}'.format(
                name, batch, num_rois, 'x'.join(map(str, features.shape)), '{0}x{0}'.format(pooled),
                t_prroi * 1e3, t_align * 1e3, ratio, min_prroi / min_align))
    print('times are medians; ratio = median prroi / median roi_align; ratio(min) = the same with the fastest runs')
    print('worst ratio prroi/roi_align: {:.2f} (PrRoIPool ran {})'.format(worst, IMPLEMENTATIONS[scope.used]))
    if args.backend not in ('cuda', 'triton'):   # the two strategies of the pure-PyTorch path
        print()
        strategies(device, generator, args.warmup, args.repeats)
    print('load average at end: {}'.format(load_average()))
    if args.max_ratio is not None and worst > args.max_ratio:
        print('FAIL: ratio above --max-ratio {}'.format(args.max_ratio))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
