"""Writing sequences and datasets in the LaTOT layout, every file atomically, optionally with worker processes."""
from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import cv2
import numpy as np

from ltr_plugins import latot_data
from ltr_plugins.common.atomic_files import is_temporary, write_bytes
from ltr_plugins.latot_attributes import ATTRIBUTES
from ltr_plugins.synthetic import streams
from ltr_plugins.synthetic.plan import plan_sequence
from ltr_plugins.synthetic.render import render_frames
from ltr_plugins.synthetic.spec import (DEFAULT_IMAGE_SIZE, DEFAULT_TARGET_SIZE, FloatRange, SequenceSpec,
                                               Size, check_name, check_seed, frames_range, random_spec)

DEFAULT_JPEG_QUALITY = 90

# Generated names use LaTOT categories.
CATEGORIES = ('car', 'people', 'tennis', 'bird', 'soccer', 'Kongming_Lantern', 'shuttlecock', 'ant', 'balloon',
              'star', 'golf', 'bee', 'kite', 'boat', 'fly', 'aircraft', 'jet', 'drone', 'bowling', 'badminton',
              'Paraglider', 'ladybird', 'fish', 'ball')

# Temporaries of an earlier writer (name.tmp<pid>), still cleared by --overwrite.
_OLD_TEMPORARY = re.compile(r'\..*\.tmp\d+')


def _is_leftover(file_name: str) -> bool:
    return is_temporary(file_name) or bool(_OLD_TEMPORARY.fullmatch(file_name))


def format_boxes(boxes: np.ndarray) -> str:
    """Annotation file text: one ``x,y,w,h`` line per frame, two decimals each, trailing newline."""
    return ''.join(f'{x:.2f},{y:.2f},{w:.2f},{h:.2f}\n' for x, y, w, h in np.asarray(boxes, float))


def format_attributes(attributes: Mapping[str, bool]) -> str:
    """attributes.txt text: the 12 flags as 0/1 in ATTRIBUTES order, comma separated, trailing newline."""
    return ','.join('1' if attributes.get(a, False) else '0' for a in ATTRIBUTES) + '\n'


def _clear_sequence(seq_dir: Path, name: str) -> None:
    """Remove what a previous run wrote into a sequence folder (frames, annotations, stale temporaries) -- only
    that, so an --overwrite pointed at the wrong place cannot wipe unrelated files."""
    img_dir = seq_dir / 'img'
    if img_dir.is_dir():
        for f in img_dir.iterdir():
            if (re.fullmatch(r'\d+\.jpg', f.name) or _is_leftover(f.name)) and f.is_file():
                f.unlink()
        try:
            img_dir.rmdir()
        except OSError:
            pass  # something else is in there; leave it
    for f in list(seq_dir.iterdir()):
        if f.name in (f'{name}.txt', 'attributes.txt') or _is_leftover(f.name):
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
            write_bytes(img_dir / f'{i:06d}.jpg', buf.tobytes())
    write_bytes(seq_dir / 'attributes.txt', format_attributes(plan.attributes).encode())
    write_bytes(seq_dir / f'{spec.name}.txt', format_boxes(plan.boxes).encode())
    return SequenceInfo(name=spec.name, path=seq_dir, num_frames=spec.num_frames, image_size=spec.image_size,
                        seed=seed, images=images, attributes=dict(plan.attributes))


def read_names(path: Union[str, os.PathLike]) -> List[str]:
    """Sequence names from a split list (one per line, ``.txt`` stripped, blank lines and # comments skipped)."""
    return latot_data.read_name_list(os.fspath(path))


def _dataset_item(seed: int, k: int, name: Optional[str], frames: Tuple[int, int], image_size: Size,
                  target_size: FloatRange) -> Tuple[SequenceSpec, int, str]:
    """Spec and generation seed of sequence k: from seed's k-th child only, so independent of the dataset size.

    Returns the category drawn for generated names too (the caller numbers them).
    """
    rng = streams.dataset_spec_generator(seed, k)
    category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
    num_frames = int(rng.integers(frames[0], frames[1] + 1))
    gen_seed = streams.dataset_generation_seed(seed, k)
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
    seed = check_seed(seed)
    frames = frames_range(num_frames)
    if names is not None:
        names = [check_name(n) for n in names]
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


