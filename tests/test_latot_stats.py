"""Dataset statistics: Table I's columns and the tiny-object criterion, by hand and through the command."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import pytracking_settings
from ltr_plugins import latot_data
from pytracking_plugins.analysis import stats

TEST_NAMES = latot_data.split_sequence_names('test')


def test_sizes_and_the_criterion_edges():
    image = (100, 100)
    assert stats.size_stats(np.array([[5, 5, 4, 9], [5, 5, 2, 8]]), image) == (2, 5.0, pytest.approx(0.0026))
    # Frames without a target are not averaged.
    assert stats.size_stats(np.array([[5, 5, 4, 9], [0, 0, 0, 0], [np.nan] * 4]), image)[:2] == (1, 6.0)
    assert stats.size_stats(np.zeros((3, 4)), image)[0] == 0
    assert stats.is_tiny(21.99, 0.0099) and not stats.is_tiny(22.0, 0.0099) and not stats.is_tiny(21.0, 0.01)
    # Mean of sqrt(w*h), not sqrt of the mean area: 10x10 and 30x30 -> 20 (tiny), while sqrt(500) = 22.4.
    assert stats.size_stats(np.array([[1, 1, 10, 10], [1, 1, 30, 30]]), (1000, 1000))[1] == 20.0


def _sequence(root, name, frames, size, image=(80, 60)):
    folder = os.path.join(root, name, 'img')
    os.makedirs(folder)
    for i in range(frames):
        Image.new('L', image, i % 200).save(os.path.join(folder, '{:06d}.png'.format(i + 1)))
    with open(latot_data.annotation_path(root, name), 'w') as f:
        f.write('10,10,{0},{0}\n'.format(size) * frames)


@pytest.fixture
def root(tmp_path):
    root = str(tmp_path / 'latot')
    _sequence(root, TEST_NAMES[0], 21, 4.0)         # aircraft: 16 / 4800 = 0.33 %: tiny
    _sequence(root, TEST_NAMES[1], 30, 7.0)         # ladybird: 49 / 4800 = 1.02 %: not tiny (relative size)
    _sequence(root, TEST_NAMES[2], 45, 3.0)         # car: tiny
    return root


def test_latot_statistics(root):
    result = stats.dataset_stats('latot_test', root=root, allow_missing=True)
    assert [s.tiny for s in result.sequences] == [True, False, True]
    assert result.sequences[1].mean_relative_size == pytest.approx(49 / 4800)
    assert result.sequences[0].image_size == (80, 60) and result.sequences[0].object_class == 'aircraft'
    assert result.all == stats.Summary(videos=3, classes=3, frame_rate=30.0, min_frames=21, max_frames=45,
                                       avg_frames=32.0, avg_duration=32 / 30, total_frames=96)
    assert result.tiny == stats.Summary(2, 2, 30.0, 21, 45, 33.0, 1.1, 66)
    table = stats.table_one([result])
    assert table.splitlines()[2].split() == ['latot_test', '(tiny)', '2', '2', '30', '21', '45', '33', '1.1', '66']
    assert '2 of 3 sequences are tiny' in stats.criterion_text(result)


def test_any_sequence_list_and_empty_summaries(tmp_path):
    from pytracking.evaluation.data import Sequence
    frame = str(tmp_path / '0001.jpg')
    Image.new('RGB', (640, 480)).save(frame)
    big = Sequence('big', [frame] * 5, 'otb', np.array([[1, 1, 50, 40.0]] * 5))
    result = stats.dataset_stats([big], frame_rate=10)
    assert result.name == 'otb' and result.sequences[0].image_size == (640, 480)
    assert result.all.classes is None and result.all.avg_duration == 0.5
    assert result.tiny == stats.Summary(0, 0, 10, 0, 0, 0.0, 0.0, 0)       # the paper's zeros
    assert '0 of 1 sequences are tiny' in stats.criterion_text(result)
    with pytest.raises(ValueError, match='no frames to read the image size from'):
        stats.sequence_stats(Sequence('bare', [], 'otb', np.array([[1, 1, 5, 4.0]])))


def test_command(root, tmp_path, use_pytracking_settings, capsys):
    use_pytracking_settings(pytracking_settings(str(tmp_path / 'workspace'), latot_path=root))
    json_path = str(tmp_path / 'stats.json')
    assert stats.main(['--dataset', 'latot_test', '--allow-missing-sequences', '--per-sequence',
                       '--json', json_path]) == 0
    out = capsys.readouterr().out
    assert 'Benchmark' in out and 'latot_test (tiny)' in out and TEST_NAMES[1] in out
    with open(json_path) as f:
        saved = json.load(f)
    assert saved[0]['all']['total_frames'] == 96 and saved[0]['sequences'][1]['tiny'] is False
    assert saved[0]['criterion']['mean_absolute_size_below_px'] == 22.0
    assert stats.main(['--dataset', 'latot_test']) == 2                  # 162 sequences missing: an error
    assert '162 of 165 LaTOT sequences are missing' in capsys.readouterr().err


def test_command_json_folders_and_write_failures(root, tmp_path, use_pytracking_settings, capsys):
    use_pytracking_settings(pytracking_settings(str(tmp_path / 'workspace'), latot_path=root))
    args = ['--dataset', 'latot_test', '--allow-missing-sequences']
    missing = tmp_path / 'no' / 'such'
    with pytest.raises(SystemExit) as exit_info:
        stats.main(args + ['--json', str(missing / 'x.json')])
    assert exit_info.value.code == 2 and not missing.exists()
    assert 'argument --json: the folder {} does not exist'.format(missing) in capsys.readouterr().err
    # A file that cannot be written (here its name is taken by a folder): the table is printed, then one line.
    taken = tmp_path / 'taken.json'
    taken.mkdir()
    assert stats.main(args + ['--json', str(taken)]) == 1
    captured = capsys.readouterr()
    assert 'latot_test (tiny)' in captured.out
    error, = captured.err.strip().splitlines()
    assert error.startswith('error: cannot write taken.json into {}: '.format(tmp_path))
