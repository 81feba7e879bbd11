"""The knobs of chunking and ranking, as values: made once, passed in, and saved with the index.

Nothing here reads the environment: the command line does that, once, at its
edge (click's ``envvar=``), and hands these values to the builder and the
searcher. Two configurations can therefore live in one process (a benchmark
sweeps by making new settings, never by assigning to a module), and an index
records the chunking it was built with in its manifest, which is read back
into a ``ChunkSettings`` when the index is opened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from qa.errors import IndexUnavailable

#: Retrieval modes, cheapest first: cosine, BM25, their fusion, fusion re-scored by sentences and word proximity.
MODES = ("dense", "lexical", "hybrid", "rerank")
DEFAULT_MODE = "rerank"
#: How hybrid merges its two lists: "convex" (scores) or "rrf" (ranks), compared in bench/tuning/fusion.py.
FUSIONS = ("convex", "rrf")
#: Rerank's lexical evidence: the share of the question's words a passage holds, or BM25.
LEXICAL_EVIDENCE = ("coverage", "bm25")
#: ``qa tune --save`` once recorded only the settings that differed from the defaults of its day;
#: what such a record leaves out was these (BM25 as the evidence until coverage, then coverage
#: squared). Records are now written whole, so a tuned index ranks alike whatever later defaults are.
RECORDED_DEFAULTS = {"rerank_alpha": 2 / 3, "sentence_weight": 0.4, "proximity_weight": 0.08,
                     "lexical_evidence": "bm25", "coverage_power": 2.0}
#: Sentence vectors pooled from the passage's own forward pass ("late"), or encoded one by one ("separate");
#: "auto" is the model's own way (``SEPARATE_SENTENCES``).
SENTENCE_VECTORS = ("auto", "late", "separate")
#: Models whose sentence vectors are encoded one by one: pooled from all-mpnet-base-v2's passage pass, a
#: passage's sentences all come out near its own vector (cosines to a question within 0.34-0.46 of each other
#: where separate ones spread 0.16-0.75), so the best sentence is not found (docs/quality.md).
SEPARATE_SENTENCES = ("all-mpnet-base-v2",)
#: What encodes passages and questions: the model's int8 onnxruntime export, or the fp32 model itself (torch).
ENCODERS = ("int8", "fp32")
#: The names the question encoders had before they were named as passage encoders are, still taken.
OLD_QUERY_ENCODERS = {"onnx": "int8", "torch": "fp32"}
#: Bump when the chunker cuts the same text differently under the same settings
#: (3: character bound, CJK words and sentence ends; 4: overlap bounded in characters; 5: a line wrapped at a
#: margin does not end its sentence).
CHUNKING_VERSION = 5


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut into passages; see qa/indexing/chunk.py for why these sizes."""

    #: Words per passage: ~170 word pieces, inside MiniLM's 256 (bench/tuning/chunking.py).
    max_words: int = 120
    #: Trailing sentences repeated in the next window, at most this many words.
    overlap_words: int = 40
    #: Characters per passage, whatever its word count: ten per word of max_words.
    max_chars: int = 1200
    #: Characters two consecutive passages may share, whatever their words: ten per word of overlap_words.
    overlap_chars: int = 400
    #: "late" pools sentence vectors from the passage's forward pass (no extra encoding); "auto": the model's way.
    sentence_vectors: str = "auto"

    def __post_init__(self) -> None:
        if self.max_words < 1 or not 0 <= self.overlap_words < self.max_words or self.max_chars < 1:
            raise ValueError("chunking needs max_words >= 1, 0 <= overlap_words < max_words and max_chars >= 1")
        if self.overlap_chars < 0:
            raise ValueError("chunking needs overlap_chars >= 0")
        if self.sentence_vectors not in SENTENCE_VECTORS:
            raise ValueError(f"sentence_vectors must be one of {', '.join(SENTENCE_VECTORS)}")

    def for_model(self, model: str) -> ChunkSettings:
        """Return these settings as a build with ``model`` (its weights' name) makes them: "auto" decided."""
        if self.sentence_vectors != "auto":
            return self
        return replace(self, sentence_vectors="separate" if model in SEPARATE_SENTENCES else "late")

    def as_manifest(self) -> dict:
        """Return the settings as the manifest records them (decided by ``for_model``), with the chunker's version."""
        if self.sentence_vectors == "auto":
            raise ValueError("chunking settings are recorded for a model: call for_model first")
        return {**asdict(self), "version": CHUNKING_VERSION}

    @classmethod
    def from_manifest(cls, params: dict, where: str) -> ChunkSettings:
        """Read settings back from a manifest; ``where`` names the file in the error.

        Raises:
            IndexUnavailable: another chunker version made the index, or the values are not settings.
        """
        if params.get("version") != CHUNKING_VERSION:
            raise IndexUnavailable(
                f"{where} was chunked by chunker version {params.get('version')}, this qa cuts with "
                f"{CHUNKING_VERSION}; run `qa index --rebuild`"
            )
        try:
            return cls(**{f.name: params[f.name] for f in fields(cls)})
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexUnavailable(f"{where} has unreadable chunking settings ({exc}); run `qa index --rebuild`") from None


#: Search settings a model has of its own, chosen on its tuning sets as the defaults were for all-MiniLM-L6-v2
#: (docs/quality.md, "A larger model"); what is not named here is the default. all-mpnet-base-v2's weaker
#: matches begin at 0.33 (bench.tuning.weaker --build mpnet-int8); its ranking weights and flag are the defaults.
MODEL_SETTINGS: dict[str, dict] = {"all-mpnet-base-v2": {"weaker_below": 0.33}}


@dataclass(frozen=True)
class SearchSettings:
    """How candidates are gathered, fused, re-scored and flagged; chosen as docs/quality.md says."""

    #: Candidates taken from each retriever before fusion and de-duplication.
    candidates: int = 40
    #: Candidates per wanted result when k is large, so duplicates can be dropped and k still filled.
    overfetch: int = 4
    #: Fused candidates re-scored by their sentences and word proximity (the rest keep their fused order below them).
    rerank_depth: int = 40
    fusion: str = "convex"
    #: Hybrid: convex fusion weight of the cosine against max-normalised BM25.
    alpha: float = 0.5
    #: Rerank (the default mode): the cosine's weight against the lexical evidence, and the best
    #: sentence's weight against that fusion. 21/31 and 0.225 make the score 0.525 cosine + 0.225
    #: best sentence + 0.25 lexical: the dense evidence (passage and sentence, 7:3) at 0.75,
    #: chosen on the tuning sets of docs/quality.md.
    rerank_alpha: float = 21 / 31
    sentence_weight: float = 0.225
    #: Rerank's lexical evidence: "coverage", the share of the question's idf a candidate holds
    #: raised to ``coverage_power`` (qa/search/fusion.py coverage), or "bm25", BM25 over the
    #: question's best (the default until coverage measured better on every kind of set).
    lexical_evidence: str = "coverage"
    coverage_power: float = 1.0
    #: Rerank may instead adapt the fusion weight to each question (qa/search/fusion.py adaptive_alpha):
    #: from ``adaptive_alpha``, moved by the three weights below, the sentence weight following it from
    #: ``adaptive_sentence_weight``. Off: tuned on lexical-overlap sets, it moved weight to BM25 where
    #: real questions need it least (docs/quality.md, "measured and not kept").
    adaptive: bool = False
    adaptive_alpha: float = 0.6
    adaptive_sentence_weight: float = 0.75
    lexical_margin: float = 0.9
    dense_margin: float = 1.0
    lexical_top: float = 0.4
    #: Rerank adds this times the share of the question's neighbouring words a passage holds
    #: within ``proximity_window`` tokens of each other, in order (qa/search/fusion.py proximity):
    #: 0.2 of the lexical evidence's weight.
    proximity_weight: float = 0.05
    proximity_window: int = 2
    #: Best-sentence cosine under which no passage is taken to answer the question, unless its words say so.
    low_confidence_below: float = 0.35
    #: The question's rarest terms that, standing together in one passage of the answer, keep it unflagged
    #: however low its cosine (qa/search/confidence.py); 0: the cosine and names alone decide.
    rare_terms: int = 2
    #: A result scoring under this is a weaker match: shown apart, quieter (bench/tuning/weaker.py chose it so
    #: that at most 1% of the right first answers of any tuning set are set apart).
    weaker_below: float = 0.35
    #: Also flag a question that names something (a capitalised word) no document contains:
    #: on-topic questions the documents cannot answer ("the Oreshnik missile") pass the cosine test.
    flag_unknown_names: bool = True
    #: ... unless a sentence of the answer matches the question this well: the documents then speak of
    #: what it asks under other names ("Beijing" asked, "China" written). Chosen by bench/tuning/flags.py.
    unknown_names_below: float = 0.7

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}")
        weights = (self.alpha, self.rerank_alpha, self.sentence_weight, self.adaptive_alpha, self.adaptive_sentence_weight)
        if not all(0.0 <= w <= 1.0 for w in weights):
            raise ValueError("alpha, rerank_alpha, sentence_weight and their adaptive forms are weights between 0 and 1")
        if min(self.candidates, self.overfetch, self.rerank_depth, self.proximity_window) < 1:
            raise ValueError("candidates, overfetch, rerank_depth and proximity_window must be at least 1")
        if self.proximity_weight < 0:
            raise ValueError("proximity_weight must not be negative")
        if self.lexical_evidence not in LEXICAL_EVIDENCE:
            raise ValueError(f"lexical_evidence must be one of {', '.join(LEXICAL_EVIDENCE)}")
        if self.coverage_power <= 0:
            raise ValueError("coverage_power must be positive")

    def as_dict(self) -> dict:
        """Return the settings by name, as a tuned index records them."""
        return asdict(self)

    @classmethod
    def for_model(cls, model: str) -> SearchSettings:
        """Return the defaults for an index of ``model`` (its weights' name): ``MODEL_SETTINGS``' where it has
        its own, chosen on that model's candidates, else these."""
        return cls(**MODEL_SETTINGS.get(model, {}))

    @classmethod
    def from_dict(cls, values: dict, where: str) -> SearchSettings:
        """Read a tuned index's settings back (``where`` names the file in the error); unknown names are refused.

        A setting the record leaves out takes the value of ``RECORDED_DEFAULTS``, the default
        when records held only what differed from it; one newer than that takes today's default.

        Raises:
            IndexUnavailable: the values are not search settings.
        """
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise IndexUnavailable(f"{where} holds unknown search settings {unknown}; run `qa tune --reset`")
        values = {**RECORDED_DEFAULTS, **values}
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise IndexUnavailable(f"{where} holds unusable search settings ({exc}); run `qa tune --reset`") from None
