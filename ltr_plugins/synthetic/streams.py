"""Named random streams: everything a sequence draws comes from one integer seed through numpy's ``SeedSequence``.

Each part of a sequence has its own child stream, so switching one effect on or off leaves the others as they were
(the background does not change when LI is switched on). The children are addressed by a fixed key, never by the
mutable spawn counter, so they never depend on call order. The names and their order are part of the
reproducibility contract: append only.
"""
from typing import Dict

import numpy as np

#: Streams the planner draws from; a re-drawn attempt (an effect not realised yet) continues them.
PLAN_STREAMS = ('size', 'events', 'motion', 'camera', 'distractors', 'occluder', 'iv', 'li', 'blur')
#: Streams that start afresh on every attempt, so a sequence looks the same whichever attempt realises its effects.
LOOK_STREAMS = ('looks', 'scene', 'appearance', 'render')

#: In a dataset, sequence k draws its spec and its generation seed from these children of (seed, k).
DATASET_SPEC_STREAM = 0
DATASET_SEED_STREAM = 1


def child(seed: int, *key: int) -> np.random.SeedSequence:
    """Child ``key`` of a seed without the mutable spawn counter (so it never depends on call order)."""
    return np.random.SeedSequence(seed, spawn_key=tuple(key))


def plan_generators(seed: int) -> Dict[str, np.random.Generator]:
    """One generator per plan stream."""
    return {name: np.random.default_rng(child(seed, index)) for index, name in enumerate(PLAN_STREAMS)}


def look_key(name: str) -> tuple:
    """The child key of a look stream (after the plan streams)."""
    return len(PLAN_STREAMS), LOOK_STREAMS.index(name)


def look_generator(seed: int, name: str) -> np.random.Generator:
    """A fresh generator for a look stream ('looks', 'scene', 'appearance')."""
    return np.random.default_rng(child(seed, *look_key(name)))


def render_seed(seed: int) -> int:
    """The seed of the renderer's generator (background texture, noise, occluder texture)."""
    return int(child(seed, *look_key('render')).generate_state(1, np.uint32)[0])


def dataset_generation_seed(seed: int, k: int) -> int:
    """The 64-bit generation seed of sequence k of a dataset."""
    state = child(seed, k, DATASET_SEED_STREAM).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def dataset_spec_generator(seed: int, k: int) -> np.random.Generator:
    """The generator that draws sequence k's category, length and effects."""
    return np.random.default_rng(child(seed, k, DATASET_SPEC_STREAM))
