"""The windowed IoU-net refinement (pytracking_plugins.iou_window) and the MKDNet tracker that uses it: the same IoU
predictions, gradients and tracked boxes as pytracking's stock IoU-net and DiMP tracker, to float rounding."""
import numpy as np
import pytest
import torch

from ltr.models.bbreg.atom_iou_net import AtomIoUNet

from pytracking_plugins import iou_window
from pytracking_plugins.iou_window import NonFiniteProposal, WindowedIoUNet

MARGIN = 0.25

CROP = 352
TARGET = torch.tensor([150.0, 160.0, 58.0, 47.0])   # x, y, w, h in the crop: a sixth of it, as DiMP samples


def iou_net(seed: int = 0) -> AtomIoUNet:
    """Super-DiMP's IoU-net with random weights and BatchNorm statistics (the stock ones are 0 and 1)."""
    torch.manual_seed(seed)
    net = AtomIoUNet(input_dim=(512, 1024), pred_input_dim=(256, 256), pred_inter_dim=(256, 256))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net.eval().requires_grad_(False)


@pytest.fixture(scope='module')
def crop():
    """An IoU-net, the backbone features of one 352-pixel crop, the target's modulation and ten starting boxes."""
    net = iou_net()
    generator = torch.Generator().manual_seed(1)
    backbone = [torch.randn(1, 512, CROP // 8, CROP // 8, generator=generator),
                torch.randn(1, 1024, CROP // 16, CROP // 16, generator=generator)]
    with torch.no_grad():
        modulation = [m.mean(0) for m in net.get_modulation(backbone, TARGET.view(1, 4))]
        whole_map = net.get_iou_feat(backbone)
    jitter = (torch.rand(9, 4, generator=generator) - 0.5) * torch.tensor([6.0, 6.0, 26.0, 26.0])
    boxes = torch.cat([TARGET.view(1, 4), TARGET + jitter])
    return net, backbone, modulation, whole_map, boxes


def test_receptive_radius_of_the_iou_feature_stacks():
    net = iou_net()
    layers = iou_window._stack_layers(net, ('conv3_1t', 'conv3_2t'))
    assert [type(layer).__name__ for layer in layers] == ['Conv2d', 'BatchNorm2d', 'ReLU'] * 2
    assert iou_window.receptive_radius(layers) == 2
    assert iou_window.receptive_radius([torch.nn.Conv2d(4, 4, 3, padding=2, dilation=2)]) == 2
    holder = torch.nn.Module()
    for layer, message in ((torch.nn.Conv2d(4, 4, 3, stride=2, padding=1), 'stride-1 convolution'),
                           (torch.nn.Conv2d(4, 4, 3, padding=0), 'keeps the map size'),
                           (torch.nn.MaxPool2d(2), 'convolutions, BatchNorm and ReLU only')):
        holder.stack = torch.nn.Sequential(layer)
        with pytest.raises(ValueError, match=message):
            iou_window._stack_layers(holder, ('stack',))


@pytest.mark.parametrize('window', [(0, 43, 0, 43), (0, 5, 0, 7), (38, 43, 30, 43), (10, 20, 0, 43), (3, 3, 40, 43)],
                         ids=['whole-map', 'top-left', 'bottom-right', 'full-width', 'one-row'])
def test_convolve_window_equals_the_whole_map_convolution(window):
    net = iou_net()
    layers = iou_window._stack_layers(net, ('conv3_1t', 'conv3_2t'))
    feat = torch.randn(1, 512, 44, 44, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        whole = net.conv3_2t(net.conv3_1t(feat))
        ours = iou_window.convolve_window(layers, feat, window)
    y0, y1, x0, x1 = window
    assert ours.shape == (1, 256, y1 - y0 + 1, x1 - x0 + 1)
    torch.testing.assert_close(ours, whole[..., y0:y1 + 1, x0:x1 + 1], rtol=1e-5, atol=1e-5)


def test_supports_stock_iou_nets_in_eval_mode_only():
    net = iou_net()
    assert iou_window.supports_windowing(net)
    assert not iou_window.supports_windowing(net.train())
    net.eval()

    class Custom(AtomIoUNet):
        pass
    assert not iou_window.supports_windowing(Custom(input_dim=(512, 1024)).eval())
    with pytest.raises(TypeError, match='stock AtomIoUNet in eval mode'):
        WindowedIoUNet(net.train())


def test_window_features_equal_the_whole_maps_inside_the_window(crop):
    net, backbone, modulation, whole_map, boxes = crop
    windowed = WindowedIoUNet(net).iou_features(modulation, backbone, boxes, MARGIN)
    for window, cells, feat, mod in zip(windowed.windows, windowed.cells, whole_map, modulation):
        y0, y1, x0, x1 = window
        assert 0 < y0 <= y1 < feat.shape[-2] - 1 and 0 < x0 <= x1 < feat.shape[-1] - 1   # an inner window
        expected = (feat * mod.reshape(1, -1, 1, 1))[0, :, y0:y1 + 1, x0:x1 + 1]
        torch.testing.assert_close(cells, expected, rtol=1e-5, atol=1e-5)
    # the window reaches a quarter of the box size beyond the boxes: (58 * 1.25 + jitter) / 8 cells and more
    y0, y1, x0, x1 = windowed.windows[0]
    assert x1 - x0 + 1 >= 58 * 1.5 / 8 and (x1 - x0 + 1) * (y1 - y0 + 1) < 0.25 * (CROP // 8) ** 2


def test_window_at_the_border_of_the_crop(crop):
    net, backbone, modulation, whole_map, _ = crop
    corner = torch.tensor([[2.0, 3.0, 40.0, 30.0]])
    windowed = WindowedIoUNet(net).iou_features(modulation, backbone, corner, MARGIN)
    assert [window[0] for window in windowed.windows] == [0, 0] and [w[2] for w in windowed.windows] == [0, 0]
    for window, cells, feat, mod in zip(windowed.windows, windowed.cells, whole_map, modulation):
        y0, y1, x0, x1 = window
        torch.testing.assert_close(cells, (feat * mod.reshape(1, -1, 1, 1))[0, :, y0:y1 + 1, x0:x1 + 1],
                                   rtol=1e-5, atol=1e-5)


def test_predictions_and_box_gradients_are_the_iou_nets(crop):
    net, backbone, modulation, whole_map, boxes = crop
    windowed = WindowedIoUNet(net).iou_features(modulation, backbone, boxes, MARGIN)
    generator = torch.Generator().manual_seed(3)
    for _ in range(3):
        proposals = (boxes + torch.randn(10, 4, generator=generator)).view(1, 10, 4)
        stock = proposals.clone().requires_grad_(True)
        ours = proposals.clone().requires_grad_(True)
        stock_iou = net.predict_iou(modulation, whole_map, stock)
        our_iou = windowed.predict_iou(ours)
        assert our_iou.shape == stock_iou.shape == (1, 10)
        weights = torch.randn(1, 10, generator=generator)
        (stock_iou * weights).sum().backward()
        (our_iou * weights).sum().backward()
        torch.testing.assert_close(our_iou, stock_iou, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours.grad, stock.grad, rtol=1e-4, atol=1e-6)
        assert stock.grad.abs().max() > 1e-3   # a real gradient, not two zeros


def test_refinement_in_float64_matches_to_double_precision(crop):
    net, backbone, modulation, _, boxes = crop
    net64 = iou_net().double()
    backbone64 = [f.double() for f in backbone]
    modulation64 = [m.double() for m in modulation]
    with torch.no_grad():
        whole_map = net64.get_iou_feat(backbone64)
    windowed = WindowedIoUNet(net64).iou_features(modulation64, backbone64, boxes.double(), MARGIN)
    stock = boxes.double().view(1, 10, 4).requires_grad_(True)
    ours = boxes.double().view(1, 10, 4).requires_grad_(True)
    stock_iou, our_iou = net64.predict_iou(modulation64, whole_map, stock), windowed.predict_iou(ours)
    stock_iou.sum().backward()
    our_iou.sum().backward()
    torch.testing.assert_close(our_iou, stock_iou, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.grad, stock.grad, rtol=1e-10, atol=1e-12)


def test_a_proposal_outside_the_window_grows_it(crop):
    """A proposal that reads cells beyond the window grows the window first: the prediction is still the IoU-net's."""
    net, backbone, modulation, whole_map, boxes = crop
    windowed = WindowedIoUNet(net).iou_features(modulation, backbone, boxes, margin=0.0)
    first_windows = list(windowed.windows)
    outside = boxes.clone()
    outside[3, 0] -= 40   # 5 cells to the left on layer 2, 2.5 on layer 3
    stock = outside.view(1, 10, 4).clone().requires_grad_(True)
    ours = outside.view(1, 10, 4).clone().requires_grad_(True)
    stock_iou = net.predict_iou(modulation, whole_map, stock)
    our_iou = windowed.predict_iou(ours)
    stock_iou.sum().backward()
    our_iou.sum().backward()
    assert windowed.growths == 2   # both maps
    for first, grown in zip(first_windows, windowed.windows):
        assert grown[2] < first[2] and iou_window._contains(grown, first)   # grown to the left
    torch.testing.assert_close(our_iou, stock_iou, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.grad, stock.grad, rtol=1e-4, atol=1e-6)
    for window, cells, feat, mod in zip(windowed.windows, windowed.cells, whole_map, modulation):
        y0, y1, x0, x1 = window
        torch.testing.assert_close(cells, (feat * mod.reshape(1, -1, 1, 1))[0, :, y0:y1 + 1, x0:x1 + 1],
                                   rtol=1e-5, atol=1e-5)
    windowed.predict_iou(outside.view(1, 10, 4))
    assert windowed.growths == 2   # the grown windows hold the proposal now


@pytest.mark.parametrize('corner', ['top-left', 'bottom-right'])
def test_a_window_grows_up_to_the_border_of_the_map(crop, corner):
    """A box near a corner moved partly off the crop: the grown window stops at the map's border (where the whole
    map's zero padding applies) and the prediction is still the IoU-net's."""
    net, backbone, modulation, whole_map, _ = crop
    start = torch.tensor([[20.0, 24.0, 40.0, 30.0]]) if corner == 'top-left' else \
        torch.tensor([[CROP - 60.0, CROP - 54.0, 40.0, 30.0]])
    windowed = WindowedIoUNet(net).iou_features(modulation, backbone, start, margin=0.0)
    shift = torch.tensor([-30.0, -35.0, 0.0, 0.0]) if corner == 'top-left' else torch.tensor([30.0, 35.0, 0.0, 0.0])
    stock = (start + shift).view(1, 1, 4).requires_grad_(True)
    ours = (start + shift).view(1, 1, 4).requires_grad_(True)
    stock_iou = net.predict_iou(modulation, whole_map, stock)
    our_iou = windowed.predict_iou(ours)
    stock_iou.sum().backward()
    our_iou.sum().backward()
    assert windowed.growths >= 1   # layer 3's first window may reach the border already
    for window, feat in zip(windowed.windows, whole_map):
        height, width = feat.shape[-2:]
        assert window[0::2] == (0, 0) if corner == 'top-left' else window[1::2] == (height - 1, width - 1)
    torch.testing.assert_close(our_iou, stock_iou, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.grad, stock.grad, rtol=1e-4, atol=1e-6)
    assert stock.grad.abs().max() > 1e-4


def test_a_proposal_that_is_not_a_box_raises(crop):
    net, backbone, modulation, _, boxes = crop
    windowed = WindowedIoUNet(net).iou_features(modulation, backbone, boxes, MARGIN)
    nan_box = boxes.clone()
    nan_box[0, 2] = float('nan')
    with pytest.raises(NonFiniteProposal, match='not finite'):
        windowed.predict_iou(nan_box.view(1, 10, 4))
    with pytest.raises(ValueError, match=r'proposals \[1, K, 4\]'):
        windowed.predict_iou(boxes)


def test_prediction_needs_no_gradient_of_the_network(crop):
    """The network's weights and features are constants of the prediction: no gradient reaches them, and a
    second-order gradient is refused rather than silently wrong."""
    net, backbone, modulation, _, boxes = crop
    windowed = WindowedIoUNet(net).iou_features(modulation, backbone, boxes, MARGIN)
    proposals = boxes.view(1, 10, 4).clone().requires_grad_(True)
    iou = windowed.predict_iou(proposals)
    (grad,) = torch.autograd.grad(iou.sum(), proposals, create_graph=True)
    with pytest.raises(RuntimeError, match='once_differentiable|does not require grad'):
        grad.sum().backward()
    assert all(p.grad is None for p in net.parameters())


# ------------------------------------------------------------------------------------------------ the tracker
class _Network:
    """The part of pytracking's network wrapper that DiMP's IoU-net code uses: the IoU-net, and the backbone layers
    it reads (here the backbone features are given as those layers already)."""

    def __init__(self):
        self.bb_regressor = iou_net()

    def get_backbone_bbreg_feat(self, backbone_feat):
        from pytracking import TensorList
        return TensorList(backbone_feat)


def _tracker(class_name: str, backbone, margin=None):
    """A DiMP or MKDNet tracker with Super-DiMP's parameters and the same random IoU-net, its IoU-net initialised by
    DiMP's own ``init_iou_net`` on the target ``TARGET`` of the crop."""
    from pytracking.features.augmentation import Identity
    from pytracking.parameter.dimp import super_dimp
    from pytracking.tracker.dimp import DiMP
    from pytracking.tracker.mkdnet import MKDNet

    params = super_dimp.parameters()
    params.use_gpu = False
    params.device = 'cpu'
    params.iou_window_margin = margin
    tracker = (MKDNet if class_name == 'MKDNet' else DiMP)(params)
    tracker.net = _Network()
    # the crop is centred on the sample position, at scale 1: the target's box in the crop is TARGET
    tracker.img_sample_sz = torch.tensor([float(CROP), float(CROP)])
    tracker.init_sample_pos, tracker.init_sample_scale = tracker.img_sample_sz / 2 - 0.5, 1.0
    x, y, w, h = TARGET.tolist()
    tracker.pos = tracker.init_sample_pos + torch.tensor([y + (h - 1) / 2, x + (w - 1) / 2]) - (CROP - 1) / 2
    tracker.target_sz = torch.tensor([h, w])
    tracker.transforms = [Identity()]
    tracker.init_iou_net(backbone)
    return tracker


def test_trackers_initialise_the_iou_net_on_the_target(crop):
    _, backbone, modulation, _, _ = crop
    tracker = _tracker('MKDNet', backbone, MARGIN)
    torch.testing.assert_close(tracker.classifier_target_box, TARGET)
    for ours, expected in zip(tracker.iou_modulation, modulation):
        torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize('margin', [0.25, 0.5])
def test_mkdnet_refinement_gives_dimps_boxes(crop, margin):
    _, backbone, _, _, boxes = crop
    stock, ours = _tracker('DiMP', backbone), _tracker('MKDNet', backbone, margin)
    stock_boxes, stock_iou = stock.refine_boxes(backbone, 0, boxes.clone())
    our_boxes, our_iou = ours.refine_boxes(backbone, 0, boxes.clone())
    assert (ours.iou_window_refinements, ours.iou_window_growths, ours.iou_window_redone) == (1, 0, 0)
    moved = (stock_boxes - boxes).abs().max()
    assert moved > 1e-3   # the refinement moved the boxes
    np.testing.assert_allclose(our_boxes.numpy(), stock_boxes.numpy(), rtol=0, atol=1e-3)
    np.testing.assert_allclose(our_iou.numpy(), stock_iou.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('space', ['default', 'relative'])
def test_mkdnet_refines_in_both_of_dimps_box_parametrisations(crop, space):
    _, backbone, _, _, boxes = crop
    stock, ours = _tracker('DiMP', backbone), _tracker('MKDNet', backbone, 0.5)
    for tracker in (stock, ours):
        tracker.params.box_refinement_space = space
        tracker.params.box_refinement_step_length = 1.0 if space == 'default' else 2.5e-3
    stock_boxes, stock_iou = stock.refine_boxes(backbone, 0, boxes.clone())
    our_boxes, our_iou = ours.refine_boxes(backbone, 0, boxes.clone())
    assert (ours.iou_window_refinements, ours.iou_window_redone) == (1, 0)
    assert (stock_boxes - boxes).abs().max() > 1e-3
    np.testing.assert_allclose(our_boxes.numpy(), stock_boxes.numpy(), rtol=0, atol=1e-3)
    np.testing.assert_allclose(our_iou.numpy(), stock_iou.numpy(), rtol=1e-5, atol=1e-6)


def test_mkdnet_grows_the_window_when_a_box_leaves_it(crop):
    """Long steps move the boxes out of a window without margin; the grown windows give DiMP's refinement. In float64,
    since ten long gradient steps amplify float32 rounding beyond what a comparison could tell from an error."""
    _, backbone, _, _, boxes = crop
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        backbone64 = [f.double() for f in backbone]
        stock, ours = _tracker('DiMP', backbone64), _tracker('MKDNet', backbone64, margin=0.0)
        for tracker in (stock, ours):
            tracker.params.box_refinement_step_length = 0.05   # long steps: the boxes leave a window without margin
        stock_boxes, stock_iou = stock.refine_boxes(backbone64, 0, boxes.double())
        our_boxes, our_iou = ours.refine_boxes(backbone64, 0, boxes.double())
    finally:
        torch.set_default_dtype(default_dtype)
    assert ours.iou_window_refinements == 1 and ours.iou_window_growths >= 1 and ours.iou_window_redone == 0
    assert our_boxes.dtype == torch.float64 and (stock_boxes - boxes).abs().max() > 1.0   # moved by over a pixel
    np.testing.assert_allclose(our_boxes.numpy(), stock_boxes.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(our_iou.numpy(), stock_iou.numpy(), rtol=0, atol=1e-12)


def test_mkdnet_redoes_a_refinement_whose_box_is_not_finite(crop):
    _, backbone, _, _, boxes = crop
    stock, ours = _tracker('DiMP', backbone), _tracker('MKDNet', backbone, MARGIN)
    broken = boxes.clone()
    broken[4, 2] = float('nan')
    stock_result = stock.refine_boxes(backbone, 0, broken.clone())
    our_result = ours.refine_boxes(backbone, 0, broken.clone())
    assert (ours.iou_window_refinements, ours.iou_window_growths, ours.iou_window_redone) == (0, 0, 1)
    for stock_value, our_value in zip(stock_result, our_result):   # redone the stock way
        torch.testing.assert_close(our_value, stock_value, rtol=0, atol=0, equal_nan=True)


def test_mkdnet_without_a_window_is_dimp(crop):
    _, backbone, _, _, boxes = crop
    stock, ours = _tracker('DiMP', backbone), _tracker('MKDNet', backbone, margin=None)
    assert ours.iou_window_margin() is None and ours.windowed_iou_net is None
    stock_result = stock.refine_boxes(backbone, 0, boxes.clone())
    our_result = ours.refine_boxes(backbone, 0, boxes.clone())
    assert all(torch.equal(a, b) for a, b in zip(stock_result, our_result))
    assert ours.iou_window_refinements == 0


@pytest.mark.parametrize('margin', [-0.1, float('inf'), float('nan'), '0.1', True])
def test_a_bad_window_margin_names_the_parameter(crop, margin):
    tracker = _tracker('MKDNet', crop[1], 0.1)
    tracker.params.iou_window_margin = margin
    with pytest.raises(ValueError, match=r'params\.iou_window_margin must be None .* or a margin >= 0'):
        tracker.iou_window_margin()


def test_window_margin_defaults_to_the_cpu_only(crop):
    from pytracking.tracker.mkdnet.mkdnet import CPU_IOU_WINDOW_MARGIN
    tracker = _tracker('MKDNet', crop[1])
    del tracker.params.iou_window_margin
    assert tracker.iou_window_margin() == CPU_IOU_WINDOW_MARGIN
    tracker.params.use_gpu = True
    assert tracker.iou_window_margin() is None
