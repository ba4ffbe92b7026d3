"""The README and docs/ say only what is there: every command they name answers --help, every relative link and
file path they name exists, and every number quoted as measured carries the command that measured it and a date."""
import glob
import os
import re
import subprocess
import sys

import pytest

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ['README.md'] + sorted(os.path.relpath(p, PROJECT_ROOT)
                                   for p in glob.glob(os.path.join(PROJECT_ROOT, 'docs', '*.md')))
# Paths a fresh checkout does not have until something makes them (install.sh, a run, the user).
MADE_LATER = ('workspace/', 'external/', '.venv/', '.install-state/', 'wheels/')
COMMAND = re.compile(r'(?<![\w./-])((?:mkdnet|latot)-[a-z]+)\b')
MODULE = re.compile(r'python -m ((?:ltr_plugins|pytracking_plugins)(?:\.\w+)*)')
LINK = re.compile(r'\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)')
PATH = re.compile(r'`((?:ltr_plugins|pytracking_plugins|settings|bench|tests|docs|\.ci)/[\w./-]*|'
                  r'(?:install\.sh|pyproject\.toml|requirements\.txt|pytest\.ini|LICENSE|CITATION\.cff))`')
DATE = re.compile(r'\b20\d\d-\d\d-\d\d\b')


def read(document: str) -> str:
    with open(os.path.join(PROJECT_ROOT, document)) as handle:
        return handle.read()


def passages(text: str):
    """Paragraphs and table rows: the units a measured number and its source must share."""
    for block in re.split(r'\n\s*\n', text):
        lines = block.split('\n')
        if all(line.startswith('|') for line in lines if line.strip()):
            yield from (line for line in lines if line.strip())
        else:
            yield block


def named(pattern: re.Pattern) -> dict:
    found = {}
    for document in DOCUMENTS:
        for match in pattern.finditer(read(document)):
            found.setdefault(match.group(1), document)
    return found


@pytest.mark.parametrize('command', sorted(named(COMMAND)))
def test_every_command_named_answers_help(command):
    executable = os.path.join(os.path.dirname(sys.executable), command)
    assert os.path.isfile(executable), '{} (named in {}) is not installed'.format(command, named(COMMAND)[command])
    result = subprocess.run([executable, '--help'], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and 'usage' in result.stdout.lower(), result.stderr[-2000:]


@pytest.mark.parametrize('module', sorted(named(MODULE)))
def test_every_module_named_answers_help(module):
    result = subprocess.run([sys.executable, '-m', module, '--help'], capture_output=True, text=True, timeout=300,
                            cwd=PROJECT_ROOT)
    assert result.returncode == 0 and 'usage' in result.stdout.lower(), result.stderr[-2000:]


@pytest.mark.parametrize('document', DOCUMENTS)
def test_every_relative_link_and_path_exists(document):
    folder = os.path.dirname(os.path.join(PROJECT_ROOT, document))
    missing = []
    for target in LINK.findall(read(document)):
        if not re.match(r'^[a-z]+:', target) and not os.path.exists(os.path.join(folder, target)):
            missing.append(target)
    for path in PATH.findall(read(document)):
        if not path.startswith(MADE_LATER) and not os.path.exists(os.path.join(PROJECT_ROOT, path.rstrip('/'))):
            missing.append(path)
    assert not missing, '{} names what does not exist: {}'.format(document, missing)


@pytest.mark.parametrize('document', DOCUMENTS)
def test_every_measured_number_carries_its_command_and_date(document):
    unsourced = [passage[:160] for passage in passages(read(document))
                 if re.search(r'\bmeasured\b', passage, re.IGNORECASE) and re.search(r'\d', passage)
                 and not (DATE.search(passage) and '`' in passage)]
    assert not unsourced, '{}: measured numbers without a command and a date: {}'.format(document, unsourced)
