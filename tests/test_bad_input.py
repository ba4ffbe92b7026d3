"""Bad input is an error that names the file, line or setting to fix, before anything is computed from it; and a
tracking run with failed sequences says so once per cause and fails."""
import os

import numpy as np
import pytest

from conftest import ltr_settings, pytracking_settings, run_script


def _sequence(root: str, name: str, frame_names, boxes_text: str) -> str:
    """A LaTOT sequence folder with empty frame files (enough for everything but reading the images)."""
    img = os.path.join(root, name, 'img')
    os.makedirs(img)
    for frame in frame_names:
        open(os.path.join(img, frame), 'wb').close()
    path = os.path.join(root, name, name + '.txt')
    with open(path, 'w') as f:
        f.write(boxes_text)
    return path


def _first_test_name() -> str:
    from ltr_plugins import latot_data
    return latot_data.split_sequence_names('test')[0]


# ---------------------------------------------------------------------------------------------- annotations
@pytest.mark.parametrize('line', ['1,,2,3,4', ',1,2,3,4', '1, ,2,3,4', '1_0,2,3,4', '0x1,2,3,4', '1,2,3,\u0664'])
def test_an_empty_field_or_not_a_number_is_not_read_as_a_box(line, tmp_path):
    from ltr_plugins import latot_data
    path = str(tmp_path / 'seq.txt')
    with pytest.raises(latot_data.LaTOTFormatError) as error:
        latot_data.parse_boxes('1,2,3,4\n{}\n5,6,7,8\n'.format(line), path)
    assert str(error.value) == '{}, line 2: expected four numbers x,y,w,h, got {!r}'.format(path, line)


def test_separators_and_a_trailing_comma_still_read():
    from ltr_plugins import latot_data
    boxes = latot_data.parse_boxes('1,2,3,4,\n5 6\t7,8\n\n9.5,10,11,12\n', 'seq.txt')
    np.testing.assert_array_equal(boxes, [[1, 2, 3, 4], [5, 6, 7, 8], [9.5, 10, 11, 12]])


def test_a_gap_in_frame_numbers_is_an_error_even_with_as_many_boxes_as_files(tmp_path):
    from ltr_plugins.dataset import LaTOT
    from ltr_plugins import latot_data
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset
    root, name = str(tmp_path), _first_test_name()
    _sequence(root, name, ['000001.jpg', '000002.jpg', '000004.jpg'], '1,1,5,5\n2,2,5,5\n3,3,5,5\n')
    expected = 'LaTOT sequence {}: frame numbers in {} jump from 000002.jpg to 000004.jpg'.format(
        name, os.path.join(root, name, 'img'))
    with pytest.raises(latot_data.LaTOTFormatError, match=expected):
        LaTOTDataset('test', allow_missing=True, root=root).get_sequence_list()
    with pytest.raises(latot_data.LaTOTFormatError, match=expected):
        LaTOT(root, sequence_names=[name]).get_sequence_info(0)


def test_an_empty_line_among_the_boxes_is_named_when_the_count_is_off(tmp_path):
    from ltr_plugins import latot_data
    root, name = str(tmp_path), _first_test_name()
    path = _sequence(root, name, ['0001.jpg', '0002.jpg', '0003.jpg'], '1,1,5,5\n\n2,2,5,5\n\n')
    with pytest.raises(latot_data.LaTOTFormatError) as error:
        latot_data.read_sequence_annotation(root, name, num_frames=3)
    assert str(error.value) == 'LaTOT sequence {}: {} has 2 boxes but {} has 3 frames; line 2 is empty'.format(
        name, path, os.path.join(root, name, 'img'))


def test_consecutive_frames_in_natural_order_list(tmp_path):
    from ltr_plugins import latot_data
    root, name = str(tmp_path), _first_test_name()
    _sequence(root, name, ['frame{}.jpg'.format(i) for i in (9, 10, 11)], '')
    assert [os.path.basename(p) for p in latot_data.list_frames(root, name)] == ['frame9.jpg', 'frame10.jpg',
                                                                                 'frame11.jpg']


@pytest.mark.parametrize('first_box', ['187.92,210.26,0,4.41', '0,0,0,0', 'nan,nan,nan,nan', '10,10,-3,4',
                                       '10,10,5,nan'])
def test_a_first_frame_box_that_cannot_start_a_tracker_names_file_and_line(first_box, tmp_path):
    from ltr_plugins import latot_data
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset
    root, name = str(tmp_path), _first_test_name()
    path = _sequence(root, name, ['0001.jpg', '0002.jpg'], '\n{}\n10,10,5,5\n'.format(first_box))
    with pytest.raises(latot_data.LaTOTFormatError) as error:
        LaTOTDataset('test', allow_missing=True, root=root).get_sequence_list()
    message = str(error.value)
    assert message.startswith("{}, line 2: the first frame's box ".format(path))
    assert 'cannot start a tracker' in message and '\n' not in message


def test_an_absent_target_after_the_first_frame_is_fine(tmp_path):
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset
    root, name = str(tmp_path), _first_test_name()
    _sequence(root, name, ['0001.jpg', '0002.jpg', '0003.jpg'], '10,10,5,5\n0,0,0,0\nnan,nan,nan,nan\n')
    sequence = LaTOTDataset('test', allow_missing=True, root=root).get_sequence_list()[0]
    assert sequence.target_visible.tolist() == [True, False, False]


def test_run_tracker_refuses_a_bad_first_box_before_tracking(synthetic_latot, tmp_path, workspace):
    from ltr_plugins import latot_data
    root, name = str(tmp_path / 'latot'), _first_test_name()
    os.makedirs(root)
    for other in latot_data.split_sequence_names('test')[1:]:   # the rest of the split, as generated
        os.symlink(os.path.join(synthetic_latot.root, other), os.path.join(root, other))
    path = _sequence(root, name, ['0001.jpg', '0002.jpg'], '187.92,210.26,0,4.41\n10,10,5,5\n')
    result = run_script('pytracking/run_tracker.py', ['mkdnet', 'mkdnet', '--dataset_name', 'latot_test'],
                        pytracking=pytracking_settings(workspace, latot_path=root), check=False)
    assert result.returncode != 0
    assert "{}, line 1: the first frame's box 187.92,210.26,0,4.41 cannot start a tracker".format(path) \
        in result.stdout.splitlines()[-1]
    assert 'Tracker:' not in result.stdout   # nothing was tracked
    assert not os.path.exists(os.path.join(workspace, 'tracking_results'))


# ---------------------------------------------------------------------------------------------------- images
@pytest.fixture
def corrupt_jpeg(tmp_path) -> str:
    path = str(tmp_path / '0001.jpg')
    with open(path, 'wb') as f:
        f.write(b'\xff\xd8\xff\xe0' + bytes(range(256)) * 4 + b'\xff\xd9')   # a JPEG's first and last bytes, garbage
    return path


def test_a_corrupt_frame_is_named_when_tracking(corrupt_jpeg, workspace, use_pytracking_settings):
    from pytracking.evaluation import Tracker
    use_pytracking_settings(pytracking_settings(workspace))
    with pytest.raises(OSError) as error:
        Tracker('dimp', 'super_dimp')._read_image(corrupt_jpeg)
    assert str(error.value) == 'cannot read image {}: missing, unreadable or corrupt; replace the file'.format(
        corrupt_jpeg)


def test_a_corrupt_frame_is_named_when_training(corrupt_jpeg, tmp_path):
    from ltr_plugins.dataset import LaTOT
    root, name = str(tmp_path / 'latot'), _first_test_name()
    _sequence(root, name, ['0001.jpg'], '1,1,5,5\n')
    os.replace(corrupt_jpeg, os.path.join(root, name, 'img', '0001.jpg'))
    with pytest.raises(OSError, match='cannot read image {}: missing, unreadable or corrupt'.format(
            os.path.join(root, name, 'img', '0001.jpg'))):
        LaTOT(root, sequence_names=[name]).get_frames(0, [0])


# -------------------------------------------------------------------------------------------------- settings
def test_an_unset_dataset_folder_names_the_setting_and_local_py(workspace):
    import types
    from ltr_plugins.train_settings.mkdnet import _recipe
    settings = types.SimpleNamespace(env=types.SimpleNamespace(lasot_dir='', got10k_dir=workspace + '/none'),
                                     train_datasets={'lasot': 1, 'got10k_vottrain': 1})
    with pytest.raises(FileNotFoundError, match=r'^lasot_dir is not set in .*local\.py: set it to your LaSOT '
                                                r'folder \(this setting trains on lasot, got10k_vottrain; '):
        _recipe.dataset_dir(settings, 'lasot_dir', 'LaSOT')
    with pytest.raises(FileNotFoundError, match="^got10k_dir = '{}/none' is not a folder".format(workspace)):
        _recipe.dataset_dir(settings, 'got10k_dir', 'GOT-10k')
    assert _recipe.dataset_dir(types.SimpleNamespace(env=types.SimpleNamespace(lasot_dir=workspace)),
                               'lasot_dir', 'LaSOT') == workspace


def test_run_training_mkdnet_with_the_default_local_py_names_lasot_dir(workspace):
    result = run_script('ltr/run_training.py', ['mkdnet', 'mkdnet'], ltr=ltr_settings(workspace), check=False)
    assert 'FileNotFoundError: lasot_dir is not set in ltr/admin/local.py: set it to your LaSOT folder' \
        in result.stdout


# -------------------------------------------------------------------------------------- failed tracking runs
def test_run_tracker_summarises_one_repeated_failure_once_and_fails(synthetic_latot, workspace):
    from ltr_plugins import latot_data
    count = len(latot_data.split_sequence_names('test'))
    result = run_script('pytracking/run_tracker.py', ['mkdnet', 'mkdnet', '--dataset_name', 'latot_test'],
                        pytracking=pytracking_settings(workspace, latot_path=synthetic_latot.root), check=False)
    assert result.returncode == 1
    # One short line per sequence while tracking, the cause in full once in the summary.
    short = [line for line in result.stdout.splitlines() if line.startswith('Failed: ')]
    assert len(short) == count and all(len(line) <= len('Failed: ') + 120 for line in short)
    assert all(line.startswith('Failed: FileNotFoundError: Network file mkdnet.pth.tar not found') for line in short)
    summary = result.stdout[result.stdout.index('\nDone\n'):].splitlines()[2:]
    assert summary[0] == 'FAILED: {0} of {0} tracker runs on sequences did not finish (no results written for ' \
                         'them):'.format(count)
    assert len(summary) == 2
    assert summary[1].startswith('  mkdnet mkdnet: {} sequences ({}, '.format(count, synthetic_latot.tracked_sequence))
    assert ' and {} more): FileNotFoundError: Network file mkdnet.pth.tar not found'.format(count - 10) in summary[1]
    assert '(the network folder is settings.network_path in' in summary[1]


# ------------------------------------------------------------------------------------ malformed sequences
def _latot_copy(synthetic_latot, root: str) -> str:
    """``root`` with the test split linked from the synthetic LaTOT but the tracked sequence copied (to be edited);
    returns that sequence's name."""
    import shutil
    from ltr_plugins import latot_data
    os.makedirs(root)
    name = synthetic_latot.tracked_sequence
    for other in latot_data.split_sequence_names('test'):
        if other != name:
            os.symlink(os.path.join(synthetic_latot.root, other), os.path.join(root, other))
    shutil.copytree(os.path.join(synthetic_latot.root, name), os.path.join(root, name))
    return name


def _track(root: str, name: str, workspace: str):
    return run_script('pytracking/run_tracker.py', ['mkdnet', 'mkdnet', '--dataset_name', 'latot_test', '--sequence',
                                                   name], pytracking=pytracking_settings(workspace, latot_path=root),
                      check=False)


def test_run_tracker_refuses_a_first_box_outside_the_image(synthetic_latot, tmp_path, workspace):
    from ltr_plugins import latot_data
    root = str(tmp_path / 'latot')
    name = _latot_copy(synthetic_latot, root)
    annotation = latot_data.annotation_path(root, name)
    lines = open(annotation).read().splitlines()
    with open(annotation, 'w') as f:
        f.write('\n'.join(['5000,5000,10,10'] + lines[1:]) + '\n')
    frame = latot_data.list_frames(root, name)[0]
    width, height = latot_data.image_size(frame)
    result = _track(root, name, workspace)
    assert result.returncode == 1
    message = ("{}, line 1: the first frame's box 5000,5000,10,10 lies outside the first frame {} ({}x{} px), so no "
               'tracker can start from it; fix the box (x, y, w, h in pixels of that frame)'.format(
                   annotation, frame, width, height))
    assert result.stdout.splitlines()[-1] == '  mkdnet mkdnet: 1 sequence ({}): MalformedSequence: {}'.format(
        name, message)
    assert not os.path.exists(os.path.join(workspace, 'tracking_results', 'mkdnet', 'mkdnet', name + '.txt'))


def test_run_tracker_refuses_a_frame_of_another_size(synthetic_latot, tmp_path, workspace):
    import cv2
    import torch
    from ltr_plugins import latot_data
    from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network
    root = str(tmp_path / 'latot')
    name = _latot_copy(synthetic_latot, root)
    frames = latot_data.list_frames(root, name)
    first = cv2.imread(frames[0])
    cv2.imwrite(frames[4], cv2.resize(cv2.imread(frames[4]), (first.shape[1] // 2, first.shape[0] // 2)))
    torch.manual_seed(0)
    save_tracking_network(build_super_dimp(backbone_pretrained=False),
                          os.path.join(workspace, 'networks', 'mkdnet.pth.tar'))
    result = _track(root, name, workspace)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == (
        '  mkdnet mkdnet: 1 sequence ({0}): MalformedSequence: sequence {0}: frame 5 ({1}) is {2}x{3} px but the '
        "first frame ({4}) is {5}x{6} px; every frame of a sequence must have the first frame's size: replace or "
        'resize that frame'.format(name, frames[4], first.shape[1] // 2, first.shape[0] // 2, frames[0],
                                   first.shape[1], first.shape[0]))
    assert not os.path.exists(os.path.join(workspace, 'tracking_results', 'mkdnet', 'mkdnet', name + '.txt'))


def test_a_truncated_jpeg_is_named_before_it_is_decoded(synthetic_latot, tmp_path, workspace, use_pytracking_settings,
                                                         capfd):
    """libjpeg decodes a truncated file with only "Premature end of JPEG file" (no file named) on stderr."""
    import shutil
    from pytracking.evaluation import Tracker
    from ltr_plugins import latot_data
    from ltr_plugins.dataset import LaTOT
    root = str(tmp_path / 'latot')
    name = synthetic_latot.train_sequences[0]
    shutil.copytree(os.path.join(synthetic_latot.root, name), os.path.join(root, name))
    frame = latot_data.list_frames(root, name)[1]
    with open(frame, 'r+b') as f:
        f.truncate(os.path.getsize(frame) * 2 // 3)
    expected = ('cannot read image {}: the JPEG file is truncated (it ends before its end-of-image marker: an '
                'interrupted download or copy?); replace the file'.format(frame))
    use_pytracking_settings(pytracking_settings(workspace))
    capfd.readouterr()
    with pytest.raises(OSError) as error:
        Tracker('dimp', 'super_dimp')._read_image(frame)
    assert str(error.value) == expected
    with pytest.raises(OSError) as error:
        LaTOT(root, sequence_names=[name]).get_frames(0, [0, 1])
    assert str(error.value) == expected
    assert 'JPEG' not in capfd.readouterr().err
    Tracker('dimp', 'super_dimp')._read_image(latot_data.list_frames(root, name)[0])     # an intact frame reads


# --------------------------------------------------------------------------------------- names that are not UTF-8
def test_a_frame_path_that_is_not_utf8_reads_as_any_other(synthetic_latot, tmp_path, workspace,
                                                          use_pytracking_settings):
    import shutil
    import numpy as np
    from pytracking.evaluation import Tracker
    from ltr_plugins import latot_data
    original = latot_data.list_frames(synthetic_latot.root, synthetic_latot.tracked_sequence)[0]
    folder = os.fsdecode(os.fsencode(str(tmp_path)) + b'/seq\xff')
    os.makedirs(folder)
    copy = os.path.join(folder, '000001.jpg')
    shutil.copy(original, copy)
    use_pytracking_settings(pytracking_settings(workspace))
    tracker = Tracker('dimp', 'super_dimp')
    assert np.array_equal(tracker._read_image(copy), tracker._read_image(original))


def test_frame_file_names_that_are_not_utf8_are_refused_naming_the_folder(tmp_path):
    from ltr_plugins import latot_data
    root, name = str(tmp_path), _first_test_name()
    _sequence(root, name, ['000001.jpg', os.fsdecode(b'00000\xb2.jpg')], '1,1,5,5\n2,2,5,5\n')
    with pytest.raises(latot_data.LaTOTFormatError) as error:
        latot_data.list_frames(root, name)
    assert str(error.value) == ("LaTOT sequence {}: 1 frame file name(s) in {} are not UTF-8 (such as "
                                "b'00000\\xb2.jpg'): a frame is named by its number; rename them".format(
                                    name, os.path.join(root, name, 'img')))
