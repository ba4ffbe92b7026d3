"""Low-resolution degradation of training crops: how MKDNet simulates tiny objects (paper IV.C, "Image Degradation").

No tracking dataset has paired low/high-resolution frames, so the student sees each crop shrunk until the batch's
mean target is about ``t = target_size`` (16) pixels, then blown back up; the teacher sees the original crop. Only
pixels change (crop size, boxes, labels and proposals stay), so both are supervised on the same geometry. Per axis,
from the crop size and the batch's mean ground-truth box: ``H' = clamp(round(H * t / h_mean), 1, H)`` (``W'``
likewise), so a crop whose mean target is at most ``t`` pixels already is left alone. The shrink is bicubic,
antialiased by default (a 4x bicubic shrink aliases otherwise, which a real low-resolution camera does not), the way
back nearest or bilinear with probability 1/2 each, on the normalised images (interpolation is linear per channel,
so it commutes with the normalisation).
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ltr_plugins.common.boxes import box_present

# KLDiMPActor's marker of an invalid test box (x >= 99999).
INVALID_BOX_X = 99999.0

SizeLike = Union[int, Sequence[int]]


def crop_size_of(output_sz: SizeLike) -> Tuple[int, int]:
    """``settings.output_sz`` as ``(height, width)``: an int is a square crop, a pair is ``(height, width)``."""
    if isinstance(output_sz, (int, float)):
        return int(output_sz), int(output_sz)
    height, width = output_sz
    return int(height), int(width)


def degraded_size(crop_size: Tuple[int, int], mean_box_wh: Tuple[float, float], target_size: float
                  ) -> Tuple[int, int]:
    """The intermediate ``(height, width)`` a crop is shrunk to (formula in the module docstring).

    args:
        crop_size: ``(H, W)`` of the crop in pixels.
        mean_box_wh: mean ground-truth box ``(width, height)`` in crop pixels (pytracking boxes are x, y, w, h).
        target_size: the size, in pixels, the mean box should have after shrinking (16 in the paper).
    """
    height, width = crop_size
    box_w, box_h = (float(v) for v in mean_box_wh)
    if not (box_w > 0 and box_h > 0):
        raise ValueError('mean box size must be positive, got {}'.format(mean_box_wh))
    new_h = min(max(int(round(height * target_size / box_h)), 1), height)
    new_w = min(max(int(round(width * target_size / box_w)), 1), width)
    return new_h, new_w


def valid_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Mask (over all but the last dim) of boxes that are present and not marked invalid by ltr's processing."""
    return box_present(boxes) & (boxes[..., 0] < INVALID_BOX_X)


class Degraded(NamedTuple):
    images: List[torch.Tensor]      # the degraded image tensors, shaped like the inputs
    sizes: torch.Tensor             # (num_crops, 2): the intermediate (height, width) used for every crop
    up_modes: List[str]             # the upsampling mode drawn for every crop


class Degradation:
    """Degrades the student's crops; see the module docstring for the exact operation.

    args:
        output_sz: the crop size, ``settings.output_sz`` (int, or ``(height, width)``); inputs must have it.
        target_size: average target size, in pixels, after shrinking (16).
        down_mode: interpolation used to shrink (``'bicubic'``).
        up_modes: interpolations drawn uniformly to blow the crop back up (``('nearest', 'bilinear')``, p = 0.5).
        per_image: False (paper): one scale factor, from the mean box of the whole batch, and one upsampling mode
            for every crop of the batch. True: every crop gets the factor of its own box and its own mode draw.
        antialias: antialias filter when shrinking (see the module docstring).

    Randomness comes from torch's default generator, so seeding torch makes it reproducible.
    """

    def __init__(self, output_sz: SizeLike, target_size: float = 16.0, down_mode: str = 'bicubic',
                 up_modes: Sequence[str] = ('nearest', 'bilinear'), per_image: bool = False, antialias: bool = True):
        if target_size <= 0:
            raise ValueError('target_size must be positive')
        if not up_modes:
            raise ValueError('up_modes must name at least one interpolation mode')
        self.crop_size = crop_size_of(output_sz)
        self.target_size = float(target_size)
        self.down_mode = down_mode
        self.up_modes = tuple(up_modes)
        self.per_image = per_image
        self.antialias = antialias

    def __repr__(self) -> str:
        return ('Degradation(crop_size={}, target_size={}, down_mode={!r}, up_modes={}, per_image={}, '
                'antialias={})'.format(self.crop_size, self.target_size, self.down_mode, self.up_modes,
                                       self.per_image, self.antialias))

    def plan(self, boxes: Sequence[torch.Tensor]) -> torch.Tensor:
        """Intermediate ``(height, width)`` for every crop, as an int tensor ``(num_crops, 2)``.

        ``boxes`` are the crops' ground-truth boxes (x, y, w, h) in crop pixels, one tensor per image tensor given to
        :meth:`__call__`, shaped like it without the image dims (e.g. ``(frames, sequences, 4)``). Invalid boxes do
        not count towards the mean; in per-image mode a crop with an invalid box uses the batch mean; a batch with
        no valid box at all is left as it is.
        """
        flat = torch.cat([b.detach().reshape(-1, 4).float() for b in boxes], dim=0).cpu()   # one read from a device
        valid = valid_boxes(flat)
        if not valid.any():
            return torch.tensor([self.crop_size] * flat.shape[0], dtype=torch.long).reshape(-1, 2)
        batch_mean = flat[valid, 2:4].mean(dim=0)
        batch_size = degraded_size(self.crop_size, tuple(batch_mean.tolist()), self.target_size)
        if not self.per_image:
            return torch.tensor([batch_size] * flat.shape[0], dtype=torch.long)
        sizes = [degraded_size(self.crop_size, tuple(box[2:4].tolist()), self.target_size) if ok else batch_size
                 for box, ok in zip(flat, valid.tolist())]
        return torch.tensor(sizes, dtype=torch.long)

    def _resample(self, images: torch.Tensor, size: Tuple[int, int], up_mode: str) -> torch.Tensor:
        if tuple(size) == tuple(images.shape[-2:]):
            return images   # the targets are already at most target_size pixels: nothing to simulate
        small = F.interpolate(images, size=tuple(size), mode=self.down_mode, align_corners=False,
                              antialias=self.antialias and self.down_mode in ('bilinear', 'bicubic'))
        align_corners = None if up_mode.startswith('nearest') else False
        return F.interpolate(small, size=self.crop_size, mode=up_mode, align_corners=align_corners)

    def _draw_mode(self) -> str:
        return self.up_modes[int(torch.randint(len(self.up_modes), (1,)).item())]

    def __call__(self, images: Sequence[torch.Tensor], boxes: Sequence[torch.Tensor]) -> Degraded:
        """Degrades image tensors ``(..., 3, H, W)`` (e.g. the train and the test crops, ``(frames, sequences, 3, H,
        W)``) given their boxes (``(frames, sequences, 4)``). The boxes are only read, on the host: given on a device,
        they are copied there in one transfer (a host sync); the actor hands them over already on the host."""
        if len(images) != len(boxes):
            raise ValueError('one box tensor per image tensor is needed')
        for image in images:
            if tuple(image.shape[-2:]) != self.crop_size:
                raise ValueError('crop size {} differs from settings.output_sz {}'.format(
                    tuple(image.shape[-2:]), self.crop_size))
        sizes = self.plan(boxes)
        flat = torch.cat([im.reshape(-1, *im.shape[-3:]) for im in images], dim=0)
        if flat.shape[0] != sizes.shape[0]:
            raise ValueError('{} crops but {} boxes'.format(flat.shape[0], sizes.shape[0]))

        if not self.per_image:
            mode = self._draw_mode()
            modes = [mode] * flat.shape[0]
            out = self._resample(flat, tuple(sizes[0].tolist()), mode)
        else:
            modes = [self._draw_mode() for _ in range(flat.shape[0])]
            out = torch.cat([self._resample(flat[i:i + 1], tuple(sizes[i].tolist()), modes[i])
                             for i in range(flat.shape[0])], dim=0)

        degraded, start = [], 0
        for image in images:
            count = image.reshape(-1, *image.shape[-3:]).shape[0]
            degraded.append(out[start:start + count].reshape(image.shape))
            start += count
        return Degraded(degraded, sizes, modes)


def build_degradation(settings) -> Optional[Degradation]:
    """The degradation that ``settings`` asks for (None when ``settings.degrade`` is False)."""
    if not getattr(settings, 'degrade', True):
        return None
    return Degradation(settings.output_sz, target_size=settings.degrade_target_size,
                       down_mode=settings.degrade_down_mode, up_modes=settings.degrade_up_modes,
                       per_image=settings.degrade_per_image, antialias=settings.degrade_antialias)
