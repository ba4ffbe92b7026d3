"""The shared helpers: atomic files, box presence, text tables."""
import os

import numpy as np
import pytest

from ltr_plugins.common.atomic_files import atomic_path, is_temporary, write_text
from ltr_plugins.common.boxes import box_present
from pytracking_plugins.analysis.text_table import format_table


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / 'a.txt'
    write_text(path, 'first\n')
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temporary:
            with open(temporary, 'w') as f:
                f.write('half')
            raise RuntimeError('crash while writing')
    assert path.read_text() == 'first\n'
    assert os.listdir(tmp_path) == ['a.txt']                    # the temporary is gone
    write_text(path, 'second\n')
    assert path.read_text() == 'second\n' and os.listdir(tmp_path) == ['a.txt']
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_atomic_write_never_creates_folders(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_text(tmp_path / 'missing' / 'a.txt', 'x')
    assert not (tmp_path / 'missing').exists()


def test_temporary_names(tmp_path):
    with atomic_path(tmp_path / 'a.txt') as temporary:
        assert is_temporary(os.path.basename(temporary)) and os.path.dirname(temporary) == str(tmp_path)
    assert not is_temporary('a.txt') and not is_temporary('000001.jpg')


def test_box_present():
    boxes = np.array([[1, 2, 3, 4], [0, 0, 0, 0], [1, 2, 0, 4], [1, 2, 3, -1], [np.nan, 2, 3, 4], [0, 0, np.inf, 4],
                      [-5, -5, 0.01, 0.01]])
    assert box_present(boxes).tolist() == [True, False, False, False, False, False, True]
    assert box_present(boxes[0]) and box_present(boxes.reshape(7, 1, 4)).shape == (7, 1)


def test_text_table_alignment():
    table = format_table(['#', 'Name', 'Score'], [[1, 'long name', '0.5'], [10, 'x', '0.25']], left_columns=2)
    assert table.splitlines() == ['#   Name       Score',
                                  '--  ---------  -----',
                                  '1   long name    0.5',
                                  '10  x           0.25']
