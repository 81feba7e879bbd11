"""A sharded collection read as one index: ``IndexView`` over every shard, with the collection's statistics.

A passage's row is ``local_row * N + shard``. Dense cosines from shards merge
directly. BM25 does not: each shard scores with the collection's statistics
(document frequencies from ``terms.sqlite``, the mean passage length from
``shards.json``) through qa/lexical's ``LexicalIndex.scored``, which is bm25()'s own
formula, so a sharded collection ranks as one index would. A shard that does
not answer makes the answer partial (``missing_shards``) unless strict mode asks
for an error.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from qa.errors import IndexUnavailable
from qa.index import tables
from qa.index.sharded.plan import SHARDS_FILE, TERMS_FILE, ShardPlan, shard_of
from qa.index.sharded.shard import Connector, OutOfDescriptors, connect_locally, descriptors_error, out_of_descriptors
from qa.lexical import TermStatistics, idf, names_in, rarest_terms
from qa.records import Filters, Passage

log = logging.getLogger(__name__)

# Shards that did not answer during the current search (one set per thread or greenlet).
_missing: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar("qa_missing_shards", default=None)


@dataclass
class _Prefetched:
    """What the shards sent with their candidates, kept for the rest of one search: the passages,
    sentence cosines, pages and absent names it then reads cost no further round trip."""

    query: np.ndarray | None = None
    passages: dict[int, Passage] = field(default_factory=dict)  # by collection row
    sentences: dict[str, list[tuple[int, int, float]]] = field(default_factory=dict)  # by passage id
    pages: dict[str, tuple[int, ...]] = field(default_factory=dict)  # by source
    names: frozenset[str] = frozenset()
    absent: dict[int, set[str]] = field(default_factory=dict)  # by shard that answered


_prefetched: contextvars.ContextVar[_Prefetched | None] = contextvars.ContextVar("qa_prefetched", default=None)


class ShardedReader:
    """A sharded collection, read as one index: ``IndexView`` (qa/index/protocol.py) over every shard.

    Args:
        folder: the collection's build folder (holding ``shards.json``).
        connect: how to reach the shards (default: open them in this process).
        strict: a shard that does not answer fails the search instead of making it partial.
        timeout_s: seconds to wait for one shard's answer.
    """

    def __init__(self, folder: Path, connect: Connector | None = None, strict: bool = False, timeout_s: float = 10.0):
        self.folder = folder
        self.strict = strict
        self.timeout_s = timeout_s
        try:
            self.plan = ShardPlan.read(folder / SHARDS_FILE)
            self.terms = TermStatistics(folder / TERMS_FILE, tables.open_read_only)
        except IndexUnavailable as exc:
            if out_of_descriptors(exc):  # not a damaged file: say so, or the operator rebuilds for nothing
                raise descriptors_error(folder) from None
            raise
        self.manifest = self.plan.manifest
        self.count = self.shard_count = len(self.plan.builds)
        try:
            self.chunking = self.manifest.chunk_settings(folder / SHARDS_FILE)
            self.shards = list((connect or connect_locally)(self.plan.folders(folder.parent.parent)))
        except BaseException:
            self.terms.close()
            raise
        self.tables = ShardedTables(self)

    def close(self) -> None:
        """Let go of every shard and of the collection's terms; call once no search uses this.

        The shards are dropped, not only closed: a shard's sentence vectors are a memory
        map that holds a descriptor until its reader is freed, and this reader and its
        tables refer to each other, so without this they would wait for the garbage
        collector, in the master of ``qa serve`` until after it forked its workers.
        """
        shards, self.shards = self.shards, []
        for shard in shards:
            shard.close()
        self.terms.close()

    @contextlib.contextmanager
    def tracking(self) -> Iterator[set[int]]:
        """Collect, for the searches inside the block, the shards that did not answer."""
        missing: set[int] = set()
        token, prefetched = _missing.set(missing), _prefetched.set(_Prefetched())
        try:
            yield missing
        finally:
            _missing.reset(token)
            _prefetched.reset(prefetched)

    # -- fanning out -----------------------------------------------------------------

    def _gather(self, method: str, args_of: Callable[[int], tuple] | None = None, shards: Sequence[int] | None = None,
                required: bool = False) -> dict[int, Any]:
        """Call ``method`` on ``shards`` (default: all) at once; return the answers by shard.

        A shard that fails or times out is left out and noted as missing, or, when
        ``required`` or in strict mode, fails the call with IndexUnavailable.
        """
        if not self.shards:
            raise IndexUnavailable(f"{self.folder} is closed: search again")
        missing = _missing.get()
        wanted = [i for i in (range(self.count) if shards is None else shards) if not missing or i not in missing]
        pending = {i: self.shards[i].submit(method, *(args_of(i) if args_of else ())) for i in wanted}
        answers: dict[int, Any] = {}
        for i, call in pending.items():
            try:
                answers[i] = call.result(timeout_s=self.timeout_s)
            except OutOfDescriptors:
                raise  # this process, not shard i: an answer without it would hide that
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

    def _weighted_terms(self, question: str, postings: int | None = None) -> tuple[list[tuple[str, float]], float]:
        """Return the question's index terms with their idf over the whole collection (the rarest within
        ``postings``), and the mean passage length."""
        total = max(self.manifest.passage_count, 1)
        # The rarest terms within the postings budget, as one build's lexical search matches: the same function.
        kept = rarest_terms(question, lambda terms: self.terms.passages(*terms), postings)
        return [(t.term, idf(total, t.passages)) for t in kept], self.plan.tokens / total

    def term_idf(self, terms: Sequence[str]) -> list[float]:
        """``IndexReader.term_idf`` over the whole collection."""
        total = max(self.manifest.passage_count, 1)
        return [idf(total, hits) for hits in self.terms.passages(*terms)]

    def candidates(
        self, query: np.ndarray, question: str, depth: int, filters: Filters = Filters(), dense: bool = True,
        lexical: bool = True, postings: int | None = None,
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]], dict[int, float]]:
        """``IndexReader.candidates`` over every shard, in one round trip to each.

        Inside ``tracking`` (a search), each shard sends with its candidates all else the
        search will read of them (``Shard.search_part``), kept for the rest of the search.
        """
        weighted, average = self._weighted_terms(question, postings) if lexical else ([], 1.0)
        args = (query, weighted, average, depth, filters, dense, lexical and bool(weighted))
        prefetched = _prefetched.get()
        if prefetched is None:
            answers = self._gather("candidates", lambda i: args)
        else:
            names = names_in(question)
            parts = self._gather("search_part", lambda i: (*args, names))
            answers = {i: (part.nearest, part.matched, part.cosines) for i, part in parts.items()}
            prefetched.query, prefetched.names = query, frozenset(names)
            for i, part in parts.items():
                prefetched.passages.update((row * self.count + i, p) for row, p in part.passages.items())
                prefetched.sentences.update((part.passages[row].id, c) for row, c in part.sentences.items())
                prefetched.pages.update(part.pages)
                prefetched.absent[i] = set(part.absent)
        nearest = self._merge({i: found[0] for i, found in answers.items()}, depth)
        matched = self._merge({i: found[1] for i, found in answers.items()}, depth)
        cosines = {row * self.count + i: c for i, found in answers.items() for row, c in found[2].items()}
        return nearest, matched, {row: cosines[row] for row, _ in nearest + matched}

    def sentence_cosines_of(self, passages: Sequence[Passage], query: np.ndarray) -> list[list[tuple[int, int, float]]]:
        """Return the sentence cosines of each of ``passages`` (as IndexReader.sentence_cosines_of):
        those the search's candidates brought, and one call to each shard holding the rest."""
        prefetched = _prefetched.get()
        known = prefetched.sentences if prefetched and np.array_equal(prefetched.query, query) else {}
        out: list[list[tuple[int, int, float]]] = [known.get(p.id, []) for p in passages]
        grouped: dict[int, list[int]] = {}
        for n, passage in enumerate(passages):
            if passage.id not in known:
                grouped.setdefault(shard_of(passage.source, self.count), []).append(n)
        answers = self._gather(
            "sentence_cosines_of", lambda i: ([passages[n] for n in grouped[i]], query), shards=sorted(grouped),
            required=True,
        )
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
        prefetched = _prefetched.get()
        found = dict(prefetched.passages) if prefetched else {}
        grouped = self._reader._by_shard([row for row in rows if row not in found])
        answers = self._reader._gather("passages", lambda i: (grouped[i],), shards=sorted(grouped), required=True)
        found.update((local * count + i, p) for i, ps in answers.items() for local, p in zip(grouped[i], ps))
        return [found[row] for row in rows]

    def document(self, source: str, sha256: str | None = None):
        if sha256 is not None:  # a build asks by the name on disk
            return self._one(source, "document", source, sha256)
        return self._by_any_spelling(source, "document")

    def known(self, source: str, sha256: str):
        return self._one(source, "known", source, sha256)

    def original(self, source: str):
        # Required: a shard that does not answer cannot confirm its file, and /file serves only confirmed ones.
        return self._by_any_spelling(source, "original")

    def _by_any_spelling(self, source: str, method: str):
        """Ask the shard of each Unicode spelling of ``source`` (a name's shard is a hash of its bytes)."""
        for spelling in tables.spellings(source):
            found = self._one(spelling, method, spelling)
            if found is not None:
                return found
        return None

    def document_pages(self, sources: Sequence[str]) -> dict[str, tuple[int, ...]]:
        prefetched = _prefetched.get()
        known = prefetched.pages if prefetched else {}
        by_shard: dict[int, list[str]] = {}
        for source in sources:
            if source not in known:
                by_shard.setdefault(shard_of(source, self._reader.count), []).append(source)
        answers = self._reader._gather("document_pages", lambda i: (by_shard[i],), shards=sorted(by_shard))
        found = {source: known[source] for source in sources if source in known}
        found.update((source, pages) for part in answers.values() for source, pages in part.items())
        return found

    def page_names(self, sources: Sequence[str]) -> dict[str, tuple[str, ...]]:
        by_shard: dict[int, list[str]] = {}
        for source in sources:
            by_shard.setdefault(shard_of(source, self._reader.count), []).append(source)
        answers = self._reader._gather("page_names", lambda i: (by_shard[i],), shards=sorted(by_shard))
        return {source: names for part in answers.values() for source, names in part.items()}

    def missing_sources(self, sources: Sequence[str]) -> list[str]:
        by_shard: dict[int, list[str]] = {}
        for source in sources:
            for spelling in tables.spellings(source):  # each Unicode spelling hashes to its own shard
                by_shard.setdefault(shard_of(spelling, self._reader.count), []).append(spelling)
        answers = self._reader._gather("missing_sources", lambda i: (by_shard[i],), shards=sorted(by_shard))
        # A source on a shard that did not answer is not known to be missing: its search is partial.
        asked = {s for i in answers for s in by_shard[i]}
        missing = {s for found in answers.values() for s in found}
        return [s for s in sources if all(v in asked and v in missing for v in tables.spellings(s))]

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

    def count_transient(self) -> int:
        return sum(self._all("count_transient").values())

    def count_undated(self, filters: Filters) -> int:
        return sum(self._all("count_undated", filters).values())

    def absent_terms(self, terms: Sequence[str]) -> list[str]:
        prefetched = _prefetched.get()
        if prefetched and prefetched.query is not None and set(terms) <= prefetched.names:
            answers = {i: list(absent) for i, absent in prefetched.absent.items()}  # the shards that answered
        else:
            answers = self._all("absent_terms", list(terms))
        if not answers:
            return []
        return [t for t in terms if all(t in found for found in answers.values())]

    def recent_documents(self, n: int) -> list[tuple[str, str, str | None]]:
        # Each shard's n newest hold the collection's n newest; ordered as one build orders them.
        found = [row for part in self._all("recent_documents", n).values() for row in part]
        found.sort(key=lambda row: (row[2] is None, _descending(row[2] or ""), row[1], row[0]))
        return found[:n]


def _descending(text: str) -> tuple[int, ...]:
    """A sort key that orders strings (ISO dates) from the greatest down."""
    return tuple(-ord(c) for c in text) + (1,)
