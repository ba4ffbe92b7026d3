"""The install contract: a second install changes nothing; uninstall restores pytracking exactly; reinstall works.

Runs against the installation the test command just made (the suite's first file, so a failure here is seen before
anything that depends on the installation).
"""
import hashlib
import os
import subprocess

from conftest import PROJECT_ROOT, pytracking_root

INSTALL = os.path.join(PROJECT_ROOT, 'install.sh')


def _git(*args: str) -> str:
    return subprocess.run(['git', '-C', pytracking_root(), *args], check=True, text=True,
                          stdout=subprocess.PIPE).stdout


def _install(*args: str) -> str:
    result = subprocess.run(['bash', INSTALL, *args], cwd=PROJECT_ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=900)
    assert result.returncode == 0, result.stdout
    return result.stdout


def _tree_fingerprint() -> str:
    """Tracked changes, untracked paths (links included) and the git-ignored local.py files of the checkout."""
    digest = hashlib.sha256()
    digest.update(_git('status', '--porcelain', '--untracked-files=all').encode())
    digest.update(_git('diff').encode())
    for local in ('ltr/admin/local.py', 'pytracking/evaluation/local.py'):
        with open(os.path.join(pytracking_root(), local), 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def _installed_footprint() -> set:
    return {line[3:] for line in _git('status', '--porcelain').splitlines()}


def test_second_install_changes_nothing():
    before = _tree_fingerprint()
    output = _install()
    assert _tree_fingerprint() == before
    # Nothing was cloned, installed, patched, linked or written again.
    actions = ('cloning', 'creating', 'installing', 'patched', 'linked', 'wrote')
    assert not [line for line in output.splitlines() if line.startswith(tuple('[install] ' + a for a in actions))]
    assert '[install] ready:' in output


def test_footprint_is_exactly_the_documented_one():
    assert _installed_footprint() == {
        'ltr/admin/loading.py', 'ltr/models/backbone/resnet.py', 'ltr/models/backbone/resnet_mrcnn.py',
        'pytracking/analysis/plot_results.py', 'pytracking/evaluation/datasets.py',
        'pytracking/evaluation/running.py', 'pytracking/evaluation/tracker.py', 'pytracking/run_tracker.py',
        'ltr/train_settings/mkdnet', 'pytracking/parameter/mkdnet', 'pytracking/tracker/mkdnet'}


def test_uninstall_restores_pytracking_and_reinstall_works():
    try:
        _install('--uninstall')
        assert _git('status', '--porcelain', '--untracked-files=all') == ''
        assert not os.path.exists(os.path.join(pytracking_root(), 'ltr/admin/local.py'))
    finally:
        _install()
    assert os.path.islink(os.path.join(pytracking_root(), 'pytracking/tracker/mkdnet'))
    subprocess.run([os.path.join(PROJECT_ROOT, '.venv/bin/python'), '-c', 'import ltr.models.tracking.dimpnet'],
                   check=True, cwd='/')
