"""What a synthetic sequence contains: the spec, its validation, random specs, and the looks a name implies."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union

import numpy as np

from ltr_plugins import latot_data
from ltr_plugins.latot_attributes import ATTRIBUTES   # Table II order: the columns of attributes.txt

Size = Tuple[int, int]
FloatRange = Tuple[float, float]

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
MAX_FRAMES = 999_999  # 6-digit frame names

#: The image must be this many times the largest target size (and at least MIN_IMAGE_SIDE) in both directions.
IMAGE_SIDE_IN_TARGET_SIZES = 4
MIN_IMAGE_SIDE = 32

#: Sizes stay this far (px) inside the target size range, so that rounding to two decimals stays inside it.
SIZE_EPSILON = 0.02
#: Log-size wobble without SV (area ratio at most exp(4 * wobble)) and log-aspect wobble.
SCALE_WOBBLE = 0.08
ASPECT_WOBBLE = 0.05

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


def category_of(name: str) -> str:
    """LaTOT category of a sequence name (``bird12`` -> ``bird``, ``car33-2`` -> ``car``)."""
    return latot_data.sequence_category(name)


def name_looks(name: str) -> Optional[Tuple[str, float]]:
    """(shape, log aspect) for a name from its longest matching category keyword, or None."""
    lowered = name.lower()
    best = None
    for keyword, looks in _CATEGORY_LOOKS.items():
        if keyword in lowered and (best is None or len(keyword) > len(best[0])):
            best = (keyword, looks)
    return None if best is None else best[1]


def check_name(name: str) -> str:
    """The name, or a ValueError: it becomes a folder name."""
    if not isinstance(name, str) or not name or name in ('.', '..') or '/' in name or '\\' in name \
            or '\0' in name or name != name.strip():
        raise ValueError(f'invalid sequence name {name!r}: it becomes a folder name, so it must be non-empty, '
                         f'without path separators or surrounding spaces')
    return name


def check_seed(seed: int) -> int:
    """The seed as an int, or a ValueError (seeds are non-negative integers)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    return int(seed)


def frames_range(num_frames: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    """(min, max) frames from a count or a (min, max) pair, checked."""
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


def min_image_side(max_target_size: float) -> int:
    """The smallest image width and height for targets up to ``max_target_size`` px."""
    return max(MIN_IMAGE_SIDE, int(math.ceil(IMAGE_SIDE_IN_TARGET_SIZES * max_target_size)))


def log_size_room(target_size: FloatRange) -> float:
    """Usable log range of sizes (after keeping SIZE_EPSILON away from both ends)."""
    lo, hi = target_size[0] + SIZE_EPSILON, target_size[1] - SIZE_EPSILON
    return math.log(hi / lo) if hi > lo else 0.0


def sv_feasible(target_size: FloatRange) -> bool:
    """Whether the size range has room for SV: a x2 size step plus the wobble and a little aspect room."""
    return log_size_room(target_size) >= math.log(2.0) + 2 * SCALE_WOBBLE + ASPECT_WOBBLE


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
        check_name(self.name)
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
        need = min_image_side(tmax)
        if w < need or h < need:
            raise ValueError(f'image_size {w}x{h} is too small for targets up to {tmax:g} px: '
                             f'width and height must be at least {need}')
        if self.shape is not None and self.shape not in SHAPES:
            raise ValueError(f'shape must be one of {SHAPES} or None, got {self.shape!r}')
        if effects and self.num_frames < MIN_FRAMES_FOR_EFFECTS:
            raise ValueError(f'effects {sorted(effects)} need at least {MIN_FRAMES_FOR_EFFECTS} frames, '
                             f'{self.name} has {self.num_frames}')
        if 'SV' in effects and not sv_feasible(self.target_size):
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
    if not sv_feasible((float(target_size[0]), float(target_size[1]))):
        effects.discard('SV')
    return SequenceSpec(name=name, num_frames=num_frames, image_size=tuple(image_size),
                        target_size=tuple(target_size), effects=frozenset(effects))
