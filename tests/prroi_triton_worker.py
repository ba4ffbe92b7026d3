"""Runs PrRoIPool cases through the Triton kernels: ``python tests/prroi_triton_worker.py CASES RESULTS`` (with
``TRITON_INTERPRET=1`` on a machine without a GPU), or :func:`run_cases` in the test process on CUDA.

Each case (a dict, see ``tests/test_prroi_pool_triton.py``) is pooled with ``backend='triton'`` and its output
weighted by ``weights`` is back-propagated; the result is the output and the gradients of the features and the
RoIs (None where not required). While the op runs, forward and backward, reading a tensor's values on the host
(``item``, ``tolist``, ``bool``, ``int``, ``float``, ``cpu``, ``numpy``) raises: the GPU path must not sync.
"""
import contextlib
import sys
from typing import Dict, Iterator, List

import torch

HOST_READS = ('item', 'tolist', '__bool__', '__int__', '__float__', '__index__', 'cpu', 'numpy')


@contextlib.contextmanager
def host_reads_forbidden() -> Iterator[None]:
    """Any of ``HOST_READS`` on a tensor raises inside (and, on CUDA, any synchronising operation)."""
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def forbidden(name):
        def read(*args, **kwargs):
            raise AssertionError('PrRoIPool read a tensor on the host: Tensor.{}'.format(name))
        return read

    for name in HOST_READS:
        setattr(torch.Tensor, name, forbidden(name))
    mode = torch.cuda.get_sync_debug_mode() if torch.cuda.is_available() else None
    if mode is not None:
        torch.cuda.set_sync_debug_mode('error')
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)
        if mode is not None:
            torch.cuda.set_sync_debug_mode(mode)


def run_case(case: Dict, device: torch.device) -> Dict:
    from ltr_plugins.prroi_pool import prroi_pool2d
    features = case['features'].to(device).requires_grad_(case['features_grad'])
    rois = case['rois'].to(device).requires_grad_(case['rois_grad'])
    weights = case['weights'].to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if case.get('autocast') else contextlib.nullcontext()
    with host_reads_forbidden():
        with autocast:
            out = prroi_pool2d(features, rois, case['pooled'][0], case['pooled'][1], case['scale'], backend='triton')
        if case['features_grad'] or case['rois_grad']:
            (out * weights).sum().backward()
    return {'out': out.detach().cpu(),
            'features_grad': features.grad.cpu() if features.grad is not None else None,
            'rois_grad': rois.grad.cpu() if rois.grad is not None else None}


def run_cases(cases: Dict[str, Dict], device: torch.device) -> Dict[str, Dict]:
    return {name: run_case(case, device) for name, case in cases.items()}


def main(argv: List[str]) -> int:
    cases = torch.load(argv[1], weights_only=True)
    torch.save(run_cases(cases, torch.device('cpu')), argv[2])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
