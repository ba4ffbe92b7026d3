"""The MKDNet actor: one training step of the paper's Eq. 11, reading top to bottom.

degrade the student's crops -> teacher forward (no grad, original crops) -> student forward (degraded crops) ->
task losses of both -> RDM -> distillation terms -> L_tot, and L_dis for the discriminators.

The returned loss is ``L_tot + w_dis * L_dis``; one ``backward()`` of it gives every trainable parameter exactly its
own gradient, because the two parts touch disjoint parameters:

* L_gen runs the discriminators with their parameters detached (``FeatureDiscriminator.frozen_logits``), so L_tot's
  gradient reaches the student only;
* L_dis runs the discriminators on detached RoI features, so its gradient reaches the discriminators only.

The student's and the discriminators' optimizers then both step after that single backward pass
(``ltr_plugins.trainers.JointOptimizer``). Nothing is modified in place before a backward pass that needs it (the
release stepped the discriminator between building and back-propagating the generator loss, which PyTorch >= 1.5
rejects), and the generator and the discriminator are updated simultaneously from the same batch, as the paper's
"simultaneous training strategy of GAN" says.
"""
import math
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from ltr.actors import BaseActor
from ltr.admin import multigpu

from ltr_plugins import distillation as kd
from ltr_plugins.models.degradation import INVALID_BOX_X, Degradation
from ltr_plugins.trainers import distributed
from ltr_plugins.trainers.precision import MixedPrecision, to_float32


def valid_samples(tensor: torch.Tensor, is_valid: torch.Tensor) -> torch.Tensor:
    """``(frames, sequences, ...)`` -> ``(valid frames, ...)``: a view, not a copy, when every frame is valid (the
    usual case; the RoI features of a Super-DiMP batch are hundreds of MB)."""
    return tensor.flatten(0, 1) if bool(is_valid.all()) else tensor[is_valid]


class MKDNetActor(BaseActor):
    """Trains MKDNet's student (``net``, an ``MKDNetStudent``, possibly wrapped in ltr's ``MultiGPU``).

    args:
        net: the student and its discriminators.
        objective: ``{'bb_ce': KLRegression(), 'test_clf': LBHinge(threshold=0.05)}``, Super-DiMP's task losses.
        loss_weight: Eq. 11's weights by term name (``ltr_plugins.distillation.PAPER_LOSS_WEIGHTS``); a zero or
            missing weight switches that term off (and it is not computed).
        teacher: the ``FrozenTeacher`` (None only when no distillation term is on: the baseline).
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
        self.active = kd.active_distillation_terms(self.loss_weight)
        if self.active['any'] and teacher is None:
            raise ValueError('distillation terms are on ({}) but there is no teacher'.format(
                [k for k in ('gen', 'cons', 'score_d', 'iou_d', 'dis') if self.active[k]]))
        if (self.active['gen'] or self.active['dis']) and self.discriminators is None:
            raise ValueError('the adversarial terms (gen, dis) need the student built with discriminators')

    @property
    def discriminators(self) -> Optional[nn.ModuleDict]:
        student = self.net.module if multigpu.is_multi_gpu(self.net) else self.net
        return student.discriminators

    def to(self, device) -> None:
        self.net.to(device)
        if self.teacher is not None:
            self.teacher.to(device)

    def distribute(self, trained: Iterable[nn.Parameter]) -> None:
        """Wraps the student and its discriminators (``net``) in DistributedDataParallel, synchronising the
        ``trained`` parameters (those the optimizers step). The teacher is not wrapped: it is fixed, identical on
        every process by construction, and never synchronised. Call after the actor is on its device."""
        if multigpu.is_multi_gpu(self.net):
            raise ValueError('settings.multi_gpu (DataParallel in one process) and torchrun (one process per GPU) '
                             'exclude each other: set settings.multi_gpu = False under torchrun')
        # Discriminators that no term trains (gen without dis) get no gradient; DDP must be told to expect that.
        idle_discriminators = self.discriminators is not None and not self.active['dis']
        self.student = distributed.wrap(self.net, trained, find_unused_parameters=idle_discriminators)

    def _task_losses(self, out: Dict, data, is_valid: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """Super-DiMP's losses of one network's output: the hinge loss of every classifier iterate and the KL box
        loss (on valid test frames, as KLDiMPActor computes them)."""
        clf_iterates = [self.objective['test_clf'](s, data['test_label'], data['test_anno']) for s in out['scores']]
        bb_ce = self.objective['bb_ce'](out['iou'][is_valid, :], sample_density=data['proposal_density'][is_valid, :],
                                        gt_density=data['gt_density'][is_valid, :], mc_dim=1)
        return clf_iterates, bb_ce

    def __call__(self, data) -> Tuple[torch.Tensor, Dict[str, float]]:
        """args:
            data: ltr's KLDiMPProcessing output ('train_images', 'test_images', 'train_anno', 'test_anno',
                'test_proposals', 'proposal_density', 'gt_density', 'test_label').
        returns:
            loss: L_tot + w_dis * L_dis (see the module docstring), stats: every term, unweighted, and the RDMs.
        """
        stats: Dict[str, float] = {}

        # 1. The student sees degraded crops. Boxes, labels and proposals are the teacher's, untouched.
        student_train, student_test = data['train_images'], data['test_images']
        if self.degradation is not None:
            degraded = self.degradation([data['train_images'], data['test_images']],
                                        [data['train_anno'], data['test_anno']])
            student_train, student_test = degraded.images
            stats['Degrade/height'] = degraded.sizes[:, 0].float().mean().item()
            stats['Degrade/width'] = degraded.sizes[:, 1].float().mean().item()
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
        is_valid = data['test_anno'][:, :, 0] < INVALID_BOX_X
        clf_iterates, bb_ce = self._task_losses(student_out, data, is_valid)
        terms = {'cls': kd.classification_loss(clf_iterates), 'iou': bb_ce}

        # 5. RDM: how much better the teacher does on this batch (the global batch under torchrun: the four task
        # losses are averaged over the processes first); 0 switches the gated terms off.
        rdm = None
        if teacher_out is not None:
            teacher_clf_iterates, teacher_bb_ce = self._task_losses(teacher_out, data, is_valid)
            teacher_cls = kd.classification_loss(teacher_clf_iterates)
            student_iou, teacher_iou, student_cls, teacher_cls = distributed.mean_over_processes(
                torch.stack([bb_ce.detach(), teacher_bb_ce, terms['cls'].detach(), teacher_cls]))
            rdm = {'iou': kd.reliable_distillation_measure(student_iou, teacher_iou),
                   'cls': kd.reliable_distillation_measure(student_cls, teacher_cls)}
            stats.update({'Teacher/cls': teacher_cls.item(), 'Teacher/iou': teacher_bb_ce.item(),
                          'RDM/iou': rdm['iou'].item(), 'RDM/cls': rdm['cls'].item()})

        # 6. Distillation terms; every sample is one proposal (features, IoU) or one map (scores) of a valid frame.
        loss_dis = None
        if self.active['feature']:
            student_roi = {branch: valid_samples(roi, is_valid) for branch, roi in student_out['roi'].items()}
            teacher_roi = {branch: valid_samples(roi, is_valid) for branch, roi in teacher_out['roi'].items()}
            if self.active['cons']:
                terms['cons'] = kd.feature_consistency_loss(student_roi, teacher_roi)
            if self.active['gen']:
                terms['gen'] = kd.generator_loss({branch: valid_samples(logits, is_valid)
                                                  for branch, logits in student_out['gen_logits'].items()})
            if self.active['dis']:
                real, fake = ({branch: valid_samples(logits, is_valid) for branch, logits in student_out[key].items()}
                              for key in ('real_logits', 'fake_logits'))
                loss_dis = kd.discriminator_loss(real, fake)
                for branch in real:
                    stats['Dis/teacher_prob_' + branch] = torch.sigmoid(real[branch]).mean().item()
                    stats['Dis/student_prob_' + branch] = torch.sigmoid(fake[branch]).mean().item()
        if self.active['score_d']:
            terms['score_d'] = kd.score_distillation_loss([valid_samples(s, is_valid) for s in student_out['scores']],
                                                          [valid_samples(s, is_valid) for s in teacher_out['scores']],
                                                          self.score_iterates)
        if self.active['iou_d']:
            terms['iou_d'] = kd.iou_distillation_loss(valid_samples(student_out['iou'], is_valid),
                                                      valid_samples(teacher_out['iou'], is_valid))

        # 7. Eq. 11, and the discriminators' own loss.
        loss = kd.total_loss(terms, self.loss_weight, rdm)
        loss_for_backward = loss if loss_dis is None else loss + self.loss_weight['dis'] * loss_dis

        stats['Loss/total'] = loss.item()
        for name, value in terms.items():
            stats['Loss/' + name] = value.item()
        if loss_dis is not None:
            stats['Loss/dis'] = loss_dis.item()
        stats['Loss/for_backward'] = loss_for_backward.item()
        stats['ClfTrain/test_loss'] = clf_iterates[-1].item()
        stats['ClfTrain/test_init_loss'] = clf_iterates[0].item()
        # The global batch's values under torchrun; a NaN on any process reaches all, so all stop together.
        stats = distributed.mean_stats_over_processes(stats, loss.device)
        if not math.isfinite(stats.pop('Loss/for_backward')):
            # pytracking's guard: the trainer's fail-safe restarts from the last checkpoint.
            raise Exception('ERROR: Loss was nan or inf!!!')
        if self.on_stats is not None:
            self.on_stats(stats)
        return self.precision.scale(loss_for_backward), stats
