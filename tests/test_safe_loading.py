"""Network files are read without running pickled code, on every path that reads them: pytracking's own
``load_network`` / ``load_weights`` (stock trackers, the plugin's), MKDNet's tracker, the teacher, the export command.

Each malicious file holds a payload that would create a marker file if anything it pickled were run; the tests check
the loader refuses it with one line naming the file, and that the marker does not exist afterwards.
"""
import builtins
import collections
import os
import sys
import types

import pytest
import torch

from conftest import pytracking_settings

TRUST_ENV = 'PYTRACKING_TRUST_NETWORK_FILES'


class CreatesFile:
    """Unpickling this object calls ``open(marker, 'w')``: the file exists afterwards iff pickled code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (self.marker, 'w')


class SystemCall:
    """Unpickling this object runs a shell command that creates the marker."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, ('touch {}'.format(self.marker),)


def net_constructor(fun_name, fun_module, args=(), kwds=None):
    from ltr.admin.model_constructor import NetConstructor
    return NetConstructor(fun_name, fun_module, tuple(args), dict(kwds or {}))


@pytest.fixture(scope='module')
def super_dimp_file(tmp_path_factory):
    """A genuine pytracking network file (a randomly initialised Super-DiMP), and its weights."""
    from ltr_plugins.models.super_dimp import build_super_dimp, save_tracking_network
    torch.manual_seed(0)
    net = build_super_dimp(backbone_pretrained=False)
    path = save_tracking_network(net, str(tmp_path_factory.mktemp('networks') / 'super_dimp.pth.tar'))
    return path, net.state_dict()


@pytest.fixture
def marker(tmp_path):
    path = str(tmp_path / 'payload-ran')
    yield path
    assert not os.path.exists(path), 'the payload ran'


@pytest.fixture
def untrusted(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)


def _payload_files(folder, marker, weights):
    """Network files that would run code: a payload object anywhere in the file, or a constructor naming a function
    outside ltr.models (which stock pytracking's NetConstructor.get() would call)."""
    net = {'net': weights}
    cases = {
        'payload-as-constructor': dict(net, constructor=CreatesFile(marker)),
        'payload-in-net-info': dict(net, constructor=net_constructor('dimpnet50', 'ltr.models.tracking.dimpnet'),
                                    net_info={'note': SystemCall(marker)}),
        'payload-in-constructor-arguments': dict(net, constructor=net_constructor(
            'dimpnet50', 'ltr.models.tracking.dimpnet', kwds={'filter_size': CreatesFile(marker)})),
        'constructor-calls-os-system': dict(net, constructor=net_constructor('system', 'os',
                                                                             ['touch {}'.format(marker)])),
        'constructor-calls-an-ltr-function': dict(net, constructor=net_constructor(
            'torch_load_legacy', 'ltr.admin.loading', [marker])),
    }
    paths = {}
    for name, content in cases.items():
        paths[name] = str(folder / '{}.pth.tar'.format(name))
        torch.save(content, paths[name])
    return paths


PAYLOADS = ['payload-as-constructor', 'payload-in-net-info', 'payload-in-constructor-arguments',
            'constructor-calls-os-system', 'constructor-calls-an-ltr-function']
REFUSAL = {'payload-as-constructor': 'names the Python object io.open',
           'payload-in-net-info': 'names the Python object posix.system',
           'payload-in-constructor-arguments': 'names the Python object io.open',
           'constructor-calls-os-system': 'its network constructor os.system is not one of the ltr.models network '
                                          'functions',
           'constructor-calls-an-ltr-function': 'its network constructor ltr.admin.loading.torch_load_legacy is not '
                                                'one of the ltr.models network functions'}


def _tiny_weights():
    return collections.OrderedDict(w=torch.ones(2))


@pytest.mark.parametrize('case', PAYLOADS)
def test_pytracking_load_network_refuses_a_planted_payload(case, marker, untrusted, tmp_path, capsys):
    from ltr.admin import loading
    from ltr_plugins.network_files import NetworkFileError
    path = _payload_files(tmp_path, marker, _tiny_weights())[case]
    with pytest.raises(NetworkFileError) as error:
        loading.load_network(path)
    message = str(error.value)
    assert message.startswith(path + ': ')
    assert REFUSAL[case] in message and TRUST_ENV in message
    assert '\n' not in message
    assert not os.path.exists(marker)


@pytest.mark.parametrize('case', PAYLOADS)
def test_stock_dimp_parameters_refuse_a_planted_payload(case, marker, untrusted, tmp_path, use_pytracking_settings):
    """A stock tracker (dimp super_dimp) through pytracking's NetWithBackbone, with the network in the folder."""
    from pytracking.parameter.dimp import super_dimp
    from ltr_plugins.network_files import NetworkFileError
    folder = tmp_path / 'networks'
    folder.mkdir()
    path = _payload_files(folder, marker, _tiny_weights())[case]
    os.replace(path, str(folder / 'super_dimp.pth.tar'))
    use_pytracking_settings(pytracking_settings(str(tmp_path), network_path=str(folder)))
    params = super_dimp.parameters()
    with pytest.raises(NetworkFileError, match=REFUSAL[case]):
        params.net.initialize()
    assert not os.path.exists(marker)


@pytest.mark.parametrize('case', PAYLOADS)
def test_mkdnet_tracker_refuses_a_planted_payload(case, marker, untrusted, tmp_path, use_pytracking_settings):
    from pytracking.parameter.mkdnet import mkdnet
    from ltr_plugins.network_files import NetworkFileError
    folder = tmp_path / 'networks'
    folder.mkdir()
    path = _payload_files(folder, marker, _tiny_weights())[case]
    use_pytracking_settings(pytracking_settings(str(tmp_path), network_path=str(folder)))
    params = mkdnet.parameters(use_gpu=False, net_path=path)
    with pytest.raises(NetworkFileError) as error:
        params.net.initialize()
    assert str(error.value).startswith(path + ': ') and REFUSAL[case] in str(error.value)
    assert not os.path.exists(marker)


@pytest.mark.parametrize('case', ['payload-as-constructor', 'payload-in-net-info'])
def test_teacher_and_load_weights_refuse_a_planted_payload(case, marker, untrusted, tmp_path):
    from ltr.admin import loading
    from ltr_plugins.models.teacher_student import load_super_dimp
    from ltr_plugins.network_files import NetworkFileError
    path = _payload_files(tmp_path, marker, _tiny_weights())[case]
    with pytest.raises(NetworkFileError, match=REFUSAL[case]):
        load_super_dimp(path, feature_sz=22)
    with pytest.raises(NetworkFileError, match=REFUSAL[case]):
        loading.load_weights(torch.nn.Linear(2, 1), path)
    assert not os.path.exists(marker)


@pytest.mark.parametrize('student_constructor', ['os-system', 'payload-object'])
def test_export_refuses_a_training_checkpoint_with_a_payload(student_constructor, marker, untrusted, tmp_path):
    from ltr_plugins.export_mkdnet import export_student
    from ltr_plugins.network_files import NetworkFileError
    constructor = (net_constructor('system', 'os', ['touch {}'.format(marker)]) if student_constructor == 'os-system'
                   else CreatesFile(marker))
    path = str(tmp_path / 'MKDNetStudent_ep0001.pth.tar')
    torch.save({'epoch': 1, 'net_type': 'MKDNetStudent', 'net': {'net.w': torch.ones(1)}, 'constructor': None,
                'net_info': {'student_constructor': constructor}}, path)
    with pytest.raises(NetworkFileError) as error:
        export_student(path, output=str(tmp_path / 'out.pth.tar'))
    assert str(error.value).startswith(path + ': ')
    assert not os.path.exists(marker) and not os.path.exists(str(tmp_path / 'out.pth.tar'))


# ------------------------------------------------------------------------------------------- genuine files load
@pytest.mark.parametrize('legacy', [False, True], ids=['zip-format', 'pytorch-1.4-format'])
def test_genuine_network_file_loads_with_a_rebuilt_constructor(legacy, super_dimp_file, untrusted, tmp_path):
    from ltr.admin import loading
    from ltr.admin.model_constructor import NetConstructor
    from ltr.models.tracking.dimpnet import DiMPnet
    path, weights = super_dimp_file
    if legacy:
        copy = str(tmp_path / 'legacy.pth.tar')
        torch.save(torch.load(path, weights_only=False), copy, _use_new_zipfile_serialization=False)
        path = copy
    net, checkpoint = loading.load_network(path, backbone_pretrained=False)
    assert type(net) is DiMPnet and type(checkpoint['constructor']) is NetConstructor
    assert (net.constructor.fun_module, net.constructor.fun_name) == ('ltr.models.tracking.dimpnet', 'dimpnet50')
    assert net.constructor.kwds['filter_size'] == 4
    assert all(torch.equal(net.state_dict()[key], value) for key, value in weights.items())


def test_exported_mkdnet_network_round_trip(super_dimp_file, untrusted, tmp_path):
    """A training checkpoint (with ltr's settings and statistics as records) exports, and the export loads."""
    from ltr.admin import loading
    from ltr.admin.settings import Settings
    from ltr.admin.stats import AverageMeter
    from ltr_plugins.export_mkdnet import export_student
    path, weights = super_dimp_file
    constructor = torch.load(path, weights_only=False)['constructor']
    settings = Settings()
    settings.env = types.SimpleNamespace(workspace_dir=str(tmp_path))
    checkpoint = str(tmp_path / 'MKDNetStudent_ep0003.pth.tar')
    torch.save({'epoch': 3, 'actor_type': 'MKDNetActor', 'net_type': 'MKDNetStudent',
                'net': collections.OrderedDict(('net.' + k, v) for k, v in weights.items()), 'constructor': None,
                'net_info': {'student_constructor': constructor, 'init': 'super_dimp'},
                'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-4, 'params': [0]}]},
                'stats': collections.OrderedDict(train=collections.OrderedDict(Loss=AverageMeter())),
                'settings': settings}, checkpoint)
    exported = export_student(checkpoint, output=str(tmp_path / 'mkdnet.pth.tar'))
    net, _ = loading.load_network(exported, backbone_pretrained=False)
    assert all(torch.equal(net.state_dict()[key], value) for key, value in weights.items())
    assert net.info['epoch'] == 3 and net.info['exported_from'] == checkpoint


def test_trusted_loading_is_an_explicit_opt_in(marker, tmp_path, monkeypatch, capsys):
    """A file whose constructor comes from a module outside ltr.models is refused, and loads with pickle when the
    user sets PYTRACKING_TRUST_NETWORK_FILES=1."""
    from ltr.admin import loading
    from ltr_plugins.network_files import NetworkFileError
    module = types.ModuleType('trusted_network_module')

    def tiny_net():
        net = torch.nn.Linear(2, 1)
        net.constructor = module.constructor
        return net
    module.tiny_net = tiny_net
    module.constructor = net_constructor('tiny_net', module.__name__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    path = str(tmp_path / 'own.pth.tar')
    torch.manual_seed(0)
    source = tiny_net()
    torch.save({'net': source.state_dict(), 'constructor': module.constructor}, path)

    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(NetworkFileError, match='trusted_network_module.tiny_net is not one of the ltr.models'):
        loading.load_network(path)
    monkeypatch.setenv(TRUST_ENV, '1')
    net, _ = loading.load_network(path)
    assert torch.equal(net.weight, source.weight)
    assert 'Loading the network file {} with pickle ({}=1): the file can run code.'.format(
        path, TRUST_ENV) in capsys.readouterr().out


# ---------------------------------------------------------------------------------- unreadable network files
def _write_bad_file(kind: str, path: str) -> None:
    if kind == 'empty':
        open(path, 'wb').close()
    elif kind == 'random-bytes':
        with open(path, 'wb') as f:
            f.write(bytes(range(7, 256)) * 3)
    elif kind == 'torch-save-none':
        torch.save(None, path)
    elif kind == 'training-checkpoint':
        torch.save({'epoch': 2, 'net_type': 'MKDNetStudent', 'net': {'net.w': torch.ones(1)}, 'constructor': None,
                    'net_info': {'student_constructor': net_constructor('dimpnet50', 'ltr.models.tracking.dimpnet')}},
                   path)
    elif kind == 'bare-state-dict':
        torch.save({'w': torch.ones(1)}, path)


BAD_FILES = {
    'empty': 'is empty (0 bytes), not a network file',
    'random-bytes': 'is not a torch network file (UnpicklingError: invalid load key',
    'torch-save-none': "holds None, not a network: a pytracking network file is a dict with the network's weights",
    'training-checkpoint': 'is an MKDNet training checkpoint (student and discriminators), not a tracking network: '
                           'export its student with `mkdnet-export ',
    'bare-state-dict': 'is a bare state dict without a network constructor',
}


@pytest.mark.parametrize('kind', sorted(BAD_FILES))
def test_unreadable_network_file_is_one_line_naming_it(kind, untrusted, tmp_path, use_pytracking_settings):
    from ltr.admin import loading
    from pytracking.parameter.mkdnet import mkdnet
    from ltr_plugins.network_files import NetworkFileError
    path = str(tmp_path / 'network.pth.tar')
    _write_bad_file(kind, path)
    with pytest.raises(NetworkFileError) as error:
        loading.load_network(path)
    message = str(error.value)
    assert message.startswith(path + ' ') and BAD_FILES[kind] in message and '\n' not in message

    # The same file as MKDNet's network: the advice fits what the file is.
    use_pytracking_settings(pytracking_settings(str(tmp_path)))
    params = mkdnet.parameters(use_gpu=False, net_path=path)
    with pytest.raises(NetworkFileError) as error:
        params.net.initialize()
    message = str(error.value)
    assert message.startswith(path + ' ') and BAD_FILES[kind] in message and '\n' not in message
    assert ('mkdnet_release' in message) == (kind == 'bare-state-dict')


def test_legacy_dlframework_constructor_is_rebuilt_under_its_ltr_name(untrusted, tmp_path, monkeypatch):
    """Networks saved before ltr's refactoring name the constructor class and module under 'dlframework.'."""
    from ltr.admin.model_constructor import NetConstructor
    from ltr_plugins.network_files import read_network_file
    legacy = types.ModuleType('dlframework.common.utils.model_constructor')

    class LegacyConstructor:
        def __init__(self, fun_name, fun_module, args, kwds):
            self.fun_name, self.fun_module, self.args, self.kwds = fun_name, fun_module, args, kwds
    LegacyConstructor.__name__ = LegacyConstructor.__qualname__ = 'NetConstructor'
    LegacyConstructor.__module__ = legacy.__name__
    legacy.NetConstructor = LegacyConstructor
    path = str(tmp_path / 'legacy.pth.tar')
    with monkeypatch.context() as patch:
        for parent in ('dlframework', 'dlframework.common', 'dlframework.common.utils'):
            patch.setitem(sys.modules, parent, types.ModuleType(parent))
        patch.setitem(sys.modules, legacy.__name__, legacy)
        torch.save({'net': {'w': torch.ones(1)}, 'constructor': LegacyConstructor(
            'dimpnet50', 'dlframework.ltr.models.tracking.dimpnet', (), {'filter_size': 4})}, path)
    constructor = read_network_file(path)['constructor']
    assert type(constructor) is NetConstructor
    assert (constructor.fun_module, constructor.fun_name, constructor.kwds) == (
        'ltr.models.tracking.dimpnet', 'dimpnet50', {'filter_size': 4})


# ------------------------------------------------------------------------- constructors that cannot be built
@pytest.mark.parametrize('out_feature_dim, cause', [
    (2 ** 40, "failed (RuntimeError: [enforce fail at alloc_cpu.cpp:"),   # no allocator gives 40 PB
    (-3, 'failed (ValueError: math domain error)')])
def test_a_constructor_that_cannot_be_built_names_the_file(out_feature_dim, cause, untrusted, tmp_path):
    """Allowed constructor, absurd arguments: one line naming the file and the implausible size, not a raw
    allocation error."""
    from ltr.admin import loading
    from ltr_plugins.network_files import NetworkFileError
    path = str(tmp_path / 'network.pth.tar')
    torch.save({'net': _tiny_weights(), 'constructor': net_constructor(
        'dimpnet50', 'ltr.models.tracking.dimpnet', kwds={'out_feature_dim': out_feature_dim,
                                                          'backbone_pretrained': False})}, path)
    with pytest.raises(NetworkFileError) as error:
        loading.load_network(path)
    message = str(error.value)
    assert message.startswith('{}: its network constructor ltr.models.tracking.dimpnet.dimpnet50 {}'.format(
        path, cause)) and '\n' not in message
    assert message.endswith('the file does not describe a network that can be built; get the file again.')
    assert ('with the implausible size(s) out_feature_dim={}:'.format(out_feature_dim) in message) == \
        (out_feature_dim > 0)


def test_weights_that_do_not_fit_the_constructor_name_the_file(untrusted, tmp_path):
    from ltr.admin import loading
    from ltr_plugins.network_files import NetworkFileError
    path = str(tmp_path / 'network.pth.tar')
    torch.save({'net': _tiny_weights(), 'constructor': net_constructor(
        'dimpnet18', 'ltr.models.tracking.dimpnet', kwds={'backbone_pretrained': False})}, path)
    with pytest.raises(NetworkFileError) as error:
        loading.load_network(path)
    message = str(error.value)
    assert message.startswith('{}: its weights do not fit the network its constructor '
                              'ltr.models.tracking.dimpnet.dimpnet18 builds (Error(s) in loading state_dict for '
                              'DiMPnet: Missing key(s) in state_dict: "feature_extractor.conv1.weight"'.format(path))
    assert message.endswith('a damaged file or one of another network; get the file again.') and '\n' not in message
