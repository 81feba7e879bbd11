"""Whether an index still matches its documents, and building it before serving when it does not."""

from __future__ import annotations

import threading
from pathlib import Path

from qa import index
from qa.build.encoder import passage_encoder
from qa.build.pipeline import build
from qa.embed import model_name
from qa.errors import IndexUnavailable, NoDocuments
from qa.index import IndexView
from qa.ingest import DigestCache, fingerprint
from qa.settings import ChunkSettings


def stale_reason(
    reader: IndexView, docs_dir: Path, settings: ChunkSettings = ChunkSettings(), cache: DigestCache | None = None
) -> str | None:
    """Say why the index no longer matches the documents, or None when it does.

    ``cache`` spares re-reading files whose metadata did not change (``DigestCache``).
    """
    if reader.chunking != settings:
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


def ensure_index(
    docs_dir: Path, index_dir: Path, model: str | None = None, settings: ChunkSettings = ChunkSettings(), log=print,
    shards: int | None = None, progress=False, waiting=None,
) -> None:
    """Build the index when it is missing, unusable or stale; keep a usable one if the documents are gone.

    The embedding model is loaded only when a build is needed; ``shards`` as for ``build``;
    ``model`` as for ``build``'s ``embedder`` spec (None: the encoder that built the index);
    ``progress`` as for ``build``; ``waiting(holder)`` is told when another process's build
    ("pid 4242") is waited for.
    """
    model = model or passage_encoder(index_dir)
    reason = _why_build(docs_dir, index_dir, model_name(model), settings, shards)
    if reason is None:
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
        report = build(docs_dir, index_dir, model, settings, progress=progress, wait=True, shards=shards)
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


def _why_build(docs_dir: Path, index_dir: Path, name: str, settings: ChunkSettings, shards: int | None) -> str | None:
    """Say why ``index_dir`` needs a build before serving, or None when the one in service will do."""
    if index.current_build(index_dir) is None:
        return f"there is none in {index_dir} yet"
    try:
        reader = index.open_index(index_dir, model=name)
    except IndexUnavailable as exc:
        return str(exc)
    try:
        if reader.manifest.model != name:
            return f"the index was built with {reader.manifest.model}"
        reason = stale_reason(reader, docs_dir, settings) if docs_dir.is_dir() else None
        if reason is None and shards is not None and shards != reader.shard_count:
            reason = f"it has {reader.shard_count} shards, not {shards}"
        return reason
    finally:
        reader.close()


class BackgroundBuild:
    """``ensure_index`` on a thread of this process, telling ``on_state`` how far it has gone.

    ``qa serve`` answers while it builds: the page and /healthz say "building (12 of 53
    files read)", the API answers 503 with Retry-After until there is an index, and the
    workers switch to the new build when it is published. ``on_state`` is given a dict
    (state "waiting" for another process's build, or "building", with the stage and its
    counts), then None when done; a failure is logged and left in the state.
    """

    def __init__(self, docs_dir: Path, index_dir: Path, model: str | None, settings: ChunkSettings,
                 shards: int | None, log, on_state):
        from qa.progress import Progress

        self.args = (docs_dir, index_dir, model, settings)
        self.shards, self.log, self.on_state = shards, log, on_state
        self.progress = Progress(listener=lambda stage: on_state({"state": "building", **(stage or {})}))
        self.thread = threading.Thread(target=self._run, name="qa-build", daemon=True)

    def start(self) -> BackgroundBuild:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            ensure_index(*self.args, log=self.log, shards=self.shards, progress=self.progress,
                         waiting=lambda holder: self.on_state({"state": "waiting", "by": holder}))
        except Exception as exc:  # noqa: BLE001 - the server goes on, serving what it can, and says why
            self.log(f"the index could not be built: {exc}")
            self.on_state({"state": "failed", "error": str(exc)})
            return
        self.on_state(None)