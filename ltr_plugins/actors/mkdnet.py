"""The MKDNet actor: one training step of the paper's Eq. 11, reading top to bottom.

degrade the student's crops -> teacher forward (no grad, original crops) -> student forward (degraded crops) ->
task losses of both -> RDM -> distillation terms -> L_tot, and L_dis for the discriminators.

The returned loss is ``L_tot + w_dis * L_dis``, and one ``backward()`` gives each parameter exactly its own gradient:
L_gen runs the discriminators with detached parameters (``FeatureDiscriminator.frozen_logits``), L_dis runs them on
detached RoI features. Both optimizers then step after that one backward pass (``ltr_plugins.trainers.JointOptimizer``),
nothing modified in place before it, so generator and discriminators train simultaneously on the same batch, as the
paper's "simultaneous training strategy of GAN" says.
"""
import math
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from ltr.actors import BaseActor
from ltr.admin import multigpu

from ltr_plugins import distillation as kd
from ltr_plugins.models.degradation import INVALID_BOX_X, Degradation
from ltr_plugins.trainers import distributed
from ltr_plugins.trainers.precision import MixedPrecision, to_float32

# fp16: the gradient scaler skips a step whose gradients overflow and lowers its scale; training stops only after
# this many steps in a row were skipped (the scale can then no longer bring the forward pass into range).
MAX_CONSECUTIVE_SKIPPED_STEPS = 50


class Batch:
    """The test frames' validity mask, checked once per step: ``valid(x)`` turns ``(frames, sequences, ...)`` into
    ``(valid frames, ...)``, a view (no copy, no host sync) when every frame is valid, the usual case (the RoI
    features of a Super-DiMP batch are hundreds of MB). ``test_anno_on_host``: the same boxes, already read to the
    host, where the mask is checked without another sync."""

    def __init__(self, test_anno: torch.Tensor, all_valid: Optional[bool] = None,
                 test_anno_on_host: Optional[torch.Tensor] = None):
        self.is_valid = test_anno[:, :, 0] < INVALID_BOX_X
        if all_valid is None:
            all_valid = bool((self.is_valid if test_anno_on_host is None else
                              test_anno_on_host[:, :, 0] < INVALID_BOX_X).all())
        self.all_valid = all_valid

    def valid(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.flatten(0, 1) if self.all_valid else tensor[self.is_valid]


def to_host(*tensors: torch.Tensor) -> List[torch.Tensor]:
    """Copies of ``tensors`` (of one dtype) on the host, read from the device in one transfer."""
    flat = torch.cat([t.detach().reshape(-1) for t in tensors]).cpu()
    return [part.view(t.shape) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


class MKDNetActor(BaseActor):
    """Trains MKDNet's student (``net``, an ``MKDNetStudent``, possibly wrapped in ltr's ``MultiGPU``).

    args:
        net: the student and its discriminators.
        objective: ``{'bb_ce': KLRegression(), 'test_clf': LBHinge(threshold=0.05)}``, Super-DiMP's task losses.
        loss_weight: Eq. 11's weights by term name (``ltr_plugins.distillation.PAPER_LOSS_WEIGHTS``); a zero or
            missing weight switches that term off (and it is not computed).
        teacher: the ``FrozenTeacher``: needed by any distillation term; a student trained without distillation
            may have one too, only to log how far it is from the teacher (``Distance/*``, ``RDM/*``).
        degradation: what the student's crops go through (None: the student sees the teacher's crops).
        score_iterates: which classifier iterates the score-level term distils (default: the final one).
        precision: mixed precision of the forward passes (None: float32); losses and RDM are always float32.

    Under torchrun (:meth:`distribute`) the student runs through its DistributedDataParallel wrapper
    (``self.student``), RDM is computed from the task losses of the global batch, and the returned statistics are
    the global batch's. ``on_stats``, when set (the trainer sets it), receives every step's statistics.
    """

    def __init__(self, net: nn.Module, objective: Mapping[str, nn.Module], loss_weight: Mapping[str, float],
                 teacher: Optional[nn.Module] = None, degradation: Optional[Degradation] = None,
                 score_iterates: Sequence[int] = (-1,), precision: Optional[MixedPrecision] = None):
        super().__init__(net, objective)
        self.student: nn.Module = net        # what the forward calls: net, or net's DDP wrapper
        self.loss_weight = dict(loss_weight)
        self.teacher = teacher
        self.degradation = degradation
        self.score_iterates = tuple(score_iterates)
        self.precision = precision or MixedPrecision(None, 'cpu')
        self.on_stats: Optional[Callable[[Dict[str, float]], None]] = None
        self.skipped_steps = 0               # fp16 steps in a row whose loss overflowed
        self._skipped_buffers: Optional[List[torch.Tensor]] = None
        self.active = kd.active_distillation_terms(self.loss_weight)
        if self.active['any'] and teacher is None:
            raise ValueError('distillation terms are on ({}) but there is no teacher'.format(
                [k for k in ('gen', 'cons', 'score_d', 'iou_d', 'dis') if self.active[k]]))
        if (self.active['gen'] or self.active['dis']) and self.discriminators is None:
            raise ValueError('the adversarial terms (gen, dis) need the student built with discriminators')

    def restore_skipped_buffers(self) -> None:
        """Puts back the buffers a skipped fp16 step overwrote; called before the next step and before a checkpoint
        is written (not at the skipped step itself: its backward still reads them)."""
        if self._skipped_buffers is not None:
            with torch.no_grad():
                for buffer, before in zip(self.net.buffers(), self._skipped_buffers):
                    buffer.copy_(before)
            self._skipped_buffers = None

    @property
    def discriminators(self) -> Optional[nn.ModuleDict]:
        student = self.net.module if multigpu.is_multi_gpu(self.net) else self.net
        return student.discriminators

    def to(self, device) -> None:
        self.net.to(device)
        if self.teacher is not None:
            self.teacher.to(device)

    def distribute(self, trained: Iterable[nn.Parameter], sync_batchnorm: bool = False) -> None:
        """Wraps the student and its discriminators (``net``) in DistributedDataParallel, synchronising the
        ``trained`` parameters (those the optimizers step) and, with ``sync_batchnorm``, the BatchNorm statistics of
        the global batch. The teacher is not wrapped: it is fixed (in eval mode), identical on every process by
        construction, and never synchronised. Call after the actor is on its device."""
        if multigpu.is_multi_gpu(self.net):
            raise ValueError('settings.multi_gpu (DataParallel in one process) and torchrun (one process per GPU) '
                             'exclude each other: set settings.multi_gpu = False under torchrun')
        # Discriminators that no term trains (gen without dis) get no gradient; DDP must be told to expect that.
        idle_discriminators = self.discriminators is not None and not self.active['dis']
        self.student = distributed.wrap(self.net, trained, find_unused_parameters=idle_discriminators,
                                        sync_batch_norm=sync_batchnorm)

    def _task_losses(self, out: Dict, data, batch: Batch) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """Super-DiMP's losses of one network's output: the hinge loss of every classifier iterate and the KL box
        loss (on valid test frames, as KLDiMPActor computes them)."""
        clf_iterates = [self.objective['test_clf'](s, data['test_label'], data['test_anno']) for s in out['scores']]
        bb_ce = self.objective['bb_ce'](batch.valid(out['iou']), sample_density=batch.valid(data['proposal_density']),
                                        gt_density=batch.valid(data['gt_density']), mc_dim=1)
        return clf_iterates, bb_ce

    def _teacher_better_share(self, student_out: Dict, teacher_out: Dict, data, batch: Batch
                              ) -> Dict[str, torch.Tensor]:
        """The share of the batch's sequences on which the teacher's task loss is below the student's, per level:
        what RDM would let through if it gated each sequence (it gates the whole batch, Eqs. 9-10)."""
        better = {'iou': [], 'cls': []}
        with torch.no_grad():
            for j in range(data['test_anno'].shape[1]):
                one = {key: data[key][:, j:j + 1] for key in ('test_label', 'test_anno', 'proposal_density',
                                                               'gt_density')}
                if not batch.all_valid and not bool(batch.is_valid[:, j].any()):
                    continue
                sequence = Batch(one['test_anno'], all_valid=True if batch.all_valid else None)
                losses = [self._task_losses({'scores': [s[:, j:j + 1] for s in out['scores']],
                                             'iou': out['iou'][:, j:j + 1]}, one, sequence)
                          for out in (student_out, teacher_out)]
                better['cls'].append(kd.classification_loss(losses[1][0]) < kd.classification_loss(losses[0][0]))
                better['iou'].append(losses[1][1] < losses[0][1])
        return {level: torch.stack(flags).float().mean() for level, flags in better.items() if flags}

    def _distillation_terms(self, student_out: Dict, teacher_out: Dict, batch: Batch
                            ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor], Optional[torch.Tensor]]:
        """The distillation terms that are on (with gradients), the student-teacher distances of every level
        (``Distance/*``: the unweighted L_cons, L_score-d and L_iou-d, computed without gradients where the term is
        off), and L_dis (None unless it is on). Every sample is one proposal (features, IoU) or one map (scores) of
        a valid frame."""
        terms, loss_dis = {}, None
        student_roi = {branch: batch.valid(roi) for branch, roi in student_out['roi'].items()}
        teacher_roi = {branch: batch.valid(roi) for branch, roi in teacher_out['roi'].items()}
        student_scores = [batch.valid(s) for s in student_out['scores']]
        teacher_scores = [batch.valid(s) for s in teacher_out['scores']]
        distances = {
            'cons': lambda: kd.feature_consistency_loss(student_roi, teacher_roi),
            'score_d': lambda: kd.score_distillation_loss(student_scores, teacher_scores, self.score_iterates),
            'iou_d': lambda: kd.iou_distillation_loss(batch.valid(student_out['iou']), batch.valid(teacher_out['iou'])),
        }
        for name, distance in distances.items():
            if self.active[name]:
                terms[name] = distance()
        if self.active['gen']:
            terms['gen'] = kd.generator_loss({branch: batch.valid(logits)
                                              for branch, logits in student_out['gen_logits'].items()})
        if self.active['dis']:
            real, fake = ({branch: batch.valid(logits) for branch, logits in student_out[key].items()}
                          for key in ('real_logits', 'fake_logits'))
            loss_dis = kd.discriminator_loss(real, fake)
        with torch.no_grad():
            logged = {name: terms[name].detach() if name in terms else distance()
                      for name, distance in distances.items()}
            if self.active['dis']:
                for branch in real:
                    logged['teacher_prob_' + branch] = torch.sigmoid(real[branch]).mean()
                    logged['student_prob_' + branch] = torch.sigmoid(fake[branch]).mean()
        return terms, logged, loss_dis

    def __call__(self, data) -> Tuple[torch.Tensor, Dict[str, float]]:
        """args:
            data: ltr's KLDiMPProcessing output ('train_images', 'test_images', 'train_anno', 'test_anno',
                'test_proposals', 'proposal_density', 'gt_density', 'test_label').
        returns:
            loss: L_tot + w_dis * L_dis (see the module docstring), stats: every term, unweighted and as it enters
            Eq. 11, the RDMs, and the student-teacher distances.
        """
        stats: Dict[str, Union[torch.Tensor, float]] = {}
        # The boxes on the host, read once: the validity check and the degradation's plan need them there.
        train_anno, test_anno = to_host(data['train_anno'], data['test_anno'])
        batch = Batch(data['test_anno'], test_anno_on_host=test_anno)
        self.restore_skipped_buffers()
        # fp16: a forward pass that overflows leaves inf/NaN in the BatchNorm statistics it updates; they are put
        # back once the skipped step's backward has run (restore_skipped_buffers).
        buffers_before = ([b.detach().clone() for b in self.net.buffers()]
                          if self.precision.scaler is not None else None)

        # 1. The student sees degraded crops. Boxes, labels and proposals are the teacher's, untouched.
        student_train, student_test = data['train_images'], data['test_images']
        if self.degradation is not None:
            degraded = self.degradation([data['train_images'], data['test_images']], [train_anno, test_anno])
            student_train, student_test = degraded.images
            stats['Degrade/height'], stats['Degrade/width'] = degraded.sizes.float().mean(dim=0).tolist()
        geometry = dict(train_bb=data['train_anno'], test_proposals=data['test_proposals'])

        # 2. The teacher, on the original crops (FrozenTeacher runs under no_grad, in eval mode).
        # 3. The student, and the discriminators on both networks' RoI features (see MKDNetStudent.forward).
        # Both forward passes in the mixed precision asked for; everything after in float32.
        adversarial = tuple(term for term in ('gen', 'dis') if self.active[term])
        teacher_out = None
        with self.precision.autocast():
            if self.teacher is not None:
                teacher_out = self.teacher(train_imgs=data['train_images'], test_imgs=data['test_images'],
                                           **geometry)
            student_out = self.student(train_imgs=student_train, test_imgs=student_test, **geometry,
                                       teacher_roi=teacher_out['roi'] if 'dis' in adversarial else None,
                                       adversarial=adversarial)
        teacher_out, student_out = to_float32(teacher_out), to_float32(student_out)

        # 4. Task losses. alpha * L_cls + beta * L_iou alone is Super-DiMP's loss (see kd.classification_loss).
        clf_iterates, bb_ce = self._task_losses(student_out, data, batch)
        terms = {'cls': kd.classification_loss(clf_iterates), 'iou': bb_ce}

        # 5. RDM: how much better the teacher does on this batch (the global batch under torchrun: the four task
        # losses are averaged over the processes first); 0 switches the gated terms off.
        rdm, loss_dis = None, None
        if teacher_out is not None:
            teacher_clf_iterates, teacher_bb_ce = self._task_losses(teacher_out, data, batch)
            teacher_cls = kd.classification_loss(teacher_clf_iterates)
            student_iou, teacher_iou, student_cls, teacher_cls = distributed.mean_over_processes(
                torch.stack([bb_ce.detach(), teacher_bb_ce, terms['cls'].detach(), teacher_cls]))
            rdm = {'iou': kd.reliable_distillation_measure(student_iou, teacher_iou),
                   'cls': kd.reliable_distillation_measure(student_cls, teacher_cls)}
            stats.update({'Teacher/cls': teacher_cls, 'Teacher/iou': teacher_iou,
                          'RDM/iou': rdm['iou'], 'RDM/cls': rdm['cls'],
                          'RDM/open_iou': (rdm['iou'] > 0).float(), 'RDM/open_cls': (rdm['cls'] > 0).float()})
            stats.update({'RDM/teacher_better_' + level: share for level, share in
                          self._teacher_better_share(student_out, teacher_out, data, batch).items()})

            # 6. Distillation terms, and how far the student is from the teacher at each level.
            distillation, distances, loss_dis = self._distillation_terms(student_out, teacher_out, batch)
            terms.update(distillation)
            for name, value in distances.items():
                stats[('Dis/' if '_prob_' in name else 'Distance/') + name] = value

        # 7. Eq. 11, and the discriminators' own loss.
        weighted = kd.weighted_terms(terms, self.loss_weight, rdm)
        loss = sum(weighted.values())
        loss_for_backward = loss if loss_dis is None else loss + self.loss_weight['dis'] * loss_dis

        stats['Loss/total'] = loss
        stats.update({'Loss/' + name: value for name, value in terms.items()})
        stats.update({'Eq11/' + name: value for name, value in weighted.items()})
        if loss_dis is not None:
            stats['Loss/dis'] = loss_dis
        stats['ClfTrain/test_loss'] = clf_iterates[-1]
        stats['ClfTrain/test_init_loss'] = clf_iterates[0]
        stats['Loss/for_backward'] = loss_for_backward
        return self.precision.scale(loss_for_backward), self._finish_stats(stats, loss.device, buffers_before)

    def _finish_stats(self, stats: Mapping[str, Union[torch.Tensor, float]], device: torch.device,
                      buffers_before: Optional[List[torch.Tensor]] = None) -> Dict[str, float]:
        """The statistics as floats, read from the device in one transfer (the global batch's under torchrun: a NaN
        on any process reaches all, so all stop together), and the check of the loss: a non-finite loss stops
        training (pytracking's guard; the trainer's fail-safe restarts from the last checkpoint), except in fp16,
        where the gradient scaler skips the step and lowers its scale, up to MAX_CONSECUTIVE_SKIPPED_STEPS in a row,
        and the student's buffers (BatchNorm statistics) are put back to ``buffers_before`` by
        :meth:`restore_skipped_buffers`.
        """
        tensors = {name: value for name, value in stats.items() if isinstance(value, torch.Tensor)}
        read = dict(zip(tensors, torch.stack([v.detach().float().reshape(()) for v in tensors.values()]).tolist()))
        floats = {name: read[name] if name in read else float(value) for name, value in stats.items()}
        floats = distributed.mean_stats_over_processes(floats, device)
        finite = math.isfinite(floats.pop('Loss/for_backward'))
        if self.precision.scaler is not None:
            self._skipped_buffers = None if finite else buffers_before
            self.skipped_steps = 0 if finite else self.skipped_steps + 1
            floats = floats if finite else {}
            floats['AMP/skipped_step'] = 0.0 if finite else 1.0
            floats['AMP/scale'] = float(self.precision.scaler.get_scale()) if finite else 0.0
            if self.skipped_steps >= MAX_CONSECUTIVE_SKIPPED_STEPS:
                raise FloatingPointError(
                    'fp16 training: the loss overflowed in {} steps in a row, each skipped by the gradient scaler; the '
                    'forward pass does not fit float16 (use settings.mixed_precision = \'bf16\' or None)'.format(
                        self.skipped_steps))
        elif not finite:
            # pytracking's guard: the trainer's fail-safe restarts from the last checkpoint.
            raise Exception('ERROR: Loss was nan or inf!!!')
        if self.on_stats is not None:
            self.on_stats(floats)
        return floats
