"""Rendering: a plan's frames as BGR images (anti-aliased sub-pixel targets on textured, moving backgrounds)."""
import math
from typing import Dict, Iterator, Sequence, Tuple

import cv2
import numpy as np

from ltr_plugins.synthetic.motion import CAMERA_PAD
from ltr_plugins.synthetic.plan import SequencePlan, plan_sequence
from ltr_plugins.synthetic.spec import SequenceSpec

#: Margin of the precomputed sensor-noise field: each frame crops it at a random offset (fresh noise is slow).
NOISE_PAD = 32
#: Background clutter is drawn for a 640x360 view and scaled by the view's area.
REFERENCE_AREA = 640.0 * 360.0
#: At most this many samples along a motion-blurred target's exposure path.
MAX_BLUR_SAMPLES = 24
#: OpenCV draws at sub-pixel positions given in 1/16 px (its ``shift`` argument).
SUBPIXEL_BITS = 4
SUBPIXEL_SCALE = 1 << SUBPIXEL_BITS
#: Clutter shapes (lines, blobs, blocks, polygons) per reference view, scaled by the scene's clutter density.
CLUTTER_SHAPES = (80, 219)
#: Clutter is blended with the texture under it with these weights, so the texture shows through.
CLUTTER_OPACITY, TEXTURE_OPACITY = 0.7, 0.3
#: BC: target-like blobs per reference view.
BC_BLOBS = (250, 449)
#: A slight blur of the finished background (a camera's optics).
BACKGROUND_BLUR_SIGMA = 0.8


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
    samples = int(min(MAX_BLUR_SAMPLES, max(1, math.ceil(1.5 * math.hypot(bx, by)))))
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
    tw, th = width + 2 * CAMERA_PAD, height + 2 * CAMERA_PAD
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
    area = tw * th / REFERENCE_AREA
    # Clutter: lines (wires, branches), blobs, blocks, polygons in scene-like colours.
    shapes = int(rng.integers(CLUTTER_SHAPES[0], CLUTTER_SHAPES[1] + 1) * plan.clutter * area)
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
    img = cv2.addWeighted(img, CLUTTER_OPACITY, base, TEXTURE_OPACITY, 0.0)
    if 'BC' in plan.spec.effects:
        # Target-like blobs everywhere (near the target included): same colours, same sizes, same shape family.
        tmin, tmax = plan.spec.target_size
        body = np.asarray(plan.target_color)
        for _ in range(int(rng.integers(BC_BLOBS[0], BC_BLOBS[1] + 1) * area)):
            colour = tuple(float(c) for c in np.clip(body + rng.normal(0, 14, 3), 0, 255))
            ax = rng.uniform(0.3, 0.7) * rng.uniform(tmin, tmax)
            ay = ax * rng.uniform(0.5, 1.5)
            centre = (int(rng.uniform(0, tw) * SUBPIXEL_SCALE), int(rng.uniform(0, th) * SUBPIXEL_SCALE))
            axes = (max(1, int(ax * SUBPIXEL_SCALE)), max(1, int(ay * SUBPIXEL_SCALE)))
            cv2.ellipse(img, centre, axes, rng.uniform(0, 180), 0, 360, colour, -1, cv2.LINE_AA, SUBPIXEL_BITS)
    return cv2.GaussianBlur(img, (0, 0), BACKGROUND_BLUR_SIGMA)


def _line_kernel(vec: np.ndarray) -> np.ndarray:
    """A normalised anti-aliased line along ``vec``: the kernel of a linear motion blur."""
    length = float(np.hypot(*vec))
    size = int(2 * math.ceil(length / 2) + 1)
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = vec / 2.0
    cv2.line(kernel, (int(round((c - dx) * SUBPIXEL_SCALE)), int(round((c - dy) * SUBPIXEL_SCALE))),
             (int(round((c + dx) * SUBPIXEL_SCALE)), int(round((c + dy) * SUBPIXEL_SCALE))), 1.0, 1, cv2.LINE_AA,
             SUBPIXEL_BITS)
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
    # Sensor noise: one precomputed field, cropped at a random offset per frame.
    noise = rng.standard_normal((height + NOISE_PAD, width + NOISE_PAD, 3)).astype(np.float32) * plan.noise_sigma
    noise_up = np.clip(noise, 0, 255).astype(np.uint8)
    noise_down = np.clip(-noise, 0, 255).astype(np.uint8)
    noise_offsets = rng.integers(0, NOISE_PAD + 1, (spec.num_frames, 2))
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
        ox, oy = CAMERA_PAD + plan.camera[t]
        if still_camera:
            frame = texture[CAMERA_PAD:CAMERA_PAD + height, CAMERA_PAD:CAMERA_PAD + width].copy()
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


