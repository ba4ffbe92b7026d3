"""MKDNet's loss terms (paper Eqs. 2, 5-11) as small pure functions of tensors.

Conventions: a feature-level sample is one proposal's RoI feature (all 128 proposals of every valid test frame), a
score-level sample one test frame's score map, an IoU-level sample one proposal's IoU prediction. Every term is a mean
over samples and their elements, not a sum, so that no term grows with the batch, the proposals or the feature size
and Eq. 11's weights keep one meaning. L_cons, L_gen and L_dis sum their two RoI branches (layer2 and layer3, each with
its own discriminator). Discriminators output logits z (D = sigmoid(z), -log D = softplus(-z)): Eq. 5's BCE without
saturating to log(0). L_gen is the non-saturating -mean log D(S). RDM (Eqs. 9-10) is a detached scalar per batch: it
scales the distillation terms, it is not trained through.
"""
from typing import Dict, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F

# Eq. 11's weights as the paper sets them. 'gen' is Eq. 11's implicit 1; 'dis' scales L_dis, which trains only the
# discriminators (the released code used 0.25).
PAPER_LOSS_WEIGHTS = {'cls': 100.0,      # alpha
                      'iou': 0.01,       # beta
                      'gen': 1.0,
                      'cons': 5.0,       # gamma
                      'score_d': 2.0,    # delta
                      'iou_d': 0.1,      # eta
                      'dis': 1.0}
# Each term of Eq. 11 after the task losses, with the RDM that gates it.
GATED_BY = {'gen': 'iou', 'cons': 'iou', 'iou_d': 'iou', 'score_d': 'cls'}


def classification_loss(iterate_losses: Sequence[torch.Tensor], init_weight: float = 1.0, iter_weight: float = 4.0,
                        final_weight: float = 1.0) -> torch.Tensor:
    """L_cls of Eq. 11 from the hinge losses of the classifier's filter iterates (init, intermediates, final).

    Super-DiMP's KLDiMPActor weights them test_init_clf = 100, test_iter_clf = 400 (spread evenly over the
    intermediate iterates) and test_clf = 100. MKDNet keeps that classification loss and writes it alpha * L_cls with
    alpha = 100, so L_cls uses those weights divided by 100: 1 for the initial and the final iterate and 4 / (number
    of intermediate iterates) for each intermediate one. With Super-DiMP's 5 optimizer steps (6 iterates) that is
    the plain sum over the 6 iterates, i.e. alpha * L_cls equals KLDiMPActor's classification terms exactly. (Eq. 2's
    1 / N_iter average would divide Super-DiMP's classification weight by 5 against its box loss; MKDNet fine-tunes
    Super-DiMP and does not do that.)
    """
    if len(iterate_losses) == 0:
        raise ValueError('no classifier iterates')
    if len(iterate_losses) == 1:
        return final_weight * iterate_losses[0]
    loss = init_weight * iterate_losses[0] + final_weight * iterate_losses[-1]
    intermediate = iterate_losses[1:-1]
    if intermediate:
        loss = loss + (iter_weight / len(intermediate)) * sum(intermediate)
    return loss


def l1_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference (the teacher side is a target: no gradient goes to it)."""
    if student.shape != teacher.shape:
        raise ValueError('student {} and teacher {} shapes differ'.format(tuple(student.shape), tuple(teacher.shape)))
    return F.l1_loss(student, teacher.detach())


def feature_consistency_loss(student_roi: Mapping[str, torch.Tensor],
                             teacher_roi: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """L_cons (Eq. 6): mean L1 between student and teacher RoI features, summed over the branches."""
    return sum(l1_distance(student_roi[branch], teacher_roi[branch]) for branch in student_roi)


def generator_loss(student_logits: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """L_gen (Eq. 5, non-saturating): mean over samples of -log D(S), summed over the branches."""
    return sum(F.softplus(-z).mean() for z in student_logits.values())


def discriminator_loss(teacher_logits: Mapping[str, torch.Tensor],
                       student_logits: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """L_dis (Eq. 5): mean over samples of -log D(T) plus mean of -log(1 - D(S)), summed over the branches."""
    return sum(F.softplus(-teacher_logits[branch]).mean() + F.softplus(student_logits[branch]).mean()
               for branch in teacher_logits)


def score_distillation_loss(student_scores: Sequence[torch.Tensor], teacher_scores: Sequence[torch.Tensor],
                            iterates: Sequence[int] = (-1,)) -> torch.Tensor:
    """L_score-d (Eq. 7): mean L1 between the student's and the teacher's score maps of the chosen filter iterates
    (Python indices into the iterate list; default: the final map), summed over those iterates."""
    if len(student_scores) != len(teacher_scores):
        raise ValueError('student has {} score iterates, teacher {}'.format(len(student_scores), len(teacher_scores)))
    if len(iterates) == 0:
        raise ValueError('no iterate selected for score-level distillation')
    return sum(l1_distance(student_scores[i], teacher_scores[i]) for i in iterates)


def iou_distillation_loss(student_iou: torch.Tensor, teacher_iou: torch.Tensor) -> torch.Tensor:
    """L_iou-d (Eq. 8): mean L1 between the student's and the teacher's IoU-net outputs for the same proposals."""
    return l1_distance(student_iou, teacher_iou)


def reliable_distillation_measure(student_loss: torch.Tensor, teacher_loss: torch.Tensor) -> torch.Tensor:
    """RDM (Eqs. 9-10): max(0, L_student - L_teacher), detached. Zero when the teacher does no better than the
    student on this batch, which switches off the distillation terms it gates."""
    return (student_loss.detach() - teacher_loss.detach()).clamp(min=0)


def weighted_terms(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float],
                   rdm: Optional[Mapping[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
    """Each term of Eq. 11 as it enters L_tot: ``alpha L_cls``, ``beta L_iou``, ``RDM_iou L_gen``,
    ``gamma RDM_iou L_cons``, ``delta RDM_cls L_score-d`` and ``eta RDM_iou L_iou-d``, by term name.

    ``terms`` holds the unweighted terms by name ('cls', 'iou', 'gen', 'cons', 'score_d', 'iou_d'); a term that is
    absent (a distillation level that is off) is absent here too. ``weights`` are the coefficients by the same
    names (:data:`PAPER_LOSS_WEIGHTS`). ``rdm`` holds the detached scalars 'iou' and 'cls'; the gated terms need them.
    """
    weighted = {'cls': weights['cls'] * terms['cls'], 'iou': weights['iou'] * terms['iou']}
    for name, gate in GATED_BY.items():
        if name not in terms:
            continue
        if rdm is None or gate not in rdm:
            raise ValueError('term {!r} needs RDM_{}'.format(name, gate))
        weighted[name] = weights[name] * rdm[gate].detach() * terms[name]
    return weighted


def total_loss(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float],
               rdm: Optional[Mapping[str, torch.Tensor]] = None) -> torch.Tensor:
    """L_tot of Eq. 11, the sum of :func:`weighted_terms`::

        alpha L_cls + beta L_iou + RDM_iou L_gen + gamma RDM_iou L_cons + delta RDM_cls L_score-d + eta RDM_iou L_iou-d

    L_dis is not part of L_tot: it trains the discriminators only.
    """
    return sum(weighted_terms(terms, weights, rdm).values())


def active_distillation_terms(weights: Mapping[str, float]) -> Dict[str, bool]:
    """Which distillation levels a weight set switches on (a zero or missing weight switches a term off)."""
    on = {name: float(weights.get(name, 0.0)) != 0.0 for name in ('gen', 'cons', 'score_d', 'iou_d', 'dis')}
    on['feature'] = on['gen'] or on['cons'] or on['dis']
    on['any'] = on['feature'] or on['score_d'] or on['iou_d']
    return on
