"""Stock DiMP / Super-DiMP on the installed stack, on the CPU: imports, one training step, one tracking run."""
import importlib
import os

import numpy as np
import pytest
import torch

from conftest import ltr_settings, pytracking_settings, run_script


@pytest.mark.parametrize('module', ['ltr.models.tracking.dimpnet', 'ltr.train_settings.dimp.super_dimp',
                                    'ltr.train_settings.dimp.dimp50', 'pytracking.tracker.dimp',
                                    'pytracking.parameter.dimp.super_dimp', 'pytracking.analysis.plot_results'])
def test_stock_modules_import(module):
    importlib.import_module(module)


def test_stock_super_dimp_training_gets_past_its_imports(workspace):
    result = run_script('ltr/run_training.py', ['dimp', 'super_dimp'], ltr=ltr_settings(workspace), check=False)
    # It stops where it first needs a dataset folder (none is configured here), not at an import.
    assert 'Training:  dimp  super_dimp' in result.stdout
    assert 'ImportError' not in result.stdout and 'ModuleNotFoundError' not in result.stdout
    assert 'ltr/dataset/lasot.py' in result.stdout, result.stdout[-3000:]


def test_one_super_dimp_training_step_on_cpu(synthetic_latot):
    import ltr.actors.tracking as tracking_actors
    import ltr.data.transforms as tfm
    import ltr.models.loss as ltr_losses
    import ltr.models.loss.kl_regression as klreg_losses
    from ltr.data import LTRLoader, processing, sampler
    from ltr_plugins.dataset import LaTOT
    from ltr_plugins.models.super_dimp import OUTPUT_SIGMA_FACTOR, SEARCH_AREA_FACTOR, build_super_dimp

    torch.manual_seed(0)
    feature_sz, filter_sz = 12, 4   # 192-px crops instead of 352 keep the step fast on a CPU
    output_sigma = OUTPUT_SIGMA_FACTOR / SEARCH_AREA_FACTOR
    label_params = {'feature_sz': feature_sz, 'sigma_factor': output_sigma, 'kernel_sz': filter_sz}
    data_processing = processing.KLDiMPProcessing(
        search_area_factor=SEARCH_AREA_FACTOR, output_sz=feature_sz * 16,
        center_jitter_factor={'train': 3, 'test': 5.5}, scale_jitter_factor={'train': 0.25, 'test': 0.5},
        crop_type='inside_major', max_scale_change=1.5, mode='sequence',
        proposal_params={'boxes_per_frame': 128, 'gt_sigma': (0.05, 0.05), 'proposal_sigma': [(0.05, 0.05), (0.5, 0.5)]},
        label_function_params=label_params, label_density_params=label_params,
        transform=tfm.Transform(tfm.ToTensorAndJitter(0.2), tfm.Normalize(mean=[0.485, 0.456, 0.406],
                                                                          std=[0.229, 0.224, 0.225])))
    dataset = sampler.DiMPSampler([LaTOT(synthetic_latot.root, split='train', allow_missing=True)], [1],
                                  samples_per_epoch=2, max_gap=30, num_test_frames=3, num_train_frames=3,
                                  processing=data_processing)
    loader = LTRLoader('train', dataset, training=True, batch_size=2, num_workers=0, stack_dim=1)

    net = build_super_dimp(backbone_pretrained=False, feature_sz=feature_sz)
    actor = tracking_actors.KLDiMPActor(
        net=net, objective={'bb_ce': klreg_losses.KLRegression(), 'test_clf': ltr_losses.LBHinge(threshold=0.05)},
        loss_weight={'bb_ce': 0.01, 'test_clf': 100, 'test_init_clf': 100, 'test_iter_clf': 400})
    actor.train(True)
    optimizer = torch.optim.Adam(net.bb_regressor.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in net.bb_regressor.parameters()]

    loss, stats = actor(next(iter(loader)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    assert torch.isfinite(loss)
    assert {'Loss/total', 'Loss/bb_ce', 'ClfTrain/test_loss'} <= set(stats)
    assert any(not torch.equal(b, p) for b, p in zip(before, net.bb_regressor.parameters()))


def test_stock_super_dimp_tracks_through_run_tracker(synthetic_latot, workspace):
    from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network

    torch.manual_seed(0)
    save_tracking_network(build_super_dimp(backbone_pretrained=False),
                          os.path.join(workspace, 'networks', 'super_dimp.pth.tar'))
    sequence = synthetic_latot.tracked_sequence
    settings = pytracking_settings(workspace, latot_path=synthetic_latot.root)
    result = run_script('pytracking/run_tracker.py', ['dimp', 'super_dimp', '--dataset_name', 'latot_test',
                                                      '--sequence', sequence], pytracking=settings)
    cpu_fallback = 'No CUDA device: running dimp super_dimp on the CPU.'
    if torch.cuda.is_available():
        assert 'No CUDA device' not in result.stdout
    else:
        assert cpu_fallback in result.stdout

    results_file = os.path.join(workspace, 'tracking_results', 'dimp', 'super_dimp', sequence + '.txt')
    with open(results_file) as f:
        lines = f.read().splitlines()
    assert len(lines) == synthetic_latot.tracked_frames
    boxes = np.loadtxt(results_file, delimiter='\t')
    assert boxes.shape == (synthetic_latot.tracked_frames, 4)
    assert all(len(value.split('.')[1]) == 2 for value in lines[1].split('\t'))   # sub-pixel results
    np.testing.assert_allclose(boxes[0], synthetic_latot.first_box(sequence), atol=0.005)
