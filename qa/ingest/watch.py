"""Watch a documents folder and rebuild the index when documents are added, changed or deleted.

The file system reports changes through watchdog (inotify on Linux). A burst of
saves makes one build: a build starts once the folder has been quiet for
``quiet`` seconds, or ``longest`` seconds after the first change if it never
goes quiet. Builds run one at a time; a change during a build makes exactly one
more build after it. Only changes to files qa would read count: an editor's
swap, backup and lock files (``.x.swp``, ``x~``, ``#x#``, ``.~lock.x#``, ``4913``)
and anything hidden are not documents, and nothing under an ignored folder (the
index, when it lives inside the documents folder: its own lock file and new
builds would otherwise start a build a second, forever) counts.

A watcher must outlive what goes wrong around it, because nothing else tells the
operator that changes stopped being indexed:

- a build that fails in any way (a QAError, a MemoryError, a bug) is logged and
  the next change builds again;
- watchdog's threads can die (a folder nested a thousand deep ends its inotify
  thread with a RecursionError while the observer still looks alive): an
  exception in any of them restarts the observer, and when it cannot be
  restarted the watcher polls instead;
- every ``poll`` seconds the folder is compared with the index anyway (by file
  metadata, through ``changed``), so a change that no event reported is built
  within that time;
- a documents folder that disappears is a failed watch (``state``), which
  ``qa index --watch`` exits on and ``/healthz`` reports.
"""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path
from typing import Callable

from qa.ingest.folder import is_candidate

#: Seconds without a change before a build starts: long enough for an editor's save dance.
QUIET_S = 1.0
#: Seconds after the first change when a build starts even if changes keep coming.
LONGEST_S = 10.0
#: Seconds between looks at the folder that no event asked for.
POLL_S = 30.0

#: What ``Watcher.state`` can be: events arrive; events are lost and the folder is polled; no watch at all.
WATCHING, POLLING, FAILED = "watching", "polling", "failed"


class Watcher:
    """Call ``rebuild`` after changes to the documents under ``docs``, debounced and one at a time.

    Args:
        docs: the documents folder.
        rebuild: builds the index (incrementally); whatever it raises is logged, not fatal.
        log: where a line about each build goes.
        ignore: folders whose changes are not document changes (the index folder).
        changed: says, cheaply, whether the folder differs from the index; asked every
            ``poll`` seconds (None: each poll builds, which finds nothing to do when nothing changed).
        on_state: told ``status()`` whenever it changes.
    """

    def __init__(
        self,
        docs: Path,
        rebuild: Callable[[], None],
        log: Callable[[str], None] = print,
        quiet: float = QUIET_S,
        longest: float = LONGEST_S,
        ignore: tuple[Path, ...] = (),
        changed: Callable[[], bool] | None = None,
        poll: float = POLL_S,
        on_state: Callable[[dict], None] | None = None,
    ):
        self.docs = Path(docs).resolve()
        self.rebuild = rebuild
        self.log = log
        self.quiet = quiet
        self.longest = longest
        self.ignore = tuple(Path(path).resolve() for path in ignore)
        self.changed = changed
        self.poll = poll
        self.on_state = on_state
        self._changed = threading.Condition()
        self._first: float | None = None  # when the oldest change not yet built arrived
        self._last = 0.0
        self._next_poll = time.monotonic() + poll
        self._stopping = False
        self._observer = None
        self._observer_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.builds = 0
        self.state = WATCHING
        #: Why the watch is not WATCHING: a dead observer, a missing folder.
        self.error: str | None = None
        #: Why the last build failed, until one succeeds.
        self.build_error: str | None = None

    def status(self) -> dict:
        """Return the watch's state, why it is not watching, and why the last build failed."""
        return {"state": self.state, "error": self.error, "last_build_error": self.build_error}

    def notice(self, path: str | bytes, is_directory: bool = False) -> None:
        """Take note of a change at ``path`` if it can concern a document."""
        if isinstance(path, bytes):
            path = path.decode("utf-8", "surrogateescape")
        try:
            resolved = Path(path).resolve()
            relative = resolved.relative_to(self.docs)
        except (ValueError, OSError, RuntimeError):
            return
        if any(resolved == ignored or ignored in resolved.parents for ignored in self.ignore):
            return
        if not relative.parts:
            if not self.docs.is_dir():
                self.look_now()  # the folder itself went: the watch cannot go on, say so at once
            return
        if is_candidate(relative, is_directory):
            self.check()

    def look_now(self) -> None:
        """Make the next poll happen now."""
        with self._changed:
            self._next_poll = time.monotonic()
            self._changed.notify()

    def check(self) -> None:
        """Ask for a build as if something had changed (it finds nothing to do when nothing did)."""
        with self._changed:
            now = time.monotonic()
            self._first = now if self._first is None else self._first
            self._last = now
            self._changed.notify()

    def start(self) -> Watcher:
        """Start watching in background threads (daemons: they end with the process)."""
        _watchers.add(self)
        _install_hook()
        self._start_observer()
        self._next_poll = time.monotonic() + self.poll
        self._thread = threading.Thread(target=self._loop, name="qa-watch", daemon=True)
        self._thread.start()
        return self

    def wait(self, every: float = 0.5) -> str | None:
        """Block until the watch can go on no more (its folder gone); return why."""
        while self.state != FAILED:
            time.sleep(every)
        return self.error

    def stop(self) -> None:
        """Stop watching; a build under way finishes first."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._stop_observer()
        if self._thread is not None:
            self._thread.join(timeout=60)
        _watchers.discard(self)

    def observer_died(self, error: BaseException) -> None:
        """Note that one of watchdog's threads ended with ``error``; the loop restarts the observer."""
        with self._changed:
            self._observer_error = error
            self._changed.notify()

    # -- the observer ----------------------------------------------------------------

    def _start_observer(self) -> None:
        """Start watchdog on the folder; on failure, poll instead and say why."""
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

        if not self.docs.is_dir():
            self._set_state(FAILED, f"the documents folder {self.docs} is gone")
            return
        observer = Observer()
        observer.daemon = True
        try:
            observer.schedule(Handler(), str(self.docs), recursive=True)
            self._observer = observer
            observer.start()
        except BaseException as exc:  # RecursionError on a deep tree, OSError past the inotify watch limit
            self._observer = None
            self._stop(observer)
            self._set_state(POLLING, f"file events unavailable ({_describe(exc)}); looking every {self.poll:g} s")
            return
        self._set_state(WATCHING, None)

    def _events_alive(self) -> bool:
        """Say whether every thread file events need is running (a poll's check, should the hook be missed)."""
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        if not all(emitter.is_alive() for emitter in list(observer.emitters)):
            return False
        # inotify's reader is one thread for the whole process, referenced by no observer.
        readers = [t for t in threading.enumerate() if type(t).__module__ == "watchdog.observers.inotify_c"]
        return bool(readers) or "inotify" not in type(observer).__module__

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            self._stop(observer)

    @staticmethod
    def _stop(observer) -> None:
        try:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)
        except BaseException:  # a half-started observer: nothing more to stop
            pass

    def _restart_observer(self, error: BaseException) -> None:
        self.log(f"watch: file events stopped ({_describe(error)}); restarting them")
        self._stop_observer()
        self._start_observer()
        # What happened while no events came is found by one look.
        self.check()

    # -- the loop ----------------------------------------------------------------------

    def _loop(self) -> None:
        while self._wait_for_work():
            try:
                self.rebuild()
            except Exception as exc:  # MemoryError and bugs too: the next change must still be built
                self.log(f"watch: the index was not rebuilt: {_describe(exc)}")
                self._set_build_error(_describe(exc))
            else:
                self._set_build_error(None)
            self.builds += 1

    def _wait_for_work(self) -> bool:
        """Block until changes have settled (then forget them and return True), or until stopped."""
        with self._changed:
            while not self._stopping:
                if self._observer_error is not None:
                    error, self._observer_error = self._observer_error, None
                    self._changed.release()
                    try:
                        self._restart_observer(error)
                    finally:
                        self._changed.acquire()
                    continue
                now = time.monotonic()
                # Settled changes first: a poll slower than its period (restarting file events on a
                # deep tree takes most of a second) must not starve the build it found needed.
                if self._first is not None and now >= min(self._last + self.quiet, self._first + self.longest):
                    self._first = None
                    return True
                if now >= self._next_poll:
                    self._changed.release()
                    try:
                        self._poll()
                    finally:
                        self._changed.acquire()
                    self._next_poll = time.monotonic() + self.poll  # a period between polls, however long one takes
                    continue
                due = self._next_poll
                if self._first is not None:
                    due = min(due, self._last + self.quiet, self._first + self.longest)
                self._changed.wait(max(0.0, due - now))
            return False

    def _poll(self) -> None:
        """The look no event asked for: is the folder still there, are events still coming, did it change?"""
        if not self.docs.is_dir():
            self._stop_observer()
            self._set_state(FAILED, f"the documents folder {self.docs} is gone")
            return
        if self.state != WATCHING:
            self._start_observer()  # the folder is back, or the tree that broke inotify is gone
        elif not self._events_alive():
            self._restart_observer(RuntimeError("a thread of the file-event observer is gone"))
        try:
            differs = True if self.changed is None else self.changed()
        except Exception as exc:
            self.log(f"watch: could not compare the folder with the index: {_describe(exc)}")
            differs = True
        if differs:
            self.check()

    def _set_state(self, state: str, error: str | None) -> None:
        if (state, error) == (self.state, self.error):
            return
        self.state, self.error = state, error
        if state != WATCHING:
            self.log(f"watch: {state}: {error}")
        self._tell()

    def _set_build_error(self, error: str | None) -> None:
        if error != self.build_error:
            self.build_error = error
            self._tell()

    def _tell(self) -> None:
        if self.on_state is not None:
            self.on_state(self.status())


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# Every running watcher, for the thread exception hook below.
_watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()


def _install_hook() -> None:
    """Put ``_thread_died`` in front of whatever threading.excepthook is now (once)."""
    current = threading.excepthook
    if getattr(current, "qa_watch", False):
        return

    def hook(args) -> None:
        if not _thread_died(args):
            current(args)

    hook.qa_watch = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def _thread_died(args) -> bool:
    """When a thread of watchdog's dies, tell every watcher and say so (True); others report as usual.

    Watchdog's inotify reader is one thread shared by every observer of the process
    (``InotifyFD``), so its death ends every watch at once.
    """
    if type(args.thread).__module__.startswith("watchdog.") and _watchers:
        for watcher in list(_watchers):
            watcher.observer_died(args.exc_value or RuntimeError(args.exc_type.__name__))
        return True  # each watcher logs one line; a thousand-line RecursionError trace helps no one
    return False
