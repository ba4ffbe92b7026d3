"""Renders a tracked sequence as an animated GIF and a still PNG strip (Pillow), zoomed so tiny targets show.

Each frame shows, left, the whole frame (scaled down) with every tracker's box and a yellow rectangle around the
zoomed region and, right, that region blown up (nearest neighbour, so pixels stay pixels) with the ground truth
(white) and every tracker's box in its colour; a legend names the colours. The zoomed region follows the ground
truth (it stays put while the target is absent) and is a fixed multiple of the sequence's median target size.
"""
import os
from typing import Dict, List, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ltr_plugins.common.atomic_files import atomic_path

GIF_NAME = 'tracking.gif'
STRIP_NAME = 'tracking_strip.png'
GROUND_TRUTH_COLOUR = (255, 255, 255)
TRACKER_COLOURS = [(160, 160, 160), (255, 80, 80), (60, 200, 90), (80, 150, 255), (230, 120, 255), (255, 170, 0)]
ZOOM_COLOUR = (255, 220, 0)
ZOOM_TARGET_SIZES = 10          # the zoomed region is this many median target sizes wide
ZOOM_MIN = 40                   # ... and at least this many pixels
ZOOM_PANEL = 256                # pixels of the zoomed panel (square)
OVERVIEW_WIDTH = 320
LEGEND_HEIGHT = 18
STRIP_FRAMES = 6
GIF_FRAME_MS = 100


def output_files(folder: str) -> List[str]:
    return [os.path.join(folder, GIF_NAME), os.path.join(folder, STRIP_NAME)]


def pick_sequence(dataset, evaluation, trackers: Sequence[str], reference: str) -> object:
    """The test sequence to show: where the trackers' mean SR beats the reference row's SR by the most
    (``evaluation`` is the LaTOT protocol's, with the rows ``trackers`` and ``reference``)."""
    gain = np.mean([evaluation.sequence_scores(label).SR for label in trackers], axis=0)
    gain = gain - evaluation.sequence_scores(reference).SR
    best = evaluation.sequences[int(np.nanargmax(gain))]
    return next(sequence for sequence in dataset.get_sequence_list() if sequence.name == best)


def read_boxes(path: str, num_frames: int) -> np.ndarray:
    """A raw result file (tab- or comma-separated x, y, w, h per line) as an array, checked against the frames."""
    with open(path) as handle:
        rows = [line.replace(',', ' ').split() for line in handle if line.strip()]
    boxes = np.array(rows, dtype=float)
    if boxes.shape != (num_frames, 4):
        raise ValueError('{}: expected {} boxes of 4 numbers, found shape {}'.format(path, num_frames, boxes.shape))
    return boxes


def _zoom_centres(ground_truth: np.ndarray) -> np.ndarray:
    visible = (ground_truth[:, 2] > 0) & (ground_truth[:, 3] > 0)
    centres = ground_truth[:, :2] + ground_truth[:, 2:] / 2
    for i in range(len(centres)):
        if not visible[i]:
            centres[i] = centres[i - 1] if i > 0 else centres[i]
    return centres


def _draw_box(draw: ImageDraw.ImageDraw, box: np.ndarray, origin: np.ndarray, scale: float, colour,
              width: int = 2) -> None:
    if not (np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0):
        return
    x0, y0 = (box[:2] - origin) * scale
    x1, y1 = (box[:2] + box[2:] - origin) * scale
    draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)


def compose_frame(image: Image.Image, index: int, ground_truth: np.ndarray, boxes: Mapping[str, np.ndarray],
                  centre: np.ndarray, zoom: float) -> Image.Image:
    """One animation frame (see the module docstring)."""
    width, height = image.size
    overview_scale = OVERVIEW_WIDTH / width
    overview = image.resize((OVERVIEW_WIDTH, max(1, round(height * overview_scale))), Image.BILINEAR)
    origin = np.clip(centre - zoom / 2, 0, np.maximum(np.array([width, height]) - zoom, 0))
    region = image.crop((int(origin[0]), int(origin[1]), int(origin[0] + zoom), int(origin[1] + zoom)))
    origin = np.floor(origin)
    panel_scale = ZOOM_PANEL / zoom
    panel = region.resize((ZOOM_PANEL, ZOOM_PANEL), Image.NEAREST)

    draw_overview = ImageDraw.Draw(overview)
    draw_overview.rectangle([*(origin * overview_scale), *((origin + zoom) * overview_scale)], outline=ZOOM_COLOUR,
                            width=2)
    for colour, tracker_boxes in zip(TRACKER_COLOURS, boxes.values()):
        _draw_box(draw_overview, tracker_boxes[index], np.zeros(2), overview_scale, colour, width=1)
    draw_panel = ImageDraw.Draw(panel)
    for colour, tracker_boxes in zip(TRACKER_COLOURS, boxes.values()):
        _draw_box(draw_panel, tracker_boxes[index], origin, panel_scale, colour)
    _draw_box(draw_panel, ground_truth[index], origin, panel_scale, GROUND_TRUTH_COLOUR)

    canvas_height = max(overview.height, ZOOM_PANEL) + LEGEND_HEIGHT
    canvas = Image.new('RGB', (OVERVIEW_WIDTH + ZOOM_PANEL + 6, canvas_height), (0, 0, 0))
    canvas.paste(overview, (0, 0))
    canvas.paste(panel, (OVERVIEW_WIDTH + 6, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, overview.height + 4), 'frame {}'.format(index + 1), fill=(255, 255, 255))
    x = 4
    legend = [('ground truth', GROUND_TRUTH_COLOUR)] + list(zip(boxes, TRACKER_COLOURS))
    y = canvas_height - LEGEND_HEIGHT + 3
    for label, colour in legend:
        draw.rectangle([x, y + 2, x + 10, y + 10], outline=colour, width=2)
        draw.text((x + 14, y), label, fill=colour)
        x += 14 + int(draw.textlength(label)) + 12
    return canvas


def render(sequence, result_folders: Mapping[str, str], output_dir: str) -> List[str]:
    """Writes the GIF and the PNG strip of ``sequence`` with the boxes of ``{label: raw-results folder}``."""
    ground_truth = np.asarray(sequence.ground_truth_rect, dtype=float)
    frames = sequence.frames
    boxes: Dict[str, np.ndarray] = {label: read_boxes(os.path.join(folder, sequence.name + '.txt'), len(frames))
                                    for label, folder in result_folders.items()}
    visible = (ground_truth[:, 2] > 0) & (ground_truth[:, 3] > 0)
    median_size = float(np.median(np.maximum(ground_truth[visible, 2], ground_truth[visible, 3])))
    centres = _zoom_centres(ground_truth.copy())
    rendered = []
    for index, path in enumerate(frames):
        with Image.open(path) as image:
            image = image.convert('RGB')
            zoom = float(min(max(ZOOM_MIN, ZOOM_TARGET_SIZES * median_size), *image.size))
            rendered.append(compose_frame(image, index, ground_truth, boxes, centres[index], zoom))

    os.makedirs(output_dir, exist_ok=True)
    gif_path, strip_path = output_files(output_dir)
    with atomic_path(gif_path) as temporary:
        rendered[0].save(temporary, format='GIF', save_all=True, append_images=rendered[1:], duration=GIF_FRAME_MS,
                         loop=0)
    picks = np.unique(np.linspace(0, len(rendered) - 1, STRIP_FRAMES).round().astype(int))
    strip = _strip([rendered[i] for i in picks])
    with atomic_path(strip_path) as temporary:
        strip.save(temporary, format='PNG')
    return [gif_path, strip_path]


def _strip(images: Sequence[Image.Image]) -> Image.Image:
    """The frames stacked top to bottom (each frame is wide: side by side would be too wide to read)."""
    width = max(image.width for image in images)
    strip = Image.new('RGB', (width, sum(image.height for image in images)), (0, 0, 0))
    y = 0
    for image in images:
        strip.paste(image, (0, y))
        y += image.height
    return strip
