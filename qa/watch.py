"""Watch a documents folder and rebuild the index when documents are added, changed or deleted.

The file system reports changes through watchdog (inotify on Linux). A burst of
saves makes one build: a build starts once the folder has been quiet for
``quiet`` seconds, or ``longest`` seconds after the first change if it never
goes quiet. Builds run one at a time; a change during a build makes exactly one
more build after it. Only changes to files qa would read count: an editor's
swap, backup and lock files (``.x.swp``, ``x~``, ``#x#``, ``.~lock.x#``, ``4913``)
and anything hidden are not documents, so they never trigger a build.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from qa.errors import QAError
from qa.ingest import is_candidate

#: Seconds without a change before a build starts: long enough for an editor's save dance.
QUIET_S = 1.0
#: Seconds after the first change when a build starts even if changes keep coming.
LONGEST_S = 10.0


class Watcher:
    """Call ``rebuild`` after changes to the documents under ``docs``, debounced and one at a time.

    Args:
        docs: the documents folder.
        rebuild: builds the index (incrementally); a QAError it raises is logged, not fatal.
        log: where a line about each build goes.
    """

    def __init__(
        self,
        docs: Path,
        rebuild: Callable[[], None],
        log: Callable[[str], None] = print,
        quiet: float = QUIET_S,
        longest: float = LONGEST_S,
    ):
        self.docs = Path(docs).resolve()
        self.rebuild = rebuild
        self.log = log
        self.quiet = quiet
        self.longest = longest
        self._changed = threading.Condition()
        self._first: float | None = None  # when the oldest change not yet built arrived
        self._last = 0.0
        self._stopping = False
        self._observer = None
        self._thread: threading.Thread | None = None
        self.builds = 0

    def notice(self, path: str | bytes, is_directory: bool = False) -> None:
        """Take note of a change at ``path`` if it can concern a document."""
        if isinstance(path, bytes):
            path = path.decode("utf-8", "surrogateescape")
        try:
            relative = Path(path).resolve().relative_to(self.docs)
        except ValueError:
            return
        if relative.parts and is_candidate(relative, is_directory):
            self.check()

    def check(self) -> None:
        """Ask for a build as if something had changed (it finds nothing to do when nothing did)."""
        with self._changed:
            now = time.monotonic()
            self._first = now if self._first is None else self._first
            self._last = now
            self._changed.notify()

    def start(self) -> Watcher:
        """Start watching in background threads (daemons: they end with the process)."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return  # reads, not changes
                watcher.notice(event.src_path, event.is_directory)
                if getattr(event, "dest_path", ""):
                    watcher.notice(event.dest_path, event.is_directory)

        self._observer = Observer()
        self._observer.schedule(Handler(), str(self.docs), recursive=True)
        self._observer.daemon = True
        self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="qa-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; a build under way finishes first."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        while self._wait_for_quiet():
            try:
                self.rebuild()
            except QAError as exc:
                self.log(f"watch: the index was not rebuilt: {exc}")
            self.builds += 1

    def _wait_for_quiet(self) -> bool:
        """Block until changes have settled (then forget them and return True), or until stopped."""
        with self._changed:
            while not self._stopping:
                if self._first is None:
                    self._changed.wait()
                    continue
                now = time.monotonic()
                due = min(self._last + self.quiet, self._first + self.longest)
                if now >= due:
                    self._first = None
                    return True
                self._changed.wait(due - now)
            return False
