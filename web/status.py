"""What the server knows about its documents folder, found off the request path and shared by every worker.

Whether the index is stale used to be computed inside a request: hashing every
document, at most every 10 s, on whichever worker asked. With a 2 GB file in
the folder a search on that worker waited 7.7 s, every 10 s. Now one thread of
the process that loads the app (gunicorn's master, before it forks) compares the
folder with the build in service in the background, by file metadata first
(``DigestCache``), and writes what it found into a small block of shared memory
that every forked worker reads without waiting. The watcher of ``qa serve
--watch`` writes its state there too, so a failed watch shows in ``/healthz``.
"""

from __future__ import annotations

import json
import mmap
import struct
import threading
import time
from pathlib import Path

#: Bytes of shared memory for the record: a few short strings.
SIZE = 1 << 16
#: Seconds between two looks at the documents folder.
CHECK_EVERY_S = 10.0
_HEADER = struct.Struct("<QI")  # generation (odd while being written), length of the JSON that follows


class SharedStatus:
    """A small JSON record in anonymous shared memory: written by the master's threads, read by forked workers.

    A sequence lock: the writer makes the generation odd, writes, makes it even
    again; a reader retries until it reads one even generation on both sides of
    its copy, so it never sees half a record and never blocks a writer.
    """

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, SIZE)
        self._lock = threading.Lock()  # writers are threads of one process
        _HEADER.pack_into(self._map, 0, 0, 2)
        self._map[_HEADER.size : _HEADER.size + 2] = b"{}"

    def read(self) -> dict:
        """Return the record as last written."""
        while True:
            generation, length = _HEADER.unpack_from(self._map, 0)
            if generation % 2:
                time.sleep(0)
                continue
            data = self._map[_HEADER.size : _HEADER.size + length]
            if _HEADER.unpack_from(self._map, 0)[0] == generation:
                return json.loads(data)

    def update(self, **fields) -> None:
        """Set ``fields`` in the record, keeping the others."""
        with self._lock:
            record = self.read()
            record.update(fields)
            self._write(record)

    def _write(self, record: dict) -> None:
        data = json.dumps(record).encode()
        if _HEADER.size + len(data) > SIZE:
            raise ValueError("status record too large for its shared block")
        generation = _HEADER.unpack_from(self._map, 0)[0]
        _HEADER.pack_into(self._map, 0, generation + 1, 0)
        self._map[_HEADER.size : _HEADER.size + len(data)] = data
        _HEADER.pack_into(self._map, 0, generation + 2, len(data))


class Freshness:
    """A background thread that says, into ``status``, whether ``docs`` changed since the build in ``index_dir``.

    The first look hashes every document once; later looks read only the
    metadata of files that did not change.
    """

    def __init__(self, docs: Path, index_dir: Path, status: SharedStatus, every: float = CHECK_EVERY_S):
        from qa.ingest import DigestCache

        self.docs = Path(docs)
        self.index_dir = Path(index_dir)
        self.status = status
        self.every = every
        self._digests = DigestCache()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Freshness:
        self._thread = threading.Thread(target=self._loop, name="qa-freshness", daemon=True)
        self._thread.start()
        return self

    def check(self) -> None:
        """Compare the folder with the build in service now, and record the answer."""
        from qa.indexing import folder_changed

        if not self.docs.is_dir():
            stale = None  # the documents are gone: the index in service is all there is
        else:
            try:
                stale = "the documents changed since the index was built" if folder_changed(
                    self.docs, self.index_dir, self._digests
                ) else None
            except Exception as exc:  # an unreadable index is /healthz's to report, not this thread's end
                stale = f"could not compare the documents with the index ({type(exc).__name__})"
        self.status.update(stale=stale, stale_checked_at=time.time())

    def _loop(self) -> None:
        while True:
            self.check()
            self._wake.wait(self.every)
            self._wake.clear()
