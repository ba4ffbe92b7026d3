"""The training data path as PyTorch recommends it on CUDA: batches in pinned memory, copied to the GPU without
blocking the host, and loader workers kept alive from one epoch to the next.

``settings.pin_memory`` (default True) pins the loader's batches when training on CUDA, and the trainer copies them
with ``non_blocking=True`` (:class:`DeviceBatches`). ``settings.persistent_workers`` (default False) keeps the
loader's workers for the whole run; as a worker then no longer starts each epoch from the epoch's seed, every sample
is seeded from ``settings.seed``, the epoch, the rank and its index (:class:`SeededIndices`, :class:`SeededSamples`):
a resumed run still repeats an uninterrupted one, but draws other samples than without the setting, which is why it
is off by default. docs/training.md documents both.
"""
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
from ltr.data import LTRLoader
from torch.utils.data import DataLoader, Sampler


def loader_options(settings, device: torch.device) -> Dict[str, bool]:
    """The loader options ``settings`` ask for, for training on ``device``."""
    return {'pin_memory': bool(getattr(settings, 'pin_memory', True)) and torch.device(device).type == 'cuda',
            'persistent_workers': bool(getattr(settings, 'persistent_workers', False))}


class _DataLoaderOptions(DataLoader):
    """Passes the DataLoader options that ``LTRLoader.__init__`` does not take (``persistent_workers``) on to
    DataLoader: in :class:`PersistentLTRLoader`'s method order it stands between LTRLoader and DataLoader."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, persistent_workers=True, **kwargs)


class PersistentLTRLoader(LTRLoader, _DataLoaderOptions):
    """ltr's ``LTRLoader`` whose workers live for the whole run (``persistent_workers``), on :class:`SeededSamples`
    drawn in the order of a :class:`SeededIndices`."""

    def __init__(self, name: str, dataset, **kwargs: Any):
        kwargs.pop('shuffle', None)   # the samples are random draws: their order means nothing
        super().__init__(name, SeededSamples(dataset), sampler=SeededIndices(len(dataset)), **kwargs)


def build_loader(name: str, dataset, *, persistent_workers: bool = False, **kwargs: Any) -> LTRLoader:
    """ltr's ``LTRLoader(name, dataset, **kwargs)``, or a :class:`PersistentLTRLoader` with ``persistent_workers``
    (and workers to keep)."""
    if persistent_workers and kwargs.get('num_workers', 0) > 0:
        return PersistentLTRLoader(name, dataset, **kwargs)
    return LTRLoader(name, dataset, **kwargs)


class SeededIndices(Sampler):
    """The indices ``0 .. length-1``, each paired with the entropy its sample is seeded from: the epoch's
    (:meth:`set_epoch`; drawn from torch's generator when none was set) and the index."""

    def __init__(self, length: int):
        super().__init__()
        self.length = length
        self.entropy: Optional[Tuple[int, ...]] = None

    def set_epoch(self, entropy: Sequence[int]) -> None:
        """The entropy of the next pass (e.g. seed, epoch, rank), as DistributedSampler's ``set_epoch``."""
        self.entropy = tuple(int(value) for value in entropy)

    def __iter__(self) -> Iterator[Tuple[Tuple[int, ...], int]]:
        entropy = self.entropy if self.entropy is not None else (int(torch.randint(2 ** 62, ())),)
        self.entropy = None
        return iter([(entropy, index) for index in range(self.length)])

    def __len__(self) -> int:
        return self.length


class SeededSamples(torch.utils.data.Dataset):
    """``dataset[index]`` with Python's, NumPy's and torch's generators seeded first from ``(entropy, index)``
    (a :class:`SeededIndices` element): the sample is the same in whatever worker draws it."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Tuple[Tuple[int, ...], int]):
        from ltr_plugins.trainers.mkdnet import seed_everything   # here: that module imports this one
        entropy, index = key
        sample_seed = np.random.SeedSequence(list(entropy)).generate_state(1)[0]
        seed_everything(int(sample_seed), index)
        return self.dataset[index]


def set_epoch(loader, entropy: Sequence[int]) -> None:
    """Tells a loader built by :func:`build_loader` which pass comes next (nothing for ltr's own loaders)."""
    if isinstance(getattr(loader, 'sampler', None), SeededIndices):
        loader.sampler.set_epoch(entropy)


def to_device(batch, device: torch.device):
    """``batch`` (a TensorDict, tensor, ...) on ``device``, copied without blocking the host (from pinned memory
    the copy runs asynchronously; from pageable memory it is as a blocking copy)."""
    return batch.to(device, non_blocking=True)


class DeviceBatches:
    """``loader``'s batches on ``device`` (:func:`to_device`); everything else (name, training, len, ...) is the
    loader's. ltr's trainer copies each batch with a blocking ``data.to(device)``; MKDNet's trainer hands it this."""

    def __init__(self, loader, device: torch.device):
        self.loader, self.device = loader, device

    def __iter__(self) -> Iterator:
        for batch in self.loader:
            yield to_device(batch, self.device)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
