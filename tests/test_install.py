"""The install contract, on a private copy: the project's files, a pytracking clone at the pinned commit and a second
Python environment of its own, so the live installation the suite runs in is never touched.

The second environment stands for a user's own (conda or venv) environment: a new venv that sees the live
environment's packages through a path entry, so no package is downloaded again. ``install.sh --env`` installs the
plugin into it; pytracking's own scripts then run with that environment's Python.
"""
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import PROJECT_ROOT, pytracking_root

PINNED_COMMIT = [line.split()[1] for line in open(os.path.join(PROJECT_ROOT, 'settings', 'footprint.txt'))
                 if line.startswith('commit ')][0]
EDITED_FILE = 'pytracking/evaluation/running.py'
PATCHED_LINE = "np.savetxt(temporary, tracked_bb, delimiter='\\t', fmt='%.2f')"   # patch 04, 12 spaces in
EDITED_LINE = "np.savetxt(temporary, tracked_bb, delimiter='\\t', fmt='%.3f')"


class Installation:
    """A copy of the project installed into a separate environment and pytracking checkout."""

    def __init__(self, root: str):
        self.project = os.path.join(root, 'project')
        self.pytracking = os.path.join(root, 'pytracking')
        self.env = os.path.join(root, 'env')
        self.python = os.path.join(self.env, 'bin', 'python')
        files = subprocess.run(['git', '-C', PROJECT_ROOT, 'ls-files', '-z', '--cached', '--others',
                                '--exclude-standard'], check=True, stdout=subprocess.PIPE).stdout
        for name in filter(None, files.decode().split('\0')):
            source = os.path.join(PROJECT_ROOT, name)
            if os.path.isfile(source):
                os.makedirs(os.path.dirname(os.path.join(self.project, name)), exist_ok=True)
                shutil.copy2(source, os.path.join(self.project, name))
        subprocess.run(['git', 'clone', '--quiet', '--no-checkout', pytracking_root(), self.pytracking], check=True)
        self.git('checkout', '--quiet', PINNED_COMMIT)
        subprocess.run([sys._base_executable, '-m', 'venv', self.env], check=True)
        site = subprocess.run([self.python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                              check=True, text=True, stdout=subprocess.PIPE).stdout.strip()
        with open(os.path.join(site, 'live_stack.pth'), 'w') as f:
            f.write(sysconfig.get_paths()['purelib'] + '\n')
        self.site_packages = site

    def git(self, *args: str) -> str:
        return subprocess.run(['git', '-C', self.pytracking, *args], check=True, text=True,
                              stdout=subprocess.PIPE).stdout

    def install_env(self, **extra: str) -> dict:
        env = {key: value for key, value in os.environ.items() if not key.startswith(('VIRTUAL_ENV', 'PYTHON'))}
        env.update(extra)
        return env

    def install(self, *args: str, expect: int = 0, **env: str) -> str:
        result = subprocess.run(['bash', os.path.join(self.project, 'install.sh'), *args], cwd=self.project,
                                env=self.install_env(**env), text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=900, start_new_session=True)
        assert result.returncode == expect, result.stdout
        return result.stdout

    def install_here(self, expect: int = 0, **env: str) -> str:
        return self.install('--env', self.python, '--pytracking', self.pytracking, expect=expect, **env)

    def run(self, *args: str, cwd: str = None, expect: int = 0) -> str:
        result = subprocess.run([self.python, *args], cwd=cwd or '/', text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=900)
        assert result.returncode == expect, result.stdout[-6000:]
        return result.stdout

    def doctor(self, expect: int) -> str:
        return self.run('-m', 'pytracking_plugins.doctor', expect=expect)

    def fingerprint(self) -> str:
        """Tracked changes, untracked paths (links included) and the git-ignored local.py files."""
        digest = hashlib.sha256()
        digest.update(self.git('status', '--porcelain', '--untracked-files=all').encode())
        digest.update(self.git('diff').encode())
        for local in ('ltr/admin/local.py', 'pytracking/evaluation/local.py'):
            path = os.path.join(self.pytracking, local)
            digest.update(open(path, 'rb').read() if os.path.exists(path) else b'absent')
        return digest.hexdigest()

    def set_local(self, local: str, old: str, new: str) -> None:
        path = os.path.join(self.pytracking, local)
        text = open(path).read()
        assert old in text, (path, old)
        with open(path, 'w') as f:
            f.write(text.replace(old, new))


@pytest.fixture(scope='module')
def installation(tmp_path_factory) -> Installation:
    installation = Installation(str(tmp_path_factory.mktemp('install')))
    installation.install_here()
    return installation


def test_installs_into_a_separate_environment_with_the_documented_footprint(installation):
    assert {line[3:] for line in installation.git('status', '--porcelain').splitlines()} == {
        'ltr/admin/loading.py', 'ltr/models/backbone/resnet.py', 'ltr/models/backbone/resnet_mrcnn.py',
        'ltr/models/bbreg/atom_iou_net.py', 'ltr/models/target_classifier/initializer.py',
        'ltr/admin/environment.py', 'pytracking/evaluation/environment.py', 'ltr/data/loader.py',
        'ltr/trainers/ltr_trainer.py', 'ltr/models/backbone/swin_transformer_flex.py',
        'pytracking/analysis/plot_results.py', 'pytracking/evaluation/datasets.py',
        'pytracking/evaluation/running.py', 'pytracking/evaluation/tracker.py', 'pytracking/run_tracker.py',
        'pytracking/tracker/dimp/dimp.py', 'ltr/train_settings/mkdnet', 'pytracking/parameter/mkdnet', 'pytracking/tracker/mkdnet'}
    located = installation.run('-c', 'import ltr, pytracking_plugins; print(ltr.__file__); '
                                     'print(pytracking_plugins.__file__)').split()
    assert located == [os.path.join(installation.pytracking, 'ltr', '__init__.py'),
                       os.path.join(installation.project, 'pytracking_plugins', '__init__.py')]
    for command in ('latot-analysis', 'latot-stats', 'latot-synthetic', 'mkdnet-demo', 'mkdnet-export',
                    'mkdnet-doctor'):
        assert os.access(os.path.join(installation.env, 'bin', command), os.X_OK), command


def test_second_install_changes_nothing(installation):
    before = installation.fingerprint()
    output = installation.install_here()
    assert installation.fingerprint() == before
    actions = ('cloning', 'creating', 'installing', 'patched', 'linked', 'wrote')
    assert not [line for line in output.splitlines() if line.startswith(tuple('[install] ' + a for a in actions))]
    assert '[install] ready:' in output


def test_an_updated_patch_replaces_the_applied_one(installation):
    """A newer plugin whose patch changed reverts the recorded one and applies the new one."""
    patch = os.path.join(installation.project, 'settings', 'pytracking_patches', '05-unused-tikzplotlib-import.patch')
    original = open(patch).read()
    try:
        with open(patch, 'w') as f:
            f.write('An updated reason.\n' + original)
        output = installation.install_here()
        assert '[install] reverted the previous 05-unused-tikzplotlib-import.patch' in output
        assert '[install] patched pytracking: 05-unused-tikzplotlib-import.patch' in output
    finally:
        with open(patch, 'w') as f:
            f.write(original)
    installation.install_here()
    installation.doctor(expect=0)


def test_doctor_reports_a_good_install_and_names_each_fault(installation):
    report = installation.doctor(expect=0)
    assert 'checkout {} at commit {}'.format(installation.pytracking, PINNED_COMMIT) in report
    assert 'FAIL' not in report and 'The installation is complete' in report

    link = os.path.join(installation.pytracking, 'pytracking', 'tracker', 'mkdnet')
    os.remove(link)
    report = installation.doctor(expect=1)
    assert 'FAIL  link {} is missing'.format(link) in report
    installation.install_here()

    patch = os.path.join(installation.project, 'settings', 'pytracking_patches', '05-unused-tikzplotlib-import.patch')
    installation.git('apply', '--reverse', patch)
    report = installation.doctor(expect=1)
    assert 'FAIL  patch 05-unused-tikzplotlib-import.patch is not applied' in report
    installation.install_here()
    installation.doctor(expect=0)


def test_an_edited_patched_line_stops_uninstall_and_install_naming_the_edit(installation):
    path = os.path.join(installation.pytracking, EDITED_FILE)
    original = open(path).read()
    assert PATCHED_LINE in original
    with open(path, 'w') as f:
        f.write(original.replace(PATCHED_LINE, EDITED_LINE))
    before = installation.fingerprint()
    try:
        for output in (installation.install('--uninstall', expect=1), installation.install_here(expect=1)):
            assert installation.fingerprint() == before          # nothing reverted, applied or removed
            assert 'the first hunk that no longer matches: {}:'.format(EDITED_FILE) in output
            assert '-' + ' ' * 12 + PATCHED_LINE in output and '+' + ' ' * 12 + EDITED_LINE in output
            assert '[install] uninstalled' not in output and '[install] ready' not in output
    finally:
        with open(path, 'w') as f:
            f.write(original)
    installation.doctor(expect=0)


def test_tracker_and_training_run_with_the_environments_python(installation, synthetic_latot):
    workspace = os.path.join(installation.project, 'workspace')
    installation.set_local('pytracking/evaluation/local.py', "settings.latot_path = ''",
                           "settings.latot_path = {!r}".format(synthetic_latot.root))
    installation.run('-c', 'import sys, torch; from ltr_plugins.models.super_dimp import build_super_dimp, '
                           'save_tracking_network; torch.manual_seed(0); '
                           'save_tracking_network(build_super_dimp(backbone_pretrained=False), sys.argv[1])',
                     os.path.join(workspace, 'networks', 'mkdnet.pth.tar'))
    scripts = os.path.join(installation.pytracking, 'pytracking')
    installation.run('run_tracker.py', 'mkdnet', 'mkdnet', '--dataset_name', 'latot_test', '--sequence',
                     synthetic_latot.tracked_sequence, cwd=scripts)
    boxes = os.path.join(workspace, 'tracking_results', 'mkdnet', 'mkdnet', synthetic_latot.tracked_sequence + '.txt')
    assert len(open(boxes).read().splitlines()) == synthetic_latot.tracked_frames

    installation.run('run_training.py', 'mkdnet', 'smoke', cwd=os.path.join(installation.pytracking, 'ltr'))
    checkpoints = os.listdir(os.path.join(workspace, 'checkpoints', 'ltr', 'mkdnet', 'smoke'))
    assert sorted(checkpoints) == ['MKDNetStudent_ep0001.pth.tar', 'MKDNetStudent_ep0002.pth.tar']
    installation.set_local('pytracking/evaluation/local.py', "settings.latot_path = {!r}".format(
        synthetic_latot.root), "settings.latot_path = ''")


GIT_SHIM = r"""#!/bin/bash
# git, except that when install.sh applies {patch} the run is interrupted, once, as a user would interrupt it.
if [[ " $* " == *" apply "* && " $* " == *"{patch}"* && " $* " != *" --check "* && " $* " != *" --reverse "* \
      && ! -e {marker} ]]; then
  touch {marker}
  {action}
fi
exec {git} "$@"
"""
INTERRUPTIONS = {
    # Ctrl-C: SIGINT to the whole foreground process group (install.sh and the git it runs, which dies of it).
    'SIGINT': ('kill -INT 0; exit 130', 130),
    # kill <pid of install.sh>: SIGTERM to the script alone, while git goes on and applies the patch.
    'SIGTERM': ('kill -TERM $PPID', 143),
}


@pytest.mark.parametrize('signal_name', sorted(INTERRUPTIONS))
def test_an_interrupted_install_undoes_every_change_it_made(installation, tmp_path, signal_name):
    """Interrupted after patches 01-03, while patch 04 is applied: the run exits with the signal's status and
    leaves pytracking and the environment as they were before it."""
    installation.install('--uninstall')
    before = installation.fingerprint()
    action, status = INTERRUPTIONS[signal_name]
    shim = tmp_path / 'bin'
    shim.mkdir()
    (shim / 'git').write_text(GIT_SHIM.format(patch='04-subpixel-results.patch', marker=tmp_path / 'interrupted',
                                              action=action, git=shutil.which('git')))
    (shim / 'git').chmod(0o755)
    try:
        output = installation.install_here(expect=status, PATH='{}:{}'.format(shim, os.environ['PATH']))
        assert '[install] patched pytracking: 03-register-latot-datasets.patch' in output
        assert '[install] interrupted ({}): undoing the '.format(signal_name) in output
        assert 'could not undo' not in output and '[install] ready' not in output
        assert installation.fingerprint() == before
        assert installation.git('status', '--porcelain', '--untracked-files=all') == ''
        assert not os.path.exists(os.path.join(installation.site_packages, 'pytracking_plugins.pth'))
        assert '[install] nothing to uninstall' in installation.install('--uninstall')
    finally:
        installation.install_here()
    installation.doctor(expect=0)


def test_a_second_install_waits_for_the_one_running(installation):
    """Two install.sh at once: the second says which process it waits for, then finds everything in place."""
    import fcntl
    lock = os.path.join(installation.project, '.install-state', 'lock')
    with open(lock, 'a+') as held:
        fcntl.flock(held, fcntl.LOCK_EX)                 # what a running install.sh holds
        held.seek(0)
        held.truncate()
        held.write('4242\n')
        held.flush()
        second = subprocess.Popen(['bash', os.path.join(installation.project, 'install.sh'), '--env',
                                   installation.python, '--pytracking', installation.pytracking],
                                  cwd=installation.project,
                                  env=installation.install_env(), text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        first_line = second.stdout.readline()
        assert first_line == '[install] another install.sh is running in {} (process 4242): waiting for it to ' \
                             'finish\n'.format(installation.project)
        fcntl.flock(held, fcntl.LOCK_UN)
    rest = second.stdout.read()
    assert second.wait(timeout=900) == 0, rest
    assert rest.rstrip().splitlines()[-1].startswith('[install] ready:')
    installation.doctor(expect=0)


def test_env_that_is_not_a_python_is_refused_in_one_line(installation):
    output = installation.install('--env', '/etc/passwd', expect=1)
    assert output == ('[install] error: --env /etc/passwd: not a Python interpreter (it does not run Python code); '
                      'give the python executable, e.g. --env /path/to/env/bin/python\n')


def _break(installation, local: str, old: str, new: str) -> int:
    """Edits a local.py line; returns the line's number."""
    installation.set_local(local, old, new)
    lines = open(os.path.join(installation.pytracking, local)).read().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(new))


def test_a_broken_local_py_is_named_with_its_line_and_never_rewritten(installation):
    """A syntax error or a failing line in either local.py: the doctor, run_tracker.py and run_training.py name
    the file and line and leave it exactly as it is -- also without patch 11 (the doctor never calls pytracking's
    env_settings, which would write its defaults over the file)."""
    ltr_local, pytracking_local = 'ltr/admin/local.py', 'pytracking/evaluation/local.py'
    originals = {local: open(os.path.join(installation.pytracking, local), 'rb').read()
                 for local in (ltr_local, pytracking_local)}
    ltr_line = _break(installation, ltr_local, "        self.lasot_dir = ''", '        self.lasot_dir = undefined_name')
    pytracking_line = _break(installation, pytracking_local, "    settings.latot_path = ''",
                             '    settings.latot_path = (')
    broken = {local: open(os.path.join(installation.pytracking, local), 'rb').read() for local in originals}
    ltr_path, pytracking_path = (os.path.join(installation.pytracking, p) for p in (ltr_local, pytracking_local))
    patch = os.path.join(installation.project, 'settings', 'pytracking_patches', '11-keep-broken-local-py.patch')
    try:
        report = installation.doctor(expect=1)
        assert ("FAIL  {}, line {} cannot be read: NameError: name 'undefined_name' is not defined\n"
                "        fix: correct line {} (the doctor left it as it is)".format(ltr_path, ltr_line, ltr_line)
                ) in report
        assert ("FAIL  {}, line {} cannot be read: SyntaxError: '(' was never closed".format(
            pytracking_path, pytracking_line)) in report
        tracking = installation.run('run_tracker.py', 'dimp', 'super_dimp', '--dataset_name', 'otb',
                                    cwd=os.path.join(installation.pytracking, 'pytracking'), expect=1)
        assert tracking.splitlines()[-1] == (
            "ltr_plugins.common.local_settings.LocalSettingsError: {}, line {}: SyntaxError: '(' was never closed; "
            'correct line {} (it was left as it is)'.format(pytracking_path, pytracking_line, pytracking_line))
        training = installation.run('run_training.py', 'mkdnet', 'smoke', cwd=os.path.join(installation.pytracking,
                                                                                           'ltr'), expect=1)
        assert "{}, line {}: NameError: name 'undefined_name' is not defined".format(ltr_path, ltr_line) \
            in training.splitlines()[-1]
        installation.git('apply', '--reverse', patch)
        report = installation.doctor(expect=1)
        assert 'FAIL  patch 11-keep-broken-local-py.patch is not applied' in report
        assert '{}, line {} cannot be read'.format(pytracking_path, pytracking_line) in report
        for local, content in broken.items():
            assert open(os.path.join(installation.pytracking, local), 'rb').read() == content, local
    finally:
        for local, content in originals.items():
            with open(os.path.join(installation.pytracking, local), 'wb') as f:
                f.write(content)
        installation.install_here()
    installation.doctor(expect=0)


def test_doctor_fails_on_a_folder_local_py_names_that_does_not_exist(installation, tmp_path):
    missing = str(tmp_path / 'no-such-latot')
    installation.set_local('pytracking/evaluation/local.py', "settings.latot_path = ''",
                           'settings.latot_path = {!r}'.format(missing))
    try:
        report = installation.doctor(expect=1)
        local = os.path.join(installation.pytracking, 'pytracking', 'evaluation', 'local.py')
        assert ('FAIL  latot_path = {} does not exist (the latot datasets)\n        fix: create it, or correct '
                'latot_path in {}'.format(missing, local)) in report
    finally:
        installation.set_local('pytracking/evaluation/local.py', 'settings.latot_path = {!r}'.format(missing),
                               "settings.latot_path = ''")
    installation.doctor(expect=0)


@pytest.mark.skipif(any(importlib.util.find_spec(name) is None for name in ('onnx', 'onnxscript', 'onnxruntime')),
                    reason='the onnx extra is not installed in the live environment the copy sees (./install.sh '
                           '--with-onnx): its install would download it')
def test_with_onnx_installs_the_extra_and_later_installs_keep_it(installation):
    output = installation.install('--env', installation.python, '--pytracking', installation.pytracking, '--with-onnx')
    assert '(pyproject.toml, extra [onnx]) into the environment' in output
    with open(os.path.join(installation.project, '.install-state', 'onnx')) as f:
        assert f.read() == 'yes\n'
    before = installation.fingerprint()
    again = installation.install_here()      # no --with-onnx: the extra stays, nothing to do
    assert '[install] installing' not in again and installation.fingerprint() == before
    installation.run('-c', 'import onnxruntime, pytracking_plugins.deploy.onnx_export')


def test_a_failed_install_undoes_its_changes_and_uninstall_restores_pytracking(installation):
    installation.install('--uninstall')
    assert installation.git('status', '--porcelain', '--untracked-files=all') == ''
    assert not os.path.exists(os.path.join(installation.site_packages, 'pytracking_plugins.pth'))
    installation.run('-c', 'import pytracking_plugins', expect=1)

    package = os.path.join(installation.project, 'pytracking_plugins', '__init__.py')
    original = open(package).read()
    with open(package, 'a') as f:
        f.write('\nraise ImportError("broken on purpose")\n')
    try:
        output = installation.install_here(expect=1)
    finally:
        with open(package, 'w') as f:
            f.write(original)
    assert 'broken on purpose' in output and 'undoing' in output
    assert installation.git('status', '--porcelain', '--untracked-files=all') == ''
    assert not os.path.exists(os.path.join(installation.site_packages, 'pytracking_plugins.pth'))
    assert '[install] nothing to uninstall' in installation.install('--uninstall')
