"""Synthetic tiny-object tracking sequences in the LaTOT layout.

No real LaTOT data can be downloaded everywhere, yet tests, demos and benchmarks need data that looks like it: tiny
targets (about 4-20 px) at sub-pixel positions on cluttered backgrounds, with LaTOT's challenges (similar
distractors, motion blur, scale change, occlusion, leaving the view, illumination change, camera motion).  This
module makes such sequences from one integer seed, reproducibly, and writes them exactly as LaTOT is laid out::

    <root>/<seq>/img/000001.jpg, 000002.jpg, ...   JPEG frames, 6-digit 1-based names; sorted order = frame order
    <root>/<seq>/<seq>.txt                         one line per frame: "x,y,w,h", each with exactly two decimals
    <root>/<seq>/attributes.txt                    one line of 12 comma-separated 0/1 flags, in the order
                                                   SV,FM,OV,IV,CM,MB,BC,SO,PO,FO,AM,LI (see ATTRIBUTES)

Sequence names look like LaTOT's: a category followed by a number (``bird3``, ``drone12``); the category is the
name without its trailing digits.  Names from a split list (``settings/latot/test.txt``) can be used as they are.

Annotation conventions
----------------------
* Coordinates are continuous pixel coordinates with the origin at the top-left corner of the image: pixel column i
  covers [i, i+1).  A box is (x, y, w, h): top-left corner, width and height, in pixels, as floats.
* A target partly outside the image has its box clipped to the image.
* A target entirely out of the view is written ``0.00,0.00,0.00,0.00`` (absent; pytracking treats w, h <= 0 as
  invalid).  "Entirely" means that less than one pixel of it is inside the image in either direction (a sliver
  under one pixel wide is not perceptible and cannot be annotated sensibly).
* A fully occluded target keeps its true box (and the sequence gets the FO flag).
* Frame 1 always shows the target fully inside the image and unoccluded, so a tracker can be initialised there.
* Unclipped boxes always have width and height within the sequence's target size range (``SequenceSpec``).

Attributes
----------
``attributes.txt`` holds what the generator knows is in the sequence.  The box-measurable attributes (SV, FM, OV,
PO, FO) are measured on the generated ground truth with LaTOT's definitions (see ``measure_box_attributes``), so
they also report what other effects caused: an occluder that sweeps over the target covers it partly on its way in,
so FO normally comes with PO; an abrupt camera jump moves a tiny target by more than its size, which is FM.  The
rendering-only attributes (IV, CM, MB, BC, SO, LI) and AM are those the spec asked for.  An effect asked for in a
spec is always realised: the generator re-draws the trajectory until it is.

Reproducibility
---------------
Everything comes from one integer seed through numpy's ``SeedSequence``: separate, named child streams
(:mod:`.streams`) drive sizes, motion, camera, lighting, occluders, and so on, so switching one effect on or off
leaves the others as they were (the background of a sequence does not change when LI is switched on).  The same
seed and arguments give byte-identical annotation files and identical JPEG bytes (``cv2.imencode`` with a fixed
quality).  In a dataset, sequence k gets its own derived seed (``SeedSequence(seed, spawn_key=(k, ...))``), so it
is the same whatever the number of sequences written.

The parts: :mod:`.spec` (what a sequence contains), :mod:`.streams` (the named random streams),
:mod:`.motion` (sizes, camera, path, leaving the view, distractors), :mod:`.plan` (events, occluders, blur,
lighting, looks; the plan of a sequence), :mod:`.measure` (attributes measured with LaTOT's definitions),
:mod:`.render` (frames), :mod:`.writing` (files and datasets) and :mod:`.command_line`.

Use from Python::

    from ltr_plugins import synthetic
    spec = synthetic.SequenceSpec('bird1', num_frames=100, effects={'SV', 'OV'})
    boxes, attributes = synthetic.generate_boxes(spec, seed=3)          # cheap: no images
    frames, boxes, attributes = synthetic.generate_sequence(spec, seed=3)  # frames: lazy iterator of BGR images
    synthetic.write_dataset('/tmp/latot_synth', num_sequences=4, num_frames=(60, 120), seed=0)

or as a command::

    python -m ltr_plugins.synthetic --root /tmp/latot_synth --sequences 4 --frames 60:120 --seed 0
    python -m ltr_plugins.synthetic --root /tmp/latot_synth --names-from settings/latot/test.txt --no-images
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
