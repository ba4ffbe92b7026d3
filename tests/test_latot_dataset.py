"""LaTOT for pytracking's evaluation: layout errors, absent targets, and attributes (flags, table, derived)."""
import os

import numpy as np
import pytest
from PIL import Image

from conftest import pytracking_settings
from ltr_plugins import latot_attributes, latot_data
from pytracking_plugins.evaluation.latotdataset import LaTOTDataset

TEST_NAMES = latot_data.split_sequence_names('test')
IMAGE = (64, 48)


def make_sequence(root, name, boxes, flags=None, frames=None, text=None):
    """A LaTOT-layout sequence: tiny real JPEG frames, the annotation file, optionally a flag file."""
    folder = os.path.join(root, name, 'img')
    os.makedirs(folder)
    for i in range(len(boxes) if frames is None else frames):
        Image.new('RGB', IMAGE, (i % 255, 40, 90)).save(os.path.join(folder, '{:06d}.jpg'.format(i + 1)))
    with open(latot_data.annotation_path(root, name), 'w') as f:
        f.write(text if text is not None else ''.join('{:.2f},{:.2f},{:.2f},{:.2f}\n'.format(*b) for b in boxes))
    if flags is not None:
        with open(os.path.join(root, name, 'attributes.txt'), 'w') as f:
            f.write(','.join('1' if a in flags else '0' for a in latot_attributes.ATTRIBUTES) + '\n')


def still(n, x=20.0):
    return np.tile([x, 15.0, 6.0, 5.0], (n, 1))


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / 'latot')


@pytest.fixture
def latot_path(use_pytracking_settings, workspace):
    """Sets pytracking's settings.latot_path for this test (as run_script does for a subprocess)."""
    return lambda path: use_pytracking_settings(pytracking_settings(workspace, latot_path=path))


def test_missing_sequences_one_error_listing_them_and_where(root, latot_path):
    make_sequence(root, TEST_NAMES[0], still(3))
    latot_path(root)
    with pytest.raises(latot_data.LaTOTFormatError) as error:
        LaTOTDataset('test')
    message = str(error.value)
    assert '164 of 165 LaTOT sequences are missing in {}'.format(root) in message
    assert TEST_NAMES[1] in message and 'and 144 more' in message and 'allow_missing=True' in message
    assert 'settings.latot_path in pytracking/evaluation/local.py' in message
    assert LaTOTDataset('test', allow_missing=True).sequence_list == [TEST_NAMES[0]]


def test_root_not_set_or_absent(tmp_path, latot_path):
    latot_path('')
    with pytest.raises(latot_data.LaTOTFormatError, match='The LaTOT root is not set: set settings.latot_path'):
        LaTOTDataset('test')
    latot_path(str(tmp_path / 'nowhere'))
    with pytest.raises(latot_data.LaTOTFormatError, match='does not exist: fix settings.latot_path'):
        LaTOTDataset('test')
    with pytest.raises(latot_data.LaTOTFormatError, match='does not exist: fix the root given to LaTOTDataset'):
        LaTOTDataset('test', root=str(tmp_path / 'elsewhere'))


def test_malformed_annotation_line_names_file_and_line(root):
    make_sequence(root, TEST_NAMES[0], still(3), text='1,2,3,4\n1,2,x,4\n1,2,3,4\n')
    sequences = LaTOTDataset('test', root=root, allow_missing=True)
    with pytest.raises(latot_data.LaTOTFormatError) as error:
        sequences.get_sequence_list()
    assert '{}, line 2: expected four numbers'.format(latot_data.annotation_path(root, TEST_NAMES[0])) in str(
        error.value)


def test_frame_and_annotation_counts_must_match(root):
    make_sequence(root, TEST_NAMES[0], still(3), frames=4)
    with pytest.raises(latot_data.LaTOTFormatError, match='has 3 boxes but .* has 4 frames'):
        LaTOTDataset('test', root=root, allow_missing=True).get_sequence_list()


def test_absent_targets_are_invisible_and_nan_becomes_zero(root):
    make_sequence(root, TEST_NAMES[0], still(3), text='1,2,3,4\nnan,nan,nan,nan\n0,0,0,0\n')
    sequence = LaTOTDataset('test', root=root, allow_missing=True).get_sequence_list()[0]
    assert sequence.ground_truth_rect[1].tolist() == [0, 0, 0, 0]
    assert sequence.target_visible.tolist() == [True, False, False]
    assert sequence.object_class == latot_data.sequence_category(TEST_NAMES[0])


@pytest.mark.parametrize('text', ['1,2,3,4\n5,6,7,8\n', '1\t2\t3\t4\r\n5 6 7 8', ' 1, 2, 3, 4 \n\n5,6,7,8,\n'])
def test_box_separators(text):
    assert latot_data.parse_boxes(text, 'f').tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_irregular_names_have_their_category():
    assert [latot_data.sequence_category(n) for n in ('kite15', 'car33-2', 'car24-deleted', 'electric_bicycle-x',
                                                      'poker_box')] == ['kite', 'car', 'car', 'electric_bicycle',
                                                                        'poker_box']


# Attributes ---------------------------------------------------------------------------------------------------------

def test_derived_attributes_only_sv_fm_ov(root):
    fast = still(4)
    fast[2, 0] += 30                                  # FM
    border = still(4, x=1.0)
    border[3, 0] = 0.0                                # touches the left border (moving 1 px): OV only
    make_sequence(root, TEST_NAMES[0], fast)
    make_sequence(root, TEST_NAMES[1], border)
    make_sequence(root, TEST_NAMES[2], still(4))
    dataset = LaTOTDataset('test', root=root, allow_missing=True)
    assert dataset.attribute_sources() == {n: 'derived' for n in TEST_NAMES[:3]}
    assert dataset.attribute_availability() == {a: a in ('SV', 'FM', 'OV') for a in latot_attributes.ATTRIBUTES}
    assert dataset.get_attribute_names() == ['FM', 'OV']            # SV: available but no sequence has it
    assert dataset.get_attribute_names('long') == ['Fast Motion', 'Out-of-View']
    assert LaTOTDataset('test', root=root, allow_missing=True, attribute='Fast Motion').sequence_list == [
        TEST_NAMES[0]]
    assert LaTOTDataset('test', root=root, allow_missing=True, attribute='SV').sequence_list == []
    with pytest.raises(ValueError, match=r'LaTOT attribute IV \(Illumination Variation\) is unavailable: 3 of 3'):
        LaTOTDataset('test', root=root, allow_missing=True, attribute='IV')
    with pytest.raises(ValueError, match="Unknown LaTOT attribute 'XX'"):
        LaTOTDataset('test', root=root, allow_missing=True, attribute='XX')


def test_flag_files_and_table(root):
    make_sequence(root, TEST_NAMES[0], still(4), flags={'IV', 'LI'})
    make_sequence(root, TEST_NAMES[1], still(4), flags={'FO'})
    make_sequence(root, TEST_NAMES[2], still(4))
    dataset = LaTOTDataset('test', root=root, allow_missing=True)
    assert not dataset.attribute_availability()['IV']                # the third sequence has no IV flag
    with open(latot_attributes.table_path(root), 'w') as f:
        f.write('sequence,' + ','.join(latot_attributes.ATTRIBUTES) + '\n')
        f.write('{},0,0,0,1,0,0,0,0,0,0,0,0\n'.format(TEST_NAMES[2]))
        f.write('{},1,1,1,1,1,1,1,1,1,1,1,1\n'.format(TEST_NAMES[0]))   # the flag file wins over the table
    dataset = LaTOTDataset('test', root=root, allow_missing=True)
    assert dataset.attribute_sources() == {TEST_NAMES[0]: 'file', TEST_NAMES[1]: 'file', TEST_NAMES[2]: 'table'}
    assert all(dataset.attribute_availability().values())
    assert dataset.get_attribute_names() == ['IV', 'FO', 'LI']
    assert LaTOTDataset('test', root=root, allow_missing=True, attribute='IV').sequence_list == [
        TEST_NAMES[0], TEST_NAMES[2]]


def test_bad_flag_file_names_the_file(root):
    make_sequence(root, TEST_NAMES[0], still(2))
    with open(os.path.join(root, TEST_NAMES[0], 'attributes.txt'), 'w') as f:
        f.write('1,0\n')
    with pytest.raises(latot_attributes.AttributeFormatError, match='attributes.txt, line 1: expected 12 flags'):
        LaTOTDataset('test', root=root, allow_missing=True).get_attribute_names()


def test_pytracking_attribute_route_on_a_partial_latot(root, latot_path):
    """get_dataset_attributes passes allow_missing on to every dataset it builds (patch 14)."""
    from pytracking.evaluation import get_dataset_attributes
    make_sequence(root, TEST_NAMES[0], still(3), flags={'SV', 'FM'})
    make_sequence(root, TEST_NAMES[1], still(3), flags={'FM'})
    latot_path(root)
    with pytest.raises(latot_data.LaTOTFormatError, match='163 of 165 LaTOT sequences are missing'):
        get_dataset_attributes('latot_test')
    datasets = get_dataset_attributes('latot_test', allow_missing=True)
    assert {attribute: [s.name for s in sequences] for attribute, sequences in datasets.items()} == {
        'SV': [TEST_NAMES[0]], 'FM': [TEST_NAMES[0], TEST_NAMES[1]]}
