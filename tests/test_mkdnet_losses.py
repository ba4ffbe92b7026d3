"""MKDNet's loss terms, RDM gating, discriminators and degradation, on small hand-made tensors."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ltr_plugins import distillation as kd
from ltr_plugins.models.degradation import Degradation, degraded_size, valid_boxes
from ltr_plugins.models.discriminator import FeatureDiscriminator, build_discriminators, roi_feature_shapes


def neg_log_sigmoid(z: float) -> float:
    return -math.log(1.0 / (1.0 + math.exp(-z)))


def neg_log_one_minus_sigmoid(z: float) -> float:
    return -math.log(1.0 - 1.0 / (1.0 + math.exp(-z)))


# ---------------------------------------------------------------------------------------------------------- losses

def test_l1_terms_equal_hand_computation():
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    teacher = torch.tensor([[0.0, 4.0], [3.0, 1.0]])
    # |1-0| + |2-4| + |3-3| + |4-1| = 6 over 4 elements
    assert kd.l1_distance(student, teacher).item() == pytest.approx(1.5)
    assert kd.iou_distillation_loss(student, teacher).item() == pytest.approx(1.5)

    roi_s = {'layer2': torch.full((2, 3, 4, 5, 5), 1.0), 'layer3': torch.full((2, 3, 4, 3, 3), -1.0)}
    roi_t = {'layer2': torch.full((2, 3, 4, 5, 5), 0.25), 'layer3': torch.full((2, 3, 4, 3, 3), 1.0)}
    assert kd.feature_consistency_loss(roi_s, roi_t).item() == pytest.approx(0.75 + 2.0)


def test_score_distillation_uses_the_chosen_iterates():
    student = [torch.full((2, 1, 3, 3), float(i)) for i in range(6)]
    teacher = [torch.zeros(2, 1, 3, 3) for _ in range(6)]
    assert kd.score_distillation_loss(student, teacher).item() == pytest.approx(5.0)          # final map
    assert kd.score_distillation_loss(student, teacher, iterates=(0, 1)).item() == pytest.approx(0.0 + 1.0)
    assert kd.score_distillation_loss(student, teacher, iterates=(2, -1)).item() == pytest.approx(2.0 + 5.0)
    with pytest.raises(ValueError):
        kd.score_distillation_loss(student, teacher[:5])


def test_adversarial_losses_equal_hand_computation():
    student_z = {'layer2': torch.tensor([0.5, -1.0]), 'layer3': torch.tensor([2.0])}
    teacher_z = {'layer2': torch.tensor([1.5, 0.0]), 'layer3': torch.tensor([-0.5])}

    gen = (neg_log_sigmoid(0.5) + neg_log_sigmoid(-1.0)) / 2 + neg_log_sigmoid(2.0)
    assert kd.generator_loss(student_z).item() == pytest.approx(gen, rel=1e-6)

    dis = ((neg_log_sigmoid(1.5) + neg_log_sigmoid(0.0)) / 2
           + (neg_log_one_minus_sigmoid(0.5) + neg_log_one_minus_sigmoid(-1.0)) / 2
           + neg_log_sigmoid(-0.5) + neg_log_one_minus_sigmoid(2.0))
    assert kd.discriminator_loss(teacher_z, student_z).item() == pytest.approx(dis, rel=1e-6)

    # The same as torch's BCE on the sigmoid outputs (the paper's form), with targets 1 (teacher) and 0 (student).
    bce = sum(F.binary_cross_entropy(torch.sigmoid(teacher_z[b]), torch.ones_like(teacher_z[b])) +
              F.binary_cross_entropy(torch.sigmoid(student_z[b]), torch.zeros_like(student_z[b])) for b in student_z)
    assert kd.discriminator_loss(teacher_z, student_z).item() == pytest.approx(bce.item(), rel=1e-6)


def test_adversarial_losses_do_not_saturate():
    # A confident discriminator (sigmoid rounds to exactly 0 or 1 in float32) still gives finite losses and gradients.
    z = torch.tensor([-120.0, 120.0], requires_grad=True)
    loss = kd.generator_loss({'b': z}) + kd.discriminator_loss({'b': z}, {'b': z})
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    assert kd.generator_loss({'b': torch.tensor([-120.0])}).item() == pytest.approx(120.0)


def test_classification_loss_is_super_dimp_weighting_over_alpha():
    iterates = [torch.tensor(v) for v in (0.6, 0.5, 0.4, 0.3, 0.2, 0.1)]
    # KLDiMPActor: test_clf 100 (final) + test_init_clf 100 (initial) + test_iter_clf 400 over the 4 intermediate.
    super_dimp = 100 * iterates[-1] + 100 * iterates[0] + (400 / 4) * sum(iterates[1:-1])
    alpha = kd.PAPER_LOSS_WEIGHTS['cls']
    assert alpha == 100
    assert (alpha * kd.classification_loss(iterates)).item() == pytest.approx(super_dimp.item())
    assert kd.classification_loss(iterates).item() == pytest.approx(2.1)     # the plain sum for 6 iterates
    # Other iterate counts keep KLDiMPActor's structure (init 1, final 1, intermediates share 4).
    assert kd.classification_loss([torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)]).item() \
        == pytest.approx(1 + 4 * 2 + 3)


def test_rdm_is_a_detached_clamped_difference():
    student = torch.tensor(3.0, requires_grad=True)
    teacher = torch.tensor(1.0)
    rdm = kd.reliable_distillation_measure(student, teacher)
    assert rdm.item() == pytest.approx(2.0) and not rdm.requires_grad
    assert kd.reliable_distillation_measure(teacher, student).item() == 0.0
    assert kd.reliable_distillation_measure(student, student).item() == 0.0


def test_total_loss_is_eq_11():
    terms = {name: torch.tensor(value) for name, value in
             dict(cls=0.02, iou=3.0, gen=0.7, cons=0.4, score_d=0.05, iou_d=1.5).items()}
    rdm = {'iou': torch.tensor(0.3), 'cls': torch.tensor(0.01)}
    w = kd.PAPER_LOSS_WEIGHTS
    assert (w['cls'], w['iou'], w['gen'], w['cons'], w['score_d'], w['iou_d']) == (100, 0.01, 1, 5, 2, 0.1)
    expected = (100 * 0.02 + 0.01 * 3.0 + 0.3 * 0.7 + 5 * 0.3 * 0.4 + 2 * 0.01 * 0.05 + 0.1 * 0.3 * 1.5)
    assert kd.total_loss(terms, w, rdm).item() == pytest.approx(expected, rel=1e-6)
    # A level that is off (its term absent) contributes nothing; the task losses need no RDM.
    assert kd.total_loss({'cls': terms['cls'], 'iou': terms['iou']}, w).item() == pytest.approx(2.03)
    with pytest.raises(ValueError):
        kd.total_loss(terms, w)


@pytest.mark.parametrize('zero', ['iou', 'cls'])
def test_gated_terms_give_zero_gradient_when_their_rdm_is_zero(zero):
    x = torch.randn(8, requires_grad=True)     # stands for the student parameters behind every term
    terms = {'cls': (x ** 2).mean(), 'iou': x.sum(), 'gen': F.softplus(-x).mean(), 'cons': x.abs().mean(),
             'score_d': (x - 1).abs().mean(), 'iou_d': (x + 2).abs().mean()}
    rdm = {'iou': torch.tensor(0.5), 'cls': torch.tensor(0.5)}
    rdm[zero] = torch.tensor(0.0)
    gated = [name for name, gate in kd.GATED_BY.items() if gate == zero]
    grad_total, = torch.autograd.grad(kd.total_loss(terms, kd.PAPER_LOSS_WEIGHTS, rdm), x, retain_graph=True)
    without_gated = {k: v for k, v in terms.items() if k not in gated}
    grad_rest, = torch.autograd.grad(kd.total_loss(without_gated, kd.PAPER_LOSS_WEIGHTS, rdm), x, retain_graph=True)
    assert torch.equal(grad_total, grad_rest)
    for name in gated:
        grad, = torch.autograd.grad(kd.total_loss({'cls': terms['cls'] * 0, 'iou': terms['iou'] * 0,
                                                   name: terms[name]}, kd.PAPER_LOSS_WEIGHTS, rdm),
                                    x, retain_graph=True)
        assert torch.count_nonzero(grad) == 0, name
    # With a positive RDM the same terms do push the student.
    rdm[zero] = torch.tensor(0.5)
    grad_on, = torch.autograd.grad(kd.total_loss(terms, kd.PAPER_LOSS_WEIGHTS, rdm), x)
    assert not torch.equal(grad_on, grad_rest)


def test_active_terms_follow_the_weights():
    on = kd.active_distillation_terms(kd.PAPER_LOSS_WEIGHTS)
    assert all(on.values())
    off = kd.active_distillation_terms(dict(kd.PAPER_LOSS_WEIGHTS, gen=0, cons=0, dis=0, iou_d=0))
    assert not off['feature'] and off['score_d'] and off['any']
    assert not kd.active_distillation_terms({'cls': 100, 'iou': 0.01})['any']


# ---------------------------------------------------------------------------------------------------- discriminator

def test_discriminator_architecture_and_roi_shapes():
    from ltr.models.bbreg import AtomIoUNet
    shapes = roi_feature_shapes(AtomIoUNet(input_dim=(512, 1024), pred_input_dim=(256, 256)))
    assert shapes == {'layer2': (256, 5, 5), 'layer3': (256, 3, 3)}
    discriminators = build_discriminators(shapes)
    layers = list(discriminators['layer2'].layers)
    assert [type(m) for m in layers] == [nn.Flatten, nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear]
    assert (layers[1].in_features, layers[1].out_features) == (256 * 5 * 5, 256)
    assert (layers[3].in_features, layers[3].out_features) == (256, 256)
    assert (layers[5].in_features, layers[5].out_features) == (256, 1)
    assert layers[2].negative_slope == layers[4].negative_slope == 0.2
    assert discriminators['layer3'].layers[1].in_features == 256 * 3 * 3

    d = FeatureDiscriminator((4, 3, 3))
    x = torch.randn(2, 5, 4, 3, 3)                                     # (frames, proposals, C, h, w)
    assert d.logits(x).shape == (2, 5)
    assert torch.allclose(d(x), torch.sigmoid(d.logits(x)))
    with pytest.raises(ValueError):
        d.logits(torch.randn(2, 4, 5, 5))


def test_frozen_logits_send_gradient_to_the_features_only():
    d = FeatureDiscriminator((4, 3, 3))
    x = torch.randn(6, 4, 3, 3, requires_grad=True)
    frozen = d.frozen_logits(x)
    assert torch.equal(frozen, d.logits(x))
    kd.generator_loss({'b': frozen}).backward()
    assert x.grad is not None and torch.count_nonzero(x.grad) > 0
    assert all(p.grad is None for p in d.parameters())

    # The discriminator's own loss on detached features: gradient to the discriminator only.
    x.grad = None
    kd.discriminator_loss({'b': d.logits(torch.randn(6, 4, 3, 3))}, {'b': d.logits(x.detach())}).backward()
    assert x.grad is None
    assert all(p.grad is not None for p in d.parameters())


# ------------------------------------------------------------------------------------------------------ degradation

def test_degraded_size_formula():
    # Super-DiMP's crops: 352 px, targets about 352 / 6 px -> 96 px.
    assert degraded_size((352, 352), (352 / 6, 352 / 6), 16) == (96, 96)
    # Per axis: H' from the mean box height, W' from the mean box width (the release swapped them).
    assert degraded_size((128, 256), (32.0, 64.0), 16) == (round(128 * 16 / 64), round(256 * 16 / 32)) == (32, 128)
    assert degraded_size((100, 100), (30.0, 30.0), 16) == (53, 53)          # round(53.33)
    # Targets already at or below the target size: the crop is left as it is; never below one pixel.
    assert degraded_size((352, 352), (12.0, 16.0), 16) == (352, 352)
    assert degraded_size((352, 352), (1e5, 1e5), 16) == (1, 1)
    with pytest.raises(ValueError):
        degraded_size((352, 352), (0.0, 10.0), 16)


def test_degradation_uses_the_documented_size_and_leaves_boxes_alone():
    torch.manual_seed(0)
    train = torch.randn(3, 2, 3, 64, 96)
    test = torch.randn(3, 2, 3, 64, 96)
    train_boxes = torch.tensor([20.0, 10.0, 24.0, 8.0]).repeat(3, 2, 1)
    test_boxes = torch.tensor([30.0, 12.0, 8.0, 24.0]).repeat(3, 2, 1)
    test_boxes[2, 1] = torch.tensor([99999.0, 99999.0, 1.0, 1.0])         # KLDiMPActor's invalid marker: ignored
    originals = [t.clone() for t in (train, test, train_boxes, test_boxes)]

    degradation = Degradation((64, 96), target_size=4, up_modes=('bilinear',))
    out = degradation([train, test], [train_boxes, test_boxes])

    # Mean box over the 11 valid boxes: w = (6 * 24 + 5 * 8) / 11, h = (6 * 8 + 5 * 24) / 11.
    mean_w, mean_h = (6 * 24 + 5 * 8) / 11, (6 * 8 + 5 * 24) / 11
    size = (round(64 * 4 / mean_h), round(96 * 4 / mean_w))
    assert size == degraded_size((64, 96), (mean_w, mean_h), 4)
    assert out.sizes.tolist() == [list(size)] * 12
    flat = torch.cat([train, test]).reshape(-1, 3, 64, 96)
    expected = F.interpolate(F.interpolate(flat, size=size, mode='bicubic', align_corners=False, antialias=True),
                             size=(64, 96), mode='bilinear', align_corners=False)
    assert torch.allclose(torch.cat(out.images).reshape(-1, 3, 64, 96), expected)
    assert out.images[0].shape == train.shape and out.images[1].shape == test.shape
    assert not torch.allclose(out.images[0], train)
    for before, after in zip(originals, (train, test, train_boxes, test_boxes)):
        assert torch.equal(before, after)                                   # inputs, boxes included, untouched


def test_degradation_modes_and_per_image_scale():
    torch.manual_seed(0)
    images = torch.randn(2, 1, 3, 32, 32)
    boxes = torch.tensor([[[0.0, 0.0, 16.0, 16.0]], [[0.0, 0.0, 8.0, 4.0]]])
    per_image = Degradation(32, target_size=4, up_modes=('nearest',), per_image=True)([images], [boxes])
    assert per_image.sizes.tolist() == [[8, 8], [32, 16]]
    expected = F.interpolate(F.interpolate(images[0], size=(8, 8), mode='bicubic', align_corners=False,
                                           antialias=True), size=(32, 32), mode='nearest')
    assert torch.allclose(per_image.images[0][0], expected)

    # Up-sampling: nearest or bilinear with probability 1/2, one draw per batch.
    degradation = Degradation(32, target_size=4)
    modes = [degradation([images], [boxes]).up_modes for _ in range(400)]
    assert all(len(set(m)) == 1 for m in modes)
    share = sum(m[0] == 'nearest' for m in modes) / len(modes)
    assert 0.42 < share < 0.58

    with pytest.raises(ValueError):
        degradation([torch.randn(1, 1, 3, 16, 16)], [boxes[:1]])            # not settings.output_sz


def test_valid_boxes():
    boxes = torch.tensor([[1.0, 1.0, 5.0, 5.0], [1.0, 1.0, 0.0, 5.0], [99999.0, 0.0, 5.0, 5.0],
                          [float('nan'), 1.0, 5.0, 5.0]])
    assert valid_boxes(boxes).tolist() == [True, False, False, False]


def test_valid_samples_select_valid_frames_without_copying_when_all_are():
    from ltr_plugins.actors.mkdnet import INVALID_BOX_X, Batch
    x = torch.arange(2 * 3 * 4.0).reshape(2, 3, 4)
    annotations = torch.ones(2, 3, 4)
    everything = Batch(annotations).valid(x)
    assert everything.shape == (6, 4) and everything.data_ptr() == x.data_ptr()
    mask = torch.tensor([[True, False, True], [False, True, True]])
    annotations[~mask] = INVALID_BOX_X
    assert torch.equal(Batch(annotations).valid(x), x[mask])
