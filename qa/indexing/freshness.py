"""Whether an index still matches its documents, and building it before serving when it does not."""

from __future__ import annotations

import atexit
import functools
import threading
from pathlib import Path

from qa import index
from qa.indexing.encoder import passage_encoder
from qa.indexing.pipeline import build
from qa.embed import model_name
from qa.errors import IndexUnavailable, IndexWriteError, NoDocuments
from qa.index import IndexView
from qa.ingest import DigestCache, fingerprint
from qa.settings import ChunkSettings


def stale_reason(
    reader: IndexView, docs_dir: Path, chunking: ChunkSettings = ChunkSettings(), cache: DigestCache | None = None
) -> str | None:
    """Say why the index no longer matches the documents, or None when it does.

    ``cache`` spares re-reading files whose metadata did not change (``DigestCache``).
    """
    if reader.chunking != chunking.for_model(reader.manifest.model):
        return "it was chunked with other settings"
    # The index folder the build lies in (<index>/builds/<name>) is not a document, wherever it is.
    if reader.manifest.fingerprint != fingerprint(docs_dir, exclude=(reader.folder.parents[1],), cache=cache):
        return "the documents changed since it was built"
    return None


def folder_changed(docs_dir: Path, index_dir: Path, cache: DigestCache | None = None) -> bool:
    """Say whether ``docs_dir`` differs from what the build in service of ``index_dir`` was made from.

    Reads the manifest only (no vectors, no passage table); with ``cache``, only the
    metadata of files that did not change. What a watcher's poll and a server's
    staleness check ask, again and again.
    """
    manifest, _ = index.in_service(index_dir)
    return manifest is None or manifest.fingerprint != fingerprint(docs_dir, (index_dir,), cache)


def stale_warning(index_dir: Path, docs_dir: Path) -> str | None:
    """Return the warning a command that answers from ``index_dir`` gives when ``docs_dir`` changed since, or None."""
    if docs_dir.is_dir() and folder_changed(docs_dir, index_dir):
        return "warning: the index is stale: the documents changed since it was built; run `qa index`"
    return None


def ensure_index(
    docs_dir: Path, index_dir: Path, spec: str | None = None, chunking: ChunkSettings = ChunkSettings(), log=print,
    shards: int | None = None, progress=False, waiting=None,
) -> None:
    """Build the index when it is missing, unusable or stale; keep a usable one if the documents are gone.

    The embedding model is loaded only when a build is needed; ``shards`` as for ``build``;
    ``spec`` names the passage encoder, as ``build``'s ``embedder`` may (None: the encoder that built the index);
    ``progress`` as for ``build``; ``waiting(holder)`` is told when another process's build
    ("pid 4242") is waited for.
    """
    spec = spec or passage_encoder(index_dir)
    reason = _why_build(docs_dir, index_dir, model_name(spec), chunking, shards)
    if reason is None:
        log(f"the index is up to date with {docs_dir}")
        return
    if not docs_dir.is_dir() and index.current_build(index_dir) is None:
        # Said first: "no index, run qa index" would send the user the wrong way.
        raise NoDocuments(f"documents folder not found: {docs_dir}, and {index_dir} holds no index to serve")
    holder = index.lock_holder(index_dir)
    if holder is not None:
        log(f"waiting for the build of {index_dir} that {holder} is running (a qa index?): it goes on after it")
        if waiting is not None:
            waiting(holder)
    else:
        log(f"building the index: {reason}")
    try:
        report = build(docs_dir, index_dir, spec, chunking, progress=progress, wait=True, shards=shards)
    except NoDocuments:
        try:
            served = index.current_build(index_dir)
        except IndexUnavailable:
            served = None
        if served is None:
            raise
        log(f"warning: cannot rebuild from {docs_dir}; serving the existing index")
        return
    for skipped in report.skipped:
        log(f"skipped {skipped.source}: {skipped.reason}")
    log(report.summary())


def _why_build(docs_dir: Path, index_dir: Path, name: str, chunking: ChunkSettings, shards: int | None) -> str | None:
    """Say why ``index_dir`` needs a build before serving, or None when the one in service will do."""
    if index.current_build(index_dir) is None:
        return f"there is none in {index_dir} yet"
    try:
        reader = index.open_index(index_dir, model=name)
    except IndexUnavailable as exc:
        return str(exc)
    try:
        if reader.manifest.spec != name:
            return f"the index was built with {reader.manifest.spec}"
        reason = stale_reason(reader, docs_dir, chunking) if docs_dir.is_dir() else None
        if reason is None and shards is not None and shards != reader.shard_count:
            reason = f"it has {reader.shard_count} shards, not {shards}"
        return reason
    finally:
        reader.close()


class BackgroundBuild:
    """``ensure_index`` in a process of its own, telling ``on_state`` how far it has gone.

    ``qa serve`` answers while it builds: the page and /healthz say "building (12 of 53
    files read)", the API answers 503 with Retry-After until there is an index, and the
    workers switch to the new build when it is published. ``on_state`` is given a dict
    (state "waiting" for another process's build, or "building", with the stage and its
    counts), then None when done; a failure is logged and left in the state.

    A process, not a thread of the server's master: gunicorn forks its workers from the
    master whenever one is (re)started, and a worker forked while the master held the
    build's SQLite file open inherited SQLite's record of that lock, so every read of
    the published build answered "database is locked", for good. A spawned process
    shares no such state; only its messages come back, through a pipe.
    """

    def __init__(self, docs_dir: Path, index_dir: Path, spec: str | None, chunking: ChunkSettings,
                 shards: int | None, log, on_state):
        self.args = (docs_dir, index_dir, spec, chunking, shards)
        self.log, self.on_state = log, on_state
        self.failed: str | None = None
        self.thread = threading.Thread(target=self._run, name="qa-build", daemon=True)

    def start(self) -> BackgroundBuild:
        self.thread.start()
        return self

    def run(self) -> None:
        """Build now, in the child process, and wait for it; raise IndexWriteError saying why when it failed."""
        self._run()
        if self.failed is not None:
            raise IndexWriteError(self.failed)

    def _run(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        receiving, sending = context.Pipe(duplex=False)
        # Not a daemon: the build reads awkward files in worker processes of its own, which
        # a daemonic process may not start. A server that stops stops its build (the next
        # build resumes from the slices it kept); one that crashes leaves it to publish.
        child = context.Process(target=_build_in_child, args=(*self.args, sending), name="qa-build")
        child.start()
        stop = functools.partial(_stop, child)
        atexit.register(stop)
        sending.close()
        failed = None
        while True:
            try:
                kind, value = receiving.recv()
            except (EOFError, OSError):
                break
            if kind == "log":
                self.log(value)
            elif kind == "state":
                self.on_state(value)
            elif kind == "failed":
                failed = value
        child.join()
        atexit.unregister(stop)
        if failed is None and child.exitcode != 0:
            failed = f"the build process ended with exit status {child.exitcode}"
        self.failed = failed
        if failed is not None:
            self.log(f"the index could not be built: {failed}")
            self.on_state({"state": "failed", "error": failed})
        else:
            self.on_state(None)


def _stop(child) -> None:
    """At the server's exit: end a build still running (multiprocessing would otherwise wait for it)."""
    if child.is_alive():
        child.terminate()
        child.join(10)


def _build_in_child(docs_dir: Path, index_dir: Path, spec: str | None, chunking: ChunkSettings,
                    shards: int | None, pipe) -> None:
    """The body of ``BackgroundBuild``'s process: ``ensure_index``, each line and state sent up the pipe."""
    from qa.progress import Progress

    def send(kind: str, value) -> None:
        try:
            pipe.send((kind, value))
        except (OSError, ValueError):
            pass  # the server went away: the build goes on, and publishes for the next one

    progress = Progress(listener=lambda stage: send("state", {"state": "building", **(stage or {})}))
    try:
        ensure_index(docs_dir, index_dir, spec, chunking, log=lambda line: send("log", line), shards=shards,
                     progress=progress, waiting=lambda holder: send("state", {"state": "waiting", "by": holder}))
    except Exception as exc:  # noqa: BLE001 - said to the server, which goes on serving what it can
        send("failed", str(exc))
    finally:
        progress.close()
        pipe.close()


def watch(docs_dir: Path, index_dir: Path, embedder, chunking: ChunkSettings, log, on_state=None,
          on_build=None):
    """Start a Watcher (qa/ingest) that rebuilds ``index_dir`` when ``docs_dir`` changes; return it.

    ``embedder`` is a spec (its model loaded once, on the first build) or a ready embedder
    (a RayEmbedder), as ``build`` takes it. ``on_state`` is told the watch's status whenever it changes. With
    ``on_build`` (``qa serve``, whose master forks workers) each build runs in a process
    of its own (``BackgroundBuild``), telling ``on_build`` how far it has gone.
    """
    from qa.embed import LazyEmbedder
    from qa.ingest import Watcher

    # Builds and polls both run on the watcher's thread: one cache of file digests serves them.
    digests = DigestCache()
    if on_build is not None:
        spec = embedder if embedder is None or isinstance(embedder, str) else None

        def rebuild() -> None:
            BackgroundBuild(docs_dir, index_dir, spec, chunking, None, log, on_build).run()
    else:
        # A ready embedder is used as it is; a model name loads once, on the first build.
        if embedder is None or isinstance(embedder, str):
            embedder = LazyEmbedder(embedder, index_dir / index.MODELS)

        def rebuild() -> None:
            log(build(docs_dir, index_dir, embedder, chunking, wait=True, cache=digests).summary())

    watcher = Watcher(
        docs_dir, rebuild, log=log, ignore=(index_dir,),
        changed=lambda: folder_changed(docs_dir, index_dir, digests), on_state=on_state,
    ).start()
    # A change made after the last build but before the watch began is caught by one more look.
    watcher.check()
    log(f"watching {docs_dir} for changes")
    return watcher


def watch_until_interrupted(docs_dir: Path, index_dir: Path, embedder, chunking: ChunkSettings, log) -> str | None:
    """``watch`` until Ctrl-C (return None) or until the watch can go on no more (return why)."""
    watcher = watch(docs_dir, index_dir, embedder, chunking, log=log)
    try:
        return watcher.wait()
    except KeyboardInterrupt:
        return None
    finally:
        watcher.stop()
