"""The build in service: which it is, and opening it as an ``IndexView`` (one build or a collection in shards)."""

from __future__ import annotations

from pathlib import Path

from qa.embed import vector_space
from qa.errors import IndexUnavailable
from qa.index import layout
from qa.index.layout import Manifest
from qa.index.protocol import IndexView
from qa.index.reader import IndexReader
from qa.index.sharded import Connector, ShardedReader, ShardPlan, is_sharded


def open_index(
    index_dir: Path, model: str | None = None, connect: Connector | None = None, strict: bool = False
) -> IndexView:
    """Load the current build of ``index_dir``; refuse one whose vectors another model made.

    ``model`` is the name of the model that will encode the questions; an int8
    export of the index's model shares its vector space and is accepted. A
    sharded collection is opened as a ``ShardedReader`` (qa/index/sharded/),
    its shards reached through ``connect`` (default: in this process); ``strict``
    makes a shard that does not answer fail the search.
    """
    folder = layout.current_build(index_dir)
    if folder is None:
        raise IndexUnavailable(f"no index in {index_dir}: run `qa index` first")
    if not folder.is_dir():
        raise IndexUnavailable(f"index build folder missing: {folder}; run `qa index --rebuild`")
    reader: IndexView
    if is_sharded(folder):
        reader = ShardedReader(folder, connect, strict=strict)
    else:
        reader = IndexReader(folder)
    if model is not None and vector_space(reader.manifest.spec) != vector_space(model):
        built = reader.manifest.model
        reader.close()
        raise IndexUnavailable(
            f"the index in {index_dir} was built with the model {built!r}, not {vector_space(model)!r}: leave "
            f"--model out (or give --model {built}) to search it, or make a new index of the other model with "
            f"`qa index --model {vector_space(model)} --rebuild`"
        )
    return reader


def index_model(index_dir: Path) -> str | None:
    """Return the model whose vectors the index in service holds (its vector space), or None without an index.

    Searches, evaluations and builds use it unless asked for another: an index knows its model.
    """
    manifest, _ = in_service(index_dir)
    return manifest.model if manifest is not None else None


def in_service(index_dir: Path) -> tuple[Manifest | None, int]:
    """Return the manifest of the build in service and its number of shards (None, 1 when there is none).

    Reads the manifest alone: no vectors, no passage table.
    """
    try:
        build = layout.current_build(index_dir)
        if build is None:
            return None, 1
        if is_sharded(build):
            plan = ShardPlan.read(build / ShardPlan.FILE)
            return plan.manifest, len(plan.builds)
        return Manifest.read(build / layout.MANIFEST), 1
    except IndexUnavailable:
        return None, 1
