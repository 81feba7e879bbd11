"""A documents folder and its index, as one object: the library's front door.

    from qa import Collection

    papers = Collection("seeds", "index")
    papers.refresh()                      # build or update the index
    answer = papers.search("When did the US suspend the INF Treaty?", k=3)
    for result in answer["results"]:
        print(result["score"], result["source"], result["page"], result["text"][:80])

``search`` returns the very dict ``qa search --json`` prints and the API answers.
"""

from __future__ import annotations

from pathlib import Path

from qa.indexing import BuildReport, build, passage_encoder, stale_reason
from qa.search import DEFAULT_K, Searcher
from qa.settings import ChunkSettings, SearchSettings


class Collection:
    """A documents folder and the index built from it.

    Args:
        docs: the documents folder (any mix of the formats qa reads).
        index: the index folder; made by ``refresh`` when it does not exist.
        model: ``all-MiniLM-L6-v2`` (the default, installed with qa), ``hashing``
            (a deterministic fake for tests), or a local sentence-transformers folder.
        chunking: how documents are cut into passages; recorded in the index.
        settings: how candidates are fused, re-scored and flagged (default: what ``qa tune --save``
            chose for this index, else ``SearchSettings()``).
        query_encoder: ``int8`` (the model's int8 export) or ``fp32`` (the model itself; ``onnx`` and ``torch`` are old names).
        encoder: what embeds passages: ``int8`` (the default model's int8 export) or
            ``fp32``; by default the encoder that built the index, and int8 for a new one.
    """

    def __init__(
        self,
        docs: str | Path,
        index: str | Path,
        *,
        model: str | None = None,
        chunking: ChunkSettings = ChunkSettings(),
        settings: SearchSettings | None = None,
        query_encoder: str = "int8",
        encoder: str | None = None,
    ):
        self.docs = Path(docs)
        self.encoder = encoder
        self.index = Path(index)
        self.model = model
        self.chunking = chunking
        self._searcher = Searcher(self.index, model=model, settings=settings, query_encoder=query_encoder)

    def refresh(self, rebuild: bool = False, wait: bool = True, progress: bool = False) -> BuildReport:
        """Build the index, or bring it up to date: only new and changed files are read and embedded.

        Raises:
            NoDocuments: nothing in the folder can be indexed.
            IndexBusy: another build runs and ``wait`` is false.
            IndexWriteError: the index cannot be written; the previous build stays.
        """
        spec = passage_encoder(self.index, self.model, self.encoder)
        return build(self.docs, self.index, spec, self.chunking, rebuild=rebuild, progress=progress, wait=wait)

    def stale(self) -> str | None:
        """Return why the index no longer matches the folder, or None when it does."""
        return stale_reason(self._searcher.reader, self.docs, self.chunking)

    def search(
        self,
        question: str,
        k: int = DEFAULT_K,
        *,
        since: str | None = None,
        until: str | None = None,
        source: str | list[str] | None = None,
        folder: str | None = None,
        mode: str | None = None,
    ) -> dict:
        """Return the ``k`` passages that best answer ``question``: the dict ``qa search --json`` prints.

        Args:
            question: up to 1,000 characters.
            k: how many passages, 1 to 50.
            since, until: ISO dates (YYYY-MM-DD); undated documents are left out.
            source: a document, or a list of them (paths as results name them).
            folder: only documents under this folder of the collection.
            mode: ``dense``, ``lexical``, ``hybrid`` or ``rerank`` (the default).

        Raises:
            BadRequest: the question or a parameter is not acceptable.
            IndexUnavailable: there is no usable index (call ``refresh``).
        """
        answer = self._searcher.search(question, k, since=since, until=until, source=source, folder=folder, mode=mode)
        return answer.as_dict()

    def document(self, source: str, start: int | None = None, end: int | None = None) -> dict:
        """Return a document's text layer (or ``[start:end]`` of it) with its metadata: how to check an answer."""
        return self._searcher.document(source, start, end)

    def documents(self, folder: str | None = None) -> dict:
        """Return ``{"documents": [...], "skipped": [...]}``: what is indexed, and what was skipped and why."""
        return self._searcher.documents(folder)
