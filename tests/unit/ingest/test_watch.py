"""The watcher's debounce and one-build-at-a-time rules, with a stand-in for the build."""

from __future__ import annotations

import threading
import time

import pytest

from qa.errors import IndexWriteError
from qa.ingest import Watcher


class Builds:
    """Counts builds; each takes ``seconds``; can be told to fail (with a QAError, or with ``error``)."""

    def __init__(self, seconds: float = 0.0, fail: bool = False, error: BaseException | None = None):
        self.count = 0
        self.seconds = seconds
        self.fail = fail
        self.error = error
        self.running = threading.Event()

    def __call__(self):
        self.running.set()
        time.sleep(self.seconds)
        self.count += 1
        self.running.clear()
        if self.fail:
            raise self.error or IndexWriteError("disk full")


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.fixture
def watching(tmp_path):
    made = []

    def make(builds, quiet=0.15, longest=2.0, **options):
        watcher = Watcher(tmp_path, builds, log=lines.append, quiet=quiet, longest=longest, **options)
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


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("a bug in a build")], ids=["MemoryError", "bug"])
def test_a_build_that_fails_in_any_way_does_not_end_the_watch(watching, tmp_path, error):
    builds = Builds(fail=True, error=error)
    states = []
    watcher = watching(builds, on_state=states.append)
    watcher.notice(str(tmp_path / "a.txt"))
    assert wait_until(lambda: builds.count == 1)
    assert wait_until(lambda: watcher.build_error is not None)
    assert watcher.status()["last_build_error"].startswith(type(error).__name__)
    builds.fail = False
    watcher.notice(str(tmp_path / "a.txt"))
    assert wait_until(lambda: builds.count == 2)
    assert wait_until(lambda: watcher.build_error is None)
    assert [s["last_build_error"] is None for s in states] == [False, True]  # told when it failed, and when it recovered


def test_changes_inside_the_index_folder_are_not_document_changes(watching, tmp_path):
    builds = Builds()
    index = tmp_path / "index"
    watcher = watching(builds, ignore=(index,))
    for name in ("build.lock", "builds/20261205T000000000000Z", "models/x/vocab.txt", "CURRENT"):
        watcher.notice(str(index / name), is_directory=name.startswith("builds"))
    time.sleep(0.4)
    assert builds.count == 0
    watcher.notice(str(tmp_path / "a.txt"))
    assert wait_until(lambda: builds.count == 1)


def test_a_change_no_event_reported_is_built_at_the_next_poll(watching):
    builds = Builds()
    differs = [True]
    watcher = watching(builds, poll=0.2, changed=lambda: differs[0])
    assert wait_until(lambda: builds.count == 1)
    differs[0] = False
    count = builds.count
    time.sleep(0.6)
    assert builds.count == count  # polls that find nothing changed build nothing


def test_a_documents_folder_that_disappears_fails_the_watch(watching, tmp_path):
    import shutil

    docs = tmp_path / "docs"
    docs.mkdir()
    watcher = Watcher(docs, Builds(), log=watching.lines.append, poll=0.1).start()
    try:
        assert watcher.state == "watching"
        shutil.rmtree(docs)
        assert wait_until(lambda: watcher.state == "failed")
        assert "gone" in watcher.error
    finally:
        watcher.stop()


def test_a_folder_nested_a_thousand_deep_does_not_stop_the_watch(tmp_path):
    import subprocess

    docs = tmp_path / "docs"
    docs.mkdir()
    builds = Builds()
    lines: list[str] = []
    pending: list[str] = []  # files written and not yet built: what a poll finds changed

    def changed() -> bool:
        return bool(pending)

    def build() -> None:
        pending.clear()
        builds()

    watcher = Watcher(docs, build, log=lines.append, quiet=0.1, poll=0.5, changed=changed).start()
    try:
        # mkdir -p makes the levels faster than inotify adds them: watchdog's reader may walk the new
        # tree with os.walk, which recurses until a RecursionError ends its thread (whether it does
        # depends on the timing; either way changes must go on being built).
        subprocess.run(["mkdir", "-p", str(docs / "/".join(["d"] * 1100))], check=True)
        wait_until(lambda: watcher.state == "polling", timeout=3)
        if watcher.state == "polling":
            assert any("file events stopped (RecursionError" in line for line in lines), lines
            assert "RecursionError" in watcher.error  # while the tree is there, inotify cannot be restarted
        count = builds.count
        (docs / "after.txt").write_text("Written after the deep folder.", encoding="utf-8")
        pending.append("after.txt")
        assert wait_until(lambda: builds.count > count, timeout=20), lines
        subprocess.run(["rm", "-rf", str(docs / "d")], check=True)  # shutil.rmtree recurses too
        assert wait_until(lambda: watcher.state == "watching", timeout=20), lines  # restarted at a poll
        time.sleep(1.0)  # the restarted observer adds its watches
        count = builds.count
        (docs / "later.txt").write_text("Written once events came back.", encoding="utf-8")  # no poll will see it
        assert wait_until(lambda: builds.count > count, timeout=20), lines
    finally:
        watcher.stop()
        subprocess.run(["rm", "-rf", str(docs)], check=True)  # a deep tree left behind breaks pytest's clean-up
