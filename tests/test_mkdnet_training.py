"""MKDNet training on real pytracking networks and data: the actor's step, the fixed teacher, the multi-GPU layout,
every train setting, the smoke run through pytracking's run_training.py with its resume, and the export.

Most tests use a small real DiMPnet (pytracking's dimpnet18, Super-DiMP's arguments, 128-px crops) on one batch of
Super-DiMP's processing of synthetic LaTOT sequences; the train settings, the smoke run and the export use the full
Super-DiMP (dimpnet50).
"""
import copy
import glob
import os
import shutil
import types

import pytest
import torch

from conftest import states_equal, ltr_settings, run_script

import ltr.actors.tracking as tracking_actors
import ltr.models.loss as ltr_losses
import ltr.models.loss.kl_regression as klreg_losses
from ltr.models.tracking import dimpnet

from ltr_plugins import distillation as kd
from ltr_plugins.actors.mkdnet import MKDNetActor
from ltr_plugins.models.degradation import build_degradation
from ltr_plugins.models.discriminator import build_discriminators, roi_feature_shapes
from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network
from ltr_plugins.models.teacher_student import (SUPER_DIMP_FILE, SUPER_DIMP_URL, FrozenTeacher, MKDNetStudent,
                                                find_super_dimp_checkpoint)
from ltr_plugins.train_settings.mkdnet import _recipe as recipe
from ltr_plugins.trainers.precision import MixedPrecision

FEATURE_SZ = 8                        # 128-px crops
SETTING_NAMES = ['mkdnet', 'mkdnet_fd', 'mkdnet_sd', 'mkdnet_ioud', 'baseline', 'mkdnet_release', 'mkdnet_latot_ft',
                 'smoke']
EVERY_TERM = ['Loss/cls', 'Loss/iou', 'Loss/cons', 'Loss/gen', 'Loss/dis', 'Loss/score_d', 'Loss/iou_d', 'RDM/iou',
              'RDM/cls']


def make_settings(workspace: str, **paths) -> types.SimpleNamespace:
    env = types.SimpleNamespace(**ltr_settings(workspace, **paths))
    return types.SimpleNamespace(env=env)


def small_dimpnet() -> torch.nn.Module:
    """pytracking's dimpnet18 with Super-DiMP's arguments: the same heads on a ResNet-18 trunk."""
    return dimpnet.dimpnet18(filter_size=4, backbone_pretrained=False, optim_iter=5, clf_feat_norm=True,
                             clf_feat_blocks=0, final_conv=True, out_feature_dim=512, optim_init_step=0.9,
                             optim_init_reg=0.1, init_gauss_sigma=(0.25 / 6) * FEATURE_SZ, num_dist_bins=100,
                             bin_displacement=0.1, mask_init_factor=3.0, target_mask_act='sigmoid', score_act='relu',
                             frozen_backbone_layers=['conv1', 'bn1', 'layer1', 'layer2'])


def objective():
    return {'bb_ce': klreg_losses.KLRegression(), 'test_clf': ltr_losses.LBHinge(threshold=0.05)}


def paper_settings(workspace: str, latot_root: str) -> types.SimpleNamespace:
    settings = make_settings(workspace)
    recipe.paper(settings)
    settings.batch_size, settings.num_workers, settings.max_gap = 2, 0, 30
    settings.feature_sz, settings.output_sz = FEATURE_SZ, FEATURE_SZ * 16
    settings.synthetic_latot_dir = latot_root
    settings.train_datasets, settings.samples_per_epoch, settings.val_datasets = {'synthetic_latot': 1}, 2, {}
    return settings


@pytest.fixture(scope='module')
def batch_and_settings(synthetic_latot, tmp_path_factory):
    settings = paper_settings(str(tmp_path_factory.mktemp('ws')), synthetic_latot.root)
    torch.manual_seed(0)
    return next(iter(recipe.build_loaders(settings)[0])), settings


def mkdnet_parts(settings, discriminators: bool = True, mixed_precision=None):
    torch.manual_seed(1)
    student = small_dimpnet()
    shapes = roi_feature_shapes(student.bb_regressor)
    teacher = FrozenTeacher(copy.deepcopy(student))
    net = MKDNetStudent(student, build_discriminators(shapes) if discriminators else None)
    actor = MKDNetActor(net, objective(), settings.loss_weight, teacher=teacher,
                        degradation=build_degradation(settings), score_iterates=settings.score_distill_iterates,
                        precision=MixedPrecision(mixed_precision, 'cpu'))
    optimizer, _ = recipe.build_optimizer(settings, actor)
    return actor, optimizer


def snapshot(module: torch.nn.Module):
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


# ------------------------------------------------------------------------------------------------------ the step

def test_training_step_trains_the_student_and_leaves_the_teacher_bit_identical(batch_and_settings):
    data, settings = batch_and_settings
    actor, optimizer = mkdnet_parts(settings)
    teacher, student = actor.teacher, actor.net
    actor.train(True)
    assert not any(m.training for m in teacher.modules()) and student.training

    teacher_before, student_before = snapshot(teacher), snapshot(student)
    assert any(name.endswith('running_mean') for name in teacher_before)
    loss, stats = actor(data)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    # The teacher: no gradient, in no optimizer, parameters and BatchNorm buffers bit-identical, still in eval mode.
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    optimized = {id(p) for group in optimizer.param_groups for p in group['params']}
    assert not optimized & {id(p) for p in teacher.parameters()}
    teacher_after = snapshot(teacher)
    assert teacher_before.keys() == teacher_after.keys()
    assert all(torch.equal(teacher_before[k], teacher_after[k]) for k in teacher_before)
    assert not any(m.training for m in teacher.modules())

    # The student and the discriminators did learn; the student's BatchNorm statistics moved; frozen layers did not.
    student_after = snapshot(student)
    changed = {k for k in student_before if not torch.equal(student_before[k], student_after[k])}
    assert any(k.startswith('net.bb_regressor.') and k.endswith('weight') for k in changed)
    assert any(k.startswith('net.classifier.') for k in changed)
    assert any(k.startswith('net.feature_extractor.layer3.') for k in changed)
    assert any(k.startswith('discriminators.layer2.') for k in changed)
    assert any(k.startswith('discriminators.layer3.') for k in changed)
    assert any(k.endswith('running_mean') for k in changed)
    assert not any(k.startswith('net.feature_extractor.layer1.') for k in changed)

    # Every term is logged, finite.
    assert set(EVERY_TERM) <= set(stats)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert stats['RDM/iou'] >= 0 and stats['RDM/cls'] >= 0


def test_rdm_zero_removes_every_gated_gradient(batch_and_settings):
    """Teacher = student, same crops, both in eval mode: the student is no worse than the teacher, RDM is 0, and the
    student's gradient is exactly that of alpha L_cls + beta L_iou (the gated terms add nothing)."""
    data, settings = batch_and_settings
    settings = copy.copy(settings)
    settings.degrade = False
    actor, _ = mkdnet_parts(settings)
    actor.eval()
    loss, stats = actor(data)
    assert stats['RDM/iou'] == 0 and stats['RDM/cls'] == 0
    assert stats['Loss/gen'] > 0                              # a term that would push the student if it were on
    student_params = [p for p in actor.net.net.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, student_params, allow_unused=True)

    task_only = MKDNetActor(actor.net, objective(), {'cls': 100, 'iou': 0.01})
    task_only.eval()
    task_loss, _ = task_only(data)
    task_grads = torch.autograd.grad(task_loss, student_params, allow_unused=True)
    for g, t in zip(grads, task_grads):
        assert (g is None) == (t is None)
        if g is not None:
            assert torch.allclose(g, t, rtol=1e-5, atol=1e-9)


def test_without_distillation_the_loss_is_super_dimps(batch_and_settings):
    """alpha L_cls + beta L_iou with alpha = 100, beta = 0.01 is KLDiMPActor's Super-DiMP loss, to the last bit."""
    data, _ = batch_and_settings
    torch.manual_seed(2)
    net = small_dimpnet()
    stock = tracking_actors.KLDiMPActor(net=net, objective=objective(), loss_weight={
        'bb_ce': 0.01, 'test_clf': 100, 'test_init_clf': 100, 'test_iter_clf': 400})
    ours = MKDNetActor(MKDNetStudent(net), objective(), {'cls': kd.PAPER_LOSS_WEIGHTS['cls'],
                                                         'iou': kd.PAPER_LOSS_WEIGHTS['iou']})
    stock.train(True)
    ours.train(True)
    stock_loss, stock_stats = stock(data)
    our_loss, our_stats = ours(data)
    assert torch.allclose(our_loss, stock_loss, rtol=1e-6)
    assert our_stats['Loss/iou'] == pytest.approx(stock_stats['Loss/bb_ce'], rel=1e-6)


def test_student_sees_degraded_crops_teacher_the_originals_and_geometry_is_shared(batch_and_settings):
    data, settings = batch_and_settings
    actor, _ = mkdnet_parts(settings)
    seen = {}

    def keep(name):
        def hook(module, args, kwargs):
            seen[name] = {k: v.detach().clone() for k, v in kwargs.items()}
        return hook

    handles = [actor.net.net.register_forward_pre_hook(keep('student'), with_kwargs=True),
               actor.teacher.net.register_forward_pre_hook(keep('teacher'), with_kwargs=True)]
    before = {k: v.clone() for k, v in data.items() if isinstance(v, torch.Tensor)}
    torch.manual_seed(5)
    actor.train(True)
    actor(data)
    for handle in handles:
        handle.remove()
    torch.manual_seed(5)
    expected = actor.degradation([data['train_images'], data['test_images']], [data['train_anno'], data['test_anno']])

    assert torch.equal(seen['teacher']['train_imgs'], data['train_images'])
    assert torch.equal(seen['teacher']['test_imgs'], data['test_images'])
    assert torch.equal(seen['student']['train_imgs'], expected.images[0])
    assert torch.equal(seen['student']['test_imgs'], expected.images[1])
    assert not torch.equal(seen['student']['test_imgs'], data['test_images'])
    for key in ('train_bb', 'test_proposals'):
        assert torch.equal(seen['student'][key], seen['teacher'][key])
    assert torch.equal(seen['student']['train_bb'], data['train_anno'])
    assert torch.equal(seen['student']['test_proposals'], data['test_proposals'])
    assert all(torch.equal(before[k], data[k]) for k in before)        # boxes, labels, proposals, images untouched


# ------------------------------------------------------------------------------------------------------ multi-GPU

def _gather(outputs, dim=1):
    """What DataParallel's gather does: concatenate every tensor of the replicas' outputs along ``dim``."""
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs, dim=dim)
    if isinstance(first, dict):
        return {k: _gather([o[k] for o in outputs], dim) for k in first}
    return type(first)(_gather(list(parts), dim) for parts in zip(*outputs))


def test_outputs_gather_right_when_the_batch_splits_unevenly(batch_and_settings):
    """ltr's MultiGPU(dim=1) scatters the sequences with torch.chunk and concatenates the outputs along dim 1; with 3
    sequences on 2 GPUs the replicas get 2 and 1. Every output, RoI features included, must come out as from one
    device."""
    data, settings = batch_and_settings
    actor, _ = mkdnet_parts(settings)
    inputs = {'train_imgs': data['train_images'], 'test_imgs': data['test_images'], 'train_bb': data['train_anno'],
              'test_proposals': data['test_proposals']}
    inputs = {k: torch.cat([v, v[:, :1]], dim=1) for k, v in inputs.items()}        # 3 sequences
    for module in (actor.net, actor.teacher):
        module.eval()          # per-replica BatchNorm batch statistics would differ by design; the layout must not
        with torch.no_grad():
            whole = module(**inputs)
            chunks = {k: torch.chunk(v, 2, dim=1) for k, v in inputs.items()}
            assert [c.shape[1] for c in chunks['train_imgs']] == [2, 1]
            parts = [module(**{k: v[i] for k, v in chunks.items()}) for i in range(2)]
        gathered = _gather(parts)
        assert gathered['roi']['layer2'].shape == (3, 3, 128, 256, 5, 5)
        assert gathered['roi']['layer3'].shape == (3, 3, 128, 256, 3, 3)
        assert gathered['iou'].shape == (3, 3, 128)
        assert len(gathered['scores']) == 6 and gathered['scores'][-1].shape == whole['scores'][-1].shape
        for a, b in zip(whole['scores'], gathered['scores']):
            assert torch.allclose(a, b, atol=1e-5)
        assert torch.allclose(whole['iou'], gathered['iou'], atol=1e-4)
        for branch in ('layer2', 'layer3'):
            assert torch.allclose(whole['roi'][branch], gathered['roi'][branch], atol=1e-5)


def test_roi_features_are_those_the_iou_net_uses(batch_and_settings):
    """The recorded RoI features, pushed through the IoU-net's own fc3_rt / fc4_rt / iou_predictor, give its IoU
    predictions: they are the modulated, PrRoIPooled test features of every proposal, in the output layout."""
    data, settings = batch_and_settings
    actor, _ = mkdnet_parts(settings)
    actor.net.eval()
    with torch.no_grad():
        out = actor.net(train_imgs=data['train_images'], test_imgs=data['test_images'], train_bb=data['train_anno'],
                        test_proposals=data['test_proposals'])
        bb = actor.net.net.bb_regressor
        roi3, roi4 = (out['roi'][b].reshape(-1, *out['roi'][b].shape[-3:]) for b in ('layer2', 'layer3'))
        iou = bb.iou_predictor(torch.cat((bb.fc3_rt(roi3), bb.fc4_rt(roi4)), dim=1)).reshape(out['iou'].shape)
    assert torch.allclose(iou, out['iou'], atol=1e-5)


# ------------------------------------------------------------------------------------------------- train settings

@pytest.fixture(scope='module')
def pretrained_dir(tmp_path_factory):
    """A Super-DiMP network file in the official format (random weights: no download here)."""
    folder = tmp_path_factory.mktemp('pretrained_networks')
    torch.manual_seed(3)
    save_tracking_network(build_super_dimp(backbone_pretrained=False), str(folder / SUPER_DIMP_FILE))
    return str(folder)


@pytest.mark.parametrize('name', SETTING_NAMES)
def test_every_train_setting_imports_and_builds(name, pretrained_dir, tmp_path):
    import importlib
    module = importlib.import_module('ltr.train_settings.mkdnet.' + name)
    assert callable(module.run)
    settings = make_settings(str(tmp_path), pretrained_networks=pretrained_dir)
    module.configure(settings)
    actor = recipe.build_actor(settings)
    optimizer, lr_scheduler = recipe.build_optimizer(settings, actor)
    w = settings.loss_weight

    assert set(settings.train_datasets) | set(settings.val_datasets) <= set(recipe.DATASETS)
    assert [g['lr'] for g in optimizer['student'].param_groups] == [5e-5, 5e-4, 5e-5, 5e-5, 5e-4]
    assert (lr_scheduler.step_size, lr_scheduler.gamma) == (15, 0.2)
    assert (settings.num_train_frames, settings.num_test_frames) == (3, 3)
    assert actor.degradation is not None and actor.degradation.target_size == 16
    assert actor.degradation.crop_size == (settings.output_sz, settings.output_sz)
    assert (w['cls'], w['iou']) == (100, 0.01)
    has_discriminators = actor.net.discriminators is not None
    assert has_discriminators == (w['gen'] > 0 or w['dis'] > 0)
    if has_discriminators:
        assert optimizer['discriminators'].param_groups[0]['lr'] == 5e-4
        assert set(actor.net.discriminators) == {'layer2', 'layer3'}
    assert (actor.teacher is None) == (name == 'baseline')

    if name == 'smoke':
        assert settings.init == 'random' and (settings.batch_size, settings.num_workers) == (2, 0)
        assert settings.train_datasets == {'synthetic_latot': 1}
        return
    assert (settings.num_epochs, settings.samples_per_epoch, settings.batch_size) == (50, 20000, 20)
    assert settings.output_sz == 352
    file_weights = torch.load(os.path.join(pretrained_dir, SUPER_DIMP_FILE), weights_only=False)['net']
    key = 'bb_regressor.iou_predictor.weight'
    assert torch.equal(actor.net.net.state_dict()[key], file_weights[key])
    if actor.teacher is not None:
        assert torch.equal(actor.teacher.net.state_dict()[key], file_weights[key])
        assert actor.teacher.net is not actor.net.net
    paper = {'lasot', 'got10k_vottrain', 'trackingnet'}
    expected = {
        'mkdnet': (kd.PAPER_LOSS_WEIGHTS, (-1,), paper, {'got10k_votval'}),
        'mkdnet_fd': (dict(kd.PAPER_LOSS_WEIGHTS, score_d=0, iou_d=0), (-1,), paper, {'got10k_votval'}),
        'mkdnet_sd': (dict(kd.PAPER_LOSS_WEIGHTS, gen=0, cons=0, dis=0, iou_d=0), (-1,), paper, {'got10k_votval'}),
        'mkdnet_ioud': (dict(kd.PAPER_LOSS_WEIGHTS, gen=0, cons=0, dis=0, score_d=0), (-1,), paper,
                        {'got10k_votval'}),
        'baseline': (dict(kd.PAPER_LOSS_WEIGHTS, gen=0, cons=0, dis=0, score_d=0, iou_d=0), (-1,), paper,
                     {'got10k_votval'}),
        'mkdnet_release': (dict(kd.PAPER_LOSS_WEIGHTS, score_d=4, iou_d=0.05, dis=0.25), (0, 1), paper,
                           {'latot_train'}),
        'mkdnet_latot_ft': (kd.PAPER_LOSS_WEIGHTS, (-1,), paper | {'latot_train'}, {'got10k_votval'}),
    }[name]
    assert w == expected[0]
    assert tuple(settings.score_distill_iterates) == expected[1]
    assert set(settings.train_datasets) == expected[2] and set(settings.val_datasets) == expected[3]


def test_a_missing_super_dimp_checkpoint_says_where_to_get_it(tmp_path):
    settings = make_settings(str(tmp_path), pretrained_networks=str(tmp_path / 'pretrained'))
    settings.teacher_checkpoint = None
    try:
        found = find_super_dimp_checkpoint(settings)
    except FileNotFoundError as error:
        message = str(error)
        assert SUPER_DIMP_FILE in message and str(tmp_path / 'pretrained') in message
        assert 'MODEL_ZOO' in message and SUPER_DIMP_URL in message and 'teacher_checkpoint' in message
    else:
        pytest.skip('a real {} is installed in pytracking\'s network folder: {}'.format(SUPER_DIMP_FILE, found))

    settings.teacher_checkpoint = str(tmp_path / 'elsewhere.pth.tar')
    with pytest.raises(FileNotFoundError, match='elsewhere.pth.tar'):
        find_super_dimp_checkpoint(settings)


# --------------------------------------------------------------------------------------- smoke, resume and export

def _checkpoints(workspace: str):
    return sorted(glob.glob(os.path.join(workspace, 'checkpoints', 'ltr', 'mkdnet', 'smoke', '*.pth.tar')))


def _tensorboard_tags(folder: str):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(folder)
    accumulator.Reload()
    return set(accumulator.Tags()['scalars'])


def test_smoke_trains_resumes_exactly_and_exports_a_super_dimp_network(tmp_path):
    from ltr.admin import loading
    from pytracking.features.net_wrappers import NetWithBackbone
    from ltr_plugins.export_mkdnet import export_student

    # Run 1: two epochs from scratch.
    first = str(tmp_path / 'first')
    os.makedirs(first)
    out = run_script('ltr/run_training.py', ['mkdnet', 'smoke'], ltr=ltr_settings(first)).stdout
    assert 'RANDOM INITIALISATION' in out and 'No matching checkpoint file found' in out
    for term in EVERY_TERM:
        assert term + ':' in out, term
    assert '[train: 1, 1 / 2]' in out and '[train: 2, 2 / 2]' in out and '[val: 2, 1 / 1]' in out
    assert [os.path.basename(p) for p in _checkpoints(first)] == ['MKDNetStudent_ep0001.pth.tar',
                                                                  'MKDNetStudent_ep0002.pth.tar']
    board = os.path.join(first, 'tensorboard', 'ltr', 'mkdnet', 'smoke')
    tags = _tensorboard_tags(os.path.join(board, 'train'))
    assert set(EVERY_TERM) <= tags
    assert {'Iteration/RDM/iou', 'Iteration/RDM/cls', 'Iteration/Loss/dis'} <= tags
    assert set(EVERY_TERM) <= _tensorboard_tags(os.path.join(board, 'val'))

    # Run 2: a workspace holding only epoch 1's checkpoint resumes from it and trains epoch 2, which comes out as the
    # uninterrupted run's to the bit: weights, BatchNorm statistics, both optimizers' states.
    second = str(tmp_path / 'second')
    os.makedirs(os.path.join(second, 'checkpoints', 'ltr', 'mkdnet', 'smoke'))
    shutil.copy(_checkpoints(first)[0], os.path.join(second, 'checkpoints', 'ltr', 'mkdnet', 'smoke'))
    out = run_script('ltr/run_training.py', ['mkdnet', 'smoke'], ltr=ltr_settings(second)).stdout
    assert 'Resumed from the checkpoint of epoch 1' in out
    assert '[train: 1,' not in out and '[train: 2, 2 / 2]' in out and '[train: 3,' not in out
    resumed = loading.torch_load_legacy(_checkpoints(second)[-1])
    uninterrupted = loading.torch_load_legacy(_checkpoints(first)[-1])
    assert resumed['epoch'] == uninterrupted['epoch'] == 2
    assert states_equal(resumed['net'], uninterrupted['net'])
    assert set(resumed['optimizer']) == {'student', 'discriminators'}
    assert states_equal(resumed['optimizer'], uninterrupted['optimizer'])
    assert not any(k.startswith('teacher') for k in resumed['net'])

    # Export: a Super-DiMP network file that stock NetWithBackbone loads, with the student alone.
    exported = export_student(os.path.dirname(_checkpoints(first)[-1]), str(tmp_path / 'networks' / 'mkdnet.pth.tar'))
    wrapper = NetWithBackbone(net_path=exported, use_gpu=False)
    wrapper.initialize()
    reference = build_super_dimp(backbone_pretrained=False)
    assert type(wrapper.net) is type(reference)
    exported_state, reference_state = wrapper.net.state_dict(), reference.state_dict()
    assert exported_state.keys() == reference_state.keys()
    assert all(exported_state[k].shape == reference_state[k].shape and exported_state[k].dtype ==
               reference_state[k].dtype for k in reference_state)
    student_state = {k[len('net.'):]: v for k, v in uninterrupted['net'].items() if k.startswith('net.')}
    assert all(torch.equal(exported_state[k], student_state[k]) for k in student_state)
    saved = torch.load(exported, weights_only=False)
    assert not any('discriminator' in k or 'teacher' in k for k in saved['net'])
    assert 'optimizer' not in saved
    super_dimp_file = save_tracking_network(reference, str(tmp_path / 'networks' / 'super_dimp.pth.tar'))
    # Same tensors as Super-DiMP; the few hundred bytes more are the provenance in net_info.
    assert os.path.getsize(exported) <= os.path.getsize(super_dimp_file) + 1024


# --------------------------------------------------------------------------------- what each step logs, fp16 overflow

def test_eq11_terms_sum_to_the_loss_and_an_undistilled_student_logs_its_distance(batch_and_settings):
    data, settings = batch_and_settings
    actor, _ = mkdnet_parts(settings)
    _, stats = actor(data)
    weighted = [value for name, value in stats.items() if name.startswith('Eq11/')]
    assert len(weighted) == 6 and sum(weighted) == pytest.approx(stats['Loss/total'], rel=1e-5)
    assert stats['Eq11/cons'] == pytest.approx(5.0 * stats['RDM/iou'] * stats['Loss/cons'], rel=1e-5)
    assert stats['Distance/cons'] == pytest.approx(stats['Loss/cons'], rel=1e-6)
    assert stats['RDM/open_iou'] == float(stats['RDM/iou'] > 0)
    assert 0 <= stats['RDM/teacher_better_iou'] <= 1 and 0 <= stats['RDM/teacher_better_cls'] <= 1

    undistilled = dict(settings.loss_weight, gen=0.0, cons=0.0, dis=0.0, score_d=0.0, iou_d=0.0)
    baseline = MKDNetActor(actor.net, objective(), undistilled, teacher=actor.teacher,
                           degradation=build_degradation(settings))
    loss, stats = baseline(data)
    assert {'Distance/cons', 'Distance/score_d', 'Distance/iou_d', 'RDM/iou'} <= set(stats)
    assert not any(name.startswith('Loss/') and name[5:] in ('cons', 'gen', 'score_d', 'iou_d') for name in stats)
    assert loss.item() == pytest.approx(stats['Eq11/cls'] + stats['Eq11/iou'], rel=1e-5)   # no distillation in it


def test_an_fp16_overflow_skips_the_step_and_lowers_the_scale_until_too_many_in_a_row(batch_and_settings):
    from ltr_plugins.actors import mkdnet as actor_module
    data, settings = batch_and_settings
    actor, optimizer = mkdnet_parts(settings, mixed_precision='fp16')
    overflowing = dict(data)
    overflowing['train_images'] = data['train_images'] * 1e6          # beyond float16's range in the forward pass
    before = snapshot(actor.net)
    scale = optimizer.grad_scaler.get_scale()
    loss, stats = actor(overflowing)
    assert not torch.isfinite(loss) and stats == {'AMP/skipped_step': 1.0, 'AMP/scale': 0.0}
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()                                                   # skipped by the scaler, which backs off
    actor.restore_skipped_buffers()                                    # as the next step or a checkpoint does
    assert states_equal(snapshot(actor.net), before) and optimizer.grad_scaler.get_scale() == scale / 2
    _, stats = actor(data)                                             # a normal step resets the count
    assert stats['AMP/skipped_step'] == 0.0 and actor.skipped_steps == 0
    actor.skipped_steps = actor_module.MAX_CONSECUTIVE_SKIPPED_STEPS - 1
    with pytest.raises(FloatingPointError, match='in a row'):
        actor(overflowing)
