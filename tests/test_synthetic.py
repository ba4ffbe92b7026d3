"""Tests for ltr_plugins.synthetic: LaTOT-layout synthetic sequences."""
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ltr_plugins import synthetic as S

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r'^\d+\.\d{2},\d+\.\d{2},\d+\.\d{2},\d+\.\d{2}$')
SMALL = (160, 120)  # big enough for 4-20 px targets, cheap to render


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def _visible(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def _random_specs(count: int, frames=(20, 200), size=S.DEFAULT_IMAGE_SIZE):
    for seed in range(count):
        rng = np.random.default_rng(1000 + seed)
        name = f"{('bird', 'car', 'kite', 'people', 'ball', 'drone')[seed % 6]}{seed + 1}"
        yield seed, S.random_spec(rng, name, int(rng.integers(frames[0], frames[1] + 1)), size)


# --- layout and formats -----------------------------------------------------------------------------------------

def test_dataset_layout_and_formats(tmp_path):
    names = S.write_dataset(tmp_path, num_sequences=3, num_frames=(20, 30), seed=5)
    assert len(names) == 3 and sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for name in names:
        assert re.fullmatch(r'[A-Za-z_]+\d+', name), name
        assert S.category_of(name) == re.sub(r'\d+$', '', name.split('-')[0])
        seq = tmp_path / name
        assert sorted(p.name for p in seq.iterdir()) == sorted(['img', f'{name}.txt', 'attributes.txt'])
        frames = sorted(p.name for p in (seq / 'img').iterdir())
        assert frames == [f'{i:06d}.jpg' for i in range(1, len(frames) + 1)]
        assert 20 <= len(frames) <= 30
        with open(seq / 'img' / frames[0], 'rb') as f:
            assert f.read(2) == b'\xff\xd8'  # JPEG
        lines = (seq / f'{name}.txt').read_text().splitlines()
        assert len(lines) == len(frames) and all(LINE.match(line) for line in lines), lines[:3]
        assert (seq / f'{name}.txt').read_text().endswith('\n')
        flags = (seq / 'attributes.txt').read_text()
        assert re.fullmatch(r'[01](,[01]){11}\n', flags), flags
        assert not list(seq.rglob('.*tmp*'))  # atomic writes leave no temporaries


def test_files_match_api(tmp_path):
    spec = S.SequenceSpec('kite6', 40, image_size=SMALL, effects={'OV', 'SV'})
    S.write_sequence(tmp_path, spec, seed=11)
    boxes, attributes = S.generate_boxes(spec, 11)
    written = np.loadtxt(tmp_path / 'kite6' / 'kite6.txt', delimiter=',')
    assert np.array_equal(written, boxes)  # the array holds exactly the written (2-decimal) values
    assert (tmp_path / 'kite6' / 'attributes.txt').read_text() == S.format_attributes(attributes)
    flags = (tmp_path / 'kite6' / 'attributes.txt').read_text().strip().split(',')
    assert dict(zip(S.ATTRIBUTES, (f == '1' for f in flags))) == attributes
    assert attributes['OV'] and attributes['SV']
    frames, boxes2, attributes2 = S.generate_sequence(spec, 11)
    frames = list(frames)
    assert np.array_equal(boxes2, boxes) and attributes2 == attributes
    assert len(frames) == 40 and all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for f in frames)


# --- reproducibility --------------------------------------------------------------------------------------------

def test_same_seed_same_bytes_different_seed_different(tmp_path):
    kwargs = dict(num_sequences=2, num_frames=25, image_size=SMALL)
    S.write_dataset(tmp_path / 'a', seed=3, **kwargs)
    S.write_dataset(tmp_path / 'b', seed=3, **kwargs)
    S.write_dataset(tmp_path / 'c', seed=4, **kwargs)
    a, b, c = (_files(tmp_path / d) for d in 'abc')
    assert a == b
    annotations = lambda files: sorted(v for k, v in files.items() if k.endswith('.txt') and 'attributes' not in k)
    assert annotations(a) != annotations(c)


# Digests of the output before the module became a package (numpy 2.4.6, opencv-python 5.0.0.93 as pinned in
# requirements.txt): a refactoring that changes one random draw, one pixel or one byte fails here.
PINNED_FILES_SHA256 = 'bfbf81168b0f814de33a924d080c72fb5ca17385c0f9823b9a849760c6631198'
PINNED_BOXES_SHA256 = 'f20700f8a67edb6e0ac15ff65f4e24b0423791e347c138a947883e6b94a533d3'


def _digest_files(root: Path) -> str:
    digest = hashlib.sha256()
    for name, data in _files(root).items():
        digest.update(name.encode())
        digest.update(data)
    return digest.hexdigest()


def test_output_pinned_across_refactoring(tmp_path):
    S.write_dataset(tmp_path, num_sequences=2, num_frames=(20, 30), image_size=SMALL, seed=21)
    S.write_sequence(tmp_path, S.SequenceSpec('drone7', 40, image_size=SMALL, effects=set(S.ATTRIBUTES)), seed=5)
    assert _digest_files(tmp_path) == PINNED_FILES_SHA256
    digest = hashlib.sha256()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        spec = S.random_spec(rng, 'bird{}'.format(seed), int(rng.integers(20, 400)), (320, 240))
        boxes, attributes = S.generate_boxes(spec, seed)
        digest.update(S.format_boxes(boxes).encode())
        digest.update(S.format_attributes(attributes).encode())
    assert digest.hexdigest() == PINNED_BOXES_SHA256


def test_worker_processes_give_the_same_bytes(tmp_path):
    kwargs = dict(num_sequences=2, num_frames=20, image_size=SMALL, seed=12)
    S.write_dataset(tmp_path / 'serial', jobs=1, **kwargs)
    S.write_dataset(tmp_path / 'parallel', jobs=2, **kwargs)
    assert _files(tmp_path / 'serial') == _files(tmp_path / 'parallel')


def test_sequence_k_independent_of_count(tmp_path):
    one = S.write_dataset(tmp_path / 'one', num_sequences=1, num_frames=(20, 40), image_size=SMALL, seed=9)
    three = S.write_dataset(tmp_path / 'three', num_sequences=3, num_frames=(20, 40), image_size=SMALL, seed=9,
                            images=False)
    assert three[0] == one[0]
    name = one[0]
    for f in (f'{name}.txt', 'attributes.txt'):
        assert (tmp_path / 'one' / name / f).read_bytes() == (tmp_path / 'three' / name / f).read_bytes()


def test_effects_are_independent_streams():
    # Switching LI on changes the lighting, not the trajectory.
    base = S.SequenceSpec('ball1', 30, image_size=SMALL, effects={'SO'})
    dark = S.SequenceSpec('ball1', 30, image_size=SMALL, effects={'SO', 'LI'})
    assert np.array_equal(S.generate_boxes(base, 2)[0], S.generate_boxes(dark, 2)[0])


# --- boxes ------------------------------------------------------------------------------------------------------

def test_boxes_in_range_inside_image_and_subpixel():
    subpixel = False
    for seed, spec in _random_specs(40):
        boxes, _ = S.generate_boxes(spec, seed)
        width, height = spec.image_size
        assert boxes.shape == (spec.num_frames, 4) and boxes.dtype == np.float64
        vis = _visible(boxes)
        assert np.all(boxes[~vis] == 0.0)  # absent = 0,0,0,0
        x, y, w, h = boxes[vis].T
        assert np.all(x >= 0) and np.all(y >= 0)
        assert np.all(x + w <= width + 1e-6) and np.all(y + h <= height + 1e-6)
        lo, hi = spec.target_size
        assert np.all(w <= hi) and np.all(h <= hi) and np.all(w >= 1) and np.all(h >= 1)
        inner = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)  # not clipped: the full size range holds
        assert np.all(w[inner] >= lo) and np.all(h[inner] >= lo)
        assert vis[0] and inner[0], 'frame 1 must show the whole target'
        subpixel |= bool(np.any(boxes[vis] != np.round(boxes[vis])))
    assert subpixel


def test_frame_one_target_visible():
    for seed, spec in _random_specs(10, frames=(20, 20), size=SMALL):
        effects = set(spec.effects) | ({'BC', 'LI'} if seed % 2 else set())  # the hardest looks included
        spec = S.SequenceSpec(spec.name, 20, image_size=SMALL, effects=effects)
        plan = S.plan_sequence(spec, seed)
        assert plan.occluded[0] == 0.0
        frame = next(S.render_frames(plan)).astype(float)
        x, y, w, h = plan.boxes[0]
        cx, cy = int(x + w / 2), int(y + h / 2)
        centre = frame[cy - 1:cy + 1, cx - 1:cx + 1].reshape(-1, 3).mean(0)
        x0, y0, x1, y1 = int(x) - 2, int(y) - 2, int(np.ceil(x + w)) + 2, int(np.ceil(y + h)) + 2
        big = frame[max(0, y0 - 6):y1 + 6, max(0, x0 - 6):x1 + 6]
        mask = np.ones(big.shape[:2], bool)
        mask[y0 - max(0, y0 - 6):y1 - max(0, y0 - 6), x0 - max(0, x0 - 6):x1 - max(0, x0 - 6)] = False
        ring = np.median(big[mask], axis=0)
        assert np.abs(centre - ring).max() > 8, (spec, centre, ring)


# --- effects ----------------------------------------------------------------------------------------------------

def _boxes(effect, seed, frames=120, size=S.DEFAULT_IMAGE_SIZE):
    spec = S.SequenceSpec(f'bird{seed}', frames, image_size=size, effects={effect})
    boxes, attributes = S.generate_boxes(spec, seed)
    assert attributes[effect]
    return spec, boxes


@pytest.mark.parametrize('seed', range(4))
def test_sv_shows_in_boxes(seed):
    _, boxes = _boxes('SV', seed, frames=20 + 30 * seed)
    area = boxes[:, 2] * boxes[:, 3]
    assert any(max(area[i:i + 31].max() / area[i], area[i] / area[i:i + 31].min()) > 2 for i in range(len(area)))


@pytest.mark.parametrize('seed', range(4))
def test_fm_shows_in_boxes(seed):
    _, boxes = _boxes('FM', seed, frames=20 + 30 * seed)
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    step = np.hypot(*np.diff(centre, axis=0).T)
    size = np.maximum(boxes[1:, 2:].max(1), boxes[:-1, 2:].max(1))
    assert np.any(step > size)


@pytest.mark.parametrize('seed', range(6))
def test_ov_shows_in_boxes(seed):
    spec, boxes = _boxes('OV', seed, frames=20 + 30 * seed, size=SMALL if seed % 2 else S.DEFAULT_IMAGE_SIZE)
    width, height = spec.image_size
    vis = _visible(boxes)
    x, y, w, h = boxes.T
    touching = vis & ((x == 0) | (y == 0) | (np.abs(x + w - width) < 0.011) | (np.abs(y + h - height) < 0.011))
    assert np.any(~vis) or np.any(touching)
    assert vis[0] and not touching[0]


@pytest.mark.parametrize('effect', ['PO', 'FO'])
@pytest.mark.parametrize('seed', range(3))
def test_occlusion(effect, seed):
    spec = S.SequenceSpec(f'car{seed}', 20 + 40 * seed, effects={effect})
    plan = S.plan_sequence(spec, seed)
    assert plan.attributes[effect] and plan.occluded[0] == 0
    if effect == 'FO':
        full = plan.occluded_full
        assert full.any()
        assert np.all(plan.boxes[full, 2] > 0)  # a fully occluded target keeps its true box
        assert np.allclose(plan.boxes[full], plan.true_boxes[full], atol=0.011)
    else:
        assert np.any((plan.occluded > 0.05) & (plan.occluded < 1)) and not plan.occluded_full.any()


def test_no_effects_nothing_measured():
    for seed in range(8):
        spec = S.SequenceSpec(f'ant{seed}', 150, effects=())
        _, attributes = S.generate_boxes(spec, seed)
        assert not any(attributes.values()), attributes


def test_am_cm_so_mb_plans():
    am = S.plan_sequence(S.SequenceSpec('fly1', 60, effects={'AM'}), 1)
    centre = am.true_boxes[:, :2] + am.true_boxes[:, 2:] / 2
    accel = np.hypot(*np.diff(centre, n=2, axis=0).T)
    assert accel.max() > 0.5 * am.true_boxes[:, 2:].min()
    assert am.attributes['AM'] and not np.any(am.camera)

    cm = S.plan_sequence(S.SequenceSpec('fly2', 60, effects={'CM'}), 1)
    assert np.hypot(*np.diff(cm.camera, axis=0).T).max() >= 10

    so = S.plan_sequence(S.SequenceSpec('fly3', 60, effects={'SO'}), 1)
    assert so.distractors.shape[0] >= 1
    target = so.true_boxes[:, :2] + so.true_boxes[:, 2:] / 2
    others = so.distractors[..., :2] + so.distractors[..., 2:] / 2
    near = np.hypot(*(others - target).transpose(2, 0, 1)).min(0) < 10 * so.true_boxes[:, 2:].max(1) + 10
    assert near.mean() > 0.5

    mb = S.plan_sequence(S.SequenceSpec('fly4', 60, effects={'MB'}), 1)
    assert np.any(mb.frame_blur) and np.any(mb.target_blur)


def test_light_effects_in_pixels():
    def brightness(effects):
        spec = S.SequenceSpec('moon1', 60, image_size=SMALL, effects=effects)
        return np.array([f.mean() for f in S.generate_sequence(spec, 4)[0]])

    plain, low, varying = brightness(()), brightness({'LI'}), brightness({'IV'})
    assert low.mean() < 0.6 * plain.mean()
    assert varying.max() / varying.min() > 1.3 and plain.max() / plain.min() < 1.05


# --- writing, overwrite, names ----------------------------------------------------------------------------------

def test_no_images_and_overwrite(tmp_path):
    spec = S.SequenceSpec('boat1', 25, image_size=SMALL)
    S.write_sequence(tmp_path, spec, 1)
    assert len(list((tmp_path / 'boat1' / 'img').iterdir())) == 25
    with pytest.raises(FileExistsError, match='boat1'):
        S.write_sequence(tmp_path, spec, 1)
    with pytest.raises(FileExistsError, match='boat1'):
        S.write_dataset(tmp_path, names=['boat1'], num_frames=25, image_size=SMALL)
    shorter = S.SequenceSpec('boat1', 21, image_size=SMALL)
    S.write_sequence(tmp_path, shorter, 1, images=False, overwrite=True)
    assert sorted(p.name for p in (tmp_path / 'boat1').iterdir()) == ['attributes.txt', 'boat1.txt']
    assert len((tmp_path / 'boat1' / 'boat1.txt').read_text().splitlines()) == 21


def test_names_from_split_list(tmp_path):
    names = S.read_names(REPO / 'settings' / 'latot' / 'test.txt')
    assert names and not any(n.endswith('.txt') for n in names) and 'kite6' in names
    written = S.write_dataset(tmp_path, names=names[:3], num_frames=(20, 30), images=False, seed=1)
    assert written == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[:3])
    for name in written:
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted(['attributes.txt', f'{name}.txt'])


def test_bad_specs():
    with pytest.raises(ValueError, match='unknown effects'):
        S.SequenceSpec('a1', 50, effects={'XX'})
    with pytest.raises(ValueError, match='too small'):
        S.SequenceSpec('a1', 50, image_size=(40, 40))
    with pytest.raises(ValueError, match='at least'):
        S.SequenceSpec('a1', 5, effects={'OV'})
    with pytest.raises(ValueError, match='name'):
        S.SequenceSpec('a/1', 50)
    with pytest.raises(ValueError, match='SV'):
        S.SequenceSpec('a1', 50, target_size=(8, 12), effects={'SV'})
    with pytest.raises(ValueError, match='duplicate'):
        S.write_dataset('/nonexistent-never-written', names=['a1', 'a1'], images=False)


# --- command line -----------------------------------------------------------------------------------------------

def _run(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    return subprocess.run([sys.executable, '-m', 'ltr_plugins.synthetic', *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_command(tmp_path):
    root = tmp_path / 'ds'
    r = _run('--root', str(root), '--sequences', '2', '--frames', '20:25', '--size', '160x120', '--seed', '7')
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in root.iterdir())
    assert len(names) == 2 and all(name in r.stdout for name in names) and 'wrote 2 sequences' in r.stdout
    # Same seed through the API: the same bytes.
    S.write_dataset(tmp_path / 'api', num_sequences=2, num_frames=(20, 25), image_size=(160, 120), seed=7)
    assert _files(root) == _files(tmp_path / 'api')
    # Refuses to overwrite, clearly; --no-images writes only annotations.
    r = _run('--root', str(root), '--sequences', '2', '--frames', '20:25', '--size', '160x120', '--seed', '7')
    assert r.returncode != 0 and 'already exist' in r.stderr and names[0] in r.stderr
    r = _run('--root', str(tmp_path / 'ann'), '--names-from', str(REPO / 'settings/latot/test.txt'),
             '--frames', '30', '--no-images')
    assert r.returncode == 0, r.stderr
    assert not list((tmp_path / 'ann').rglob('*.jpg')) and (tmp_path / 'ann' / 'kite6' / 'kite6.txt').is_file()


@pytest.mark.parametrize('args, option', [
    (['--size', '640by360'], '--size'),
    (['--size', '10x10'], '--size'),
    (['--size', '64x64'], '--size'),  # too small for the default 4-20 px targets
    (['--frames', '30:10'], '--frames'),
    (['--sequences', '0'], '--sequences'),
    (['--seed', '-1'], '--seed'),
])
def test_command_bad_arguments(tmp_path, args, option):
    r = _run('--root', str(tmp_path / 'x'), *args)
    assert r.returncode == 2 and option in r.stderr, r.stderr
    assert not (tmp_path / 'x').exists()


def test_command_help():
    r = _run('--help')
    assert r.returncode == 0 and '--names-from' in r.stdout and 'attributes.txt' in r.stdout


def test_main_in_process(tmp_path, capsys):
    """``main(argv)`` is the command's entry point (``python -m`` runs the same function)."""
    assert S.main(['--root', str(tmp_path), '--sequences', '1', '--frames', '20', '--size', '160x120',
                   '--no-images', '--seed', '3']) == 0
    name, = (p.name for p in tmp_path.iterdir())
    assert 'wrote 1 sequence (20 frames)' in capsys.readouterr().out
    assert len((tmp_path / name / f'{name}.txt').read_text().splitlines()) == 20
    assert S.main(['--root', str(tmp_path), '--sequences', '1', '--frames', '20', '--size', '160x120',
                   '--no-images', '--seed', '3']) == 1                  # already there
    assert 'already exist' in capsys.readouterr().err
