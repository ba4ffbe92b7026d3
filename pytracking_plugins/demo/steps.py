"""The steps of an experiment folder: each runs once, is reused while nothing it depends on changes, and deletes
only what it wrote itself.

A step's record (``<folder>/steps/<name>.json``) holds a hash of its settings and of the steps it uses (its key),
whether it finished, and the files it wrote (paths relative to the folder). A step whose key changed deletes those
files (and the folders they leave empty) before it runs again; a file someone else put there stays. A step that did
not finish resumes (ltr resumes from its latest checkpoint, pytracking skips finished sequences). The folder itself
is marked as an experiment folder when it is created; a non-empty folder without the mark is refused unless the
caller adopts it explicitly.
"""
import hashlib
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

from ltr_plugins.common.atomic_files import write_text

MARK = '.mkdnet-experiment.json'


class FolderError(RuntimeError):
    """The experiment folder cannot be used as it is (the message says why and what to do)."""


def step_key(name: str, config: Dict, dependencies: Sequence[str] = ()) -> str:
    """A hash of a step's settings and of the keys of the steps it uses."""
    text = json.dumps({'step': name, 'config': config, 'uses': list(dependencies)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def claim_folder(folder: str, command: str, adopt: bool = False) -> None:
    """Marks ``folder`` as an experiment folder of ``command``; a non-empty folder that is not one is refused
    unless ``adopt`` (the caller's explicit ``--adopt-folder``)."""
    mark = os.path.join(folder, MARK)
    if os.path.isfile(mark):
        return
    made_by_an_earlier_version = os.path.isdir(os.path.join(folder, 'steps'))
    if os.path.isdir(folder) and os.listdir(folder) and not (adopt or made_by_an_earlier_version):
        raise FolderError('{} is not empty and was not made by {}: nothing in it is touched. Choose a new or empty '
                          '--folder, or pass --adopt-folder to use this one (the steps then delete only files they '
                          'write themselves).'.format(folder, command))
    os.makedirs(folder, exist_ok=True)
    write_text(mark, json.dumps({'command': command, 'created': time.strftime('%Y-%m-%d %H:%M:%S')}) + '\n')


def _files_under(paths: Sequence[str]) -> List[str]:
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        for root, _, names in os.walk(path):
            found.extend(os.path.join(root, name) for name in names)
    return found


class Steps:
    """Runs the steps of one experiment folder (see the module docstring); ``announce(name, reused)`` is called as
    each step starts."""

    def __init__(self, folder: str, announce: Callable[[str, bool], None] = lambda name, reused: None):
        self.folder = os.path.abspath(folder)
        self.records = os.path.join(self.folder, 'steps')
        self.announce = announce
        os.makedirs(self.records, exist_ok=True)

    def record_path(self, name: str) -> str:
        return os.path.join(self.records, name.replace(' ', '_') + '.json')

    def read(self, name: str) -> Optional[Dict]:
        """The step's record, or None; a record that is not what this class writes is an error naming it."""
        path = self.record_path(name)
        if not os.path.isfile(path):
            return None
        try:
            with open(path) as handle:
                record = json.load(handle)
        except (OSError, ValueError) as error:
            raise FolderError('{}: not a readable step record ({}). Delete it to run the step "{}" again.'.format(
                path, error, name)) from None
        if not isinstance(record, dict) or not isinstance(record.get('key'), str) \
                or not isinstance(record.get('files', []), list):
            raise FolderError('{}: not a step record of this command. Delete it to run the step "{}" again.'.format(
                path, name))
        return record

    def _write(self, name: str, record: Dict) -> None:
        write_text(self.record_path(name), json.dumps(record, indent=1, sort_keys=True) + '\n')

    def _remove_own_files(self, record: Dict) -> None:
        for relative in record.get('files', []):
            path = os.path.normpath(os.path.join(self.folder, relative))
            if not path.startswith(self.folder + os.sep):
                continue                    # a record never names a file outside the folder; ignore one that does
            if os.path.isfile(path) or os.path.islink(path):
                os.remove(path)
            parent = os.path.dirname(path)
            while parent.startswith(self.folder + os.sep) and os.path.isdir(parent) and not os.listdir(parent):
                os.rmdir(parent)
                parent = os.path.dirname(parent)

    def run(self, name: str, key: str, action: Callable[[], None], outputs: Sequence[str] = ()) -> bool:
        """Runs ``action`` unless a run with the same key finished; returns whether the step was reused.

        ``outputs`` are the files and folders the step writes into: what is new in them after ``action`` is
        recorded as the step's own. An unfinished run with the same key is resumed (its files are kept)."""
        record = self.read(name)
        reused = record is not None and record['key'] == key and record.get('done', False)
        self.announce(name, reused)
        if reused:
            return True
        if record is not None and record['key'] != key:
            self._remove_own_files(record)
            record = None
        before = set(_files_under(outputs))
        own = set(record.get('files', [])) if record else set()
        self._write(name, {'key': key, 'done': False, 'files': sorted(own)})
        start = time.time()
        try:
            action()
        finally:
            new = {os.path.relpath(path, self.folder) for path in set(_files_under(outputs)) - before}
            own |= new
            self._write(name, {'key': key, 'done': False, 'files': sorted(own)})
        self._write(name, {'key': key, 'done': True, 'files': sorted(own), 'seconds': round(time.time() - start, 1)})
        return False
