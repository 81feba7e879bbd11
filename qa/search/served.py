"""The index a long-running process searches: opened on first use, switched when a new build is published.

A server starts without an index (answering 503) and picks up each new build
without a restart: every search asks which build ``index/CURRENT`` names and
opens it when it changed. The build it replaces stays open for ``RETIRE_AFTER_S``
for the searches already running on it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from qa import index
from qa.index import Connector, IndexView
from qa.settings import SearchSettings

#: Seconds an index that was replaced stays open for searches already running on it.
RETIRE_AFTER_S = 30.0


class ServedIndex:
    """The build in service of ``index_dir``, reopened whenever it changes; safe to share between threads.

    Args:
        model: the name of the model that encodes the questions (a build of another model is refused).
        shards: how to reach the shards of a sharded collection (default: in this process).
        strict: a shard that does not answer fails a search instead of leaving it partial.
    """

    def __init__(self, index_dir: Path, model: str, shards: Connector | None = None, strict: bool = False):
        self.index_dir = Path(index_dir)
        self.model = model
        self._connect = shards
        self._strict = strict
        self._lock = threading.Lock()
        self._reader: IndexView | None = None
        self._build: Path | None = None
        self._tuned: tuple[float | None, SearchSettings | None] = (None, None)

    def current(self) -> IndexView:
        """Return the build in service, opening it when it changed since the last look."""
        build = index.current_build(self.index_dir)
        if self._reader is None or build != self._build:
            with self._lock:
                if self._reader is None or build != self._build:
                    reader = index.open_index(self.index_dir, model=self.model, connect=self._connect,
                                              strict=self._strict)
                    retired, self._reader, self._build = self._reader, reader, reader.folder
                    if retired is not None:
                        # Searches that began on the old build get time to finish before its
                        # files (already replaced on disk) are let go.
                        timer = threading.Timer(RETIRE_AFTER_S, retired.close)
                        timer.daemon = True
                        timer.start()
        return self._reader

    def tuned(self) -> SearchSettings | None:
        """Return the search settings ``qa tune --save`` chose for this index, or None; re-read when the file changes."""
        path = self.index_dir / index.TUNED
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self._tuned[0]:
            record = index.read_tuning(self.index_dir) if stamp is not None else None
            settings = SearchSettings.from_dict(record["settings"], str(path)) if record else None
            self._tuned = (stamp, settings)
        return self._tuned[1]
