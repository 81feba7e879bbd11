"""A collection split into shards: each a normal build, searched together as one index.

Layout of a sharded index folder (``qa index --shards N``)::

    index/
      CURRENT                  names the collection build in service, as for one build
      builds/<name>/
        shards.json            the shards' build names, the collection's counts and manifest
        terms.sqlite           in how many passages of the whole collection each term occurs
      shards/<i>/              shard i: a normal index folder (CURRENT, builds/, ...)

A document goes to shard ``shard_of(source, N)``, a stable hash of its name, so
it stays on its shard from build to build and only its shard re-embeds it.

``ShardedReader`` offers what ``Searcher`` uses of an ``IndexReader``
(candidates, sentence_cosines_of, tables, tracking), so search, fusion and
re-scoring are unchanged. A passage's row is ``local_row * N + shard``. Dense
cosines from shards merge directly. BM25 does not: each shard scores with the
collection's statistics (document frequencies from ``terms.sqlite``, the mean
passage length from ``shards.json``) through ``Tables.scored_lexical``, which is
bm25()'s own formula, so a sharded collection ranks as one index would.

Shards are reached through ``ShardClient``: in this process (``LocalShard``) or
as Ray Serve deployments (qa/index/ray_shards.py). A shard that does not answer
makes the answer partial (``missing_shards``) unless strict mode asks for an error.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np

from qa.errors import IndexUnavailable
from qa.filters import Filters
from qa.index import layout, tables
from qa.index.layout import Manifest
from qa.index.reader import IndexReader
from qa.lexical import content_words
from qa.passage import Passage

SHARDS_FILE = "shards.json"
TERMS_FILE = "terms.sqlite"
#: Folder of the shards' own index folders, inside the index folder.
SHARDS_DIR = "shards"
SHARDS_FORMAT = 1
#: Most shards a collection may have.
MAX_SHARDS = 256

log = logging.getLogger(__name__)


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
            plan = cls(builds, Manifest(**data["manifest"]), int(data["tokens"]), int(data["format"]))
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


class Shard:
    """One shard's build, answering in its own row numbers: what runs in-process or in a Ray Serve replica.

    Every answer is plain data (lists, arrays, dataclasses) so it can cross a process boundary.
    """

    #: The passage-table reads a coordinator may ask for by name.
    TABLE_READS = frozenset(
        {"passages", "document", "missing_sources", "sources", "catalogue", "count_documents", "skipped",
         "count_skipped", "count_undated", "absent_terms", "recent_dated", "known", "digests", "passages_of",
         "sentences_of"}
    )

    def __init__(self, folder: str | Path):
        self.reader = IndexReader(Path(folder))

    def call(self, method: str, *args: Any) -> Any:
        """Run one of the methods below, or a passage-table read, by name."""
        if method in self.TABLE_READS:
            return getattr(self.reader.tables, method)(*args)
        if method in {"candidates", "sentence_cosines_of", "info"}:
            return getattr(self, method)(*args)
        raise ValueError(f"a shard does not answer {method!r}")

    def info(self) -> dict:
        return {"folder": str(self.reader.folder), "passages": self.reader.manifest.passage_count}

    def candidates(self, query: np.ndarray, terms: Sequence[tuple[str, float]], average_tokens: float, depth: int,
                   filters: Filters, dense: bool, lexical: bool):
        """This shard's part of ``IndexReader.candidates``, its BM25 on the collection's statistics."""
        return self.reader.candidates(
            np.asarray(query, dtype=np.float32), "", depth, filters, dense, lexical, (terms, average_tokens)
        )

    def sentence_cosines_of(self, passages: Sequence[Passage], query: np.ndarray) -> list[list[tuple[int, int, float]]]:
        return self.reader.sentence_cosines_of(passages, np.asarray(query, dtype=np.float32))

    def close(self) -> None:
        self.reader.close()


class Pending(Protocol):
    def result(self, timeout_s: float | None = None) -> Any: ...


class ShardClient(Protocol):
    """How a ``ShardedReader`` reaches one shard: ``submit`` starts a call, its ``result`` waits for it."""

    def submit(self, method: str, *args: Any) -> Pending: ...

    def close(self) -> None: ...


class _Done:
    """A call that already ran: its value, or the exception it raised."""

    def __init__(self, call: Callable[[], Any]):
        try:
            self._value, self._error = call(), None
        except Exception as exc:  # re-raised by result(), where remote errors surface too
            self._value, self._error = None, exc

    def result(self, timeout_s: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class LocalShard:
    """A shard opened in this process."""

    def __init__(self, folder: Path):
        self.shard = Shard(folder)

    def submit(self, method: str, *args: Any) -> Pending:
        return _Done(lambda: self.shard.call(method, *args))

    def close(self) -> None:
        self.shard.close()


#: Connects to the shards of a collection: given their build folders, returns a client for each.
Connector = Callable[[Sequence[Path]], Sequence[ShardClient]]


def connect_locally(folders: Sequence[Path]) -> list[ShardClient]:
    """Open every shard in this process."""
    clients: list[ShardClient] = []
    try:
        for folder in folders:
            clients.append(LocalShard(folder))
    except BaseException:
        for client in clients:
            client.close()
        raise
    return clients


# Shards that did not answer during the current search (one set per thread or greenlet).
_missing: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar("qa_missing_shards", default=None)


class ShardedReader:
    """A sharded collection, read as one index: the surface of ``IndexReader`` that search uses.

    Args:
        folder: the collection's build folder (holding ``shards.json``).
        connect: how to reach the shards (default: open them in this process).
        strict: a shard that does not answer fails the search instead of making it partial.
        timeout_s: seconds to wait for one shard's answer.
    """

    def __init__(self, folder: Path, connect: Connector | None = None, strict: bool = False, timeout_s: float = 10.0):
        self.folder = folder
        self.plan = ShardPlan.read(folder / SHARDS_FILE)
        self.manifest = self.plan.manifest
        self.chunking = self.manifest.chunk_settings(folder / SHARDS_FILE)
        self.count = len(self.plan.builds)
        self.strict = strict
        self.timeout_s = timeout_s
        index_dir = folder.parent.parent
        self.terms = tables.TermStatistics(folder / TERMS_FILE)
        try:
            self.shards = list((connect or connect_locally)(self.plan.folders(index_dir)))
        except BaseException:
            self.terms.close()
            raise
        self.tables = ShardedTables(self)

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        self.terms.close()

    @contextlib.contextmanager
    def tracking(self) -> Iterator[set[int]]:
        """Collect, for the searches inside the block, the shards that did not answer."""
        missing: set[int] = set()
        token = _missing.set(missing)
        try:
            yield missing
        finally:
            _missing.reset(token)

    # -- fanning out -----------------------------------------------------------------

    def _gather(self, method: str, args_of: Callable[[int], tuple] | None = None, shards: Sequence[int] | None = None,
                required: bool = False) -> dict[int, Any]:
        """Call ``method`` on ``shards`` (default: all) at once; return the answers by shard.

        A shard that fails or times out is left out and noted as missing, or, when
        ``required`` or in strict mode, fails the call with IndexUnavailable.
        """
        missing = _missing.get()
        wanted = [i for i in (range(self.count) if shards is None else shards) if not missing or i not in missing]
        pending = {i: self.shards[i].submit(method, *(args_of(i) if args_of else ())) for i in wanted}
        answers: dict[int, Any] = {}
        for i, call in pending.items():
            try:
                answers[i] = call.result(timeout_s=self.timeout_s)
            except Exception as exc:
                if required or self.strict:
                    raise IndexUnavailable(f"shard {i} of {self.folder} did not answer: {exc!s:.200}") from exc
                log.warning("shard %d did not answer %s: %s", i, method, exc)
                if missing is not None:
                    missing.add(i)
        return answers

    def _by_shard(self, rows: Sequence[int]) -> dict[int, list[int]]:
        grouped: dict[int, list[int]] = {}
        for row in rows:
            grouped.setdefault(row % self.count, []).append(row // self.count)
        return grouped

    def _merge(self, answers: dict[int, list[tuple[int, float]]], k: int) -> list[tuple[int, float]]:
        merged = [(row * self.count + i, score) for i, found in answers.items() for row, score in found]
        merged.sort(key=lambda hit: (-hit[1], hit[0]))
        return merged[:k]

    # -- what Searcher uses ------------------------------------------------------------

    def _weighted_terms(self, question: str) -> tuple[list[tuple[str, float]], float]:
        """Return the question's index terms with their idf over the whole collection, and the mean passage length."""
        terms = tables.fts_tokens(content_words(question))
        weighted = list(zip(terms, self.term_idf(terms))) if terms else []
        return weighted, self.plan.tokens / max(self.manifest.passage_count, 1)

    def term_idf(self, terms: Sequence[str]) -> list[float]:
        """``IndexReader.term_idf`` over the whole collection."""
        total = max(self.manifest.passage_count, 1)
        return [tables.idf(total, hits) for hits in self.terms.passages(*terms)]

    def candidates(
        self, query: np.ndarray, question: str, depth: int, filters: Filters = Filters(), dense: bool = True,
        lexical: bool = True,
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]], dict[int, float]]:
        """``IndexReader.candidates`` over every shard, in one round trip to each."""
        weighted, average = self._weighted_terms(question) if lexical else ([], 1.0)
        answers = self._gather(
            "candidates", lambda i: (query, weighted, average, depth, filters, dense, lexical and bool(weighted))
        )
        nearest = self._merge({i: found[0] for i, found in answers.items()}, depth)
        matched = self._merge({i: found[1] for i, found in answers.items()}, depth)
        cosines = {row * self.count + i: c for i, found in answers.items() for row, c in found[2].items()}
        return nearest, matched, {row: cosines[row] for row, _ in nearest + matched}

    def sentence_cosines_of(self, passages: Sequence[Passage], query: np.ndarray) -> list[list[tuple[int, int, float]]]:
        """Return the sentence cosines of each of ``passages`` (as IndexReader.sentence_cosines_of):
        one call to each shard holding some."""
        grouped: dict[int, list[int]] = {}
        for n, passage in enumerate(passages):
            grouped.setdefault(shard_of(passage.source, self.count), []).append(n)
        answers = self._gather(
            "sentence_cosines_of", lambda i: ([passages[n] for n in grouped[i]], query), shards=sorted(grouped),
            required=True,
        )
        out: list[list[tuple[int, int, float]]] = [[] for _ in passages]
        for i, found in answers.items():
            for n, cosines in zip(grouped[i], found):
                out[n] = cosines
        return out


class ShardedTables:
    """The passage-table reads of ``Tables`` that search and the web pages use, over every shard."""

    def __init__(self, reader: ShardedReader):
        self._reader = reader
        self.passage_count = reader.manifest.passage_count

    def _all(self, method: str, *args: Any) -> dict[int, Any]:
        return self._reader._gather(method, lambda i: args)

    def _one(self, source: str, method: str, *args: Any) -> Any:
        shard = shard_of(source, self._reader.count)
        return self._reader._gather(method, lambda i: args, shards=[shard], required=True)[shard]

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        count = self._reader.count
        grouped = self._reader._by_shard(rows)
        answers = self._reader._gather("passages", lambda i: (grouped[i],), shards=sorted(grouped), required=True)
        found = {local * count + i: p for i, ps in answers.items() for local, p in zip(grouped[i], ps)}
        return [found[row] for row in rows]

    def document(self, source: str, sha256: str | None = None):
        return self._one(source, "document", source, sha256)

    def known(self, source: str, sha256: str):
        return self._one(source, "known", source, sha256)

    def missing_sources(self, sources: Sequence[str]) -> list[str]:
        by_shard: dict[int, list[str]] = {}
        for source in sources:
            by_shard.setdefault(shard_of(source, self._reader.count), []).append(source)
        answers = self._reader._gather("missing_sources", lambda i: (by_shard[i],), shards=sorted(by_shard))
        # A source on a shard that did not answer is not known to be missing: its search is partial.
        missing = {s for found in answers.values() for s in found}
        return [s for s in sources if s in missing]

    def sources(self, limit: int) -> list[str]:
        return sorted(s for found in self._all("sources", limit).values() for s in found)[:limit]

    def catalogue(self, filters: Filters = Filters(), offset: int = 0, limit: int | None = None) -> list[dict]:
        # Each shard's first offset + limit in order hold the collection's page.
        most = None if limit is None else offset + limit
        found = sorted((d for part in self._all("catalogue", filters, 0, most).values() for d in part),
                       key=lambda d: d["source"])
        return found[offset:most]

    def count_documents(self, filters: Filters = Filters()) -> int:
        return sum(self._all("count_documents", filters).values())

    def skipped(self, folder: str | None = None, offset: int = 0, limit: int | None = None) -> list:
        most = None if limit is None else offset + limit
        found = sorted((s for part in self._all("skipped", folder, 0, most).values() for s in part),
                       key=lambda s: s.source)
        return found[offset:most]

    def count_skipped(self, folder: str | None = None) -> int:
        return sum(self._all("count_skipped", folder).values())

    def count_undated(self, filters: Filters) -> int:
        return sum(self._all("count_undated", filters).values())

    def absent_terms(self, terms: Sequence[str]) -> list[str]:
        answers = self._all("absent_terms", list(terms))
        if not answers:
            return []
        return [t for t in terms if all(t in found for found in answers.values())]

    def recent_titles(self, n: int) -> list[str]:
        newest: dict[str, str | None] = {}
        for found in self._all("recent_dated", n).values():
            for title, date in found:
                if title not in newest or (date or "") > (newest[title] or ""):
                    newest[title] = date
        dated = sorted(t for t in newest if newest[t] is not None)
        dated.sort(key=lambda t: newest[t], reverse=True)  # stable: titles of one date stay in order
        return (dated + sorted(t for t in newest if newest[t] is None))[:n]


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
            tokens += shard_tables.token_total()
        finally:
            shard_tables.close()
    with layout.staged_build(index_dir) as folder, layout.writing(index_dir):
        tables.write_term_statistics(folder / TERMS_FILE, [f / layout.PASSAGES for f in folders])
        ShardPlan(tuple(builds), manifest, tokens).write(folder / SHARDS_FILE)
    return layout.current_build(index_dir)
