"""Checks an installation of the plugin and says how to fix what is wrong: ``mkdnet-doctor`` (or
``python -m pytracking_plugins.doctor``).

It reports the pytracking checkout and commit, the plugin's footprint in it (links and patches), the torch build and
its CUDA, the PrRoIPool backend on CPU and GPU, JPEG decoding, the ``local.py`` paths and the network files. Each
problem comes with the line that fixes it. The exit status is 1 when the installation is broken (something tracking
or training needs is missing), 0 otherwise; warnings (an unset dataset path, no GPU) do not change it.
"""
import argparse
import warnings
import ctypes.util
import importlib
import importlib.metadata
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOOTPRINT_FILE = os.path.join(PROJECT_ROOT, 'settings', 'footprint.txt')
PATCH_FOLDER = os.path.join(PROJECT_ROOT, 'settings', 'pytracking_patches')
DISTRIBUTION = 'pytracking-mkdnet'
# The network files the parameter files read, and where each comes from.
NETWORK_FILES = {
    'super_dimp.pth.tar': 'the teacher, from pytracking\'s MODEL_ZOO (SuperDiMP): '
                          'https://drive.google.com/open?id=1qDptswis2FxihLRYLVRGDvx6aUoAVVLv',
    'mkdnet.pth.tar': 'your trained student: mkdnet-export mkdnet/mkdnet',
    'mkdnet_release.pth.tar': 'the authors\' model: https://github.com/ZYB0726/MKDNet ("Tracking Model")',
}
REINSTALL = './install.sh (in {})'.format(PROJECT_ROOT)


@dataclass
class Report:
    """Lines of the report, grouped in sections; ``failures`` counts the problems that break the installation."""
    lines: List[str] = field(default_factory=list)
    failures: int = 0
    warnings: int = 0

    def section(self, title: str) -> None:
        self.lines.append('')
        self.lines.append(title)

    def ok(self, text: str) -> None:
        self.lines.append('  ok    ' + text)

    def info(self, text: str) -> None:
        self.lines.append('        ' + text)

    def warn(self, text: str, fix: Optional[str] = None) -> None:
        self.warnings += 1
        self.lines.append('  warn  ' + text + ('\n        fix: ' + fix if fix else ''))

    def fail(self, text: str, fix: str) -> None:
        self.failures += 1
        self.lines.append('  FAIL  ' + text + '\n        fix: ' + fix)


@dataclass(frozen=True)
class Footprint:
    """settings/footprint.txt: the pinned commit, the links and the local.py files install.sh makes."""
    commit: str
    links: Tuple[Tuple[str, str], ...]
    local_files: Tuple[Tuple[str, str], ...]

    @classmethod
    def read(cls, path: str = FOOTPRINT_FILE) -> 'Footprint':
        commit, links, local_files = '', [], []
        with open(path) as f:
            for number, line in enumerate(f, 1):
                words = line.split()
                if not words or words[0].startswith('#'):
                    continue
                kind, args = words[0], words[1:]
                if kind == 'commit' and len(args) == 1:
                    commit = args[0]
                elif kind == 'link' and len(args) == 2:
                    links.append((args[0], args[1]))
                elif kind == 'local' and len(args) == 2:
                    local_files.append((args[0], args[1]))
                else:
                    raise ValueError('{}:{}: expected "commit SHA", "link PATH TARGET" or "local PATH TEMPLATE", '
                                     'got {!r}'.format(path, number, line.rstrip('\n')))
        return cls(commit, tuple(links), tuple(local_files))


def _git(checkout: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['git', '-C', checkout, *args], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def patch_state(checkout: str, patch: str) -> str:
    """'applied', 'absent' or 'conflict' (the patched lines were edited), as install.sh decides it."""
    if _git(checkout, 'apply', '--check', '--reverse', patch).returncode == 0:
        return 'applied'
    if _git(checkout, 'apply', '--check', patch).returncode == 0:
        return 'absent'
    return 'conflict'


def check_plugin(report: Report) -> None:
    report.section('Plugin')
    report.info('Python {} at {}'.format(sys.version.split()[0], sys.executable))
    report.info('project {}'.format(PROJECT_ROOT))
    try:
        report.ok('{} {} installed in this environment'.format(DISTRIBUTION, importlib.metadata.version(DISTRIBUTION)))
    except importlib.metadata.PackageNotFoundError:
        report.fail('{} is not installed in this environment ({})'.format(DISTRIBUTION, sys.prefix),
                    '{}, or ./install.sh --env {} for this environment'.format(REINSTALL, sys.executable))


def check_pytracking(report: Report, footprint: Footprint) -> Optional[str]:
    """The footprint in the pytracking checkout this environment imports; returns the checkout (None if absent)."""
    report.section('pytracking')
    try:
        import ltr
        import pytracking  # noqa: F401 (imported to check it imports)
    except Exception as exc:
        report.fail('pytracking does not import: {!r}'.format(exc), REINSTALL)
        return None
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(ltr.__file__)))
    head = _git(checkout, 'rev-parse', 'HEAD')
    commit = head.stdout.strip() if head.returncode == 0 else None
    report.info('checkout {} at commit {}'.format(checkout, commit or '(not a git checkout)'))
    if commit == footprint.commit:
        report.ok('the commit the plugin is made for')
    else:
        report.warn('the plugin is made for commit {}; patches may not fit'.format(footprint.commit),
                    'git -C {} checkout {} (or reinstall into a checkout at that commit)'.format(
                        checkout, footprint.commit))
    for link, target in footprint.links:
        path, expected = os.path.join(checkout, link), os.path.join(PROJECT_ROOT, target)
        if os.path.islink(path) and os.path.realpath(path) == os.path.realpath(expected):
            report.ok('link {} -> {}'.format(link, target))
        else:
            what = 'is not the plugin\'s link' if os.path.lexists(path) else 'is missing'
            report.fail('link {} {}'.format(path, what), REINSTALL)
    for name in sorted(os.listdir(PATCH_FOLDER)):
        if not name.endswith('.patch'):
            continue
        state = patch_state(checkout, os.path.join(PATCH_FOLDER, name))
        if state == 'applied':
            report.ok('patch {}'.format(name))
        elif state == 'absent':
            report.fail('patch {} is not applied'.format(name), REINSTALL)
        else:
            report.fail('patch {}: the lines it changes were edited in {}'.format(name, checkout),
                        '{} names the file and line and shows the edit'.format(REINSTALL))
    for local, template in footprint.local_files:
        path = os.path.join(checkout, local)
        if os.path.isfile(path):
            report.ok('{} exists'.format(local))
        else:
            report.fail('{} is missing'.format(path), '{} writes it from settings/local_templates/{}'.format(
                REINSTALL, template))
    for module in ('pytracking.tracker.mkdnet', 'pytracking.parameter.mkdnet.mkdnet', 'ltr.models.tracking.dimpnet'):
        try:
            importlib.import_module(module)
        except Exception as exc:
            report.fail('{} does not import: {!r}'.format(module, exc), REINSTALL)
    return checkout


def check_torch(report: Report) -> None:
    report.section('PyTorch')
    import torch
    report.info('torch {} (CUDA build: {}), torchvision {}'.format(
        torch.__version__, torch.version.cuda or 'none', importlib.metadata.version('torchvision')))
    if torch.cuda.is_available():
        names = ', '.join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        report.ok('CUDA usable: {}'.format(names))
    elif torch.version.cuda:
        report.warn('no usable GPU: trackers and training run on the CPU')
    else:
        report.warn('a CPU-only torch build: trackers and training run on the CPU')

    from ltr_plugins import prroi_pool
    features, rois = torch.ones(1, 1, 4, 4), torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]])
    try:
        value = prroi_pool.prroi_pool2d(features, rois, 1, 1, 1.0, backend='torch')
        assert abs(float(value) - 1.0) < 1e-6, value
        report.ok('PrRoIPool on the CPU: the plugin\'s pure-PyTorch op')
    except Exception as exc:
        report.fail('PrRoIPool on the CPU fails: {!r}'.format(exc), REINSTALL)
    from ltr_plugins.prroi_pool_backends import IMPLEMENTATIONS, cuda_report
    try:
        name, not_used = cuda_report(prroi_pool.prroi_pool2d)   # with a GPU: pools there and names what ran
    except Exception as exc:
        report.fail('PrRoIPool on the GPU fails: {!r}'.format(exc), REINSTALL)
    else:
        if torch.cuda.is_available():
            report.ok('PrRoIPool on the GPU: {}'.format(IMPLEMENTATIONS[name]))
        else:
            report.info('PrRoIPool on CUDA tensors would use {} (not run: no GPU)'.format(IMPLEMENTATIONS[name]))
        for note in not_used:
            report.info('  not {}'.format(note))


def check_jpeg(report: Report) -> None:
    report.section('Images')
    library = ctypes.util.find_library('turbojpeg')
    if library:
        report.ok('libturbojpeg found ({}): pytracking decodes JPEGs with jpeg4py'.format(library))
    else:
        report.warn('libturbojpeg not found: pytracking decodes JPEGs with OpenCV (slower)',
                    'sudo apt-get install libturbojpeg0 (or conda install -c conda-forge libjpeg-turbo)')


def check_onnx(report: Report) -> None:
    """The optional onnx extra: what mkdnet-export --onnx and the onnxruntime backend would run with."""
    report.section('ONNX (optional)')
    from pytracking_plugins.deploy.onnx_runtime import INSTALL_HINT
    versions = {}
    for name in ('onnx', 'onnxscript', 'onnxruntime'):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        report.info('not installed: {} (mkdnet-export --onnx and params.backend = \'onnxruntime\' need them; {})'
                    .format(', '.join(missing), INSTALL_HINT))
    else:
        report.ok(', '.join('{} {}'.format(name, version) for name, version in versions.items()))


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _check_folder(report: Report, local_file: str, name: str, path: str, needed_for: str, output: bool) -> None:
    """One folder setting: unset is fine (not used), a set input folder must exist, a set output folder must exist
    or be creatable (pytracking and ltr create their output folders)."""
    fix = 'create it, or correct {} in {}'.format(name, local_file)
    if not path:
        report.info('{} not set ({})'.format(name, needed_for))
    elif os.path.isdir(path):
        report.ok('{} = {}'.format(name, path))
    elif os.path.exists(path):
        report.fail('{} = {} is not a folder ({})'.format(name, path, needed_for), 'correct {} in {}'.format(
            name, local_file))
    elif not output:
        report.fail('{} = {} does not exist ({})'.format(name, path, needed_for), fix)
    elif os.access(_nearest_existing(path), os.W_OK):
        report.info('{} = {} does not exist yet ({}; created when first written)'.format(name, path, needed_for))
    else:
        report.fail('{} = {} does not exist and cannot be created ({} is not writable)'.format(
            name, path, _nearest_existing(path)), fix)


def _read_local_settings(report: Report, checkout: Optional[str], local: Tuple[str, str],
                         folders: Sequence[Tuple[str, str, bool]]):
    """One local.py's section: each folder setting ``(name, what it is for, whether it is an output)`` checked; its
    settings, or None when the file cannot be read (reported with its line; the file is never rewritten)."""
    from ltr_plugins.common.local_settings import LocalSettingsError, load_local_settings, local_file_path
    try:
        local_file = local_file_path(local[0])
    except Exception:       # pytracking does not import: reported in its section
        local_file = os.path.join(checkout or '<pytracking>', local[0].replace('.', '/') + '.py')
    report.section('Paths ({})'.format(local_file))
    try:
        env = load_local_settings(*local)
    except LocalSettingsError as error:
        where = '{}, line {}'.format(error.path, error.line) if error.line else error.path
        report.fail('{} cannot be read: {}'.format(where, error.reason),
                    '{} (the doctor left it as it is)'.format(error.fix.split(' (')[0]))
        return None
    except Exception as error:
        report.fail('{} cannot be read: {!r}'.format(local_file, error), REINSTALL)
        return None
    for name, use, output in folders:
        _check_folder(report, local_file, name, getattr(env, name, ''), use, output)
    return env


def check_local_settings(report: Report, checkout: Optional[str]) -> List[str]:
    """The paths of both local.py files; returns the folders where network files are looked up."""
    from ltr_plugins.common.local_settings import LTR_LOCAL, PYTRACKING_LOCAL
    folders: List[str] = []
    ltr_env = _read_local_settings(
        report, checkout, LTR_LOCAL,
        (('workspace_dir', 'checkpoints', True), ('tensorboard_dir', 'training logs', True),
         ('pretrained_networks', 'the teacher super_dimp.pth.tar', False), ('lasot_dir', 'training mkdnet', False),
         ('got10k_dir', 'training mkdnet', False), ('trackingnet_dir', 'training mkdnet', False),
         ('latot_dir', 'mkdnet_latot_ft and mkdnet_release (validates on latot_train)', False)))
    if ltr_env is not None:
        folders.append(getattr(ltr_env, 'pretrained_networks', ''))
    pytracking_env = _read_local_settings(
        report, checkout, PYTRACKING_LOCAL,
        (('network_path', 'tracking networks', False), ('results_path', 'tracking results', True),
         ('result_plot_path', 'reports and plots', True), ('latot_path', 'the latot datasets', False)))
    if pytracking_env is not None:
        from pytracking_plugins.network_folders import network_folders
        folders[:0] = network_folders()
    return [folder for folder in folders if folder]


def check_networks(report: Report, folders: Sequence[str]) -> None:
    report.section('Network files')
    for name in NETWORK_FILES:
        found = [os.path.join(folder, name) for folder in folders if os.path.isfile(os.path.join(folder, name))]
        if found:
            report.ok('{}: {}'.format(name, found[0]))
        else:
            report.info('{}: not present (looked in {}); {}'.format(name, ', '.join(folders) or 'no folder',
                                                                     NETWORK_FILES[name]))


def diagnose() -> Report:
    report = Report()
    check_plugin(report)
    checkout = check_pytracking(report, Footprint.read())
    check_torch(report)
    check_jpeg(report)
    check_onnx(report)
    folders = check_local_settings(report, checkout)
    check_networks(report, folders)
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='mkdnet-doctor', description=__doc__.split('\n\n')[0])
    parser.parse_args(argv)
    warnings.simplefilter('ignore', FutureWarning)   # deprecations in pytracking's imports are not the user's problem
    report = diagnose()
    print('\n'.join(report.lines).lstrip('\n'))
    print('')
    if report.failures:
        print('{} problem(s) break the installation; fix them as shown above.'.format(report.failures))
        return 1
    print('The installation is complete{}.'.format(
        ' ({} warning(s) above)'.format(report.warnings) if report.warnings else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
