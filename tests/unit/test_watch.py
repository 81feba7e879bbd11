"""The watcher's debounce and one-build-at-a-time rules, with a stand-in for the build."""

from __future__ import annotations

import threading
import time

import pytest

from qa.errors import IndexWriteError
from qa.watch import Watcher


class Builds:
    """Counts builds; each takes ``seconds``; can be told to fail."""

    def __init__(self, seconds: float = 0.0, fail: bool = False):
        self.count = 0
        self.seconds = seconds
        self.fail = fail
        self.running = threading.Event()

    def __call__(self):
        self.running.set()
        time.sleep(self.seconds)
        self.count += 1
        self.running.clear()
        if self.fail:
            raise IndexWriteError("disk full")


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.fixture
def watching(tmp_path):
    made = []

    def make(builds, quiet=0.15, longest=2.0):
        watcher = Watcher(tmp_path, builds, log=lines.append, quiet=quiet, longest=longest)
        watcher._thread = threading.Thread(target=watcher._loop, daemon=True)  # no file-system observer
        watcher._thread.start()
        made.append(watcher)
        return watcher

    lines: list[str] = []
    make.lines = lines
    yield make
    for watcher in made:
        watcher.stop()


def test_a_burst_of_saves_makes_one_build(watching, tmp_path):
    builds = Builds()
    watcher = watching(builds)
    for _ in range(20):
        watcher.notice(str(tmp_path / "a.txt"))
        time.sleep(0.005)
    assert wait_until(lambda: builds.count == 1)
    time.sleep(0.4)
    assert builds.count == 1


def test_changes_during_a_build_make_exactly_one_more(watching, tmp_path):
    builds = Builds(seconds=0.5)
    watcher = watching(builds)
    watcher.notice(str(tmp_path / "a.txt"))
    assert builds.running.wait(3)
    for _ in range(10):
        watcher.notice(str(tmp_path / "b.pdf"))
    assert wait_until(lambda: builds.count == 2, timeout=5)
    time.sleep(0.5)
    assert builds.count == 2


def test_a_never_quiet_folder_still_builds_after_the_longest_wait(watching, tmp_path):
    builds = Builds()
    watcher = watching(builds, quiet=0.3, longest=0.6)
    began = time.monotonic()
    while time.monotonic() - began < 1.0:
        watcher.notice(str(tmp_path / "busy.txt"))
        time.sleep(0.05)
    assert builds.count >= 1  # built while the saves went on


@pytest.mark.parametrize(
    "name", [".a.txt.swp", "a.txt~", "#a.txt#", ".~lock.a.docx#", "4913", "a.tmp", ".git/index", ".hidden/a.txt"]
)
def test_editor_and_hidden_files_are_not_documents(watching, tmp_path, name):
    builds = Builds()
    watcher = watching(builds)
    watcher.notice(str(tmp_path / name))
    watcher.notice(str(tmp_path.parent / "outside.txt"))
    time.sleep(0.4)
    assert builds.count == 0


def test_a_failed_build_is_logged_and_watching_goes_on(watching, tmp_path):
    builds = Builds(fail=True)
    watcher = watching(builds)
    watcher.notice(str(tmp_path / "a.txt"))
    assert wait_until(lambda: builds.count == 1)
    watcher.notice(str(tmp_path / "a.txt"))
    assert wait_until(lambda: builds.count == 2)
    assert any("disk full" in line for line in watching.lines)


def test_check_asks_for_one_build_without_a_change(watching):
    builds = Builds()
    watcher = watching(builds)
    watcher.check()
    assert wait_until(lambda: builds.count == 1)
