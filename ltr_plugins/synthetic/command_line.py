"""The command: ``python -m ltr_plugins.synthetic --root FOLDER ...`` (``--help`` for the options)."""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

from ltr_plugins.latot_attributes import ATTRIBUTES
from ltr_plugins.synthetic.spec import (DEFAULT_IMAGE_SIZE, DEFAULT_TARGET_SIZE, MAX_FRAMES,
                                               MIN_FRAMES_FOR_EFFECTS, MIN_IMAGE_SIDE, FloatRange, Size,
                                               min_image_side)
from ltr_plugins.synthetic.writing import DEFAULT_JPEG_QUALITY, SequenceInfo, read_names, write_dataset

MAX_IMAGE_SIDE = 16384


def _parse_size(text: str) -> Size:
    m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', text)
    if not m:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT such as 640x360, got {text!r}')
    w, h = int(m.group(1)), int(m.group(2))
    if not MIN_IMAGE_SIDE <= min(w, h) <= max(w, h) <= MAX_IMAGE_SIDE:
        raise argparse.ArgumentTypeError(
            f'width and height must be in {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE}, got {text!r}')
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
    """The command's argument parser."""
    parser = argparse.ArgumentParser(
        prog='python -m ltr_plugins.synthetic',
        description='Write synthetic tiny-object tracking sequences in the LaTOT layout: '
                    '<root>/<seq>/img/000001.jpg..., <root>/<seq>/<seq>.txt (x,y,w,h per frame, 2 decimals; '
                    '0.00,0.00,0.00,0.00 when out of view) and <root>/<seq>/attributes.txt '
                    f'({",".join(ATTRIBUTES)} as 0/1). Same seed and arguments, same bytes.',
        epilog='examples:\n'
               '  python -m ltr_plugins.synthetic --root /tmp/latot_synth --sequences 4 --frames 60:120\n'
               '  python -m ltr_plugins.synthetic --root /tmp/latot_synth '
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
    """The command; returns its exit status (2 for bad arguments, 1 when sequence folders already exist)."""
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
    need = min_image_side(args.target_size[1])
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

