"""Synthetic tiny-object tracking sequences in the LaTOT layout.

No real LaTOT data can be downloaded everywhere, yet tests, demos and benchmarks need data that looks like it: tiny
targets (about 4-20 px) at sub-pixel positions on cluttered backgrounds, with LaTOT's challenges (similar
distractors, motion blur, scale change, occlusion, leaving the view, illumination change, camera motion).  This
module makes such sequences from one integer seed, reproducibly, and writes them exactly as LaTOT is laid out::

    <root>/<seq>/img/000001.jpg, 000002.jpg, ...   JPEG frames, 6-digit 1-based names; sorted order = frame order
    <root>/<seq>/<seq>.txt                         one line per frame: "x,y,w,h", each with exactly two decimals
    <root>/<seq>/attributes.txt                    one line of 12 comma-separated 0/1 flags, in the order
                                                   SV,FM,OV,IV,CM,MB,BC,SO,PO,FO,AM,LI (see ATTRIBUTES)

Sequence names look like LaTOT's: a category followed by a number (``bird3``, ``drone12``); the category is the
name without its trailing digits.  Names from a split list (``settings/latot/test.txt``) can be used as they are.

Annotation conventions
----------------------
* Coordinates are continuous pixel coordinates with the origin at the top-left corner of the image: pixel column i
  covers [i, i+1).  A box is (x, y, w, h): top-left corner, width and height, in pixels, as floats.
* A target partly outside the image has its box clipped to the image.
* A target entirely out of the view is written ``0.00,0.00,0.00,0.00`` (absent; pytracking treats w, h <= 0 as
  invalid).  "Entirely" means that less than one pixel of it is inside the image in either direction (a sliver
  under one pixel wide is not perceptible and cannot be annotated sensibly).
* A fully occluded target keeps its true box (and the sequence gets the FO flag).
* Frame 1 always shows the target fully inside the image and unoccluded, so a tracker can be initialised there.
* Unclipped boxes always have width and height within the sequence's target size range (``SequenceSpec``).

Attributes
----------
``attributes.txt`` holds what the generator knows is in the sequence.  The box-measurable attributes (SV, FM, OV,
PO, FO) are measured on the generated ground truth with LaTOT's definitions (see ``measure_box_attributes``), so
they also report what other effects caused: an occluder that sweeps over the target covers it partly on its way in,
so FO normally comes with PO; an abrupt camera jump moves a tiny target by more than its size, which is FM.  The
rendering-only attributes (IV, CM, MB, BC, SO, LI) and AM are those the spec asked for.  An effect asked for in a
spec is always realised: the generator re-draws the trajectory until it is.

Reproducibility
---------------
Everything comes from one integer seed through numpy's ``SeedSequence``: separate child streams drive sizes,
motion, camera, lighting, occluders, and so on, so switching one effect on or off leaves the others as they were
(the background of a sequence does not change when LI is switched on).  The same seed and arguments give
byte-identical annotation files and identical JPEG bytes (``cv2.imencode`` with a fixed quality).  In a dataset,
sequence k gets its own derived seed (``SeedSequence(seed, spawn_key=(k, ...))``), so it is the same whatever the
number of sequences written.

Use from Python::

    from pytracking_plugins import synthetic
    spec = synthetic.SequenceSpec('bird1', num_frames=100, effects={'SV', 'OV'})
    boxes, attributes = synthetic.generate_boxes(spec, seed=3)          # cheap: no images
    frames, boxes, attributes = synthetic.generate_sequence(spec, seed=3)  # frames: lazy iterator of BGR images
    synthetic.write_dataset('/tmp/latot_synth', num_sequences=4, num_frames=(60, 120), seed=0)

or as a command::

    python -m pytracking_plugins.synthetic --root /tmp/latot_synth --sequences 4 --frames 60:120 --seed 0
    python -m pytracking_plugins.synthetic --root /tmp/latot_synth --names-from settings/latot/test.txt --no-images
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from pytracking_plugins import latot_data
from pytracking_plugins.latot_attributes import ATTRIBUTES   # Table II order: the columns of attributes.txt

__all__ = [
    'ATTRIBUTES', 'ATTRIBUTE_DESCRIPTIONS', 'BOX_ATTRIBUTES', 'EFFECT_PROBABILITIES', 'SHAPES',
    'MIN_FRAMES_FOR_EFFECTS', 'SequenceSpec', 'SequencePlan', 'SequenceInfo', 'random_spec', 'plan_sequence',
    'generate_boxes', 'generate_sequence', 'render_frames', 'measure_box_attributes', 'format_boxes',
    'format_attributes', 'category_of', 'write_sequence', 'write_dataset', 'read_names', 'main',
]

#: LaTOT Table II, as this generator realises each attribute.
ATTRIBUTE_DESCRIPTIONS: Dict[str, str] = {
    'SV': 'scale variation: box area ratio outside [0.5, 2] within 30 frames',
    'FM': 'fast motion: centre moves more than the box size (largest side) between two frames',
    'OV': 'out of view: part or all of the target leaves the image',
    'IV': 'illumination variation: global brightness/colour of the scene changes',
    'CM': 'camera motion: the background pans and jumps abruptly',
    'MB': 'motion blur: target (and, in shake episodes, the whole frame) blurred along the motion',
    'BC': 'background clutter: the background near the target has target-like colours and blobs',
    'SO': 'similar objects: same-looking distractors move near the target',
    'PO': 'partial occlusion: an occluder covers part of the target',
    'FO': 'full occlusion: an occluder covers the whole target for some frames',
    'AM': 'abrupt motion: the target suddenly reverses/turns and speeds up',
    'LI': 'low illumination: dark, noisy frames',
}

#: Attributes measured on the generated boxes (the others are taken from the spec).
BOX_ATTRIBUTES: Tuple[str, ...] = ('SV', 'FM', 'OV', 'PO', 'FO')

#: Probability of each effect in ``random_spec`` (roughly LaTOT's attribute frequencies, BC/SO being common there).
EFFECT_PROBABILITIES: Dict[str, float] = {
    'SV': 0.3, 'FM': 0.25, 'OV': 0.25, 'IV': 0.3, 'CM': 0.3, 'MB': 0.3,
    'BC': 0.5, 'SO': 0.45, 'PO': 0.4, 'FO': 0.3, 'AM': 0.2, 'LI': 0.15,
}

#: Target shapes (anti-aliased, drawn from signed distance functions; the box is the shape's exact extent).
SHAPES: Tuple[str, ...] = ('ellipse', 'box', 'diamond', 'cross')

#: Effects need room: a sequence shorter than this can have none (events are placed after frame 2).
MIN_FRAMES_FOR_EFFECTS = 20

DEFAULT_IMAGE_SIZE = (640, 360)
DEFAULT_TARGET_SIZE = (4.0, 20.0)
DEFAULT_JPEG_QUALITY = 90
MAX_FRAMES = 999_999  # 6-digit frame names

_SV_WINDOW = 30          # LaTOT: scale change "within 1 s" at 30 fps
_SV_MIN_LOG = math.log(1.75)  # scripted scale steps are at least x1.75 in size (x3 in area): clearly outside [0.5, 2]
_SV_MAX_LOG = math.log(2.4)
_SCALE_WOBBLE = 0.08     # log-size wobble when no SV: area ratio at most exp(4 * 0.08) = 1.38
_ASPECT_WOBBLE = 0.05
_CAMERA_PAD = 96         # background texture margin around the view; camera offsets stay within it
_NOISE_PAD = 32
_SIZE_EPS = 0.02         # keeps sizes this far inside the range so that 2-decimal rounding stays inside it
_MAX_ATTEMPTS = 40

# Independent child streams of one seed; the order is part of the reproducibility contract (append only).
_STREAMS = ('size', 'events', 'motion', 'camera', 'distractors', 'occluder', 'iv', 'li', 'blur')

# Generated names use LaTOT categories.
_CATEGORIES = ('car', 'people', 'tennis', 'bird', 'soccer', 'Kongming_Lantern', 'shuttlecock', 'ant', 'balloon',
               'star', 'golf', 'bee', 'kite', 'boat', 'fly', 'aircraft', 'jet', 'drone', 'bowling', 'badminton',
               'Paraglider', 'ladybird', 'fish', 'ball')

# Category keyword -> (shape, log aspect ratio w/h).  The longest matching keyword wins ("ladybird" before "bird").
_CATEGORY_LOOKS: Dict[str, Tuple[str, float]] = {
    'aircraft': ('cross', math.log(1.4)), 'jet': ('cross', math.log(1.4)), 'plane': ('cross', math.log(1.4)),
    'drone': ('cross', 0.0), 'ufo': ('ellipse', math.log(1.8)), 'bird': ('cross', math.log(1.8)),
    'eagle': ('cross', math.log(1.8)), 'bat': ('cross', math.log(1.6)), 'paraglider': ('diamond', math.log(2.0)),
    'kite': ('diamond', math.log(0.8)), 'star': ('diamond', 0.0), 'shuttlecock': ('diamond', 0.0),
    'car': ('box', math.log(1.6)), 'bus': ('box', math.log(2.0)), 'truck': ('box', math.log(1.8)),
    'boat': ('box', math.log(1.8)), 'ship': ('box', math.log(2.0)), 'bicycle': ('box', math.log(1.3)),
    'people': ('box', math.log(0.45)), 'person': ('box', math.log(0.45)), 'surfing': ('box', math.log(0.6)),
    'dice': ('box', 0.0), 'poker': ('box', math.log(0.7)), 'statue': ('box', math.log(0.5)),
    'skateboard': ('box', math.log(1.8)), 'ball': ('ellipse', 0.0), 'tennis': ('ellipse', 0.0),
    'soccer': ('ellipse', 0.0), 'golf': ('ellipse', 0.0), 'pingpang': ('ellipse', 0.0), 'bowling': ('ellipse', 0.0),
    'hoodle': ('ellipse', 0.0), 'shot': ('ellipse', 0.0), 'moon': ('ellipse', 0.0), 'light': ('ellipse', 0.0),
    'meteor': ('ellipse', math.log(1.5)), 'balloon': ('ellipse', math.log(0.85)),
    'lantern': ('ellipse', math.log(0.8)), 'ladybird': ('ellipse', math.log(1.2)), 'bee': ('ellipse', math.log(1.4)),
    'fly': ('ellipse', math.log(1.4)), 'insect': ('ellipse', math.log(1.4)), 'ant': ('ellipse', math.log(1.8)),
    'fish': ('ellipse', math.log(2.2)), 'snake': ('ellipse', math.log(2.5)), 'shrimp': ('ellipse', math.log(2.0)),
    'sheep': ('ellipse', math.log(1.4)), 'chick': ('ellipse', 0.0), 'yoyo': ('ellipse', 0.0),
    'badminton': ('diamond', 0.0),
}

# Scene palettes (BGR mean colour, clutter density) for the textured backgrounds.
_SCENES: Dict[str, Tuple[Tuple[float, float, float], float]] = {
    'sky': ((215.0, 185.0, 150.0), 0.35),
    'grass': ((70.0, 135.0, 95.0), 1.0),
    'urban': ((120.0, 122.0, 128.0), 1.0),
    'water': ((140.0, 115.0, 70.0), 0.6),
    'sand': ((120.0, 165.0, 195.0), 0.8),
    'dusk': ((95.0, 105.0, 140.0), 0.7),
}

Size = Tuple[int, int]
FloatRange = Tuple[float, float]


# --------------------------------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------------------------------

def category_of(name: str) -> str:
    """LaTOT category of a sequence name (``bird12`` -> ``bird``, ``car33-2`` -> ``car``)."""
    return latot_data.sequence_category(name)


def _name_looks(name: str) -> Optional[Tuple[str, float]]:
    """(shape, log aspect) for a name from its longest matching category keyword, or None."""
    lowered = name.lower()
    best = None
    for keyword, looks in _CATEGORY_LOOKS.items():
        if keyword in lowered and (best is None or len(keyword) > len(best[0])):
            best = (keyword, looks)
    return None if best is None else best[1]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or name in ('.', '..') or '/' in name or '\\' in name \
            or '\0' in name or name != name.strip():
        raise ValueError(f'invalid sequence name {name!r}: it becomes a folder name, so it must be non-empty, '
                         f'without path separators or surrounding spaces')
    return name


def _log_size_room(target_size: FloatRange) -> float:
    """Usable log range of sizes (after keeping _SIZE_EPS away from both ends)."""
    lo, hi = target_size[0] + _SIZE_EPS, target_size[1] - _SIZE_EPS
    return math.log(hi / lo) if hi > lo else 0.0


def _sv_feasible(target_size: FloatRange) -> bool:
    # SV needs a x2 size step plus the wobble and a little aspect room inside the range.
    return _log_size_room(target_size) >= math.log(2.0) + 2 * _SCALE_WOBBLE + _ASPECT_WOBBLE


@dataclass(frozen=True)
class SequenceSpec:
    """What one synthetic sequence contains (the seed decides the rest).

    name: sequence (folder) name, e.g. ``bird3``; its category picks the target's shape and aspect unless
        ``shape`` is given.
    num_frames: number of frames (1 .. 999999).
    image_size: (width, height) in pixels.
    target_size: (min, max) target width/height in pixels; unclipped boxes stay inside it.
    effects: LaTOT attribute codes to put into the sequence (any of ATTRIBUTES); each is realised.
    shape: one of SHAPES, or None to choose from the name (random if the name says nothing).
    """

    name: str
    num_frames: int
    image_size: Size = DEFAULT_IMAGE_SIZE
    target_size: FloatRange = DEFAULT_TARGET_SIZE
    effects: frozenset = field(default_factory=frozenset)
    shape: Optional[str] = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if isinstance(self.effects, str):  # a bare string would silently become a set of letters
            raise ValueError(f'effects must be a collection of attribute codes, not the string {self.effects!r}')
        effects = frozenset(str(e).upper() for e in self.effects)
        unknown = sorted(effects - set(ATTRIBUTES))
        if unknown:
            raise ValueError(f'unknown effects {unknown}; known: {", ".join(ATTRIBUTES)}')
        object.__setattr__(self, 'effects', effects)
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, (int, np.integer)) \
                or not 1 <= self.num_frames <= MAX_FRAMES:
            raise ValueError(f'num_frames must be an integer in 1..{MAX_FRAMES}, got {self.num_frames!r}')
        object.__setattr__(self, 'num_frames', int(self.num_frames))
        try:
            w, h = (int(v) for v in self.image_size)
            tmin, tmax = (float(v) for v in self.target_size)
        except (TypeError, ValueError):
            raise ValueError(f'image_size must be (width, height) and target_size (min, max), got '
                             f'{self.image_size!r} and {self.target_size!r}') from None
        object.__setattr__(self, 'image_size', (w, h))
        object.__setattr__(self, 'target_size', (tmin, tmax))
        if not (1.0 <= tmin <= tmax) or not math.isfinite(tmax):
            raise ValueError(f'target_size must be (min, max) with 1 <= min <= max, got {self.target_size}')
        need = max(32, int(math.ceil(4 * tmax)))
        if w < need or h < need:
            raise ValueError(f'image_size {w}x{h} is too small for targets up to {tmax:g} px: '
                             f'width and height must be at least {need}')
        if self.shape is not None and self.shape not in SHAPES:
            raise ValueError(f'shape must be one of {SHAPES} or None, got {self.shape!r}')
        if effects and self.num_frames < MIN_FRAMES_FOR_EFFECTS:
            raise ValueError(f'effects {sorted(effects)} need at least {MIN_FRAMES_FOR_EFFECTS} frames, '
                             f'{self.name} has {self.num_frames}')
        if 'SV' in effects and not _sv_feasible(self.target_size):
            raise ValueError(f'SV needs a target size range with max/min of about 2.5 or more, got {self.target_size}')

    @property
    def category(self) -> str:
        return category_of(self.name)


def random_spec(rng: np.random.Generator, name: str, num_frames: int, image_size: Size = DEFAULT_IMAGE_SIZE,
                target_size: FloatRange = DEFAULT_TARGET_SIZE) -> SequenceSpec:
    """A spec with effects drawn independently with EFFECT_PROBABILITIES (infeasible ones left out).

    The shape follows the name's category (see SequenceSpec); effects are dropped when the sequence is shorter than
    MIN_FRAMES_FOR_EFFECTS, and SV when the size range is too narrow for it.
    """
    draws = rng.random(len(ATTRIBUTES))  # always draw all, so one effect's odds never shift the others
    effects = {a for a, u in zip(ATTRIBUTES, draws) if u < EFFECT_PROBABILITIES[a]}
    if num_frames < MIN_FRAMES_FOR_EFFECTS:
        effects = set()
    if not _sv_feasible((float(target_size[0]), float(target_size[1]))):
        effects.discard('SV')
    return SequenceSpec(name=name, num_frames=num_frames, image_size=tuple(image_size),
                        target_size=tuple(target_size), effects=frozenset(effects))


# --------------------------------------------------------------------------------------------------------------------
# Planning: every box, event and rendering parameter, without images
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class SequencePlan:
    """Everything about a sequence except its pixels; ``render_frames`` turns it into images.

    boxes: [N, 4] annotation as written (clipped to the image, 0,0,0,0 when absent, rounded to 2 decimals).
    true_boxes: [N, 4] unclipped, unrounded target boxes (what is rendered).
    visible: [N] False where the target is out of view (absent).
    clipped: [N] True where the target is partly out of view (box clipped to the image).
    occluder: [N, 4] occluder rectangle x0, y0, x1, y1 (NaN where there is none).
    occluded: [N] fraction of the target box covered by the occluder.
    occluded_full: [N] True where the occluder covers the whole box (with a 1 px margin).
    camera: [N, 2] camera offset in pixels (the background is shifted by it).
    distractors: [K, N, 4] boxes of the similar objects.
    target_blur: [N, 2] exposure displacement of the target (motion blur), zero when sharp.
    frame_blur: [N, 2] whole-frame blur vector (camera shake / jumps), zero when none.
    gain: [N, 3] per-channel illumination gain; gamma: scene gamma (>1 darkens shadows); noise_sigma: sensor noise.
    """

    spec: SequenceSpec
    seed: int
    boxes: np.ndarray
    true_boxes: np.ndarray
    visible: np.ndarray
    clipped: np.ndarray
    occluder: np.ndarray
    occluded: np.ndarray
    occluded_full: np.ndarray
    camera: np.ndarray
    distractors: np.ndarray
    target_blur: np.ndarray
    frame_blur: np.ndarray
    gain: np.ndarray
    gamma: float
    noise_sigma: float
    shape: str
    target_color: Tuple[float, float, float]
    core_color: Tuple[float, float, float]
    distractor_colors: List[Tuple[float, float, float]]
    occluder_color: Tuple[float, float, float]
    scene: str
    scene_color: Tuple[float, float, float]
    clutter: float
    render_seed: int
    attributes: Dict[str, bool]


def _child(seed: int, *key: int) -> np.random.SeedSequence:
    """Child k of a seed without the mutable spawn counter (so it never depends on call order)."""
    return np.random.SeedSequence(seed, spawn_key=tuple(key))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _smooth_noise(rng: np.random.Generator, n: int, corr: float) -> np.ndarray:
    """Smooth zero-centred noise of length n, scaled so that max |value| = 1 (a hard bound, unlike a random walk)."""
    half = int(2 * corr)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / (corr / 2.0)) ** 2)
    white = rng.standard_normal(n + 2 * half)
    smooth = np.convolve(white, kernel, mode='same')[half:half + n]
    peak = np.abs(smooth).max() if n else 0.0
    return smooth / peak if peak > 0 else smooth


def _allocate_windows(rng: np.random.Generator, n: int, events: List[str]) -> List[Tuple[str, int, int]]:
    """Non-overlapping [start, end) frame windows for the exclusive events, after frame 2 (frame 1 stays clean)."""
    if not events:
        return []
    order = list(rng.permutation(len(events)))
    first, last = 2, n - 1
    slot = (last - first) / len(events)
    windows = []
    for k, idx in enumerate(order):
        a = first + int(math.floor(k * slot))
        b = first + int(math.floor((k + 1) * slot))
        # Long slots: use part of it, at a random place, so events are not evenly spread.
        length = b - a
        want = length if length <= 12 else int(rng.integers(max(12, length // 2), length + 1))
        start = a + int(rng.integers(0, length - want + 1))
        windows.append((events[idx], start, start + want))
    return sorted(windows, key=lambda w: w[1])


def _plan_sizes(spec: SequenceSpec, rng: np.random.Generator, log_aspect0: float) -> Tuple[np.ndarray, np.ndarray]:
    """Per-frame target width and height."""
    n = spec.num_frames
    lo, hi = spec.target_size[0] + _SIZE_EPS, spec.target_size[1] - _SIZE_EPS
    if hi <= lo:
        lo = hi = (spec.target_size[0] + spec.target_size[1]) / 2.0
    room = math.log(hi / lo)
    sv = 'SV' in spec.effects
    wob_s = _SCALE_WOBBLE if sv else min(_SCALE_WOBBLE, room / 4.0)
    wob_a = _ASPECT_WOBBLE if sv else min(_ASPECT_WOBBLE, room / 4.0)
    # The aspect ratio eats into the size room (w = s*sqrt(a), h = s/sqrt(a)); keep enough for the scale steps.
    need = (math.log(2.0) if sv else 0.0) + 2 * wob_s + wob_a
    la_max = max(0.0, room - need)
    la0 = float(np.clip(log_aspect0 + rng.normal(0.0, 0.15), -la_max, la_max))
    half = 0.5 * (abs(la0) + wob_a)
    ls_lo, ls_hi = math.log(lo) + half + wob_s, math.log(hi) - half - wob_s
    if ls_hi < ls_lo:
        ls_lo = ls_hi = 0.5 * (ls_lo + ls_hi)
    base = np.empty(n)
    if not sv:
        base[:] = rng.uniform(ls_lo, ls_hi)
    else:
        # Start near one end of the range so the first step (x1.75..x2.4) has room; later steps alternate.
        up = bool(rng.random() < 0.5)
        span = ls_hi - ls_lo
        ls = ls_lo + rng.uniform(0, 0.1) * span if up else ls_hi - rng.uniform(0, 0.1) * span
        count = 1 + min(2, n // 200)
        seg = (n - 3) / count
        base[:] = ls
        for k in range(count):
            dur = int(rng.integers(6, 26))
            dur = max(2, min(dur, int(seg) - 1))
            a = 2 + int(k * seg) + int(rng.integers(0, max(1, int(seg) - dur)))
            roomd = (ls_hi - ls) if up else (ls - ls_lo)
            step = rng.uniform(_SV_MIN_LOG, max(_SV_MIN_LOG, min(_SV_MAX_LOG, roomd)))
            step = min(step, roomd) if roomd > 0 else 0.0
            target = ls + step if up else ls - step
            t = np.arange(n)
            base += (target - ls) * _smoothstep((t - a) / dur)
            ls, up = target, not up
    log_s = base + wob_s * _smooth_noise(rng, n, 40.0)
    log_a = la0 + wob_a * _smooth_noise(rng, n, 30.0)
    w = np.exp(log_s + 0.5 * log_a)
    h = np.exp(log_s - 0.5 * log_a)
    return np.clip(w, lo, hi), np.clip(h, lo, hi)


def _plan_camera(spec: SequenceSpec, rng: np.random.Generator) -> Tuple[np.ndarray, List[int]]:
    """Camera offsets [N, 2]: a bounded slow pan plus abrupt jumps (CM), else still."""
    n = spec.num_frames
    cam = np.zeros((n, 2))
    if 'CM' not in spec.effects:
        return cam, []
    count = 1 + min(3, n // 200)
    jumps = sorted(int(t) for t in rng.choice(np.arange(3, n - 1), size=min(count, n - 4), replace=False))
    limit = _CAMERA_PAD - 8.0
    vel = np.zeros(2)
    for t in range(1, n):
        vel = 0.92 * vel + rng.normal(0.0, 0.12, 2)
        speed = np.hypot(*vel)
        if speed > 1.0:
            vel *= 1.0 / speed
        vel -= 0.01 * cam[t - 1] / limit  # drift back towards the middle
        cam[t] = cam[t - 1] + vel
        if t in jumps:
            phi = rng.uniform(0, 2 * math.pi)
            jump = rng.uniform(10.0, 36.0) * np.array([math.cos(phi), math.sin(phi)])
            for i in range(2):  # jump the way that keeps the view inside the texture
                if abs(cam[t, i] + jump[i]) > limit:
                    jump[i] = -jump[i]
            cam[t] += jump
        cam[t] = np.clip(cam[t], -limit, limit)
    return cam, jumps


def _reflect(p: float, v: float, lo: float, hi: float) -> Tuple[float, float]:
    """Keep p in [lo, hi] by bouncing (the velocity component flips), clamping after huge overshoots."""
    if hi <= lo:
        return 0.5 * (lo + hi), v
    if p < lo:
        p, v = 2 * lo - p, abs(v)
    elif p > hi:
        p, v = 2 * hi - p, -abs(v)
    return min(max(p, lo), hi), v


def _plan_motion(spec: SequenceSpec, rng: np.random.Generator, w: np.ndarray, h: np.ndarray, cam: np.ndarray,
                 fm_times: Sequence[int], am_times: Sequence[int]) -> np.ndarray:
    """Target centres [N, 2] in image coordinates: a wandering walk kept fully inside the view."""
    n = spec.num_frames
    width, height = spec.image_size
    small = float(np.minimum(w, h).min())
    # Natural speed stays well under the box size (plus at most 1 px/frame of camera pan): no accidental FM.
    speed_hi = max(0.3, 0.4 * small)
    speed_lo = min(0.1, speed_hi)
    centres = np.zeros((n, 2))
    margin_x = w / 2.0 + 1.0
    margin_y = h / 2.0 + 1.0
    centres[0] = (rng.uniform(margin_x[0] + 0.1 * width, width - margin_x[0] - 0.1 * width),
                  rng.uniform(margin_y[0] + 0.1 * height, height - margin_y[0] - 0.1 * height))
    theta = rng.uniform(0, 2 * math.pi)
    speed = rng.uniform(speed_lo, speed_hi)
    boost = 0.0
    forced: Dict[int, np.ndarray] = {}
    fm_set, am_set = set(fm_times), set(am_times)
    for t in range(1, n):
        p = centres[t - 1]
        if t in fm_set and t not in forced:
            # A burst of 1-4 frames, each moving 1.3-2.2 box sizes, aimed at a far point inside the view.
            size = max(w[t], h[t])
            goals = np.stack([rng.uniform(margin_x[t], width - margin_x[t], 8),
                              rng.uniform(margin_y[t], height - margin_y[t], 8)], 1)
            goal = goals[np.argmax(np.hypot(*(goals - p).T))]
            dist = float(np.hypot(*(goal - p)))
            step = rng.uniform(1.3, 2.2) * size
            if step > dist:  # cramped view: jump as far as there is room, still more than one box size if possible
                step = max(1.15 * size, 0.95 * dist)
            direction = (goal - p) / max(dist, 1e-9)
            frames = int(max(1, min(int(rng.integers(1, 5)), dist // step)))
            for j in range(frames):
                if t + j < n:
                    forced[t + j] = direction * step * max(w[t + j], h[t + j]) / size
            theta = math.atan2(direction[1], direction[0])
        if t in am_set:
            # Abrupt motion: turn round (90-180 degrees) and speed up to about the box size in one frame.
            theta += math.pi + rng.uniform(-0.9, 0.9)
            boost = max(0.0, rng.uniform(0.55, 0.9) * min(w[t], h[t]) - speed)
        theta += rng.normal(0.0, 0.15)
        speed = float(np.clip(speed + rng.normal(0.0, 0.08 * (speed_hi - speed_lo)), speed_lo, speed_hi))
        boost *= 0.8
        if t in forced:
            vel = forced.pop(t)
            boost = max(boost, 0.5 * (float(np.hypot(*vel)) - speed))
        else:
            vel = (speed + boost) * np.array([math.cos(theta), math.sin(theta)])
        x, vx = _reflect(p[0] + vel[0] - (cam[t, 0] - cam[t - 1, 0]), vel[0], margin_x[t], width - margin_x[t])
        y, vy = _reflect(p[1] + vel[1] - (cam[t, 1] - cam[t - 1, 1]), vel[1], margin_y[t], height - margin_y[t])
        if (vx, vy) != (vel[0], vel[1]):
            theta = math.atan2(vy, vx)
        centres[t] = (x, y)
    return centres


def _apply_out_of_view(spec: SequenceSpec, rng: np.random.Generator, centres: np.ndarray, w: np.ndarray,
                       h: np.ndarray, start: int, end: int) -> None:
    """Move the target out through the nearest edge and back within [start, end) (in place).

    Only the coordinate across the edge is blended towards a point outside, so the motion along the edge stays
    natural.  Fully out (absent frames) 60% of the time, otherwise only partly out (clipped boxes).
    """
    width, height = spec.image_size
    px, py = centres[start]
    dists = [px, width - px, py, height - py]  # left, right, top, bottom
    edge = int(np.argmin(np.asarray(dists) + rng.uniform(0, 0.05 * min(width, height), 4)))
    axis = 0 if edge < 2 else 1
    extent = w[start:end] if axis == 0 else h[start:end]
    full = bool(rng.random() < 0.6) or float(extent.min()) < 2.5  # a partial view of a tiny target is < 1 px
    if full:
        depth = float(extent.max()) / 2.0 + rng.uniform(0.5, 1.5 * float(extent.max()) + 0.5)  # centre beyond edge
    else:
        small = float(extent.min())
        depth = small / 2.0 - rng.uniform(max(1.5, 0.2 * small), max(1.6, 0.8 * small))  # part stays inside
    limit = width if axis == 0 else height
    q = -depth if edge in (0, 2) else limit + depth
    length = end - start
    dist = abs(q - centres[start, axis])
    # Peak speed of a smoothstep is 1.5x its mean: keep it near 0.8 box sizes per frame, under the FM threshold.
    go = int(np.clip(math.ceil(1.5 * dist / max(0.5, 0.8 * float(np.minimum(w, h).min()))), 2, 90))
    hold = int(rng.integers(1, 31))
    back = int(np.clip(go + rng.integers(-2, 3), 2, 90))
    if go + hold + back > length:  # squeeze into the window (faster, maybe FM), keeping a frame at the far point
        scale = (length - 1) / (go + hold + back)
        go, back = max(1, int(go * scale)), max(1, int(back * scale))
        hold = max(1, length - go - back)
    tau = np.arange(length, dtype=float)
    beta = np.where(tau < go, _smoothstep(tau / go),
                    np.where(tau < go + hold, 1.0, 1.0 - _smoothstep((tau - go - hold) / back)))
    beta[0] = 0.0
    seg = centres[start:end, axis]
    centres[start:end, axis] = seg + beta * (q - seg)


def _plan_occlusion(spec: SequenceSpec, rng: np.random.Generator, centres: np.ndarray, w: np.ndarray,
                    h: np.ndarray, cam: np.ndarray, start: int, end: int, full: bool, rects: np.ndarray) -> None:
    """An occluder (a bar) sweeping across the target within [start, end), written into rects (in place).

    The sweep is scripted relative to the target, so coverage is guaranteed: for FO the bar is wider and longer than
    the box and covers it completely for at least two frames; for PO the bar's end cuts through the box (30-70% of
    it), so it never hides the target fully.  Before and after the window the bar keeps moving in a straight line
    (in the world: it shifts with the camera).
    """
    n = spec.num_frames
    axis = int(rng.integers(0, 2))  # 0: vertical bar sweeping along x; 1: horizontal bar sweeping along y
    along = (w if axis == 0 else h)[start:end]
    across = (h if axis == 0 else w)[start:end]
    amax, cmax, cmin = float(along.max()), float(across.max()), float(across.min())
    gap = rng.uniform(1.0, 4.0)
    length = end - start
    sweep = int(max(3, min(length - 1, rng.integers(12, 61))))
    if full:
        # Frames fully covered = (bar - box - 2) / speed; make that at least ~2.5 whatever the sweep length.
        need = 2.5 * (2 * amax + 2 + 2 * gap) / max(1.0, sweep - 2.5)
        free = max(rng.uniform(3.0, 16.0), 1.2 * need)
        bar_along = amax + 2.0 + free
        bar_across = cmax + 2.0 + rng.uniform(10.0, 60.0)
        offset_across = rng.uniform(-0.5, 0.5) * (bar_across - cmax - 2.0)
    else:
        bar_along = amax + rng.uniform(2.0, 12.0)
        frac = rng.uniform(0.3, 0.7)
        reach = rng.uniform(10.0, 60.0)
        bar_across = reach + frac * cmin
        side = 1.0 if rng.random() < 0.5 else -1.0
        # The bar comes from one side: its inner end lies frac of the way into the (smallest) box.
        offset_across = side * (cmin / 2.0 + reach - bar_across / 2.0)
    travel = bar_along + amax + 2.0 * gap
    direction = 1.0 if rng.random() < 0.5 else -1.0
    rel = direction * (-travel / 2.0 + travel * np.arange(sweep + 1) / sweep)
    frames = np.arange(start, start + sweep + 1)
    centre_along = centres[frames, axis] + rel
    centre_across = centres[frames, 1 - axis] + offset_across
    # Before and after the sweep the bar keeps its sweeping speed in the world (it shifts with the camera), so it
    # does not pop in next to the target; those frames stop where the bar would touch the target (which moves on
    # its own), so all the covering happens in the scripted sweep.
    step = travel / sweep * direction

    def rect(along_c: float, across_c: float) -> np.ndarray:
        if axis == 0:
            return np.array([along_c - bar_along / 2, across_c - bar_across / 2,
                             along_c + bar_along / 2, across_c + bar_across / 2])
        return np.array([across_c - bar_across / 2, along_c - bar_along / 2,
                         across_c + bar_across / 2, along_c + bar_along / 2])

    def touches(r: np.ndarray, t: int) -> bool:
        x0, y0 = centres[t, 0] - w[t] / 2 - 1, centres[t, 1] - h[t] / 2 - 1
        x1, y1 = centres[t, 0] + w[t] / 2 + 1, centres[t, 1] + h[t] / 2 + 1
        return r[0] < x1 and r[2] > x0 and r[1] < y1 and r[3] > y0

    for i, t in enumerate(frames):
        rects[t] = rect(centre_along[i], centre_across[i])
    extra = int(rng.integers(5, 20))
    for sign, ref, along0, across0 in ((-1, start, centre_along[0], centre_across[0]),
                                       (1, start + sweep, centre_along[-1], centre_across[-1])):
        for k in range(1, extra + 1):
            t = ref + sign * k
            if t < 1 or t >= n:
                break
            r = rect(along0 + sign * k * step - (cam[t, axis] - cam[ref, axis]),
                     across0 - (cam[t, 1 - axis] - cam[ref, 1 - axis]))
            if touches(r, t):
                break
            rects[t] = r


def _occlusion(true_boxes: np.ndarray, rects: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(fraction of each box under the occluder, whether the box plus a 1 px margin is completely covered)."""
    x, y, w, h = true_boxes.T
    has = np.isfinite(rects[:, 0])
    r = np.where(has[:, None], rects, 0.0)
    ix = np.clip(np.minimum(x + w, r[:, 2]) - np.maximum(x, r[:, 0]), 0, None)
    iy = np.clip(np.minimum(y + h, r[:, 3]) - np.maximum(y, r[:, 1]), 0, None)
    frac = np.where(has, ix * iy / (w * h), 0.0)
    full = has & (r[:, 0] <= x - 1) & (r[:, 1] <= y - 1) & (r[:, 2] >= x + w + 1) & (r[:, 3] >= y + h + 1)
    return frac, full


def _annotate(true_boxes: np.ndarray, image_size: Size) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(annotation boxes as written, visible, clipped): clipped to the image, absent when under 1 px is inside."""
    width, height = image_size
    x, y, w, h = true_boxes.T
    x0, y0 = np.clip(x, 0, width), np.clip(y, 0, height)
    x1, y1 = np.clip(x + w, 0, width), np.clip(y + h, 0, height)
    visible = ((x1 - x0) >= 1.0) & ((y1 - y0) >= 1.0)
    clipped = visible & ((x < 0) | (y < 0) | (x + w > width) | (y + h > height))
    # Round the corners, then derive w, h, so that x + w never leaves the image after rounding.
    rx0, ry0, rx1, ry1 = (np.round(v, 2) for v in (x0, y0, x1, y1))
    boxes = np.stack([rx0, ry0, np.round(rx1 - rx0, 2), np.round(ry1 - ry0, 2)], 1)
    boxes[~visible] = 0.0
    return boxes + 0.0, visible, clipped  # + 0.0 turns -0.0 into 0.0 ("-0.00" in a file would be odd)


def measure_box_attributes(boxes: np.ndarray, image_size: Optional[Size] = None,
                           true_boxes: Optional[np.ndarray] = None, occluded: Optional[np.ndarray] = None,
                           occluded_full: Optional[np.ndarray] = None) -> Dict[str, bool]:
    """SV, FM, OV (and PO, FO when occlusion is given) measured on boxes with LaTOT's definitions.

    boxes are annotations (absent: w or h <= 0).  true_boxes, when given, are the unclipped boxes, used for SV and FM
    (clipping at the border would otherwise look like a scale change) and OV.
      SV: two frames at most 30 apart whose box areas differ by more than a factor of 2.
      FM: two consecutive visible frames whose centres move more than the largest side of either box.
      OV: a frame where the target is absent, or extends past the image (true_boxes) / touches its border
          (annotations only, which needs image_size).
      PO / FO: a visible frame partly (over 5% of the box) / fully covered by the occluder.
    """
    boxes = np.asarray(boxes, dtype=float)
    ref = boxes if true_boxes is None else np.asarray(true_boxes, dtype=float)
    visible = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    usable = visible if true_boxes is None else np.ones(len(ref), bool)
    area = ref[:, 2] * ref[:, 3]
    sv = False
    for d in range(1, min(_SV_WINDOW, len(ref) - 1) + 1):
        pair = usable[d:] & usable[:-d]
        ratio = area[d:][pair] / area[:-d][pair]
        if ratio.size and (ratio.max() > 2.0 or ratio.min() < 0.5):
            sv = True
            break
    out: Dict[str, bool] = {'SV': sv}
    both = visible[1:] & visible[:-1]
    centre = ref[:, :2] + ref[:, 2:] / 2.0
    disp = np.hypot(*(centre[1:] - centre[:-1]).T)
    size = np.maximum(ref[1:, 2:].max(1), ref[:-1, 2:].max(1))
    out['FM'] = bool(np.any(both & (disp > size)))
    ov = bool(np.any(~visible))
    if image_size is not None:
        width, height = image_size
        x, y, w, h = ref.T
        if true_boxes is not None:
            ov |= bool(np.any((x < 0) | (y < 0) | (x + w > width) | (y + h > height)))
        else:
            ov |= bool(np.any(visible & ((x <= 0.005) | (y <= 0.005) | (x + w >= width - 0.005)
                                         | (y + h >= height - 0.005))))
    out['OV'] = ov
    if occluded is not None:
        full = np.zeros(len(boxes), bool) if occluded_full is None else np.asarray(occluded_full, bool)
        occluded = np.asarray(occluded, float)
        out['PO'] = bool(np.any(visible & ~full & (occluded > 0.05)))
        out['FO'] = bool(np.any(visible & full))
    return out


def _target_colours(rng: np.random.Generator, scene_color: np.ndarray, clutter_like: bool, low_light: bool
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Body and core colour of the target: contrasting with the scene, or (BC) close to it."""
    lum = float(scene_color.mean())
    # In low light a target darker than the scene vanishes (the dark gamma squeezes the shadows): make it the
    # brighter one there (lit or reflective), as tiny targets that can be tracked at night are.
    sign = 1.0 if low_light or lum <= 128 else -1.0
    if clutter_like:
        contrast = rng.uniform(55.0, 75.0) if low_light else rng.uniform(40.0, 60.0)
    else:
        contrast = rng.uniform(75.0, 125.0)
    body = scene_color + sign * contrast + rng.normal(0.0, 18.0, 3)
    body = np.clip(body, 8, 247)
    core = np.clip(body + sign * rng.uniform(15.0, 40.0) + rng.normal(0.0, 10.0, 3), 0, 255)
    return body, core


def _plan_attempt(spec: SequenceSpec, seed: int, rngs: Mapping[str, np.random.Generator]) -> SequencePlan:
    n = spec.num_frames
    width, height = spec.image_size
    fx = spec.effects

    # The look (shape, aspect prior, scene, colours) comes from fixed children of the seed, not from the streams
    # that retries advance, so a sequence looks the same whichever attempt realises its effects.
    looks_rng = np.random.default_rng(_child(seed, len(_STREAMS), 0))
    looks = _name_looks(spec.name)
    shape = spec.shape or (looks[0] if looks else SHAPES[int(looks_rng.integers(len(SHAPES)))])
    log_aspect0 = looks[1] if looks else looks_rng.normal(0.0, 0.25)

    w, h = _plan_sizes(spec, rngs['size'], log_aspect0)
    cam, cam_jumps = _plan_camera(spec, rngs['camera'])

    ev = rngs['events']
    exclusive = []
    for code in ('OV', 'PO', 'FO'):
        if code in fx:
            exclusive += [code] * (1 + min(1, n // 400))
    windows = _allocate_windows(ev, n, exclusive)
    busy = np.zeros(n, bool)
    for code, a, b in windows:
        if code == 'OV':
            busy[max(0, a - 1):b + 1] = True
    free = np.flatnonzero(~busy[3:n - 1]) + 3  # FM bursts away from out-of-view windows (no blending over them)
    fm_times: List[int] = []
    am_times: List[int] = []
    if 'FM' in fx and free.size:
        fm_times = sorted(int(t) for t in ev.choice(free, size=min(free.size, 1 + min(2, n // 250)), replace=False))
    if 'AM' in fx and n > 4:
        am_times = sorted(int(t) for t in ev.choice(np.arange(3, n - 1), size=min(n - 4, 1 + min(2, n // 300)),
                                                    replace=False))

    mv = rngs['motion']
    centres = _plan_motion(spec, mv, w, h, cam, fm_times, am_times)
    for code, a, b in windows:
        if code == 'OV':
            _apply_out_of_view(spec, mv, centres, w, h, a, b)
    true_boxes = np.stack([centres[:, 0] - w / 2, centres[:, 1] - h / 2, w, h], 1)

    rects = np.full((n, 4), np.nan)
    for code, a, b in windows:
        if code in ('PO', 'FO'):
            _plan_occlusion(spec, rngs['occluder'], centres, w, h, cam, a, b, code == 'FO', rects)
    occluded, occluded_full = _occlusion(true_boxes, rects)
    boxes, visible, clipped = _annotate(true_boxes, spec.image_size)

    # Similar objects: same shape and colour, slightly different size, orbiting the target loosely.
    dr = rngs['distractors']
    k = int(dr.integers(1, 5)) if 'SO' in fx else 0
    distractors = np.zeros((k, n, 4))
    for i in range(k):
        factor = dr.uniform(0.8, 1.25)
        dw, dh = np.clip(w * factor, spec.target_size[0], spec.target_size[1]), \
            np.clip(h * factor, spec.target_size[0], spec.target_size[1])
        phi = dr.uniform(0, 2 * math.pi) + np.cumsum(dr.uniform(0.01, 0.05) * dr.choice([-1, 1])
                                                     + dr.normal(0, 0.03, n))
        radius_k = 2.5 + 2.0 * (1 + _smooth_noise(dr, n, 50.0))
        pos = centres[0] + (radius_k[0] * max(w[0], h[0]) + 4) * np.array([math.cos(phi[0]), math.sin(phi[0])])
        vel = np.zeros(2)
        mx, my = dw / 2 + 1, dh / 2 + 1
        for t in range(n):
            size = max(w[t], h[t])
            want = centres[t] + (radius_k[t] * size + 4) * np.array([math.cos(phi[t]), math.sin(phi[t])])
            if t:
                vel = 0.7 * vel + 0.12 * (want - pos)
                cap = 0.5 * size + 1.0
                speed = np.hypot(*vel)
                if speed > cap:
                    vel *= cap / speed
                pos = pos + vel - (cam[t] - cam[t - 1])
            # Never on top of the target (it would be an unannounced occlusion) and always inside the view.
            gap = pos - centres[t]
            dist = np.hypot(*gap)
            min_gap = 0.75 * (size + max(dw[t], dh[t])) + 2
            if dist < min_gap:
                pos = centres[t] + (gap / dist if dist > 1e-6 else np.array([1.0, 0.0])) * min_gap
            pos = np.array([np.clip(pos[0], mx[t], width - mx[t]), np.clip(pos[1], my[t], height - my[t])])
            distractors[i, t] = (pos[0] - dw[t] / 2, pos[1] - dh[t] / 2, dw[t], dh[t])

    # Motion blur: exposure along the displacement, plus whole-frame shake episodes and blur on camera jumps.
    bl = rngs['blur']
    target_blur = np.zeros((n, 2))
    frame_blur = np.zeros((n, 2))
    if 'MB' in fx:
        disp = np.diff(centres, axis=0, prepend=centres[:1])
        disp[0] = centres[1] - centres[0] if n > 1 else 0.0
        target_blur = bl.uniform(0.8, 1.4) * disp
        for _ in range(1 + min(2, n // 200)):
            length = int(bl.integers(4, 21))
            a = int(bl.integers(2, max(3, n - length)))
            angle = bl.uniform(0, math.pi)
            mag = bl.uniform(4.0, 11.0)
            for t in range(a, min(n, a + length)):
                ang = angle + bl.normal(0, 0.1)
                frame_blur[t] = mag * np.array([math.cos(ang), math.sin(ang)])
        for t in cam_jumps:
            jump = cam[t] - cam[t - 1]
            frame_blur[t] = jump * min(0.6, 14.0 / max(1e-6, float(np.hypot(*jump))))

    # Lighting: IV changes the level (and colour) over time; LI darkens everything and adds noise.
    gain = np.ones((n, 3))
    if 'IV' in fx:
        iv = rngs['iv']
        level = np.full(3, iv.uniform(0.85, 1.15))
        gain[:] = level
        changes = 1 + min(3, n // 150)
        times = sorted(int(t) for t in iv.choice(np.arange(2, n - 1), size=min(changes, n - 3), replace=False))
        t_axis = np.arange(n)
        for t0 in times:
            factor = iv.uniform(1.5, 2.2) ** iv.choice([-1, 1])
            new = np.clip(level.mean() * factor, 0.45, 1.6) * (1 + iv.normal(0, 0.06, 3))
            if abs(math.log(new.mean() / level.mean())) < math.log(1.4):  # clipped too much: go the other way
                new = np.clip(level.mean() / factor, 0.45, 1.6) * (1 + iv.normal(0, 0.06, 3))
            dur = int(iv.choice([1, iv.integers(2, 31)]))  # a light switch or a cloud
            ramp = _smoothstep((t_axis - t0 + 1) / dur)[:, None]
            gain += ramp * (new - level)
            level = new
    gamma, noise_sigma = 1.0, 0.0
    li = rngs['li']
    if 'LI' in fx:
        gain *= li.uniform(0.22, 0.4)
        gamma = li.uniform(1.1, 1.5)
        noise_sigma = li.uniform(3.5, 7.0)
    else:
        noise_sigma = li.uniform(1.0, 2.5)

    attributes = {a: a in fx for a in ATTRIBUTES}
    attributes.update(measure_box_attributes(boxes, spec.image_size, true_boxes, occluded, occluded_full))

    sc = np.random.default_rng(_child(seed, len(_STREAMS), 1))
    scene = sorted(_SCENES)[int(sc.integers(len(_SCENES)))]
    scene_color = np.clip(np.asarray(_SCENES[scene][0]) + sc.normal(0, 15, 3), 30, 225)
    clutter = _SCENES[scene][1] * sc.uniform(0.6, 1.4)
    ap = np.random.default_rng(_child(seed, len(_STREAMS), 2))
    body, core = _target_colours(ap, scene_color, 'BC' in fx, 'LI' in fx)
    distractor_colors = [_colour(body + ap.normal(0, 8, 3)) for _ in range(k)]
    occluder_color = scene_color * ap.uniform(0.25, 0.55) + ap.normal(0, 12, 3)
    render_seed = int(_child(seed, len(_STREAMS), 3).generate_state(1, np.uint32)[0])

    return SequencePlan(
        spec=spec, seed=seed, boxes=boxes, true_boxes=true_boxes, visible=visible, clipped=clipped, occluder=rects,
        occluded=occluded, occluded_full=occluded_full, camera=cam, distractors=distractors, target_blur=target_blur,
        frame_blur=frame_blur, gain=gain, gamma=float(gamma), noise_sigma=float(noise_sigma), shape=shape,
        target_color=_colour(body), core_color=_colour(core), distractor_colors=distractor_colors,
        occluder_color=_colour(occluder_color), scene=scene, scene_color=_colour(scene_color), clutter=float(clutter),
        render_seed=render_seed, attributes=attributes)


def _colour(values: np.ndarray) -> Tuple[float, float, float]:
    b, g, r = (float(v) for v in np.clip(values, 0, 255))
    return b, g, r


def plan_sequence(spec: SequenceSpec, seed: int) -> SequencePlan:
    """Plan a sequence (boxes, events, rendering parameters) from a spec and a seed; cheap, no images.

    Redraws the trajectory (from the same streams, so still deterministic) until every box-measurable effect the spec
    asks for is realised and frame 1 is clean.
    """
    seed = _check_seed(seed)
    rngs = {name: np.random.default_rng(_child(seed, i)) for i, name in enumerate(_STREAMS)}
    for _ in range(_MAX_ATTEMPTS):
        plan = _plan_attempt(spec, seed, rngs)
        missing = [a for a in BOX_ATTRIBUTES if a in spec.effects and not plan.attributes[a]]
        clean_start = plan.visible[0] and not plan.clipped[0] and plan.occluded[0] == 0.0
        if not missing and clean_start:
            return plan
    raise RuntimeError(f'could not realise effects {missing} for {spec.name} (seed {seed}); '
                       f'try a larger image or a longer sequence')


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    return int(seed)


def generate_boxes(spec: SequenceSpec, seed: int) -> Tuple[np.ndarray, Dict[str, bool]]:
    """(boxes [N, 4] float64 exactly as written, attributes {code: bool}) without rendering any image."""
    plan = plan_sequence(spec, seed)
    return plan.boxes.copy(), dict(plan.attributes)


# --------------------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------------------

def _shape_sdf(shape: str, dx: np.ndarray, dy: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance (pixels, negative inside) to a shape with half-extents a, b centred at 0."""
    if shape == 'ellipse':
        k = np.sqrt((dx / a) ** 2 + (dy / b) ** 2)
        g = np.sqrt((dx / (a * a)) ** 2 + (dy / (b * b)) ** 2)
        # (k - 1) / |grad k| with |grad k| = g / k; at the very centre use the smaller half-axis.
        ratio = np.where(g > 1e-9, k / np.maximum(g, 1e-9), min(a, b))
        return (k - 1.0) * ratio
    if shape == 'diamond':
        return (np.abs(dx) / a + np.abs(dy) / b - 1.0) / math.sqrt(1.0 / (a * a) + 1.0 / (b * b))
    if shape == 'box':
        return _box_sdf(dx, dy, a, b, 0.3 * min(a, b))
    if shape == 'cross':  # wings (full width, thin) + body (full height, thin): a plane/bird/drone silhouette
        wing = _box_sdf(dx, dy, a, max(0.5, 0.3 * b), 0.2 * min(a, b))
        body = _box_sdf(dx, dy, max(0.5, 0.3 * a), b, 0.2 * min(a, b))
        return np.minimum(wing, body)
    raise ValueError(f'unknown shape {shape!r}')


def _box_sdf(dx: np.ndarray, dy: np.ndarray, a: float, b: float, r: float) -> np.ndarray:
    r = min(r, a, b)
    qx, qy = np.abs(dx) - (a - r), np.abs(dy) - (b - r)
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0) - r


def _composite_shape(frame: np.ndarray, shape: str, box: np.ndarray, blur: np.ndarray,
                     body: Sequence[float], core: Sequence[float]) -> None:
    """Draw an anti-aliased (optionally motion-blurred) shape filling box (x, y, w, h) onto frame, in place."""
    height, width = frame.shape[:2]
    x, y, w, h = (float(v) for v in box)
    cx, cy, a, b = x + w / 2, y + h / 2, w / 2, h / 2
    bx, by = float(blur[0]), float(blur[1])
    x0 = max(0, int(math.floor(cx - a - abs(bx) / 2 - 2)))
    x1 = min(width, int(math.ceil(cx + a + abs(bx) / 2 + 2)))
    y0 = max(0, int(math.floor(cy - b - abs(by) / 2 - 2)))
    y1 = min(height, int(math.ceil(cy + b + abs(by) / 2 + 2)))
    if x1 <= x0 or y1 <= y0:
        return
    # Samples along the exposure path; one sample when sharp.  Pixel centres are at i + 0.5.
    samples = int(min(24, max(1, math.ceil(1.5 * math.hypot(bx, by)))))
    offsets = (np.arange(samples) / max(1, samples - 1) - 0.5) if samples > 1 else np.zeros(1)
    px = np.arange(x0, x1, dtype=np.float32) + 0.5 - cx
    py = np.arange(y0, y1, dtype=np.float32) + 0.5 - cy
    dx = px[None, None, :] - (offsets * bx)[:, None, None].astype(np.float32)
    dy = py[None, :, None] - (offsets * by)[:, None, None].astype(np.float32)
    sd = _shape_sdf(shape, dx, dy, a, b)
    alpha = np.clip(0.5 - sd, 0.0, 1.0)  # ~1 px anti-aliased edge: sub-pixel motion changes the edge pixels
    shade = alpha * np.clip(-sd / max(0.5, 0.5 * min(a, b)), 0.0, 1.0)  # core colour towards the inside
    alpha = alpha.mean(0)[..., None]
    shade = shade.mean(0)[..., None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    body_c = np.asarray(body, np.float32)
    core_c = np.asarray(core, np.float32)
    region = region * (1.0 - alpha) + alpha * body_c + shade * (core_c - body_c)
    frame[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)


def _interval_cover(lo: float, hi: float, start: int, stop: int) -> np.ndarray:
    """Coverage of pixels start..stop-1 by the interval [lo, hi] (exact area anti-aliasing of a rectangle)."""
    i = np.arange(start, stop, dtype=np.float32)
    return np.clip(np.minimum(i + 1, hi) - np.maximum(i, lo), 0.0, 1.0)


def _make_background(plan: SequencePlan, rng: np.random.Generator) -> np.ndarray:
    """A textured world larger than the view (the camera moves over it): smooth noise plus random clutter."""
    width, height = plan.spec.image_size
    tw, th = width + 2 * _CAMERA_PAD, height + 2 * _CAMERA_PAD
    mean = np.asarray(plan.scene_color, np.float32)

    def smooth(cells: int, channels: int) -> np.ndarray:
        # Coarse noise, upsampled, then blurred at the cell scale (plain upsampling leaves a visible grid).
        grid = rng.standard_normal((th // cells + 2, tw // cells + 2, channels)).astype(np.float32)
        out = cv2.resize(grid, (tw, th), interpolation=cv2.INTER_LINEAR)
        out = cv2.GaussianBlur(out, (0, 0), cells / 2.0).reshape(th, tw, channels)
        return out / max(1e-6, float(out.std()))  # blurring shrinks the amplitude; keep unit spread

    # Mostly brightness variation with a little colour variation: natural scenes are not rainbow-coloured.
    shade = 20.0 * smooth(48, 1) + 10.0 * smooth(10, 1) + 4.0 * rng.standard_normal((th, tw, 1)).astype(np.float32)
    tint = 6.0 * smooth(64, 3)
    grad = np.linspace(-1.0, 1.0, th, dtype=np.float32)[:, None, None] * rng.uniform(-25, 25)
    base = np.clip(mean + shade + tint + grad, 0, 255).astype(np.uint8)
    img = base.copy()
    area = tw * th / (640.0 * 360.0)
    # Clutter: lines (wires, branches), blobs, blocks, polygons in scene-like colours.
    shapes = int(rng.integers(80, 220) * plan.clutter * area)
    for _ in range(shapes):
        colour = tuple(float(c) for c in np.clip(mean + rng.normal(0, 40) + rng.normal(0, 12, 3), 0, 255))
        kind = rng.random()
        px, py = int(rng.integers(0, tw)), int(rng.integers(0, th))
        if kind < 0.4:
            ang = rng.uniform(0, math.pi)
            ln = rng.uniform(10, 120)
            q = (int(px + ln * math.cos(ang)), int(py + ln * math.sin(ang)))
            cv2.line(img, (px, py), q, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
        elif kind < 0.75:
            axes = (int(rng.integers(2, 26)), int(rng.integers(2, 26)))
            cv2.ellipse(img, (px, py), axes, rng.uniform(0, 180), 0, 360, colour, -1, cv2.LINE_AA)
        elif kind < 0.88:
            cv2.rectangle(img, (px, py), (px + int(rng.integers(4, 40)), py + int(rng.integers(4, 40))), colour, -1)
        else:
            pts = np.stack([px + rng.normal(0, 14, 5), py + rng.normal(0, 14, 5)], 1).astype(np.int32)
            cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
    # Half-transparent clutter keeps the texture showing through, like foliage, shadows and structures.
    img = cv2.addWeighted(img, 0.7, base, 0.3, 0.0)
    if 'BC' in plan.spec.effects:
        # Target-like blobs everywhere (near the target included): same colours, same sizes, same shape family.
        tmin, tmax = plan.spec.target_size
        body = np.asarray(plan.target_color)
        for _ in range(int(rng.integers(250, 450) * area)):
            colour = tuple(float(c) for c in np.clip(body + rng.normal(0, 14, 3), 0, 255))
            ax = rng.uniform(0.3, 0.7) * rng.uniform(tmin, tmax)
            ay = ax * rng.uniform(0.5, 1.5)
            centre = (int(rng.uniform(0, tw) * 16), int(rng.uniform(0, th) * 16))  # shift=4: sub-pixel
            cv2.ellipse(img, centre, (max(1, int(ax * 16)), max(1, int(ay * 16))), rng.uniform(0, 180), 0, 360,
                        colour, -1, cv2.LINE_AA, 4)
    return cv2.GaussianBlur(img, (0, 0), 0.8)


def _line_kernel(vec: np.ndarray) -> np.ndarray:
    length = float(np.hypot(*vec))
    size = int(2 * math.ceil(length / 2) + 1)
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = vec / 2.0
    cv2.line(kernel, (int(round((c - dx) * 16)), int(round((c - dy) * 16))),
             (int(round((c + dx) * 16)), int(round((c + dy) * 16))), 1.0, 1, cv2.LINE_AA, 4)
    total = kernel.sum()
    if total <= 0:
        kernel[c, c] = 1.0
        total = 1.0
    return kernel / total


def render_frames(plan: SequencePlan) -> Iterator[np.ndarray]:
    """Lazily render the planned frames as HxWx3 uint8 BGR images (deterministic for a plan)."""
    spec = plan.spec
    width, height = spec.image_size
    rng = np.random.default_rng(plan.render_seed)
    texture = _make_background(plan, rng)
    # Sensor noise: one precomputed field, cropped at a random offset per frame (fresh noise costs ~10 ms a frame).
    noise = rng.standard_normal((height + _NOISE_PAD, width + _NOISE_PAD, 3)).astype(np.float32) * plan.noise_sigma
    noise_up = np.clip(noise, 0, 255).astype(np.uint8)
    noise_down = np.clip(-noise, 0, 255).astype(np.uint8)
    noise_offsets = rng.integers(0, _NOISE_PAD + 1, (spec.num_frames, 2))
    # Occluder texture: a streaky bar (bark/pole/branch-like), large enough for the biggest occluder.
    occ_w = occ_h = 1
    has_occ = np.isfinite(plan.occluder[:, 0])
    if has_occ.any():
        occ_w = int(math.ceil(np.nanmax(plan.occluder[:, 2] - plan.occluder[:, 0]))) + 4
        occ_h = int(math.ceil(np.nanmax(plan.occluder[:, 3] - plan.occluder[:, 1]))) + 4
    streaks = cv2.resize(rng.standard_normal((max(2, occ_h // 6), max(2, occ_w // 6))).astype(np.float32),
                         (occ_w, occ_h), interpolation=cv2.INTER_LINEAR)
    occ_tex = np.asarray(plan.occluder_color, np.float32) * (1.0 + 0.18 * streaks[..., None])
    x_axis = np.arange(256, dtype=np.float64) / 255.0
    still_camera = not np.any(plan.camera)
    plain_light = plan.gamma == 1.0 and np.all(plan.gain == 1.0)

    for t in range(spec.num_frames):
        ox, oy = _CAMERA_PAD + plan.camera[t]
        if still_camera:
            frame = texture[_CAMERA_PAD:_CAMERA_PAD + height, _CAMERA_PAD:_CAMERA_PAD + width].copy()
        else:
            shift = np.array([[1.0, 0.0, -ox], [0.0, 1.0, -oy]], np.float64)
            frame = cv2.warpAffine(texture, shift, (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
        for i, colour in enumerate(plan.distractor_colors):
            _composite_shape(frame, plan.shape, plan.distractors[i, t], plan.target_blur[t], colour,
                             plan.core_color)
        # Under full occlusion no blur streak may stick out past the occluder: the target is drawn sharp there.
        blur = plan.target_blur[t] if not plan.occluded_full[t] else np.zeros(2)
        _composite_shape(frame, plan.shape, plan.true_boxes[t], blur, plan.target_color, plan.core_color)
        if has_occ[t]:
            rx0, ry0, rx1, ry1 = plan.occluder[t]
            x0, x1 = max(0, int(math.floor(rx0))), min(width, int(math.ceil(rx1)))
            y0, y1 = max(0, int(math.floor(ry0))), min(height, int(math.ceil(ry1)))
            if x1 > x0 and y1 > y0:
                cover = (_interval_cover(ry0, ry1, y0, y1)[:, None] * _interval_cover(rx0, rx1, x0, x1)[None, :])
                cover = cover[..., None]
                tx0, ty0 = x0 - int(math.floor(rx0)), y0 - int(math.floor(ry0))
                tex = occ_tex[ty0:ty0 + (y1 - y0), tx0:tx0 + (x1 - x0)]
                region = frame[y0:y1, x0:x1].astype(np.float32)
                frame[y0:y1, x0:x1] = np.clip(region * (1 - cover) + tex * cover + 0.5, 0, 255).astype(np.uint8)
        if np.any(plan.frame_blur[t]):
            frame = cv2.filter2D(frame, -1, _line_kernel(plan.frame_blur[t]), borderType=cv2.BORDER_REFLECT)
        if not plain_light:
            lut = np.clip(255.0 * (x_axis[:, None] ** plan.gamma) * plan.gain[t][None, :] + 0.5, 0, 255)
            frame = cv2.LUT(frame, lut.astype(np.uint8).reshape(1, 256, 3))
        if plan.noise_sigma > 0:
            nx, ny = noise_offsets[t]
            frame = cv2.add(frame, noise_up[ny:ny + height, nx:nx + width])
            frame = cv2.subtract(frame, noise_down[ny:ny + height, nx:nx + width])
        yield frame


def generate_sequence(spec: SequenceSpec, seed: int) -> Tuple[Iterator[np.ndarray], np.ndarray, Dict[str, bool]]:
    """(frames, boxes [N, 4], attributes): frames is a lazy iterator of HxWx3 uint8 BGR images (list() it to keep).

    The boxes and attributes are those of ``generate_boxes(spec, seed)``; images are rendered on demand.
    """
    plan = plan_sequence(spec, seed)
    return render_frames(plan), plan.boxes.copy(), dict(plan.attributes)


# --------------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------------

def format_boxes(boxes: np.ndarray) -> str:
    """Annotation file text: one ``x,y,w,h`` line per frame, two decimals each, trailing newline."""
    return ''.join(f'{x:.2f},{y:.2f},{w:.2f},{h:.2f}\n' for x, y, w, h in np.asarray(boxes, float))


def format_attributes(attributes: Mapping[str, bool]) -> str:
    """attributes.txt text: the 12 flags as 0/1 in ATTRIBUTES order, comma separated, trailing newline."""
    return ','.join('1' if attributes.get(a, False) else '0' for a in ATTRIBUTES) + '\n'


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, then rename: readers never see a half-written file."""
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def _clear_sequence(seq_dir: Path, name: str) -> None:
    """Remove what a previous run wrote into a sequence folder (frames, annotations, stale temporaries) -- only
    that, so an --overwrite pointed at the wrong place cannot wipe unrelated files."""
    img_dir = seq_dir / 'img'
    if img_dir.is_dir():
        for f in img_dir.iterdir():
            if re.fullmatch(r'\d+\.jpg|\..*\.tmp\d+', f.name) and f.is_file():
                f.unlink()
        try:
            img_dir.rmdir()
        except OSError:
            pass  # something else is in there; leave it
    for f in list(seq_dir.iterdir()):
        if f.name in (f'{name}.txt', 'attributes.txt') or re.fullmatch(r'\..*\.tmp\d+', f.name):
            if f.is_file():
                f.unlink()


@dataclass(frozen=True)
class SequenceInfo:
    """What write_sequence wrote."""

    name: str
    path: Path
    num_frames: int
    image_size: Size
    seed: int
    images: bool
    attributes: Dict[str, bool]


def write_sequence(root: Union[str, os.PathLike], spec: SequenceSpec, seed: int, images: bool = True,
                   overwrite: bool = False, jpeg_quality: int = DEFAULT_JPEG_QUALITY) -> SequenceInfo:
    """Write one sequence under root/spec.name (frames first, annotations last; every file atomically).

    Refuses an existing sequence folder unless overwrite=True, which removes the previous frames and annotation
    files first (so a shorter or image-less rewrite leaves no stale frames).
    """
    if not 0 <= int(jpeg_quality) <= 100:
        raise ValueError(f'jpeg_quality must be in 0..100, got {jpeg_quality}')
    seq_dir = Path(root) / spec.name
    if seq_dir.exists():
        if not overwrite:
            raise FileExistsError(f'sequence folder {seq_dir} already exists; use overwrite=True (--overwrite) to '
                                  f'replace it')
        if not seq_dir.is_dir():
            raise FileExistsError(f'{seq_dir} exists and is not a folder')
        _clear_sequence(seq_dir, spec.name)
    plan = plan_sequence(spec, seed)
    seq_dir.mkdir(parents=True, exist_ok=True)
    if images:
        img_dir = seq_dir / 'img'
        img_dir.mkdir(exist_ok=True)
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        for i, frame in enumerate(render_frames(plan), start=1):
            ok, buf = cv2.imencode('.jpg', frame, params)
            if not ok:
                raise RuntimeError(f'JPEG encoding failed for {spec.name} frame {i}')
            _atomic_write(img_dir / f'{i:06d}.jpg', buf.tobytes())
    _atomic_write(seq_dir / 'attributes.txt', format_attributes(plan.attributes).encode())
    _atomic_write(seq_dir / f'{spec.name}.txt', format_boxes(plan.boxes).encode())
    return SequenceInfo(name=spec.name, path=seq_dir, num_frames=spec.num_frames, image_size=spec.image_size,
                        seed=seed, images=images, attributes=dict(plan.attributes))


def read_names(path: Union[str, os.PathLike]) -> List[str]:
    """Sequence names from a split list (one per line, ``.txt`` stripped, blank lines and # comments skipped)."""
    return latot_data.read_name_list(os.fspath(path))


def _frames_range(num_frames: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    if isinstance(num_frames, (int, np.integer)) and not isinstance(num_frames, bool):
        lo = hi = int(num_frames)
    else:
        try:
            lo, hi = (int(v) for v in num_frames)
        except (TypeError, ValueError):
            raise ValueError(f'num_frames must be an integer or a (min, max) pair, got {num_frames!r}') from None
    if not 1 <= lo <= hi <= MAX_FRAMES:
        raise ValueError(f'num_frames must satisfy 1 <= min <= max <= {MAX_FRAMES}, got {num_frames!r}')
    return lo, hi


def _dataset_item(seed: int, k: int, name: Optional[str], frames: Tuple[int, int], image_size: Size,
                  target_size: FloatRange) -> Tuple[SequenceSpec, int, str]:
    """Spec and generation seed of sequence k: from seed's k-th child only, so independent of the dataset size.

    Returns the category drawn for generated names too (the caller numbers them).
    """
    rng = np.random.default_rng(_child(seed, k, 0))
    category = _CATEGORIES[int(rng.integers(len(_CATEGORIES)))]
    num_frames = int(rng.integers(frames[0], frames[1] + 1))
    state = _child(seed, k, 1).generate_state(2, np.uint32)
    gen_seed = int(state[0]) << 32 | int(state[1])
    spec = random_spec(rng, name if name is not None else category, num_frames, image_size, target_size)
    return spec, gen_seed, category


def _write_job(job: Tuple[str, SequenceSpec, int, bool, bool, int]) -> SequenceInfo:
    root, spec, seed, images, overwrite, quality = job
    return write_sequence(root, spec, seed, images=images, overwrite=overwrite, jpeg_quality=quality)


def write_dataset(root: Union[str, os.PathLike], names: Optional[Iterable[str]] = None, num_sequences: int = 5,
                  num_frames: Union[int, Tuple[int, int]] = (100, 300), image_size: Size = DEFAULT_IMAGE_SIZE,
                  seed: int = 0, images: bool = True, overwrite: bool = False,
                  target_size: FloatRange = DEFAULT_TARGET_SIZE, jpeg_quality: int = DEFAULT_JPEG_QUALITY,
                  jobs: int = 1, progress: Optional[Callable[[SequenceInfo], None]] = None) -> List[str]:
    """Write a dataset of random sequences; returns the sequence names in order.

    names: sequence names to use (e.g. ``read_names('settings/latot/test.txt')``); otherwise num_sequences
        sequences named category + number (``bird1``, ``bird2``, ``car1``...).
    num_frames: frames per sequence, or a (min, max) range drawn per sequence.
    seed: sequence k depends only on (seed, k), not on how many sequences are written.
    jobs: worker processes (sequences are independent, so the output is the same for any jobs).
    progress: called with each SequenceInfo, in order, as sequences are finished.
    Existing sequence folders are refused up front (nothing is written) unless overwrite=True.
    """
    seed = _check_seed(seed)
    frames = _frames_range(num_frames)
    if names is not None:
        names = [_check_name(n) for n in names]
        if not names:
            raise ValueError('names is empty')
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f'duplicate sequence names: {dupes}')
        count = len(names)
    else:
        if isinstance(num_sequences, bool) or not isinstance(num_sequences, (int, np.integer)) or num_sequences < 1:
            raise ValueError(f'num_sequences must be a positive integer, got {num_sequences!r}')
        count = int(num_sequences)
    image_size = (int(image_size[0]), int(image_size[1]))
    jobs_list = []
    numbers: Dict[str, int] = {}
    for k in range(count):
        spec, gen_seed, category = _dataset_item(seed, k, None if names is None else names[k], frames, image_size,
                                                 target_size)
        if names is None:
            numbers[category] = numbers.get(category, 0) + 1
            spec = SequenceSpec(name=f'{category}{numbers[category]}', num_frames=spec.num_frames,
                                image_size=spec.image_size, target_size=spec.target_size, effects=spec.effects)
        jobs_list.append((str(root), spec, gen_seed, images, overwrite, jpeg_quality))
    if not overwrite:
        existing = [str(Path(root) / j[1].name) for j in jobs_list if (Path(root) / j[1].name).exists()]
        if existing:
            shown = ', '.join(existing[:5]) + (f' and {len(existing) - 5} more' if len(existing) > 5 else '')
            raise FileExistsError(f'sequence folder(s) already exist: {shown}; use overwrite=True (--overwrite)')
    Path(root).mkdir(parents=True, exist_ok=True)
    if jobs > 1 and count > 1:
        # spawn, not fork: forking a process that already ran OpenCV's thread pool can deadlock.
        with ProcessPoolExecutor(max_workers=min(jobs, count), mp_context=get_context('spawn')) as pool:
            for info in pool.map(_write_job, jobs_list):
                if progress:
                    progress(info)
    else:
        for job in jobs_list:
            info = _write_job(job)
            if progress:
                progress(info)
    return [j[1].name for j in jobs_list]


# --------------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------------

def _parse_size(text: str) -> Size:
    m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', text)
    if not m:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT such as 640x360, got {text!r}')
    w, h = int(m.group(1)), int(m.group(2))
    if w < 32 or h < 32 or w > 16384 or h > 16384:
        raise argparse.ArgumentTypeError(f'width and height must be in 32..16384, got {text!r}')
    return w, h


def _parse_frames(text: str) -> Tuple[int, int]:
    m = re.fullmatch(r'\s*(\d+)\s*(?::\s*(\d+)\s*)?', text)
    if not m:
        raise argparse.ArgumentTypeError(f'expected N or MIN:MAX (e.g. 150 or 100:300), got {text!r}')
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if not 1 <= lo <= hi <= MAX_FRAMES:
        raise argparse.ArgumentTypeError(f'need 1 <= MIN <= MAX <= {MAX_FRAMES}, got {text!r}')
    return lo, hi


def _parse_target_size(text: str) -> FloatRange:
    m = re.fullmatch(r'\s*(\d+(?:\.\d*)?)\s*:\s*(\d+(?:\.\d*)?)\s*', text)
    if not m or not 1 <= float(m.group(1)) <= float(m.group(2)):
        raise argparse.ArgumentTypeError(f'expected MIN:MAX pixels with 1 <= MIN <= MAX (e.g. 4:20), got {text!r}')
    return float(m.group(1)), float(m.group(2))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return value


def _seed_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f'expected a non-negative integer, got {text!r}')
    return value


def _quality_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f'expected an integer in 0..100, got {text!r}')
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m pytracking_plugins.synthetic',
        description='Write synthetic tiny-object tracking sequences in the LaTOT layout: '
                    '<root>/<seq>/img/000001.jpg..., <root>/<seq>/<seq>.txt (x,y,w,h per frame, 2 decimals; '
                    '0.00,0.00,0.00,0.00 when out of view) and <root>/<seq>/attributes.txt '
                    f'({",".join(ATTRIBUTES)} as 0/1). Same seed and arguments, same bytes.',
        epilog='examples:\n'
               '  python -m pytracking_plugins.synthetic --root /tmp/latot_synth --sequences 4 --frames 60:120\n'
               '  python -m pytracking_plugins.synthetic --root /tmp/latot_synth '
               '--names-from settings/latot/test.txt --no-images',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root', required=True, type=Path, help='dataset folder to write into (created if needed)')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--sequences', type=_positive_int, default=5, metavar='N',
                       help='number of sequences, named category+number like bird1, car2 (default 5)')
    which.add_argument('--names-from', type=Path, metavar='FILE',
                       help='write one sequence per name listed in FILE (a LaTOT split list: "kite6.txt" lines)')
    parser.add_argument('--frames', type=_parse_frames, default=(100, 300), metavar='N|MIN:MAX',
                        help='frames per sequence, or a range drawn per sequence (default 100:300)')
    parser.add_argument('--size', type=_parse_size, default=DEFAULT_IMAGE_SIZE, metavar='WxH',
                        help='image size (default 640x360)')
    parser.add_argument('--target-size', type=_parse_target_size, default=DEFAULT_TARGET_SIZE, metavar='MIN:MAX',
                        help='target width/height range in pixels (default 4:20)')
    parser.add_argument('--seed', type=_seed_arg, default=0, help='random seed (default 0)')
    parser.add_argument('--no-images', action='store_true', help='write only the annotation files (fast)')
    parser.add_argument('--overwrite', action='store_true', help='replace existing sequence folders')
    parser.add_argument('--quality', type=_quality_arg, default=DEFAULT_JPEG_QUALITY,
                        help=f'JPEG quality (default {DEFAULT_JPEG_QUALITY})')
    parser.add_argument('--jobs', type=_positive_int, default=1, help='worker processes (default 1)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    names = None
    if args.names_from is not None:
        try:
            names = read_names(args.names_from)
        except OSError as e:
            parser.error(f'argument --names-from: cannot read {args.names_from}: {e.strerror or e}')
        if not names:
            parser.error(f'argument --names-from: no sequence names in {args.names_from}')
    need = max(32, int(math.ceil(4 * args.target_size[1])))
    if min(args.size) < need:
        parser.error(f'argument --size: {args.size[0]}x{args.size[1]} is too small for targets up to '
                     f'{args.target_size[1]:g} px (--target-size): width and height must be at least {need}')
    if args.frames[0] < MIN_FRAMES_FOR_EFFECTS:
        print(f'note: sequences shorter than {MIN_FRAMES_FOR_EFFECTS} frames get no effects', file=sys.stderr)
    total = [0]
    started = time.perf_counter()

    def report(info: SequenceInfo) -> None:
        total[0] += info.num_frames
        flags = ','.join(a for a in ATTRIBUTES if info.attributes[a]) or '-'
        what = 'frames+annotations' if info.images else 'annotations only'
        print(f'{info.name}: {info.num_frames} frames {info.image_size[0]}x{info.image_size[1]} '
              f'[{flags}] seed={info.seed} ({what}) -> {info.path}', flush=True)

    try:
        written = write_dataset(args.root, names=names, num_sequences=args.sequences, num_frames=args.frames,
                                image_size=args.size, seed=args.seed, images=not args.no_images,
                                overwrite=args.overwrite, target_size=args.target_size, jpeg_quality=args.quality,
                                jobs=args.jobs, progress=report)
    except FileExistsError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except ValueError as e:  # only names can still be wrong here: the other options were checked above
        parser.error(f'argument --names-from: {e}' if names is not None else str(e))
    elapsed = time.perf_counter() - started
    rate = f', {total[0] / elapsed:.0f} frames/s' if not args.no_images and elapsed > 0 else ''
    plural = '' if len(written) == 1 else 's'
    print(f'wrote {len(written)} sequence{plural} ({total[0]} frames) to {args.root} in {elapsed:.1f} s{rate}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
