"""The 12 LaTOT attributes: names, flag files and tables (with their errors), and the flags derived from boxes."""
import numpy as np
import pytest

from ltr_plugins import latot_attributes as A
from ltr_plugins.common.boxes import box_present

IMAGE = (100, 80)


def _write(tmp_path, text, name='attributes.txt'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_names_follow_table_two():
    assert A.ATTRIBUTES == ('SV', 'FM', 'OV', 'IV', 'CM', 'MB', 'BC', 'SO', 'PO', 'FO', 'AM', 'LI')
    assert A.short_name('fast motion') == 'FM' and A.short_name('Out-of-View') == 'OV' and A.short_name('li') == 'LI'
    with pytest.raises(ValueError, match="Unknown LaTOT attribute 'XX'"):
        A.short_name('XX')


# Flag files ---------------------------------------------------------------------------------------------------------

def test_flag_file_in_table_two_order(tmp_path):
    flags = A.read_flag_file(_write(tmp_path, '1,0,0,1,0,0,0,0,0,0,0,1\n'))
    assert [a for a in A.ATTRIBUTES if flags[a]] == ['SV', 'IV', 'LI']
    assert A.read_flag_file(_write(tmp_path, '# comment\n\n1 0 0 1\t0 0 0 0 0 0 0 1\n')) == flags


def test_flag_file_with_a_header_in_any_order(tmp_path):
    header = ','.join(reversed(A.ATTRIBUTES))
    flags = A.read_flag_file(_write(tmp_path, header + '\n1,0,0,0,0,0,0,0,0,0,0,1\n'))
    assert [a for a in A.ATTRIBUTES if flags[a]] == ['SV', 'LI']


@pytest.mark.parametrize('text, message', [
    ('', 'no flags in the file'),
    ('1,0,0\n', 'line 1: expected 12 flags'),
    ('1,0,0,1,0,0,0,0,0,0,0,2\n', 'line 1: the flag for LI must be 0 or 1'),
    ('\n1,0,0,1,0,0,0,0,0,0,0,1\n0,0,0,0,0,0,0,0,0,0,0,0\n', 'line 3: expected exactly one line of flags'),
    ('SV,FM,XX\n1,0,0\n', "line 1: unknown attribute 'XX'"),
    ('SV,SV,OV,IV,CM,MB,BC,SO,PO,FO,AM,LI\n' + '0,' * 11 + '0\n', 'line 1: attribute\\(s\\) SV named twice'),
    ('SV,FM,OV\n1,0,0\n', 'line 1: the header must name all 12 attributes'),
])
def test_flag_file_errors_name_file_and_line(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(A.AttributeFormatError, match=message) as error:
        A.read_flag_file(path)
    assert path in str(error.value)


def test_table_file(tmp_path):
    table = A.read_attribute_table(_write(tmp_path, 'sequence,FO,SV\nbird1,1,0\ncar2 0 1\n', 'attributes.csv'))
    assert table['bird1']['FO'] is True and table['bird1']['SV'] is False and table['car2']['SV'] is True
    assert table['bird1']['IV'] is None      # columns the table leaves out stay unavailable


@pytest.mark.parametrize('text, message', [
    ('', 'empty attribute table'),
    ('seq,SV\nbird1,1\n', 'line 1: the header must start with "sequence"'),
    ('sequence,SV\nbird1,1,0\n', 'line 2: expected a sequence name and 1 flags'),
    ('sequence,SV\nbird1,1\nbird1,0\n', 'line 3: sequence bird1 is listed twice'),
    ('name,SV\nbird1,y\n', 'line 2: the flag for SV must be 0 or 1'),
])
def test_table_errors_name_file_and_line(tmp_path, text, message):
    path = _write(tmp_path, text, 'attributes.csv')
    with pytest.raises(A.AttributeFormatError, match=message) as error:
        A.read_attribute_table(path)
    assert path in str(error.value)


def test_sources_in_order_file_table_derived(tmp_path):
    boxes = np.array([[10, 10, 5, 5], [30, 10, 5, 5]], float)      # moves 20 px > 5 px: FM
    (tmp_path / 'a').mkdir()
    (tmp_path / 'a' / 'attributes.txt').write_text('0,0,0,1,0,0,0,0,0,0,0,0\n')
    table = {'a': {**A.unavailable(), 'FO': True}, 'b': {**A.unavailable(), 'FO': True, 'FM': False}}
    flags, source = A.sequence_flags(str(tmp_path), 'a', boxes, IMAGE, table)
    assert source == 'file' and flags['IV'] and not flags['FO'] and not flags['FM']
    flags, source = A.sequence_flags(str(tmp_path), 'b', boxes, IMAGE, table)
    assert source == 'table' and flags['FO'] and flags['FM'] is False      # the table's word wins
    assert flags['SV'] is False and flags['OV'] is False and flags['IV'] is None   # the rest derived / unknown
    flags, source = A.sequence_flags(str(tmp_path), 'c', boxes, IMAGE, table)
    assert source == 'derived' and flags['FM'] and flags['IV'] is None


# Derivation ---------------------------------------------------------------------------------------------------------

def _still(n, size=10.0):
    return np.tile([40.0, 30.0, size, size], (n, 1))


def test_scale_variation_within_one_second():
    boxes = _still(40)
    boxes[30, 2:] = [10.0, 20.01]       # area x2.001, 30 frames after frame 0
    assert A.derive_attributes(boxes, IMAGE)['SV']
    boxes[30, 2:] = [10.0, 20.0]        # exactly x2: inside [0.5, 2]
    assert not A.derive_attributes(boxes, IMAGE)['SV']
    step = _still(40)
    step[31:, 2:] = [10.0, 25.0]        # a x2.5 step between frames 30 and 31: within a second
    assert A.derive_attributes(step, IMAGE)['SV']
    slow = _still(200)
    slow[:, 3] = 10.0 * np.exp(np.linspace(0, np.log(4), 200))   # x4 overall, under x2 per second
    assert not A.derive_attributes(slow, IMAGE)['SV']
    blink = _still(40)
    blink[10] = 0.0                     # an absent frame is no scale change
    assert not A.derive_attributes(blink, IMAGE)['SV']


def test_fast_motion_against_the_largest_side():
    boxes = _still(3)
    boxes[:, 2] = 4.0                   # 4 x 10 box: largest side 10
    boxes[1, 0] += 9.9
    assert not A.derive_attributes(boxes, IMAGE)['FM']
    boxes[2, 0] = boxes[1, 0] + 10.01
    assert A.derive_attributes(boxes, IMAGE)['FM']
    gap = _still(3)
    gap[1] = 0.0
    gap[2, 0] += 30                     # a jump across an absent frame is not between consecutive frames
    assert not A.derive_attributes(gap, IMAGE)['FM']


@pytest.mark.parametrize('box, expected', [
    ([40, 30, 10, 10], False), ([0, 30, 10, 10], True), ([0.004, 30, 10, 10], True), ([0.01, 30, 10, 10], False),
    ([90, 30, 10, 10], True), ([40, 70, 10, 10], True), ([-3, 30, 10, 10], True), ([40, 69.99, 10, 10], False)])
def test_out_of_view_at_the_border(box, expected):
    boxes = _still(3)
    boxes[1] = box
    assert A.derive_attributes(boxes, IMAGE)['OV'] is expected


def test_out_of_view_without_a_box_and_without_the_image_size():
    boxes = _still(3)
    assert A.derive_attributes(boxes)['OV'] is None          # needs the image size
    boxes[2] = 0.0
    assert A.derive_attributes(boxes)['OV'] is True          # a frame without a box: out of view
    assert A.derive_attributes(boxes, IMAGE)['OV'] is True
    assert all(A.derive_attributes(boxes, IMAGE)[a] is None for a in A.ATTRIBUTES if a not in A.DERIVABLE)


def _leaving_left(n=8, step=3.0):
    """A 10 x 10 target sliding out through the left border of IMAGE: its full boxes and its clipped annotations."""
    full = np.array([[9.0 - step * t, 30.0, 10.0, 10.0] for t in range(n)])
    x0 = np.clip(full[:, 0], 0, None)
    annotation = np.stack([x0, full[:, 1], full[:, 0] + full[:, 2] - x0, full[:, 3]], 1)
    annotation[annotation[:, 2] < 1] = 0.0          # under a pixel inside: absent
    return full, annotation


def test_clipped_annotations_against_the_full_extent():
    """The same motion seen as clipped annotations (what LaTOT ships) and as the target's full extent."""
    full, annotation = _leaving_left()
    present = box_present(annotation)
    assert present.tolist() == [True] * 7 + [False]
    # Clipping shrinks the box below half its area: scale variation on annotations, none on the full extent.
    assert A.scale_variation(annotation)
    assert not A.scale_variation(full, present=np.ones(len(full), bool))
    # The shrinking clipped box moves its centre by less than its side; the full extent neither: no fast motion.
    assert not A.fast_motion(annotation) and not A.fast_motion(full, present=present)
    assert A.out_of_view(annotation, IMAGE) and A.out_of_view(full, IMAGE, present=present, clipped=False)


@pytest.mark.parametrize('x, clipped, expected', [
    (0.0, True, True), (0.004, True, True), (0.0, False, False), (-0.01, False, True), (0.01, True, False)])
def test_out_of_view_touching_counts_only_for_clipped_boxes(x, clipped, expected):
    boxes = _still(3)
    boxes[1, 0] = x
    assert A.out_of_view(boxes, IMAGE, clipped=clipped) is expected


def test_presence_override_for_fast_motion():
    boxes = _still(3)
    boxes[2, 0] += 30                   # a jump of 30 px > 10 px between frames 2 and 3
    assert A.fast_motion(boxes)
    assert not A.fast_motion(boxes, present=np.array([True, True, False]))   # frame 3 out of view
    assert not A.out_of_view(boxes) and A.out_of_view(boxes, present=np.array([True, True, False]))


def test_availability_and_members():
    flags = {'a': {**A.unavailable(), 'SV': True, 'FO': True}, 'b': {**A.unavailable(), 'SV': False}}
    available = A.availability(flags)
    assert available['SV'] and not available['FO'] and not available['IV']
    assert A.members(flags, 'Scale Variation') == ['a']
