"""The plan of a sequence: every box, event and rendering parameter, without images.

``plan_sequence`` puts the parts together: event windows, sizes, camera and path (:mod:`.motion`), occluders,
blur, lighting and looks (here), the annotation as written, and the measured attributes (:mod:`.measure`).
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Tuple

import numpy as np

from ltr_plugins.latot_attributes import ATTRIBUTES
from ltr_plugins.synthetic import motion, streams
from ltr_plugins.synthetic.measure import BOX_ATTRIBUTES, measure_box_attributes, occlusion
from ltr_plugins.synthetic.spec import SHAPES, SequenceSpec, Size, check_seed, name_looks

#: A plan is re-drawn (from the same streams, so still deterministic) until its effects are realised.
MAX_ATTEMPTS = 40

#: Frames before this index stay free of events (frame 1 must be clean, and events need a frame before them).
FIRST_EVENT_FRAME = 2
#: Windows of out-of-view / occlusion events: one per effect, two from this many frames on.
FRAMES_FOR_SECOND_WINDOW = 400
#: A window longer than this uses only part of its slot, at a random place.
MIN_SPREAD_WINDOW = 12
FM_FRAMES_PER_EXTRA_BURST = 250
AM_FRAMES_PER_EXTRA_TURN = 300
MAX_EXTRA_BURSTS = 2

# Occluder (PO / FO): a bar sweeping across the target over OCCLUDER_SWEEP_FRAMES frames.
OCCLUDER_GAP_PX = (1.0, 4.0)
OCCLUDER_SWEEP_FRAMES = (12, 60)
OCCLUDER_FULL_COVER_FRAMES = 2.5
OCCLUDER_FREE_PX = (3.0, 16.0)
OCCLUDER_REACH_PX = (10.0, 60.0)
OCCLUDER_PARTIAL_EXTRA_PX = (2.0, 12.0)
OCCLUDER_PARTIAL_COVER = (0.3, 0.7)
OCCLUDER_EXTRA_FRAMES = (5, 19)   # frames before and after the sweep where the bar keeps moving

# Motion blur (MB): exposure along the motion, whole-frame shake episodes, and blur on camera jumps.
MB_EXPOSURE = (0.8, 1.4)
MB_SHAKE_FRAMES = (4, 20)
MB_SHAKE_PX = (4.0, 11.0)
MB_SHAKE_ANGLE_JITTER = 0.1
MB_FRAMES_PER_EXTRA_SHAKE = 200
MB_JUMP_SHARE = 0.6
MB_JUMP_MAX_PX = 14.0

# Illumination: IV changes the level (x1.5 .. x2.2, at least x1.4 after clipping) and a little the colour.
IV_START_LEVEL = (0.85, 1.15)
IV_FACTOR = (1.5, 2.2)
IV_LEVEL_RANGE = (0.45, 1.6)
IV_MIN_FACTOR = 1.4
IV_COLOUR_JITTER = 0.06
IV_RAMP_FRAMES = (2, 30)          # a cloud; a light switch takes one frame
IV_FRAMES_PER_EXTRA_CHANGE = 150
IV_MAX_EXTRA_CHANGES = 3
LI_GAIN = (0.22, 0.4)
LI_GAMMA = (1.1, 1.5)
LI_NOISE_SIGMA = (3.5, 7.0)
NOISE_SIGMA = (1.0, 2.5)          # sensor noise without LI

# Scene palettes (BGR mean colour, clutter density) for the textured backgrounds.
SCENES: Dict[str, Tuple[Tuple[float, float, float], float]] = {
    'sky': ((215.0, 185.0, 150.0), 0.35),
    'grass': ((70.0, 135.0, 95.0), 1.0),
    'urban': ((120.0, 122.0, 128.0), 1.0),
    'water': ((140.0, 115.0, 70.0), 0.6),
    'sand': ((120.0, 165.0, 195.0), 0.8),
    'dusk': ((95.0, 105.0, 140.0), 0.7),
}
SCENE_COLOUR_SPREAD = 15
SCENE_COLOUR_RANGE = (30, 225)
CLUTTER_FACTOR = (0.6, 1.4)
ASPECT_SPREAD_WITHOUT_CATEGORY = 0.25

# Target colours: contrast with the scene (BC: close to it), and a core colour towards the inside.
TARGET_CONTRAST = (75.0, 125.0)
BC_CONTRAST = (40.0, 60.0)
BC_LOW_LIGHT_CONTRAST = (55.0, 75.0)
TARGET_COLOUR_SPREAD = 18.0
CORE_CONTRAST = (15.0, 40.0)
CORE_COLOUR_SPREAD = 10.0
DISTRACTOR_COLOUR_SPREAD = 8
OCCLUDER_DARKNESS = (0.25, 0.55)
OCCLUDER_COLOUR_SPREAD = 12


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


def _allocate_windows(rng: np.random.Generator, n: int, events: List[str]) -> List[Tuple[str, int, int]]:
    """Non-overlapping [start, end) frame windows for the exclusive events, after frame 2 (frame 1 stays clean)."""
    if not events:
        return []
    order = list(rng.permutation(len(events)))
    first, last = FIRST_EVENT_FRAME, n - 1
    slot = (last - first) / len(events)
    windows = []
    for k, idx in enumerate(order):
        a = first + int(math.floor(k * slot))
        b = first + int(math.floor((k + 1) * slot))
        # Long slots: use part of it, at a random place, so events are not evenly spread.
        length = b - a
        want = length if length <= MIN_SPREAD_WINDOW else int(rng.integers(max(MIN_SPREAD_WINDOW, length // 2),
                                                                            length + 1))
        start = a + int(rng.integers(0, length - want + 1))
        windows.append((events[idx], start, start + want))
    return sorted(windows, key=lambda w: w[1])


def _plan_events(spec: SequenceSpec, rng: np.random.Generator) -> Tuple[List[Tuple[str, int, int]], List[int],
                                                                        List[int]]:
    """(OV / PO / FO windows, FM burst frames, AM turn frames)."""
    n = spec.num_frames
    exclusive = []
    for code in ('OV', 'PO', 'FO'):
        if code in spec.effects:
            exclusive += [code] * (1 + min(1, n // FRAMES_FOR_SECOND_WINDOW))
    windows = _allocate_windows(rng, n, exclusive)
    busy = np.zeros(n, bool)
    for code, a, b in windows:
        if code == 'OV':
            busy[max(0, a - 1):b + 1] = True
    free = np.flatnonzero(~busy[3:n - 1]) + 3  # FM bursts away from out-of-view windows (no blending over them)
    fm_times: List[int] = []
    am_times: List[int] = []
    if 'FM' in spec.effects and free.size:
        count = 1 + min(MAX_EXTRA_BURSTS, n // FM_FRAMES_PER_EXTRA_BURST)
        fm_times = sorted(int(t) for t in rng.choice(free, size=min(free.size, count), replace=False))
    if 'AM' in spec.effects and n > 4:
        count = 1 + min(MAX_EXTRA_BURSTS, n // AM_FRAMES_PER_EXTRA_TURN)
        am_times = sorted(int(t) for t in rng.choice(np.arange(3, n - 1), size=min(n - 4, count), replace=False))
    return windows, fm_times, am_times


def _plan_occlusion(spec: SequenceSpec, rng: np.random.Generator, centres: np.ndarray, w: np.ndarray,
                    h: np.ndarray, camera: np.ndarray, start: int, end: int, full: bool, rects: np.ndarray) -> None:
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
    along_max, across_max, across_min = float(along.max()), float(across.max()), float(across.min())
    gap = rng.uniform(*OCCLUDER_GAP_PX)
    length = end - start
    sweep = int(max(3, min(length - 1, rng.integers(OCCLUDER_SWEEP_FRAMES[0], OCCLUDER_SWEEP_FRAMES[1] + 1))))
    if full:
        # Frames fully covered = (bar - box - 2) / speed; make that at least OCCLUDER_FULL_COVER_FRAMES.
        need = OCCLUDER_FULL_COVER_FRAMES * (2 * along_max + 2 + 2 * gap) / max(1.0, sweep - 2.5)
        free = max(rng.uniform(*OCCLUDER_FREE_PX), 1.2 * need)
        bar_along = along_max + 2.0 + free
        bar_across = across_max + 2.0 + rng.uniform(*OCCLUDER_REACH_PX)
        offset_across = rng.uniform(-0.5, 0.5) * (bar_across - across_max - 2.0)
    else:
        bar_along = along_max + rng.uniform(*OCCLUDER_PARTIAL_EXTRA_PX)
        cover = rng.uniform(*OCCLUDER_PARTIAL_COVER)
        reach = rng.uniform(*OCCLUDER_REACH_PX)
        bar_across = reach + cover * across_min
        side = 1.0 if rng.random() < 0.5 else -1.0
        # The bar comes from one side: its inner end lies `cover` of the way into the (smallest) box.
        offset_across = side * (across_min / 2.0 + reach - bar_across / 2.0)
    travel = bar_along + along_max + 2.0 * gap
    direction = 1.0 if rng.random() < 0.5 else -1.0
    relative = direction * (-travel / 2.0 + travel * np.arange(sweep + 1) / sweep)
    frames = np.arange(start, start + sweep + 1)
    centre_along = centres[frames, axis] + relative
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
    extra = int(rng.integers(OCCLUDER_EXTRA_FRAMES[0], OCCLUDER_EXTRA_FRAMES[1] + 1))
    for sign, ref, along0, across0 in ((-1, start, centre_along[0], centre_across[0]),
                                       (1, start + sweep, centre_along[-1], centre_across[-1])):
        for k in range(1, extra + 1):
            t = ref + sign * k
            if t < 1 or t >= n:
                break
            r = rect(along0 + sign * k * step - (camera[t, axis] - camera[ref, axis]),
                     across0 - (camera[t, 1 - axis] - camera[ref, 1 - axis]))
            if touches(r, t):
                break
            rects[t] = r


def _plan_blur(spec: SequenceSpec, rng: np.random.Generator, centres: np.ndarray, camera: np.ndarray,
               camera_jumps: List[int]) -> Tuple[np.ndarray, np.ndarray]:
    """(target blur [N, 2], frame blur [N, 2]): zero unless MB."""
    n = spec.num_frames
    target_blur = np.zeros((n, 2))
    frame_blur = np.zeros((n, 2))
    if 'MB' not in spec.effects:
        return target_blur, frame_blur
    displacement = np.diff(centres, axis=0, prepend=centres[:1])
    displacement[0] = centres[1] - centres[0] if n > 1 else 0.0
    target_blur = rng.uniform(*MB_EXPOSURE) * displacement
    for _ in range(1 + min(2, n // MB_FRAMES_PER_EXTRA_SHAKE)):
        length = int(rng.integers(MB_SHAKE_FRAMES[0], MB_SHAKE_FRAMES[1] + 1))
        a = int(rng.integers(2, max(3, n - length)))
        angle = rng.uniform(0, math.pi)
        magnitude = rng.uniform(*MB_SHAKE_PX)
        for t in range(a, min(n, a + length)):
            jittered = angle + rng.normal(0, MB_SHAKE_ANGLE_JITTER)
            frame_blur[t] = magnitude * np.array([math.cos(jittered), math.sin(jittered)])
    for t in camera_jumps:
        jump = camera[t] - camera[t - 1]
        frame_blur[t] = jump * min(MB_JUMP_SHARE, MB_JUMP_MAX_PX / max(1e-6, float(np.hypot(*jump))))
    return target_blur, frame_blur


def _plan_illumination_gain(spec: SequenceSpec, rng: np.random.Generator) -> np.ndarray:
    """Per-frame, per-channel gain [N, 3]: ones unless IV, which changes the level (and colour) over time."""
    n = spec.num_frames
    gain = np.ones((n, 3))
    if 'IV' not in spec.effects:
        return gain
    level = np.full(3, rng.uniform(*IV_START_LEVEL))
    gain[:] = level
    changes = 1 + min(IV_MAX_EXTRA_CHANGES, n // IV_FRAMES_PER_EXTRA_CHANGE)
    times = sorted(int(t) for t in rng.choice(np.arange(2, n - 1), size=min(changes, n - 3), replace=False))
    t_axis = np.arange(n)
    for t0 in times:
        factor = rng.uniform(*IV_FACTOR) ** rng.choice([-1, 1])
        new = np.clip(level.mean() * factor, *IV_LEVEL_RANGE) * (1 + rng.normal(0, IV_COLOUR_JITTER, 3))
        if abs(math.log(new.mean() / level.mean())) < math.log(IV_MIN_FACTOR):  # clipped too much: the other way
            new = np.clip(level.mean() / factor, *IV_LEVEL_RANGE) * (1 + rng.normal(0, IV_COLOUR_JITTER, 3))
        ramp_frames = int(rng.choice([1, rng.integers(IV_RAMP_FRAMES[0], IV_RAMP_FRAMES[1] + 1)]))
        ramp = motion.smoothstep((t_axis - t0 + 1) / ramp_frames)[:, None]
        gain += ramp * (new - level)
        level = new
    return gain


def _target_colours(rng: np.random.Generator, scene_color: np.ndarray, clutter_like: bool, low_light: bool
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Body and core colour of the target: contrasting with the scene, or (BC) close to it."""
    luminance = float(scene_color.mean())
    # In low light a target darker than the scene vanishes (the dark gamma squeezes the shadows): make it the
    # brighter one there (lit or reflective), as tiny targets that can be tracked at night are.
    sign = 1.0 if low_light or luminance <= 128 else -1.0
    if clutter_like:
        contrast = rng.uniform(*BC_LOW_LIGHT_CONTRAST) if low_light else rng.uniform(*BC_CONTRAST)
    else:
        contrast = rng.uniform(*TARGET_CONTRAST)
    body = scene_color + sign * contrast + rng.normal(0.0, TARGET_COLOUR_SPREAD, 3)
    body = np.clip(body, 8, 247)
    core = np.clip(body + sign * rng.uniform(*CORE_CONTRAST) + rng.normal(0.0, CORE_COLOUR_SPREAD, 3), 0, 255)
    return body, core


def _colour(values: np.ndarray) -> Tuple[float, float, float]:
    b, g, r = (float(v) for v in np.clip(values, 0, 255))
    return b, g, r


def annotate(true_boxes: np.ndarray, image_size: Size) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _plan_attempt(spec: SequenceSpec, seed: int, rngs: Mapping[str, np.random.Generator]) -> SequencePlan:
    n = spec.num_frames
    effects = spec.effects

    # The look (shape, aspect prior) comes from a look stream, not from the plan streams that retries advance, so a
    # sequence looks the same whichever attempt realises its effects.
    looks_rng = streams.look_generator(seed, 'looks')
    looks = name_looks(spec.name)
    shape = spec.shape or (looks[0] if looks else SHAPES[int(looks_rng.integers(len(SHAPES)))])
    log_aspect_prior = looks[1] if looks else looks_rng.normal(0.0, ASPECT_SPREAD_WITHOUT_CATEGORY)

    w, h = motion.plan_sizes(spec, rngs['size'], log_aspect_prior)
    camera, camera_jumps = motion.plan_camera(spec, rngs['camera'])
    windows, fm_times, am_times = _plan_events(spec, rngs['events'])

    centres = motion.plan_target_path(spec, rngs['motion'], w, h, camera, fm_times, am_times)
    for code, a, b in windows:
        if code == 'OV':
            motion.apply_out_of_view(spec, rngs['motion'], centres, w, h, a, b)
    true_boxes = np.stack([centres[:, 0] - w / 2, centres[:, 1] - h / 2, w, h], 1)

    rects = np.full((n, 4), np.nan)
    for code, a, b in windows:
        if code in ('PO', 'FO'):
            _plan_occlusion(spec, rngs['occluder'], centres, w, h, camera, a, b, code == 'FO', rects)
    occluded, occluded_full = occlusion(true_boxes, rects)
    boxes, visible, clipped = annotate(true_boxes, spec.image_size)

    distractors = motion.plan_distractors(spec, rngs['distractors'], centres, w, h, camera)
    target_blur, frame_blur = _plan_blur(spec, rngs['blur'], centres, camera, camera_jumps)

    # Lighting: IV changes the level over time; LI darkens everything and adds noise.
    gain = _plan_illumination_gain(spec, rngs['iv'])
    gamma = 1.0
    light_rng = rngs['li']
    if 'LI' in effects:
        gain *= light_rng.uniform(*LI_GAIN)
        gamma = light_rng.uniform(*LI_GAMMA)
        noise_sigma = light_rng.uniform(*LI_NOISE_SIGMA)
    else:
        noise_sigma = light_rng.uniform(*NOISE_SIGMA)

    attributes = {a: a in effects for a in ATTRIBUTES}
    attributes.update(measure_box_attributes(boxes, spec.image_size, true_boxes, occluded, occluded_full))

    scene_rng = streams.look_generator(seed, 'scene')
    scene = sorted(SCENES)[int(scene_rng.integers(len(SCENES)))]
    scene_color = np.clip(np.asarray(SCENES[scene][0]) + scene_rng.normal(0, SCENE_COLOUR_SPREAD, 3),
                          *SCENE_COLOUR_RANGE)
    clutter = SCENES[scene][1] * scene_rng.uniform(*CLUTTER_FACTOR)
    appearance_rng = streams.look_generator(seed, 'appearance')
    body, core = _target_colours(appearance_rng, scene_color, 'BC' in effects, 'LI' in effects)
    distractor_colors = [_colour(body + appearance_rng.normal(0, DISTRACTOR_COLOUR_SPREAD, 3))
                         for _ in range(len(distractors))]
    occluder_color = scene_color * appearance_rng.uniform(*OCCLUDER_DARKNESS) \
        + appearance_rng.normal(0, OCCLUDER_COLOUR_SPREAD, 3)

    return SequencePlan(
        spec=spec, seed=seed, boxes=boxes, true_boxes=true_boxes, visible=visible, clipped=clipped, occluder=rects,
        occluded=occluded, occluded_full=occluded_full, camera=camera, distractors=distractors,
        target_blur=target_blur, frame_blur=frame_blur, gain=gain, gamma=float(gamma),
        noise_sigma=float(noise_sigma), shape=shape, target_color=_colour(body), core_color=_colour(core),
        distractor_colors=distractor_colors, occluder_color=_colour(occluder_color), scene=scene,
        scene_color=_colour(scene_color), clutter=float(clutter), render_seed=streams.render_seed(seed),
        attributes=attributes)


def plan_sequence(spec: SequenceSpec, seed: int) -> SequencePlan:
    """Plan a sequence (boxes, events, rendering parameters) from a spec and a seed; cheap, no images.

    Redraws the trajectory (from the same streams, so still deterministic) until every box-measurable effect the spec
    asks for is realised and frame 1 is clean.
    """
    seed = check_seed(seed)
    rngs = streams.plan_generators(seed)
    for _ in range(MAX_ATTEMPTS):
        plan = _plan_attempt(spec, seed, rngs)
        missing = [a for a in BOX_ATTRIBUTES if a in spec.effects and not plan.attributes[a]]
        clean_start = plan.visible[0] and not plan.clipped[0] and plan.occluded[0] == 0.0
        if not missing and clean_start:
            return plan
    raise RuntimeError(f'could not realise effects {missing} for {spec.name} (seed {seed}); '
                       f'try a larger image or a longer sequence')


def generate_boxes(spec: SequenceSpec, seed: int) -> Tuple[np.ndarray, Dict[str, bool]]:
    """(boxes [N, 4] float64 exactly as written, attributes {code: bool}) without rendering any image."""
    plan = plan_sequence(spec, seed)
    return plan.boxes.copy(), dict(plan.attributes)
