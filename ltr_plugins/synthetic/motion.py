"""Motion planning: the target's size over time, the camera, the target's path, leaving the view, and distractors.

Everything here draws from the generator it is given (one named stream each, see :mod:`.streams`), in a fixed
order: changing the order of draws changes every sequence, which the pinned-output test catches.
"""
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ltr_plugins.synthetic.spec import ASPECT_WOBBLE, SCALE_WOBBLE, SIZE_EPSILON, SequenceSpec

# Scale variation: scripted size steps of x1.75 .. x2.4 in size (x3 .. x5.8 in area: clearly outside [0.5, 2]),
# each eased in over SV_STEP_FRAMES; one step, plus one per SV_FRAMES_PER_EXTRA_STEP frames (at most two more).
SV_MIN_LOG_STEP = math.log(1.75)
SV_MAX_LOG_STEP = math.log(2.4)
SV_STEP_FRAMES = (6, 25)
SV_FRAMES_PER_EXTRA_STEP = 200
SV_MAX_EXTRA_STEPS = 2
SV_START_NEAR_END = 0.1          # the first size lies within this share of the range from one end
ASPECT_PRIOR_SPREAD = 0.15       # log-aspect spread around the category's aspect
SCALE_WOBBLE_CORRELATION = 40.0  # frames
ASPECT_WOBBLE_CORRELATION = 30.0

# Camera (CM): a slow pan of at most CAMERA_MAX_SPEED px/frame, damped and pulled back to the middle, plus jumps.
CAMERA_PAD = 96                  # background texture margin around the view; camera offsets stay within it
CAMERA_LIMIT_MARGIN = 8.0
CAMERA_DAMPING = 0.92
CAMERA_ACCELERATION = 0.12
CAMERA_MAX_SPEED = 1.0
CAMERA_RETURN = 0.01
CAMERA_JUMP_PX = (10.0, 36.0)
CAMERA_FRAMES_PER_EXTRA_JUMP = 200
CAMERA_MAX_EXTRA_JUMPS = 3

# Target motion: a wandering walk whose natural speed stays well under the box size (no accidental FM).
SPEED_IN_BOX_SIZES = 0.4
MIN_TOP_SPEED = 0.3              # px/frame
MAX_SLOW_SPEED = 0.1
START_INSET = 0.1                # frame 1's centre keeps this share of the image from every border (plus the box)
TURN_SPREAD = 0.15               # radians per frame
SPEED_CHANGE = 0.08              # share of the speed range per frame
BOOST_DECAY = 0.8
BORDER_MARGIN = 1.0              # px between the box and the border when fully in view

# Fast motion (FM): a burst of FM_BURST_FRAMES frames, each moving FM_STEP_IN_BOX_SIZES box sizes, towards the
# farthest of FM_GOAL_CANDIDATES random points; in a cramped view at least FM_MIN_STEP_IN_BOX_SIZES.
FM_BURST_FRAMES = (1, 4)
FM_STEP_IN_BOX_SIZES = (1.3, 2.2)
FM_MIN_STEP_IN_BOX_SIZES = 1.15
FM_CRAMPED_STEP_SHARE = 0.95
FM_GOAL_CANDIDATES = 8
FM_BOOST_SHARE = 0.5

# Abrupt motion (AM): turn round by 180 +- AM_TURN_SPREAD radians and speed up to AM_SPEED_IN_BOX_SIZES box sizes.
AM_TURN_SPREAD = 0.9
AM_SPEED_IN_BOX_SIZES = (0.55, 0.9)

# Out of view (OV): out through the nearest edge and back; fully out OV_FULL_PROBABILITY of the time.
OV_FULL_PROBABILITY = 0.6
OV_MIN_PARTIAL_EXTENT = 2.5      # px: a partial view of a smaller target would be under one pixel
OV_EDGE_JITTER = 0.05            # share of the image's smaller side added at random to each edge's distance
OV_SPEED_IN_BOX_SIZES = 0.8      # peak speed; under the FM threshold
OV_MOVE_FRAMES = (2, 90)
OV_HOLD_FRAMES = (1, 30)
OV_RETURN_JITTER = 2             # frames

# Similar objects (SO): 1-4 distractors, a little larger or smaller than the target, orbiting it loosely.
SO_COUNT = (1, 4)
SO_SIZE_FACTOR = (0.8, 1.25)
SO_ORBIT_SPEED = (0.01, 0.05)    # radians per frame
SO_ORBIT_JITTER = 0.03
SO_ORBIT_RADIUS = 2.5            # box sizes, plus up to SO_ORBIT_RADIUS_SWING * 2 more
SO_ORBIT_RADIUS_SWING = 2.0
SO_ORBIT_CORRELATION = 50.0
SO_ORBIT_GAP_PX = 4
SO_DAMPING = 0.7
SO_PULL = 0.12
SO_MAX_SPEED_IN_BOX_SIZES = 0.5
SO_MIN_GAP_IN_BOX_SIZES = 0.75   # of the sum of both sizes: never on top of the target


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def smooth_noise(rng: np.random.Generator, n: int, correlation: float) -> np.ndarray:
    """Smooth zero-centred noise of length n, scaled so that max |value| = 1 (a hard bound, unlike a random walk)."""
    half = int(2 * correlation)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / (correlation / 2.0)) ** 2)
    white = rng.standard_normal(n + 2 * half)
    smooth = np.convolve(white, kernel, mode='same')[half:half + n]
    peak = np.abs(smooth).max() if n else 0.0
    return smooth / peak if peak > 0 else smooth


def plan_sizes(spec: SequenceSpec, rng: np.random.Generator, log_aspect_prior: float
               ) -> Tuple[np.ndarray, np.ndarray]:
    """Per-frame target width and height."""
    n = spec.num_frames
    lo, hi = spec.target_size[0] + SIZE_EPSILON, spec.target_size[1] - SIZE_EPSILON
    if hi <= lo:
        lo = hi = (spec.target_size[0] + spec.target_size[1]) / 2.0
    room = math.log(hi / lo)
    scale_varies = 'SV' in spec.effects
    scale_wobble = SCALE_WOBBLE if scale_varies else min(SCALE_WOBBLE, room / 4.0)
    aspect_wobble = ASPECT_WOBBLE if scale_varies else min(ASPECT_WOBBLE, room / 4.0)
    # The aspect ratio eats into the size room (w = s*sqrt(a), h = s/sqrt(a)); keep enough for the scale steps.
    need = (math.log(2.0) if scale_varies else 0.0) + 2 * scale_wobble + aspect_wobble
    max_log_aspect = max(0.0, room - need)
    log_aspect = float(np.clip(log_aspect_prior + rng.normal(0.0, ASPECT_PRIOR_SPREAD), -max_log_aspect,
                               max_log_aspect))
    half_aspect = 0.5 * (abs(log_aspect) + aspect_wobble)
    log_size_lo, log_size_hi = math.log(lo) + half_aspect + scale_wobble, math.log(hi) - half_aspect - scale_wobble
    if log_size_hi < log_size_lo:
        log_size_lo = log_size_hi = 0.5 * (log_size_lo + log_size_hi)
    base = np.empty(n)
    if not scale_varies:
        base[:] = rng.uniform(log_size_lo, log_size_hi)
    else:
        # Start near one end of the range so the first step has room; later steps alternate.
        up = bool(rng.random() < 0.5)
        span = log_size_hi - log_size_lo
        log_size = log_size_lo + rng.uniform(0, SV_START_NEAR_END) * span if up else \
            log_size_hi - rng.uniform(0, SV_START_NEAR_END) * span
        steps = 1 + min(SV_MAX_EXTRA_STEPS, n // SV_FRAMES_PER_EXTRA_STEP)
        segment = (n - 3) / steps
        base[:] = log_size
        for k in range(steps):
            duration = int(rng.integers(SV_STEP_FRAMES[0], SV_STEP_FRAMES[1] + 1))
            duration = max(2, min(duration, int(segment) - 1))
            start = 2 + int(k * segment) + int(rng.integers(0, max(1, int(segment) - duration)))
            room_left = (log_size_hi - log_size) if up else (log_size - log_size_lo)
            step = rng.uniform(SV_MIN_LOG_STEP, max(SV_MIN_LOG_STEP, min(SV_MAX_LOG_STEP, room_left)))
            step = min(step, room_left) if room_left > 0 else 0.0
            target = log_size + step if up else log_size - step
            t = np.arange(n)
            base += (target - log_size) * smoothstep((t - start) / duration)
            log_size, up = target, not up
    log_s = base + scale_wobble * smooth_noise(rng, n, SCALE_WOBBLE_CORRELATION)
    log_a = log_aspect + aspect_wobble * smooth_noise(rng, n, ASPECT_WOBBLE_CORRELATION)
    w = np.exp(log_s + 0.5 * log_a)
    h = np.exp(log_s - 0.5 * log_a)
    return np.clip(w, lo, hi), np.clip(h, lo, hi)


def plan_camera(spec: SequenceSpec, rng: np.random.Generator) -> Tuple[np.ndarray, List[int]]:
    """Camera offsets [N, 2] and the jump frames: a bounded slow pan plus abrupt jumps (CM), else still."""
    n = spec.num_frames
    camera = np.zeros((n, 2))
    if 'CM' not in spec.effects:
        return camera, []
    count = 1 + min(CAMERA_MAX_EXTRA_JUMPS, n // CAMERA_FRAMES_PER_EXTRA_JUMP)
    jumps = sorted(int(t) for t in rng.choice(np.arange(3, n - 1), size=min(count, n - 4), replace=False))
    limit = CAMERA_PAD - CAMERA_LIMIT_MARGIN
    velocity = np.zeros(2)
    for t in range(1, n):
        velocity = CAMERA_DAMPING * velocity + rng.normal(0.0, CAMERA_ACCELERATION, 2)
        speed = np.hypot(*velocity)
        if speed > CAMERA_MAX_SPEED:
            velocity *= CAMERA_MAX_SPEED / speed
        velocity -= CAMERA_RETURN * camera[t - 1] / limit  # drift back towards the middle
        camera[t] = camera[t - 1] + velocity
        if t in jumps:
            phi = rng.uniform(0, 2 * math.pi)
            jump = rng.uniform(*CAMERA_JUMP_PX) * np.array([math.cos(phi), math.sin(phi)])
            for i in range(2):  # jump the way that keeps the view inside the texture
                if abs(camera[t, i] + jump[i]) > limit:
                    jump[i] = -jump[i]
            camera[t] += jump
        camera[t] = np.clip(camera[t], -limit, limit)
    return camera, jumps


def _reflect(p: float, v: float, lo: float, hi: float) -> Tuple[float, float]:
    """Keep p in [lo, hi] by bouncing (the velocity component flips), clamping after huge overshoots."""
    if hi <= lo:
        return 0.5 * (lo + hi), v
    if p < lo:
        p, v = 2 * lo - p, abs(v)
    elif p > hi:
        p, v = 2 * hi - p, -abs(v)
    return min(max(p, lo), hi), v


def plan_target_path(spec: SequenceSpec, rng: np.random.Generator, w: np.ndarray, h: np.ndarray,
                     camera: np.ndarray, fm_times: Sequence[int], am_times: Sequence[int]) -> np.ndarray:
    """Target centres [N, 2] in image coordinates: a wandering walk kept fully inside the view."""
    n = spec.num_frames
    width, height = spec.image_size
    small = float(np.minimum(w, h).min())
    # Natural speed stays well under the box size (plus at most 1 px/frame of camera pan): no accidental FM.
    top_speed = max(MIN_TOP_SPEED, SPEED_IN_BOX_SIZES * small)
    slow_speed = min(MAX_SLOW_SPEED, top_speed)
    centres = np.zeros((n, 2))
    margin_x = w / 2.0 + BORDER_MARGIN
    margin_y = h / 2.0 + BORDER_MARGIN
    centres[0] = (rng.uniform(margin_x[0] + START_INSET * width, width - margin_x[0] - START_INSET * width),
                  rng.uniform(margin_y[0] + START_INSET * height, height - margin_y[0] - START_INSET * height))
    heading = rng.uniform(0, 2 * math.pi)
    speed = rng.uniform(slow_speed, top_speed)
    boost = 0.0
    forced: Dict[int, np.ndarray] = {}
    fm_set, am_set = set(fm_times), set(am_times)
    for t in range(1, n):
        p = centres[t - 1]
        if t in fm_set and t not in forced:
            # A burst aimed at a far point inside the view.
            size = max(w[t], h[t])
            goals = np.stack([rng.uniform(margin_x[t], width - margin_x[t], FM_GOAL_CANDIDATES),
                              rng.uniform(margin_y[t], height - margin_y[t], FM_GOAL_CANDIDATES)], 1)
            goal = goals[np.argmax(np.hypot(*(goals - p).T))]
            distance = float(np.hypot(*(goal - p)))
            step = rng.uniform(*FM_STEP_IN_BOX_SIZES) * size
            if step > distance:  # cramped view: jump as far as there is room, still more than one box if possible
                step = max(FM_MIN_STEP_IN_BOX_SIZES * size, FM_CRAMPED_STEP_SHARE * distance)
            direction = (goal - p) / max(distance, 1e-9)
            frames = int(max(1, min(int(rng.integers(FM_BURST_FRAMES[0], FM_BURST_FRAMES[1] + 1)),
                                    distance // step)))
            for j in range(frames):
                if t + j < n:
                    forced[t + j] = direction * step * max(w[t + j], h[t + j]) / size
            heading = math.atan2(direction[1], direction[0])
        if t in am_set:
            heading += math.pi + rng.uniform(-AM_TURN_SPREAD, AM_TURN_SPREAD)
            boost = max(0.0, rng.uniform(*AM_SPEED_IN_BOX_SIZES) * min(w[t], h[t]) - speed)
        heading += rng.normal(0.0, TURN_SPREAD)
        speed = float(np.clip(speed + rng.normal(0.0, SPEED_CHANGE * (top_speed - slow_speed)), slow_speed,
                              top_speed))
        boost *= BOOST_DECAY
        if t in forced:
            velocity = forced.pop(t)
            boost = max(boost, FM_BOOST_SHARE * (float(np.hypot(*velocity)) - speed))
        else:
            velocity = (speed + boost) * np.array([math.cos(heading), math.sin(heading)])
        x, vx = _reflect(p[0] + velocity[0] - (camera[t, 0] - camera[t - 1, 0]), velocity[0], margin_x[t],
                         width - margin_x[t])
        y, vy = _reflect(p[1] + velocity[1] - (camera[t, 1] - camera[t - 1, 1]), velocity[1], margin_y[t],
                         height - margin_y[t])
        if (vx, vy) != (velocity[0], velocity[1]):
            heading = math.atan2(vy, vx)
        centres[t] = (x, y)
    return centres


def apply_out_of_view(spec: SequenceSpec, rng: np.random.Generator, centres: np.ndarray, w: np.ndarray,
                      h: np.ndarray, start: int, end: int) -> None:
    """Move the target out through the nearest edge and back within [start, end) (in place).

    Only the coordinate across the edge is blended towards a point outside, so the motion along the edge stays
    natural.  Fully out (absent frames) or only partly out (clipped boxes).
    """
    width, height = spec.image_size
    px, py = centres[start]
    distances = [px, width - px, py, height - py]  # left, right, top, bottom
    edge = int(np.argmin(np.asarray(distances) + rng.uniform(0, OV_EDGE_JITTER * min(width, height), 4)))
    axis = 0 if edge < 2 else 1
    extent = w[start:end] if axis == 0 else h[start:end]
    full = bool(rng.random() < OV_FULL_PROBABILITY) or float(extent.min()) < OV_MIN_PARTIAL_EXTENT
    if full:
        depth = float(extent.max()) / 2.0 + rng.uniform(0.5, 1.5 * float(extent.max()) + 0.5)  # centre beyond edge
    else:
        small = float(extent.min())
        depth = small / 2.0 - rng.uniform(max(1.5, 0.2 * small), max(1.6, 0.8 * small))  # part stays inside
    limit = width if axis == 0 else height
    far_point = -depth if edge in (0, 2) else limit + depth
    length = end - start
    distance = abs(far_point - centres[start, axis])
    # Peak speed of a smoothstep is 1.5x its mean.
    min_move, max_move = OV_MOVE_FRAMES
    go = int(np.clip(math.ceil(1.5 * distance / max(0.5, OV_SPEED_IN_BOX_SIZES * float(np.minimum(w, h).min()))),
                     min_move, max_move))
    hold = int(rng.integers(OV_HOLD_FRAMES[0], OV_HOLD_FRAMES[1] + 1))
    back = int(np.clip(go + rng.integers(-OV_RETURN_JITTER, OV_RETURN_JITTER + 1), min_move, max_move))
    if go + hold + back > length:  # squeeze into the window (faster, maybe FM), keeping a frame at the far point
        scale = (length - 1) / (go + hold + back)
        go, back = max(1, int(go * scale)), max(1, int(back * scale))
        hold = max(1, length - go - back)
    tau = np.arange(length, dtype=float)
    beta = np.where(tau < go, smoothstep(tau / go),
                    np.where(tau < go + hold, 1.0, 1.0 - smoothstep((tau - go - hold) / back)))
    beta[0] = 0.0
    segment = centres[start:end, axis]
    centres[start:end, axis] = segment + beta * (far_point - segment)


def plan_distractors(spec: SequenceSpec, rng: np.random.Generator, centres: np.ndarray, w: np.ndarray,
                     h: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Boxes [K, N, 4] of the similar objects (SO; none otherwise): same shape and colour, orbiting the target."""
    n = spec.num_frames
    width, height = spec.image_size
    count = int(rng.integers(SO_COUNT[0], SO_COUNT[1] + 1)) if 'SO' in spec.effects else 0
    distractors = np.zeros((count, n, 4))
    for i in range(count):
        factor = rng.uniform(*SO_SIZE_FACTOR)
        dw, dh = np.clip(w * factor, spec.target_size[0], spec.target_size[1]), \
            np.clip(h * factor, spec.target_size[0], spec.target_size[1])
        phi = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.uniform(*SO_ORBIT_SPEED) * rng.choice([-1, 1])
                                                      + rng.normal(0, SO_ORBIT_JITTER, n))
        radius = SO_ORBIT_RADIUS + SO_ORBIT_RADIUS_SWING * (1 + smooth_noise(rng, n, SO_ORBIT_CORRELATION))
        pos = centres[0] + (radius[0] * max(w[0], h[0]) + SO_ORBIT_GAP_PX) * np.array([math.cos(phi[0]),
                                                                                        math.sin(phi[0])])
        velocity = np.zeros(2)
        mx, my = dw / 2 + 1, dh / 2 + 1
        for t in range(n):
            size = max(w[t], h[t])
            want = centres[t] + (radius[t] * size + SO_ORBIT_GAP_PX) * np.array([math.cos(phi[t]), math.sin(phi[t])])
            if t:
                velocity = SO_DAMPING * velocity + SO_PULL * (want - pos)
                cap = SO_MAX_SPEED_IN_BOX_SIZES * size + 1.0
                speed = np.hypot(*velocity)
                if speed > cap:
                    velocity *= cap / speed
                pos = pos + velocity - (camera[t] - camera[t - 1])
            # Never on top of the target (it would be an unannounced occlusion) and always inside the view.
            gap = pos - centres[t]
            distance = np.hypot(*gap)
            min_gap = SO_MIN_GAP_IN_BOX_SIZES * (size + max(dw[t], dh[t])) + 2
            if distance < min_gap:
                pos = centres[t] + (gap / distance if distance > 1e-6 else np.array([1.0, 0.0])) * min_gap
            pos = np.array([np.clip(pos[0], mx[t], width - mx[t]), np.clip(pos[1], my[t], height - my[t])])
            distractors[i, t] = (pos[0] - dw[t] / 2, pos[1] - dh[t] / 2, dw[t], dh[t])
    return distractors
