from __future__ import annotations

import pytest

from qa.search.dedup import overlaps
from qa.errors import BadRequest
from qa.records import Filters
from qa.search import MAX_K, Searcher, clean_k, clean_mode, clean_question
from qa.settings import MODES


@pytest.fixture
def searcher(index_dir, embedder):
    return Searcher(index_dir, embedder=embedder)


@pytest.mark.parametrize("value", ["", "   ", "\x00\x01", None, 42, ["q"], "x" * 1001])
def test_bad_questions_are_refused(value):
    with pytest.raises(BadRequest):
        clean_question(value)


def test_question_control_characters_become_spaces():
    assert clean_question("  what\x00 is\tthis?\n") == "what is this?"


@pytest.mark.parametrize("value", [0, -1, MAX_K + 1, 10**9, "abc", "1.5", 2.0, True, None, ""])
def test_bad_k_is_refused(value):
    with pytest.raises(BadRequest):
        clean_k(value)


@pytest.mark.parametrize("value, expected", [(1, 1), ("7", 7), (MAX_K, MAX_K)])
def test_good_k_is_accepted(value, expected):
    assert clean_k(value) == expected


def test_modes_are_checked():
    assert clean_mode(None) == "rerank" and clean_mode("dense") == "dense"
    with pytest.raises(BadRequest, match="mode must be one of"):
        clean_mode("magic")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"since": "2024-1-1"}, "since must be a date"),
        ({"until": "yesterday"}, "until must be a date"),
        ({"since": "2024-02-30"}, "not a real date"),
        ({"since": "2024-02-01", "until": "2024-01-01"}, "since is after until"),
        ({"since": 20240101}, "since must be a date"),
        ({"source": 5}, "source must be a string"),
    ],
)
def test_bad_filters_are_refused(kwargs, message):
    with pytest.raises(BadRequest, match=message):
        Filters.clean(**kwargs)


def test_filters_treat_empty_as_absent_and_select_the_right_rows(index_dir):
    from qa import index

    assert Filters.clean("", None, "") == Filters() and not Filters().active
    tables = index.open_index(index_dir).tables
    everything = tables.passages(range(tables.passage_count))
    assert tables.rows(Filters()) is None
    only = tables.rows(Filters(sources=("002_42f21bd48c4da039.txt",)))
    assert only and {everything[r].source for r in only} == {"002_42f21bd48c4da039.txt"}
    dated = tables.rows(Filters(since="2024-01-24", until="2024-12-31"))
    assert dated == [r for r, p in enumerate(everything) if p.date and "2024-01-24" <= p.date <= "2024-12-31"]
    assert tables.rows(Filters(since="2030-01-01")) == []


def test_search_returns_ranked_cited_results(searcher):
    answer = searcher.search("Kursk region stands apart", k=3)
    results = [r.as_dict() for r in answer.results]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert results[0]["source"] == "002_42f21bd48c4da039.txt"
    assert results[0]["date"] == "2025-02-17"
    assert "The Kursk region stands apart" in results[0]["text"]
    assert list(results[0]) == [
        "rank", "score", "passage_id", "text", "source", "title", "date", "url", "author", "format", "page",
        "page_end", "sentence_page", "place", "start", "end", "highlights", "weaker",
    ]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert list(answer.as_dict()) == ["question", "results", "took_ms", "mode", "low_confidence", "excluded_undated", "unknown_names", "missing_shards"]


def test_highlight_is_the_matching_sentence(searcher):
    top = searcher.search("The Kursk region stands apart", k=1).results[0]
    (start, end), = top.highlights
    assert top.passage.text[start:end] == "The Kursk region stands apart."


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_answers_without_duplicates(searcher, mode):
    answer = searcher.search("Lavrov Trump Putin Russia", k=20, mode=mode)
    assert answer.mode == mode and len(answer.results) >= 10
    ps = [r.passage for r in answer.results]
    assert not any(overlaps(a, b) for i, a in enumerate(ps) for b in ps[i + 1 :])
    texts = [" ".join(p.text.split()) for p in ps]
    assert len(set(texts)) == len(texts)


def test_repeated_article_text_appears_once(searcher):
    # 003 carries its article twice, once run together and once line by line.
    question = "Lavrov compared the US stance on military funding for Ukraine to a profitable business project"
    for mode in ("dense", "rerank"):
        answer = searcher.search(question, k=10, mode=mode)
        hits = [r for r in answer.results if "profitable business project" in r.passage.text]
        assert len(hits) == 1, mode


def test_lexical_mode_finds_exact_names(searcher):
    top = searcher.search("Podolsky USAID", k=1, mode="lexical").results[0]
    assert "Podolsky" in top.passage.text


def test_date_filters_exclude_undated_documents_and_say_how_many(searcher):
    answer = searcher.search("Lavrov", k=50, since="2024-01-01", until="2024-12-31")
    assert {r.passage.date for r in answer.results} <= {"2024-01-23", "2024-01-24"}
    assert answer.excluded_undated == 2  # 000 and 001 carry no date
    assert searcher.search("Lavrov", k=5).excluded_undated == 0


def test_date_filter_with_nothing_in_range_returns_nothing(searcher):
    answer = searcher.search("Lavrov", since="2030-01-01")
    assert answer.results == [] and answer.low_confidence


def test_source_filter_limits_to_one_file(searcher):
    answer = searcher.search("Russia", k=50, source="001_197f8570244cbea7.txt")
    assert answer.results and {r.passage.source for r in answer.results} == {"001_197f8570244cbea7.txt"}
    with pytest.raises(BadRequest, match="no document named"):
        searcher.search("Russia", source="missing.txt")


def test_unrelated_question_is_low_confidence(searcher):
    # The hashing embedder shares no words between these and any seed sentence.
    assert searcher.search("zebra quokka platypus").low_confidence
    assert not searcher.search("The Kursk region stands apart").low_confidence


def test_names_are_capitalised_words_after_the_first_and_not_acronyms():
    from qa.search import names_in

    assert names_in("What is the range of Russia's Oreshnik missile in WWI and NATO?") == ["Russia", "Oreshnik"]
    assert names_in("Oreshnik range?") == []


def test_a_question_about_a_name_no_document_contains_is_flagged(index_dir, embedder):
    from qa.settings import SearchSettings

    flagged = Searcher(index_dir, embedder=embedder).search("What did Lavrov say about the Oreshnik missile?")
    assert flagged.low_confidence and flagged.unknown_names == ("Oreshnik",)
    known = Searcher(index_dir, embedder=embedder).search("What did Lavrov say about the ABM Treaty?")
    assert known.unknown_names == ()
    off = Searcher(index_dir, embedder=embedder, settings=SearchSettings(flag_unknown_names=False))
    assert off.search("What did Lavrov say about the Oreshnik missile?").unknown_names == ()


def unknown_names_over(tmp_path, embedder, **files: str):
    """Add ``files`` (name: text) to a documents folder, build it, and return a function of a question's
    unknown names over the build."""
    from qa.indexing import build

    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    for name, text in files.items():
        (docs / f"{name}.txt").write_text(text + "\n")
    build(docs, tmp_path / "index", embedder)
    searcher = Searcher(tmp_path / "index", embedder=embedder)
    return lambda question: searcher.search(question).unknown_names


def test_a_name_held_with_a_number_after_it_is_known(tmp_path, embedder):
    # A SciFact abstract names "Deltex1"; its claim asks after "Deltex" (flagged before).
    unknown = unknown_names_over(tmp_path, embedder, notch="Activated Notch meets the E3 ubiquitin ligase Deltex1 on "
                                 "endocytic vesicles. Cells lacking Orbit2b were slower.")
    assert unknown("Does Deltex interact with Notch?") == ()
    # Only digits may follow: a longer word (Orbit2b) or a word that merely begins alike (Deltexa) is not the name.
    assert unknown("What does Orbit do in Deltexa?") == ("Orbit", "Deltexa")
    assert unknown("Is Delt the ligase?") == ("Delt",)


def test_a_capital_or_seat_of_government_is_known_when_the_documents_name_its_country(tmp_path, embedder):
    unknown = unknown_names_over(tmp_path, embedder,
                                 talks="Chinese officials met the French and German leaders. Washington stayed away.")
    # Natural questions that were flagged: the articles say "China", "French and German", "Washington".
    assert unknown("What did Moscow and Beijing agree?") == ("Moscow",)
    assert unknown("Which leaders in Berlin and Paris spoke?") == ()
    assert unknown("Why was the White House absent?") == ()
    # A capital whose country no document names (Belarus), and a city that is no capital, stay unknown.
    assert unknown("What did Minsk agree?") == ("Minsk",)
    assert unknown("What was agreed in Istanbul?") == ("Istanbul",)


def test_a_country_of_several_words_is_held_only_where_they_stand_in_order(tmp_path, embedder):
    unknown = unknown_names_over(tmp_path, embedder, other="The states united against the kingdom.")
    assert unknown("What did London decide?") == ("London",)  # not "United Kingdom"
    unknown = unknown_names_over(tmp_path, embedder, uk="The United Kingdom decided.")
    assert unknown("What did London decide?") == ()


def test_rerank_lifts_the_passage_that_holds_the_question_words_together(tmp_path, embedder):
    from qa.indexing import build
    from qa.settings import SearchSettings

    docs = tmp_path / "docs"
    docs.mkdir()
    # Every word of the question twice, but never two of them next to each other in its order.
    (docs / "apart.txt").write_text("Azerbaijan has a capital. The city is the largest. Azerbaijan's capital city is its largest.\n")
    (docs / "together.txt").write_text("Baku is the capital and largest city of Azerbaijan, on the Caspian Sea coast.\n")
    build(docs, tmp_path / "index", embedder)
    question = "capital largest city Azerbaijan"

    def ranked(weight: float) -> list[tuple[str, float]]:
        searcher = Searcher(tmp_path / "index", embedder=embedder, settings=SearchSettings(proximity_weight=weight))
        return [(r.passage.source, r.score) for r in searcher.search(question).results]

    without, with_it = dict(ranked(0.0)), dict(ranked(0.4))
    assert ranked(0.0)[0][0] == "apart.txt"  # more matches of each word: BM25 and the hashing cosine prefer it
    assert ranked(0.4)[0][0] == "together.txt"
    # Proximity is added, then the sum put back on the fused scale (a perfect match scores 1).
    assert with_it["apart.txt"] == pytest.approx(without["apart.txt"] / 1.4)  # it holds no pair
    assert with_it["together.txt"] == pytest.approx((without["together.txt"] + 0.4) / 1.4)  # it holds all three


def test_rerank_scores_the_share_of_the_question_words_a_passage_holds_not_bm25(tmp_path, embedder):
    from qa.indexing import build
    from qa.lexical import coverage
    from qa.settings import SearchSettings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "repeats.txt").write_text("The ancient harbour. The harbour was ancient, an ancient harbour.\n")
    (docs / "whole.txt").write_text("Zarqa kept an ancient harbour for the traders who came each spring.\n")
    for i, text in enumerate(["Traders sailed north.", "Spring came late.", "The south was dry.", "Ships need wind."]):
        (docs / f"filler{i}.txt").write_text(text + "\n")
    build(docs, tmp_path / "index", embedder)
    question = "ancient harbour of Zarqa"
    # Only the lexical evidence counts: no cosine, no sentence, no proximity; squared (the default is 1).
    only = {"rerank_alpha": 0.0, "sentence_weight": 0.0, "proximity_weight": 0.0, "coverage_power": 2.0}

    def scores(evidence: str) -> dict[str, float]:
        settings = SearchSettings(lexical_evidence=evidence, **only)
        found = Searcher(tmp_path / "index", embedder=embedder, settings=settings).search(question, k=2).results
        return {r.passage.source: r.score for r in found}

    searcher = Searcher(tmp_path / "index", embedder=embedder)
    weighted = list(zip(["ancient", "harbour", "zarqa"], searcher.reader.term_idf(["ancient", "harbour", "zarqa"])))
    share = coverage(weighted, {"ancient": [0], "harbour": [1]})
    assert 0.0 < share < 1.0
    by_coverage = scores("coverage")
    assert by_coverage["whole.txt"] == pytest.approx(1.0)  # every word of the question, however often
    assert by_coverage["repeats.txt"] == pytest.approx(share**2)  # squared: half a match counts a quarter
    by_bm25 = scores("bm25")
    assert max(by_bm25.values()) == pytest.approx(1.0)  # BM25 over the best match gives 1 to someone, always
    assert by_bm25["repeats.txt"] > share**2


def test_settings_tuned_under_older_defaults_keep_them_and_new_ones_read_back_as_saved():
    from qa.settings import SearchSettings

    # Records that held only what differed from the defaults of their day: before coverage, then with it.
    before = dict(rerank_alpha=0.3, sentence_weight=0.4, proximity_weight=0.08, coverage_power=2.0)
    assert SearchSettings.from_dict({"rerank_alpha": 0.3}, "tuned.json") == SearchSettings(
        **before, lexical_evidence="bm25")
    assert SearchSettings.from_dict({"rerank_alpha": 0.3, "lexical_evidence": "coverage"}, "tuned.json") == \
        SearchSettings(**before, lexical_evidence="coverage")
    new = SearchSettings(rerank_alpha=0.3)
    assert SearchSettings.from_dict(new.as_dict(), "tuned.json") == new  # written whole, read back as saved
    assert new != SearchSettings(**before)  # the defaults have moved since: the two cases differ


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"proximity_weight": -0.1}, "proximity_weight must not be negative"),
        ({"proximity_window": 0}, "proximity_window must be at least 1"),
        ({"rerank_depth": 0}, "rerank_depth and proximity_window must be at least 1"),
        ({"alpha": 1.5}, "weights between 0 and 1"),
        ({"fusion": "max"}, "fusion must be one of"),
        ({"lexical_evidence": "tfidf"}, "lexical_evidence must be one of"),
        ({"coverage_power": 0.0}, "coverage_power must be positive"),
    ],
)
def test_search_settings_refuse_values_out_of_range(kwargs, message):
    from qa.settings import SearchSettings

    with pytest.raises(ValueError, match=message):
        SearchSettings(**kwargs)


def test_a_passage_over_two_pages_cites_the_page_of_its_best_sentence(tmp_path, embedder):
    from qa.indexing import build_documents
    from qa.records import Document

    first = "The committee met in spring to discuss the budget. Members agreed on the agenda.\n\n"
    second = "Zebras were seen crossing the river near the old bridge."
    text = first + second
    document = Document(source="report.pdf", text=text, sha256="0" * 64, format="pdf", pages=(0, len(first)))
    build_documents([document], [], "digest", tmp_path / "index", embedder)
    searcher = Searcher(tmp_path / "index", embedder=embedder)
    (result,) = searcher.search("zebras crossing the river", k=1).results
    assert (result.passage.page, result.passage.page_end) == (1, 2)
    assert result.sentence_page == 2 and result.as_dict()["sentence_page"] == 2
    (result,) = searcher.search("committee budget agenda", k=1).results
    assert result.sentence_page == 1


def test_an_index_searches_with_its_models_own_defaults_unless_tuned(index_dir, embedder, monkeypatch):
    from qa import index
    from qa.settings import MODEL_SETTINGS, SearchSettings

    searcher = Searcher(index_dir, embedder=embedder)
    model = searcher.reader.manifest.model
    assert searcher.settings == SearchSettings()  # a model with no settings of its own: the defaults
    # A search uses them too: every result weaker than a bar above any score, none under one below every score.
    for bar, weaker in ((2.0, True), (-2.0, False)):
        monkeypatch.setitem(MODEL_SETTINGS, model, {"weaker_below": bar})
        results = searcher.search("zebra", 5).results
        assert results and all(r.weaker is weaker for r in results)
    monkeypatch.setitem(MODEL_SETTINGS, model, {"rerank_alpha": 0.9, "low_confidence_below": 0.3})
    assert searcher.settings == SearchSettings(rerank_alpha=0.9, low_confidence_below=0.3)
    assert SearchSettings.for_model("another model") == SearchSettings()
    index.write_tuning(index_dir, {"settings": SearchSettings(rerank_alpha=0.5).as_dict(), "questions": "q",
                                   "count": 1, "cross_validated": 0.5, "default": 0.4, "tuned_at": "now"})
    try:
        assert searcher.settings == SearchSettings(rerank_alpha=0.5)  # qa tune's choice comes first
    finally:
        index.write_tuning(index_dir, None)
