"""LaTOT for pytracking's evaluation: ``get_dataset('latot')``, ``'latot_test'``, ``'latot_train'``.

Attributes work as with pytracking's OTB / LaSOT / AVisT datasets, so ``get_dataset_attributes('latot_test')``,
``print_results_per_attribute`` and ``plot_attributes_radar`` run on LaTOT::

    from pytracking.evaluation import get_dataset, get_dataset_attributes
    datasets = get_dataset_attributes('latot_test')          # {'SV': [...], 'FM': [...], ...}
    fast_motion = get_dataset('latot_test', attribute='FM')   # short or long name
"""
import functools
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
from pytracking.evaluation.data import BaseDataset, Sequence, SequenceList

from ltr_plugins import latot_attributes, latot_data
from ltr_plugins.common.boxes import box_present

_ROOT_SETTING = 'settings.latot_path in pytracking/evaluation/local.py'
_DATASET_NAMES = {'all': 'latot', 'test': 'latot_test', 'train': 'latot_train'}

@functools.lru_cache(maxsize=4096)
def _derived_flags(root: str, name: str, annotation_identity: tuple, first_frame: str,
                   num_frames: int) -> latot_attributes.Flags:
    """The attributes derived from a sequence's boxes and image size, memoised on the annotation file's identity
    (path, size, modification time): pytracking's get_dataset_attributes builds one dataset per attribute, which
    would otherwise read every annotation and image header twelve times."""
    boxes = latot_data.read_sequence_annotation(root, name, num_frames=num_frames)
    return latot_attributes.derive_attributes(boxes, latot_data.image_size(first_frame))


def _local_file() -> str:
    import pytracking.evaluation
    return os.path.join(os.path.dirname(pytracking.evaluation.__file__), 'local.py')


class LaTOTDataset(BaseDataset):
    """LaTOT: 434 tiny-object sequences; the official 165-sequence test and 269-sequence train splits.

    Publication:
        Tiny Object Tracking: A Large-scale Dataset and A Baseline.
        Yabin Zhu, Chenglong Li, Yao Liu, Xiao Wang, Jin Tang, Bin Luo, Zhixiang Huang. IEEE TNNLS, 2023.

    The root comes from ``settings.latot_path`` in pytracking's ``local.py``. Every listed sequence must be on disk;
    ``allow_missing=True`` evaluates only those present. ``attribute`` (short or long name, Table II) keeps only the
    sequences with that challenge.

    Ground truth: the first frame's box must be able to start a tracker (finite, positive width and height): an
    error naming the annotation file and line otherwise, before anything is tracked. A frame whose box is not finite with positive width and height is 'target absent'
    (``target_visible`` False); non-finite boxes (``nan``) are given as ``0,0,0,0``, LaTOT's own way of writing an
    absent target, because pytracking's analysis refuses NaN ground truth for every dataset but UAV123. Frames flagged
    in ``<root>/absent/<seq>.txt`` or ``<root>/<seq>/absent.txt`` (:func:`latot_data.read_absent_flags`) are not
    visible either.

    Attributes (:mod:`ltr_plugins.latot_attributes`): flags from ``<seq>/attributes.txt``, else from
    ``<root>/attributes.csv``, else SV / FM / OV derived from the boxes and the image size. An attribute is available
    when every sequence of the dataset has a known flag for it; :meth:`get_attribute_names` lists the available
    attributes that at least one sequence has (an empty attribute would give pytracking's tools an empty dataset).
    """

    def __init__(self, split: str = 'test', allow_missing: bool = False, root: Optional[str] = None,
                 attribute: Optional[str] = None):
        super().__init__()
        if root is None:
            setting = '{} ({})'.format(_ROOT_SETTING, _local_file())
            root = getattr(self.env_settings, 'latot_path', '')
        else:
            setting = 'the root given to LaTOTDataset (--latot-path)'
        self.base_path = latot_data.check_root(root, setting)
        self.split = split
        self.name = _DATASET_NAMES.get(split, 'latot_{}'.format(split))
        self.sequence_list = latot_data.select_existing(self.base_path, latot_data.split_sequence_names(split),
                                                        allow_missing, setting)
        self._flags: Optional[Dict[str, latot_attributes.Flags]] = None
        self._flag_sources: Dict[str, str] = {}
        self.attribute = None
        if attribute is not None:
            self.attribute = latot_attributes.short_name(attribute)
            self._check_available(self.attribute)
            self.sequence_list = latot_attributes.members(self.sequence_attributes(), self.attribute)

    def get_sequence_list(self) -> SequenceList:
        return SequenceList([self._construct_sequence(name) for name in self.sequence_list])

    def _construct_sequence(self, name: str) -> Sequence:
        frames = latot_data.list_frames(self.base_path, name)
        boxes = latot_data.read_sequence_annotation(self.base_path, name, num_frames=len(frames))
        latot_data.check_initial_box(boxes, latot_data.annotation_path(self.base_path, name))
        finite = np.all(np.isfinite(boxes), axis=1)
        boxes[~finite] = 0.0
        visible = box_present(boxes)
        absent = latot_data.read_absent_flags(self.base_path, name, len(boxes))
        if absent is not None:
            visible &= ~absent
        sequence = Sequence(name, frames, 'latot', boxes, object_class=latot_data.sequence_category(name),
                            target_visible=visible)
        sequence.annotation_file = latot_data.annotation_path(self.base_path, name)   # named by frame_checks
        return sequence

    def __len__(self) -> int:
        return len(self.sequence_list)

    # Attributes ------------------------------------------------------------------------------------------------

    def sequence_attributes(self) -> Dict[str, latot_attributes.Flags]:
        """``{sequence: {attribute: True/False/None}}`` for the dataset's sequences (read or derived once)."""
        if self._flags is None:
            table = latot_attributes.load_table(self.base_path)
            flags, sources = {}, {}
            for name in self.sequence_list:
                flags[name], sources[name] = self._sequence_flags(name, table)
            self._flags, self._flag_sources = flags, sources
        return {name: self._flags[name] for name in self.sequence_list}

    def _sequence_flags(self, name: str, table) -> Tuple[latot_attributes.Flags, str]:
        if os.path.isfile(latot_attributes.flag_file_path(self.base_path, name)):
            # A flag file answers everything: no need to read the boxes or the images.
            return latot_attributes.sequence_flags(self.base_path, name, np.zeros((0, 4)))
        frames = latot_data.list_frames(self.base_path, name)
        annotation = latot_data.annotation_path(self.base_path, name)
        if table is None or name not in table:
            stat = os.stat(annotation) if os.path.isfile(annotation) else None
            identity = (annotation, stat and stat.st_size, stat and stat.st_mtime_ns)
            return dict(_derived_flags(self.base_path, name, identity, frames[0], len(frames))), 'derived'
        boxes = latot_data.read_sequence_annotation(self.base_path, name, num_frames=len(frames))
        return latot_attributes.sequence_flags(self.base_path, name, boxes, latot_data.image_size(frames[0]), table)

    def attribute_sources(self) -> Dict[str, str]:
        """Where each sequence's flags came from: 'file', 'table' or 'derived'."""
        self.sequence_attributes()
        return {name: self._flag_sources[name] for name in self.sequence_list}

    def attribute_availability(self) -> Dict[str, bool]:
        return latot_attributes.availability(self.sequence_attributes())

    def get_attribute_names(self, mode: str = 'short') -> List[str]:
        """The available attributes that at least one sequence has, in Table II order; 'short' or 'long' names."""
        flags = self.sequence_attributes()
        available = self.attribute_availability()
        names = [a for a in latot_attributes.ATTRIBUTES if available[a] and latot_attributes.members(flags, a)]
        return names if mode == 'short' else [latot_attributes.LONG_NAMES[a] for a in names]

    def _check_available(self, attribute: str) -> None:
        flags = self.sequence_attributes()
        unknown = [name for name, f in flags.items() if f[attribute] is None]
        if unknown:
            shown = ', '.join(unknown[:10]) + (' and {} more'.format(len(unknown) - 10) if len(unknown) > 10 else '')
            raise ValueError(
                "LaTOT attribute {} ({}) is unavailable: {} of {} sequences have no flag for it ({}). Only {} can be "
                "derived from the boxes; give the others in <sequence>/{} or {}.".format(
                    attribute, latot_attributes.LONG_NAMES[attribute], len(unknown), len(flags), shown,
                    '/'.join(latot_attributes.DERIVABLE), latot_attributes.FLAG_FILE_NAME,
                    latot_attributes.table_path(self.base_path)))
