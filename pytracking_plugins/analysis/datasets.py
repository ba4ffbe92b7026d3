"""What the analysis needs of a dataset: its sequences and its attributes, recognised by the dataset's type.

- :class:`~pytracking_plugins.evaluation.latotdataset.LaTOTDataset`: attributes from its flags (flag files, table or
  derived), with the reason when one is unavailable;
- any other pytracking ``BaseDataset`` given by name: attributes as pytracking's ``get_dataset_attributes`` finds
  them (datasets that define ``get_attribute_names``: OTB, LaSOT, AVisT...), none otherwise;
- a list of pytracking ``Sequence`` objects: no attributes unless the caller gives flags
  (:func:`attribute_infos_from_flags`).
"""
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

from ltr_plugins import latot_attributes


class AttributeInfo(NamedTuple):
    short: str
    long: str
    available: bool
    members: tuple            # sequence names with the attribute (among the dataset's sequences)
    reason: Optional[str]     # why it is unavailable


class DatasetView(NamedTuple):
    name: str
    sequences: list           # pytracking Sequence objects
    attributes: Dict[str, AttributeInfo]
    absent: Optional[Dict[str, Any]] = None   # LaTOT: {sequence: absent flags or None}; else from target_visible


def latot_absent_flags(dataset, sequences) -> Dict[str, Any]:
    """The absent flags of a LaTOTDataset's sequences (None: the sequence has no flag file)."""
    from ltr_plugins import latot_data
    return {s.name: latot_data.read_absent_flags(dataset.base_path, s.name, len(s.ground_truth_rect))
            for s in sequences}


def latot_attribute_infos(dataset) -> Dict[str, AttributeInfo]:
    """Attributes of a LaTOTDataset: available when every sequence has a known flag."""
    flags = dataset.sequence_attributes()
    sources = dataset.attribute_sources()
    infos = {}
    for short in latot_attributes.ATTRIBUTES:
        unknown = [name for name, f in flags.items() if f[short] is None]
        reason = None
        if unknown:
            kinds = sorted({sources[name] for name in unknown})
            reason = ('no flag for {} of {} sequences (flags {}); only {} follow from the boxes'.format(
                len(unknown), len(flags), '/'.join(kinds), '/'.join(latot_attributes.DERIVABLE))
                if short not in latot_attributes.DERIVABLE else
                'not derivable for {} of {} sequences'.format(len(unknown), len(flags)))
        infos[short] = AttributeInfo(short, latot_attributes.LONG_NAMES[short], not unknown,
                                     tuple(latot_attributes.members(flags, short)) if not unknown else (), reason)
    return infos


def pytracking_attribute_infos(name: str, dataset, sequence_names: Sequence[str]) -> Dict[str, AttributeInfo]:
    """Attributes of a pytracking dataset that lists them (``get_attribute_names``), the way pytracking reads them."""
    from pytracking.evaluation.datasets import load_dataset
    if not hasattr(dataset, 'get_attribute_names'):     # pytracking's own test (get_dataset_attributes)
        return {}
    shorts, longs = dataset.get_attribute_names('short'), dataset.get_attribute_names('long')
    present = set(sequence_names)
    infos = {}
    for short, long in zip(shorts, longs):
        members = [s.name for s in load_dataset(name, attribute=short).get_sequence_list()]
        infos[short] = AttributeInfo(short, long, True, tuple(m for m in members if m in present), None)
    return infos


def attribute_infos_from_flags(flags_by_sequence: Mapping[str, latot_attributes.Flags]) -> Dict[str, AttributeInfo]:
    """Attribute infos for a plain list of sequences, from ``{sequence: flags}``."""
    available = latot_attributes.availability(flags_by_sequence)
    return {a: AttributeInfo(a, latot_attributes.LONG_NAMES[a], available[a],
                             tuple(latot_attributes.members(flags_by_sequence, a)) if available[a] else (),
                             None if available[a] else 'no flag for some sequences')
            for a in latot_attributes.ATTRIBUTES}


def load_dataset_view(dataset: Union[str, Any], **dataset_kwargs) -> DatasetView:
    """Sequences and attributes of a dataset given by pytracking name, dataset object or list of Sequences."""
    from pytracking.evaluation.data import BaseDataset
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset

    dataset_object = dataset
    if isinstance(dataset, str):
        from pytracking.evaluation.datasets import load_dataset
        dataset_object = load_dataset(dataset, **dataset_kwargs)
    if isinstance(dataset_object, BaseDataset):
        sequences: List = list(dataset_object.get_sequence_list())
        name = dataset if isinstance(dataset, str) else getattr(dataset_object, 'name', type(dataset_object).__name__)
    else:
        sequences = list(dataset_object)
        name = sequences[0].dataset if sequences else 'dataset'
    names = [s.name for s in sequences]
    attributes: Dict[str, AttributeInfo] = {}
    absent = None
    if isinstance(dataset_object, LaTOTDataset):
        attributes = latot_attribute_infos(dataset_object)
        absent = latot_absent_flags(dataset_object, sequences)
    elif isinstance(dataset_object, BaseDataset) and isinstance(dataset, str):
        attributes = pytracking_attribute_infos(dataset, dataset_object, names)
    return DatasetView(name, sequences, attributes, absent)
