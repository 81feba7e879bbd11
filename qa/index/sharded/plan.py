"""Where a sharded collection's files are, which shard a document goes to, and the list that binds them.

Layout of a sharded index folder (``qa index --shards N``)::

    index/
      CURRENT                  names the collection build in service, as for one build
      builds/<name>/
        shards.json            the shards' build names, the collection's counts and manifest
        terms.sqlite           in how many passages of the whole collection each term occurs
      shards/<i>/              shard i: a normal index folder (CURRENT, builds/, ...)

A document goes to shard ``shard_of(source, N)``, a stable hash of its name, so
it stays on its shard from build to build and only its shard re-embeds it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from qa import lexical
from qa.errors import IndexUnavailable
from qa.index import layout, tables
from qa.index.layout import Manifest

SHARDS_FILE = "shards.json"
TERMS_FILE = "terms.sqlite"
#: Folder of the shards' own index folders, inside the index folder.
SHARDS_DIR = "shards"
SHARDS_FORMAT = 1
#: Most shards a collection may have.
MAX_SHARDS = 256


def shard_of(source: str, count: int) -> int:
    """Return the shard of document ``source``: stable across builds, machines and Python versions."""
    digest = hashlib.sha256(source.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count


def shard_folder(index_dir: Path, shard: int) -> Path:
    """Return the index folder of shard ``shard`` of ``index_dir``."""
    return index_dir / SHARDS_DIR / f"{shard:03d}"


def is_sharded(build: Path | None) -> bool:
    """Say whether the build folder ``build`` is a sharded collection's."""
    return build is not None and (build / SHARDS_FILE).is_file()


@dataclass(frozen=True)
class ShardPlan:
    """``shards.json``: which build of each shard makes up the collection, and its statistics."""

    #: The file it is kept in, in the collection's build folder.
    FILE = SHARDS_FILE

    #: Build name of each shard, in shard order.
    builds: tuple[str, ...]
    #: The collection's manifest: model, dimension, counts and fingerprint of all shards together.
    manifest: Manifest
    #: Tokens of every passage of the collection, as FTS5 counts them.
    tokens: int
    format: int = SHARDS_FORMAT

    @classmethod
    def read(cls, path: Path) -> ShardPlan:
        """Load and check ``shards.json``; anything amiss is IndexUnavailable naming the file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            builds = tuple(data["builds"])
            plan = cls(builds, Manifest.checked(data["manifest"], path), int(data["tokens"]), int(data["format"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexUnavailable(f"unreadable shard list {path}: {exc!s:.80}; run `qa index --rebuild`") from None
        if plan.format != SHARDS_FORMAT:
            raise IndexUnavailable(f"{path} has format {plan.format}, this qa reads {SHARDS_FORMAT}; run `qa index --rebuild`")
        if not 1 <= len(builds) <= MAX_SHARDS or not all(isinstance(b, str) and layout.is_build_name(b) for b in builds):
            raise IndexUnavailable(f"{path} does not list shard builds; run `qa index --rebuild`")
        return plan

    def write(self, path: Path) -> None:
        data = {"format": self.format, "builds": list(self.builds), "tokens": self.tokens, "manifest": asdict(self.manifest)}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def folders(self, index_dir: Path) -> list[Path]:
        """Return the build folder of each shard."""
        return [shard_folder(index_dir, i) / layout.BUILDS / name for i, name in enumerate(self.builds)]


def write_collection(index_dir: Path, builds: Sequence[str], manifest: Manifest) -> Path:
    """Publish a sharded collection made of shard ``i``'s build ``builds[i]``; return its build folder.

    Gathers the collection's BM25 statistics from the shards' passage tables:
    every term's passage count (``terms.sqlite``) and the total token count.
    Call with the index's build lock held.
    """
    folders = [shard_folder(index_dir, i) / layout.BUILDS / name for i, name in enumerate(builds)]
    tokens = 0
    for folder in folders:
        shard_tables = tables.Tables(folder / layout.PASSAGES)
        try:
            tokens += shard_tables.lexicon.token_total()
        finally:
            shard_tables.close()
    with layout.staged_build(index_dir) as folder, layout.writing(index_dir):
        lexical.write_term_statistics(folder / TERMS_FILE, [f / layout.PASSAGES for f in folders])
        ShardPlan(tuple(builds), manifest, tokens).write(folder / SHARDS_FILE)
    return layout.current_build(index_dir)
