"""The paper's experiment in miniature, in one folder: synthetic data, the teacher, the students (variants x seeds),
tracking of the test split, and the LaTOT protocol. ``mkdnet-demo`` and ``mkdnet-ablation`` run it at two sizes.

Steps are reused while nothing they depend on changes (:mod:`.steps`). pytracking's and ltr's own commands do the
work: the trainings are ``mkdnet/miniature`` train settings, the tracking is ``run_dataset`` with the parameter
files ``mkdnet/miniature_<variant>`` (students of seed k as pytracking's run id k), the scores the analysis'.
pytracking is pointed at the experiment folder for this process only, so the user's local.py files, networks and
results are never touched.
"""
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from ltr_plugins.common.atomic_files import write_text
from pytracking_plugins.demo.presets import Preset
from pytracking_plugins.demo.steps import Steps, claim_folder, step_key

if TYPE_CHECKING:
    from pytracking_plugins.evaluation.latotdataset import LaTOTDataset

VARIANTS = ('baseline', 'fd', 'sd', 'ioud', 'mkdnet')       # Table IV's rows, baseline first
LABELS = {'teacher': 'Teacher (Super-DiMP-18)', 'baseline': 'Baseline (no distillation)', 'fd': 'MKDNet-FD',
          'sd': 'MKDNet-SD', 'ioud': 'MKDNet-IoUD', 'mkdnet': 'MKDNet'}
INITIAL_BOX_LABEL = 'Initial box'
SPLIT_SEED_OFFSETS = {'train': 0, 'val': 500, 'test': 1000}  # each split's sequences come from other seeds
TRACKING_PROCESSES = 2


def label(variant: str, seed: Optional[int] = None) -> str:
    """The row of ``variant`` in the scores: seed k's run as pytracking names run k, or all seeds averaged."""
    return LABELS[variant] if seed is None else '{}_{:03d}'.format(LABELS[variant], seed)


class Paths:
    """Where an experiment writes, all under one folder."""

    def __init__(self, folder: str):
        self.folder = os.path.abspath(folder)
        self.networks = os.path.join(self.folder, 'networks')
        self.results = os.path.join(self.folder, 'tracking_results')
        self.initial_box = os.path.join(self.results, 'initial_box')
        self.report = os.path.join(self.folder, 'report')

    def data(self, split: str) -> str:
        return os.path.join(self.folder, 'data', split)

    def run_name(self, variant: str, seed: Optional[int]) -> str:
        return variant if seed is None else '{}_seed{}'.format(variant, seed)

    def training(self, variant: str, seed: Optional[int] = None) -> str:
        return os.path.join(self.folder, 'training', self.run_name(variant, seed))

    def checkpoints(self, variant: str, seed: Optional[int] = None) -> str:
        from ltr_plugins.train_settings.mkdnet.miniature import PROJECT_PATH
        from ltr_plugins.trainers.ltr_checkpoints import setting_checkpoint_dir
        return setting_checkpoint_dir(self.training(variant, seed), PROJECT_PATH)

    def tensorboard(self, variant: str, seed: Optional[int] = None) -> str:
        """Where ltr's trainer writes the run's tensorboard logs (its tensorboard_dir, then the setting's path)."""
        from ltr_plugins.train_settings.mkdnet.miniature import PROJECT_PATH
        return os.path.join(self.training(variant, seed), 'tensorboard', PROJECT_PATH)

    def network_folder(self, seed: Optional[int]) -> str:
        """The teacher's networks folder, or seed k's (each seed's students in their own, one file per variant)."""
        return self.networks if seed is None else os.path.join(self.networks, 'seed{}'.format(seed))

    def tracker_results(self, variant: str, seed: Optional[int]) -> str:
        name = 'miniature_' + variant + ('' if seed is None else '_{:03d}'.format(seed))
        return os.path.join(self.results, 'mkdnet', name)


class Experiment:
    """One experiment folder: ``variants`` (students, each trained with seeds 0 .. preset.seeds - 1) next to the
    teacher, at the sizes of ``preset``; ``data_seed`` draws the data and the teacher's training."""

    def __init__(self, folder: str, preset: Preset, variants: Sequence[str], command: str, data_seed: int = 0,
                 adopt_folder: bool = False):
        unknown = sorted(set(variants) - set(VARIANTS))
        if unknown or 'baseline' not in variants:
            raise ValueError('variants must include baseline and be among {}, got {}'.format(VARIANTS, variants))
        self.paths = Paths(folder)
        self.preset = preset
        self.variants = [v for v in VARIANTS if v in variants]
        self.seeds = list(range(preset.seeds))
        self.command = command
        self.data_seed = data_seed
        self.adopt_folder = adopt_folder
        self.keys: Dict[str, str] = {}

    # ---------------------------------------------------------------------------------------------------- the plan
    def students(self) -> List[Tuple[str, int]]:
        return [(variant, seed) for seed in self.seeds for variant in self.variants]

    def trackers(self) -> List[Tuple[str, Optional[int]]]:
        return [('teacher', None)] + list(self.students())

    def step_names(self) -> List[str]:
        names = ['{} data'.format(split) for split in SPLIT_SEED_OFFSETS] + ['train teacher']
        names += ['train {}'.format(self.paths.run_name(v, s)) for v, s in self.students()]
        names += ['track {}'.format(self.paths.run_name(v, s)) for v, s in self.trackers()]
        return names + ['initial box']

    # ------------------------------------------------------------------------------------------------------- steps
    def run(self) -> None:
        """Runs (or reuses) every step; the scores and the report are the caller's (:mod:`.report`)."""
        claim_folder(self.paths.folder, self.command, self.adopt_folder)
        names = self.step_names()
        progress = tqdm(total=len(names), desc=self.command, unit='step', file=sys.stdout, disable=None,
                        bar_format='{desc}: {n}/{total} steps done [{elapsed} elapsed]')
        start = time.time()

        def announce(name: str, reused: bool) -> None:
            progress.write('\n[{}/{}] {}{}  (elapsed {})'.format(
                names.index(name) + 1, len(names), name, ' -- reused' if reused else '',
                tqdm.format_interval(time.time() - start)), file=sys.stdout)

        steps = Steps(self.paths.folder, announce)
        self.point_pytracking_at(None)
        for split in SPLIT_SEED_OFFSETS:
            self._step(steps, progress, '{} data'.format(split), self._data_config(split), [],
                       lambda s=split: self.write_split(s), [self.paths.data(split)])
        data = [self.keys['train data'], self.keys['val data']]
        self._step(steps, progress, 'train teacher', self.preset.teacher_sizes(self.data_seed), data,
                   lambda: self.train('teacher', None),
                   [self.paths.training('teacher'), self._network('teacher', None)])
        for variant, seed in self.students():
            name = 'train ' + self.paths.run_name(variant, seed)
            self._step(steps, progress, name, self.preset.student_sizes(variant, seed),
                       data + [self.keys['train teacher']], lambda v=variant, s=seed: self.train(v, s),
                       [self.paths.training(variant, seed), self._network(variant, seed)])
        for variant, seed in self.trackers():
            run = self.paths.run_name(variant, seed)
            self._step(steps, progress, 'track ' + run, self.preset.tracking_info(),
                       [self.keys['train ' + run], self.keys['test data']], lambda v=variant, s=seed: self.track(v, s),
                       [self.paths.tracker_results(variant, seed)])
        self._step(steps, progress, 'initial box', {}, [self.keys['test data']], self.write_initial_box,
                   [self.paths.initial_box])
        progress.close()

    def _step(self, steps: Steps, progress: tqdm, name: str, config: Dict, uses: Sequence[str], action,
              outputs: Sequence[str]) -> None:
        self.keys[name] = step_key(name, config, uses)
        steps.run(name, self.keys[name], action, outputs)
        progress.update(1)

    def _data_config(self, split: str) -> Dict:
        preset = self.preset
        count = {'train': preset.train_sequences, 'val': preset.val_sequences, 'test': preset.test_sequences}[split]
        frames = preset.test_frames if split == 'test' else preset.train_frames
        sizes = ((preset.test_target_min, preset.test_target_max) if split == 'test' else
                 (preset.train_target_min, preset.train_target_max))
        return dict(sequences=count, frames=frames, image_size=list(preset.image_size()), target_size=list(sizes),
                    seed=self.data_seed + SPLIT_SEED_OFFSETS[split])

    def write_split(self, split: str) -> None:
        """Synthetic sequences of ``split``: names of the LaTOT test split for the test data, of the train split
        for training (from its start) and validation (from its end), so that none is shared."""
        from ltr_plugins import latot_data, synthetic
        config = self._data_config(split)
        names = latot_data.split_sequence_names('test' if split == 'test' else 'train')
        names = names[-config['sequences']:] if split == 'val' else names[:config['sequences']]
        synthetic.write_dataset(self.paths.data(split), names=names, num_frames=config['frames'],
                                image_size=tuple(config['image_size']), target_size=tuple(config['target_size']),
                                seed=config['seed'], overwrite=True, jobs=2)

    def _network(self, variant: str, seed: Optional[int]) -> str:
        from pytracking_plugins.demo.tracking_parameters import network_file
        return os.path.join(self.paths.network_folder(seed), network_file(variant))

    def train(self, variant: str, seed: Optional[int]) -> None:
        """Trains ``variant`` (seed ``seed``; the teacher: None) with the train setting ``mkdnet/miniature`` and
        exports it as its tracking network."""
        from ltr_plugins.export_mkdnet import export_student, resolve_checkpoint
        from ltr_plugins.train_settings.mkdnet import miniature
        if variant == 'teacher':
            sizes = self.preset.teacher_sizes(self.data_seed)
        else:
            sizes = self.preset.student_sizes(variant, seed)
            sizes['teacher_checkpoint'] = resolve_checkpoint(self.paths.checkpoints('teacher'))
        sizes.update(train_dir=self.paths.data('train'), val_dir=self.paths.data('val'))
        miniature.train(self.paths.training(variant, seed), sizes)
        export_student(self.paths.checkpoints(variant, seed), self._network(variant, seed))

    def pytracking_settings(self, seed: Optional[int]) -> Dict[str, str]:
        """pytracking's environment settings for this experiment: everything under its folder, the networks from the
        teacher's folder or seed ``seed``'s (whose ``miniature.json`` is written here)."""
        from pytracking_plugins.demo.tracking_parameters import INFO_FILE
        folder = self.paths.network_folder(seed)
        os.makedirs(folder, exist_ok=True)
        write_text(os.path.join(folder, INFO_FILE), json.dumps(self.preset.tracking_info()) + '\n')
        return dict(network_path=folder, results_path=self.paths.results,
                    segmentation_path=os.path.join(self.paths.folder, 'segmentation_results'),
                    result_plot_path=self.paths.report, latot_path=self.paths.data('test'))

    def point_pytracking_at(self, seed: Optional[int]) -> None:
        """Points this process's pytracking at :meth:`pytracking_settings`."""
        from pytracking_plugins.environment import use_local_settings
        use_local_settings(pytracking=self.pytracking_settings(seed))

    def test_dataset(self) -> 'LaTOTDataset':
        from pytracking_plugins.evaluation.latotdataset import LaTOTDataset
        return LaTOTDataset(split='test', allow_missing=True, root=self.paths.data('test'))

    def tracker(self, variant: str, seed: Optional[int]):
        from pytracking.evaluation import Tracker
        return Tracker('mkdnet', 'miniature_' + variant, run_id=seed, display_name=LABELS[variant])

    def track(self, variant: str, seed: Optional[int]) -> None:
        """Tracks the test split as ``run_tracker.py mkdnet miniature_<variant> --runid <seed>`` does, in
        TRACKING_PROCESSES processes of one thread each (pytracking's run_sequence on every sequence; the processes
        start with this experiment's pytracking settings); a failed sequence fails the step, after pytracking's
        summary of the failures."""
        import multiprocessing
        from pytracking.evaluation.running import run_sequence
        from pytracking_plugins.evaluation.run_failures import report_failures
        tracker = self.tracker(variant, seed)
        sequences = self.test_dataset().get_sequence_list()
        context = multiprocessing.get_context('spawn')
        with context.Pool(TRACKING_PROCESSES, initializer=_tracking_process,
                          initargs=(self.pytracking_settings(seed),)) as pool:
            outcomes = pool.starmap(run_sequence, [(sequence, tracker) for sequence in sequences])
        failures = report_failures([(sequence, tracker) for sequence in sequences], outcomes)
        if failures:
            raise RuntimeError('{} failed on {} sequence(s) (see the summary above); nothing of it is scored'.format(
                label(variant, seed), len(failures)))

    def write_initial_box(self) -> None:
        """The reference row: every frame's box is the first frame's (what a tracker that never moves scores)."""
        os.makedirs(self.paths.initial_box, exist_ok=True)
        for sequence in self.test_dataset().get_sequence_list():
            first = sequence.ground_truth_rect[0]
            line = '\t'.join('{:.2f}'.format(v) for v in first) + '\n'
            write_text(os.path.join(self.paths.initial_box, sequence.name + '.txt'), line * len(sequence.frames))

    # ------------------------------------------------------------------------------------------------------ scores
    def evaluate(self, merge_seeds: bool):
        """The LaTOT protocol on the test split: the initial box, the teacher and every student (each seed a row,
        or, with ``merge_seeds``, each variant one row averaged over its seeds, as pytracking merges runs)."""
        from pytracking_plugins.analysis import latot
        sources = [latot.folder_source(self.paths.initial_box, INITIAL_BOX_LABEL), self.tracker('teacher', None)]
        sources += [self.tracker(variant, seed) for variant in self.variants for seed in self.seeds]
        return latot.evaluate(sources, self.test_dataset(), output_dir=self.paths.report, force_evaluation=True,
                              verbose=False, merge_runs=merge_seeds)


def _tracking_process(pytracking_settings: Dict[str, str]) -> None:
    """Starts a tracking process: the experiment's pytracking settings, one thread."""
    import torch
    from pytracking_plugins.environment import use_local_settings
    torch.set_num_threads(1)
    use_local_settings(pytracking=pytracking_settings)
