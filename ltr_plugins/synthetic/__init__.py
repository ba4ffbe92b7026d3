"""Synthetic tiny-object tracking sequences in the LaTOT layout, for tests, demos and benchmarks without real data.

Tiny targets (about 4-20 px) at sub-pixel positions on cluttered backgrounds, with LaTOT's challenges, made from one
integer seed and written as LaTOT is laid out (6-digit JPEG frames, ``x,y,w,h`` with two decimals, ``attributes.txt``).
Boxes are clipped to the image; a target less than a pixel inside it is ``0,0,0,0``; a fully occluded one keeps its
box; frame 1 shows the target whole and unoccluded. SV, FM, OV, PO and FO are measured on the ground truth with
LaTOT's definitions, the other flags are what the spec asked for (always realised). Named child streams of one
``SeedSequence`` (:mod:`.streams`) drive each part, so switching one effect leaves the rest as it was, and the same
seed gives byte-identical files. Parts: :mod:`.spec`, :mod:`.streams`, :mod:`.motion`, :mod:`.plan`, :mod:`.measure`,
:mod:`.render`, :mod:`.writing`, :mod:`.command_line`; usage in docs/synthetic.md.
"""
from ltr_plugins.latot_attributes import ATTRIBUTES
from ltr_plugins.synthetic.command_line import build_parser, main
from ltr_plugins.synthetic.measure import BOX_ATTRIBUTES, measure_box_attributes
from ltr_plugins.synthetic.plan import SequencePlan, generate_boxes, plan_sequence
from ltr_plugins.synthetic.render import generate_sequence, render_frames
from ltr_plugins.synthetic.spec import (ATTRIBUTE_DESCRIPTIONS, DEFAULT_IMAGE_SIZE, DEFAULT_TARGET_SIZE,
                                               EFFECT_PROBABILITIES, MAX_FRAMES, MIN_FRAMES_FOR_EFFECTS, SHAPES,
                                               SequenceSpec, category_of, random_spec)
from ltr_plugins.synthetic.writing import (DEFAULT_JPEG_QUALITY, SequenceInfo, format_attributes, format_boxes,
                                                  read_names, write_dataset, write_sequence)

__all__ = [
    'ATTRIBUTES', 'ATTRIBUTE_DESCRIPTIONS', 'BOX_ATTRIBUTES', 'EFFECT_PROBABILITIES', 'SHAPES',
    'MIN_FRAMES_FOR_EFFECTS', 'SequenceSpec', 'SequencePlan', 'SequenceInfo', 'random_spec', 'plan_sequence',
    'generate_boxes', 'generate_sequence', 'render_frames', 'measure_box_attributes', 'format_boxes',
    'format_attributes', 'category_of', 'write_sequence', 'write_dataset', 'read_names', 'main',
]
