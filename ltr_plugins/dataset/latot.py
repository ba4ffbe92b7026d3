"""LaTOT as an ltr training dataset (for ``mkdnet_latot_ft`` and your own training mixes)."""
from collections import OrderedDict
from typing import Dict, List, Optional

import torch
from ltr.admin.environment import env_settings
from ltr.data.image_loader import jpeg4py_loader
from ltr.dataset.base_video_dataset import BaseVideoDataset

from ltr_plugins import latot_data
from ltr_plugins.common.boxes import box_present
from ltr_plugins.image_files import check_image_file


class LaTOT(BaseVideoDataset):
    """LaTOT sequences for ltr's samplers: the official train split by default.

    Sequences are sorted by name so that sampling with a fixed seed is reproducible; each sequence's frame list and
    boxes are read once, on first use, and kept (listing a folder and parsing its annotation for every sample would
    dominate loading time).
    The root is ``settings.env.latot_dir`` (ltr/admin/local.py) unless given.
    """

    def __init__(self, root: Optional[str] = None, image_loader=jpeg4py_loader, split: str = 'train',
                 sequence_names: Optional[List[str]] = None, allow_missing: bool = False):
        setting = 'latot_dir in ltr/admin/local.py'
        root = env_settings().latot_dir if root is None else root
        super().__init__('LaTOT', latot_data.check_root(root, setting), image_loader)
        names = latot_data.split_sequence_names(split) if sequence_names is None else list(sequence_names)
        self.sequence_list = sorted(latot_data.select_existing(self.root, names, allow_missing, setting))
        self.seq_per_class: Dict[str, List[int]] = {}
        for seq_id, name in enumerate(self.sequence_list):
            self.seq_per_class.setdefault(latot_data.sequence_category(name), []).append(seq_id)
        self.class_list = sorted(self.seq_per_class)
        self._frames: Dict[int, List[str]] = {}
        self._annotations: Dict[int, torch.Tensor] = {}

    def get_name(self) -> str:
        return 'latot'

    def has_class_info(self) -> bool:
        return True

    def has_occlusion_info(self) -> bool:
        return False

    def get_num_sequences(self) -> int:
        return len(self.sequence_list)

    def get_num_classes(self) -> int:
        return len(self.class_list)

    def get_class_list(self) -> List[str]:
        return self.class_list

    def get_sequences_in_class(self, class_name: str) -> List[int]:
        return self.seq_per_class[class_name]

    def _frame_paths(self, seq_id: int) -> List[str]:
        if seq_id not in self._frames:
            self._frames[seq_id] = latot_data.list_frames(self.root, self.sequence_list[seq_id])
        return self._frames[seq_id]

    def _boxes(self, seq_id: int) -> torch.Tensor:
        if seq_id not in self._annotations:
            boxes = latot_data.read_sequence_annotation(self.root, self.sequence_list[seq_id],
                                                        num_frames=len(self._frame_paths(seq_id)))
            self._annotations[seq_id] = torch.tensor(boxes, dtype=torch.float32)
        return self._annotations[seq_id]

    def get_sequence_info(self, seq_id: int) -> dict:
        bbox = self._boxes(seq_id).clone()
        valid = box_present(bbox)
        return {'bbox': bbox, 'valid': valid, 'visible': valid.clone().byte()}

    def get_class_name(self, seq_id: int) -> str:
        return latot_data.sequence_category(self.sequence_list[seq_id])

    def get_frames(self, seq_id: int, frame_ids: List[int], anno: Optional[dict] = None):
        paths = self._frame_paths(seq_id)
        for f in frame_ids:
            check_image_file(paths[f])          # a truncated JPEG would decode as grey rows, naming no file
        frames = [self.image_loader(paths[f]) for f in frame_ids]
        for f, frame in zip(frame_ids, frames):
            if frame is None:   # ltr's loaders print an error and return None for an unreadable file
                raise OSError('cannot read image {}: missing, unreadable or corrupt; replace the file'.format(paths[f]))
        if anno is None:
            anno = self.get_sequence_info(seq_id)
        anno_frames = {key: [value[f, ...].clone() for f in frame_ids] for key, value in anno.items()}
        object_meta = OrderedDict({'object_class_name': self.get_class_name(seq_id), 'motion_class': None,
                                   'major_class': None, 'root_class': None, 'motion_adverb': None})
        return frames, anno_frames, object_meta
