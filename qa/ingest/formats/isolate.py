"""Read many files, each non-text one in a worker process with a memory cap and a timeout.

Why processes: lxml and PDFium are C libraries. A hostile file can make them
loop, recurse or allocate without returning to Python, where no exception or
signal handler can stop them, and a crash there would take the caller (a
build inside ``qa serve``) down with it. A worker process is bounded from
outside: ``RLIMIT_AS`` caps its address space (``Limits.max_memory``; the
parsers' own imports take ~60 MB of it), the parent kills it when a file takes
longer than ``Limits.max_seconds``, and a crash costs only that file. Workers
are forked from multiprocessing's fork server, a clean single-threaded
process that has imported the parsers once: forking the caller itself is
unsafe (it may hold PyTorch, FAISS or OpenMP threads), and ``spawn`` would
start an interpreter and import the parsers anew for every worker (~0.4 s).
As with any multiprocessing start method but fork, each worker imports the
caller's ``__main__`` module (``qa``'s CLI entry point: light), so keep it
free of heavy top-level imports.
A worker reads file after file; after a timeout, a crash or a MemoryError it
is replaced by a fresh fork. Running out of time or memory, or being killed by a
signal (the kernel's OOM killer sends SIGKILL), says nothing about the file: such
a reason is marked transient, so the file is read again by the next build rather
than remembered as unreadable. A worker prints nothing of its own on the way out:
a MemoryError anywhere in it ends it with ``EXIT_OUT_OF_MEMORY``, any other
escaped error with ``EXIT_FAILED``, and the parent turns either into the file's reason.
Text and Markdown files are read in the caller's process: pure Python whose
cost grows with the (already bounded) file size.

Measured by bench/speed/extract.py on this 2-core machine: the first worker
costs ~0.3-0.4 s (the fork server starts and imports the parsers, once per
process), each later one ~25 ms. Passing a file through a worker adds
~0.5-1 ms (pickling both ways) to 5-7 ms per HTML page or 4-page PDF and
~13 ms per DOCX: 137 against 142 HTML pages/s, 182 against 208 PDFs/s (590
against 678 PDF pages/s). Two workers reached 256 HTML pages/s and 348 PDFs/s
with both cores free, and gained nothing while another process held one.
Embedding the same documents' passages at ~75 passages/s takes 10-27x as long
as extracting them, so isolation costs little and is on by default, and one
worker is the default: a second would save under 5% of a build while taking
the core a rebuilding server answers questions on. ``workers=0`` reads
everything in-process (tests, or a caller that trusts its files).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.connection import wait

from .base import DEFAULT_LIMITS, Extracted, Limits, UnreadableDocument

Result = Extracted | UnreadableDocument
#: Worker processes: extraction runs 10-27x faster than embedding, so one is enough (see above).
DEFAULT_WORKERS = 1
#: Files read ahead of the one being yielded, per worker: keeps workers busy, bounds memory held.
READ_AHEAD = 4
#: Seconds a worker is given to exit after being told to, before it is killed.
EXIT_GRACE = 1.0
#: Seconds a new worker may take to come up (a fork of the preloaded server: ~10 ms; first server start ~0.5 s).
STARTUP_SECONDS = 60.0
READY = "ready"
#: Share of ``Limits.max_memory`` whose use at peak retires a worker after its file.
RETIRE_SHARE = 0.8
#: Exit status of a worker that ran out of memory outside a reader (holding the file, sending the result).
EXIT_OUT_OF_MEMORY = 3
#: Exit status of a worker that failed in its own code: ended without a traceback on the console.
EXIT_FAILED = 4
#: Imported once in the fork server, so each worker starts with the parsers loaded.
PRELOAD = [
    "qa.ingest.formats", "qa.ingest.formats.text", "qa.ingest.formats.html", "qa.ingest.formats.pdf",
    "qa.ingest.formats.docx", "qa.ingest.formats.eml", "qa.ingest.formats.pptx", "qa.ingest.formats.sheet",
    "qa.ingest.formats.epub", "qa.ingest.formats.odt", "qa.ingest.formats.msg", "qa.ingest.formats.mbox",
    "qa.ingest.formats.ocr", "qa.ingest.formats.image",
    "trafilatura", "pypdfium2", "docx", "charset_normalizer", "pptx", "olefile", "lxml.html", "PIL.Image",
    # openpyxl is left to the first .xlsx: it imports numpy, ~145 MB of each worker's address space.
    # The OCR engine is left to the first scan: numpy, OpenCV and ONNX Runtime take ~330 MiB of a worker's
    # address space (with the OpenBLAS setting ocr.py makes), and a worker that has run OCR peaks at 780-840 MiB.
]


def _context():
    """The forkserver context, its server preloading the parsers instead of the caller's ``__main__``."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def extract_many(
    items: Iterable[tuple[str, bytes]], limits: Limits = DEFAULT_LIMITS, workers: int = DEFAULT_WORKERS
) -> Iterator[Result]:
    """Read ``(name, data)`` pairs and yield, in the same order, an Extracted or the UnreadableDocument saying why not.

    Args:
        items: File names (for their suffix) and bytes; consumed lazily, a few ahead.
        limits: Bounds on each file; time and memory are enforced in the workers.
        workers: Worker processes for non-text files; 0 reads everything in this process.
    """
    from . import IN_PROCESS, format_of

    pool = _Pool(limits, workers) if workers > 0 else None
    source = enumerate(items)
    done: dict[int, Result] = {}
    queue: deque[tuple[int, str, bytes]] = deque()
    window = max(1, workers) * READ_AHEAD
    next_out, exhausted = 0, False
    try:
        while True:
            while not exhausted and len(queue) + len(done) + (pool.busy if pool else 0) < window:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                index, (name, data) = item
                fmt = format_of(name)
                if pool is None or fmt is None or fmt in IN_PROCESS or len(data) > limits.max_bytes:
                    done[index] = _extract_or_reason(name, data, limits)
                else:
                    queue.append((index, name, data))
            if pool is not None:
                pool.dispatch(queue)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            if pool is not None and pool.busy:
                done.update(pool.collect())
            elif exhausted and not queue and not done:
                return
    finally:
        if pool is not None:
            pool.close()


def _extract_or_reason(name: str, data: bytes, limits: Limits) -> Result:
    from . import extract

    try:
        return extract(name, data, limits)
    except UnreadableDocument as exc:
        return exc


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self, limits: Limits) -> None:
        context = _context()
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, limits), daemon=True, name="qa-extract")
        self.process.start()
        child.close()
        self.job: int | None = None
        self.deadline = 0.0
        self.ready = False

    def send(self, index: int, name: str, data: bytes, seconds: float) -> None:
        if not self.ready:
            # The clock starts when the worker is up; its start-up is not the file's fault.
            if not self.conn.poll(STARTUP_SECONDS) or self.conn.recv() != READY:
                raise OSError("extract worker did not start")
            self.ready = True
        self.job = index
        self.conn.send((name, data))
        self.deadline = time.monotonic() + seconds

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(EXIT_GRACE)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


class _Pool:
    """Workers started on demand, each reading one file at a time, replaced when killed or crashed."""

    def __init__(self, limits: Limits, size: int) -> None:
        self.limits = limits
        self.size = size
        self.workers: list[_Worker] = []
        #: Files whose worker could not start, with their reason, for the next ``collect``.
        self.failed: list[tuple[int, Result]] = []

    @property
    def busy(self) -> int:
        return sum(w.job is not None for w in self.workers) + len(self.failed)

    def dispatch(self, queue: deque[tuple[int, str, bytes]]) -> None:
        """Hand queued files to idle workers, starting workers up to the pool size."""
        while queue:
            idle = next((w for w in self.workers if w.job is None), None)
            if idle is None:
                if len(self.workers) >= self.size:
                    return
                idle = _Worker(self.limits)
                self.workers.append(idle)
            index, name, data = queue.popleft()
            try:
                idle.send(index, name, data, self.limits.max_seconds)
            except (OSError, EOFError) as exc:  # the worker died taking the file, or never started
                failure = _death(idle.process, self.limits) if idle.ready else \
                    UnreadableDocument(f"could not start a reader process ({exc})", transient=True)
                self._replace(idle)
                self.failed.append((index, failure))

    def collect(self) -> list[tuple[int, Result]]:
        """Wait for at least one busy worker to answer or run out of time; return what finished."""
        finished, self.failed = self.failed, []
        busy = [w for w in self.workers if w.job is not None]
        if not busy:
            return finished
        timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
        ready = wait([w.conn for w in busy], timeout)
        for worker in busy:
            index = worker.job
            if worker.conn in ready:
                try:
                    result, retire = worker.conn.recv()
                except (EOFError, OSError):
                    result = _death(worker.process, self.limits)
                    self._replace(worker)
                else:
                    worker.job = None
                    if retire:
                        self._replace(worker)
                finished.append((index, result))
            elif time.monotonic() >= worker.deadline:
                late = UnreadableDocument(f"took longer than {self.limits.max_seconds:g} s to read", transient=True)
                finished.append((index, late))
                self._replace(worker)
        return finished

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers.remove(worker)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


def _death(process, limits: Limits) -> UnreadableDocument:
    """Say how a worker died, as the reason of the file it was reading.

    Out of memory, a signal (SIGKILL: the OOM killer; a crash signal: often an allocation
    that failed at the cap) and an error in qa's own worker code say nothing sure about
    the file: transient. Only a parser's own exit status is a verdict.
    """
    process.join(EXIT_GRACE)
    code = process.exitcode
    if code == EXIT_OUT_OF_MEMORY:
        return UnreadableDocument(_out_of_memory(limits), transient=True)
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            # Not the parent's doing (a time-out is reported as such): most likely the kernel's OOM killer.
            return UnreadableDocument(f"reader killed ({name}): out of memory?", transient=True)
        return UnreadableDocument(f"parser crashed ({name})", transient=True)
    if code == EXIT_FAILED:
        return UnreadableDocument("reader failed (an error in qa's worker process)", transient=True)
    return UnreadableDocument(f"parser crashed (exit status {code})")


def _out_of_memory(limits: Limits) -> str:
    return f"out of memory (reader limit {limits.max_memory >> 20} MiB)"


def _peak_memory() -> int:
    """This process's peak address-space size in bytes (VmPeak), 0 where /proc is missing."""
    try:
        # Bytes, not text: a text file would import its codec here, which fails at the memory cap.
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _serve(conn, limits: Limits) -> None:
    """Worker main loop: cap memory, then read files until told to stop; nothing escapes it as a traceback."""
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends the workers
    resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory, limits.max_memory))
    conn.send(READY)
    try:
        while _serve_one(conn, limits):
            pass
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)  # anywhere: holding the file, noting the peak, sending the result
    except BaseException:  # the exit status says it; a traceback would reach the user's console
        os._exit(EXIT_FAILED)


def _serve_one(conn, limits: Limits) -> bool:
    """Read one file sent by the parent and answer; False when told to stop (or the parent is gone)."""
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return False
    if message is None:
        return False
    name, data = message
    result = _extract_or_reason(name, data, limits)
    del data, message
    # Near the cap, C parsers fail with odd errors and may leave a damaged heap that crashes the
    # next, innocent file: answer, then make way for a fresh worker.
    retire = _peak_memory() > RETIRE_SHARE * limits.max_memory
    if retire and isinstance(result, UnreadableDocument) and not result.transient:
        # lxml at the cap says "unknown error" or "Memory allocation failed", which read as a corrupt file.
        result = UnreadableDocument(f"{_out_of_memory(limits)}: {result}", transient=True)
    conn.send((result, retire))
    return not retire
