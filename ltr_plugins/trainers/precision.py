"""Training precision: mixed precision, chosen by ``settings.mixed_precision`` (None: float32, ``'bf16'`` or
``'fp16'``), and TF32 for float32 on the GPU (``settings.allow_tf32``, :func:`set_tf32`).

The networks' forward passes (teacher and student) run under ``torch.autocast`` in the reduced type; PrRoIPool
computes in float32 inside them by itself (:func:`ltr_plugins.prroi_pool.prroi_pool2d`), and the actor computes every
loss and RDM in float32 from outputs cast back (:func:`to_float32`). fp16 needs a gradient scaler against underflow:
the actor hands ltr's trainer the scaled loss for its ``backward()``, and :class:`ltr_plugins.trainers.JointOptimizer`
unscales, skips steps with inf/NaN gradients and updates the scale; bf16 has float32's exponent range and needs none.
"""
import contextlib
from typing import Any, ContextManager, Optional

import torch

MODES = {None: None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


class MixedPrecision:
    """The autocast context and (for fp16) the gradient scaler of one training run."""

    def __init__(self, mode: Optional[str], device: torch.device):
        if mode not in MODES:
            raise ValueError('settings.mixed_precision = {!r}: use None (float32), \'bf16\' or \'fp16\''.format(mode))
        self.mode = mode
        self.dtype = MODES[mode]
        self.device_type = torch.device(device).type
        self.scaler = torch.amp.GradScaler(self.device_type) if mode == 'fp16' else None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self) -> ContextManager:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def __repr__(self) -> str:
        return 'MixedPrecision({!r}, {})'.format(self.mode, self.device_type)


def to_float32(value: Any) -> Any:
    """Floating tensors of a (nested) output cast to float32; everything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: to_float32(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_float32(v) for v in value)
    return value


def set_tf32(allow: Optional[bool]) -> None:
    """``settings.allow_tf32``: TF32 (a 10-bit mantissa, on Ampere GPUs and later) for float32 matrix products and
    cuDNN convolutions, True for both, False for neither; None leaves PyTorch's defaults (convolutions in TF32,
    matrix products in full float32). Process-wide; no effect on the CPU."""
    if allow is None:
        return
    torch.backends.cuda.matmul.allow_tf32 = bool(allow)
    torch.backends.cudnn.allow_tf32 = bool(allow)
