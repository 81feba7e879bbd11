from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.indexing.chunk import chunk, split_long, split_sentences, word_count
from qa.settings import ChunkSettings

MAX_CHARS = ChunkSettings().max_chars


def texts(text, spans):
    return [text[a:b] for a, b in spans]


def test_sentences_split_on_punctuation_and_keep_offsets():
    text = "First one. Second “quoted” one! Third?"
    assert texts(text, split_sentences(text)) == ["First one.", "Second “quoted” one!", "Third?"]


def test_sentence_split_without_space_before_capital():
    text = "eroding mutual trust.Russia’s top diplomat said so."
    assert texts(text, split_sentences(text)) == ["eroding mutual trust.", "Russia’s top diplomat said so."]


@pytest.mark.parametrize(
    "text",
    [
        "President George W. Bush withdrew.",
        "Mr. Lavrov spoke.",
        "The U.S. Senate voted.",
        "It grew 5.5 percent.",
        "Visit example.com today.",
        "He paused... and went on.",
    ],
)
def test_no_split_inside_abbreviations_numbers_and_initials(text):
    assert texts(text, split_sentences(text)) == [text]


def test_closing_quote_stays_with_its_sentence():
    text = "He said “stop.” Then he left."
    assert texts(text, split_sentences(text)) == ["He said “stop.”", "Then he left."]


def test_line_break_before_capital_is_a_boundary_but_not_before_comma():
    text = "A heading line\nBody starts here\n, and goes on.\nNext sentence."
    assert texts(text, split_sentences(text)) == [
        "A heading line",
        "Body starts here\n, and goes on.",
        "Next sentence.",
    ]


def test_blank_line_is_a_boundary_and_crlf_is_trimmed():
    text = "Title\r\n\r\nbody text\r\n"
    assert texts(text, split_sentences(text)) == ["Title", "body text"]


def test_chunk_keeps_offsets_on_unicode():
    text = "Ünïcödé “quotes” — dash. ΑΒΓ δέλτα! 中文句子。 Emoji 🚀 here. Last one."
    spans = chunk(text, chunking=ChunkSettings(max_words=4, overlap_words=2))
    for a, b in spans:
        assert text[a:b] == text[a:b].strip() and text[a:b]
    assert texts(text, spans)[0] == "Ünïcödé “quotes” — dash."
    assert spans[-1][1] == len(text)


def test_chunk_respects_start_offset():
    text = " date 2024-01-01 Body one. Body two."
    spans = chunk(text, start=17)
    assert texts(text, spans) == ["Body one. Body two."]
    assert spans[0][0] == 17


def test_windows_fill_up_to_max_words_and_overlap_one_sentence():
    sentences = [f"Sentence {i} has five words." for i in range(6)]
    text = " ".join(sentences)
    windows = texts(text, chunk(text, chunking=ChunkSettings(max_words=15, overlap_words=5)))
    # 3 sentences of 5 words fill a window; the next one repeats the last sentence.
    assert windows == [
        " ".join(sentences[0:3]),
        " ".join(sentences[2:5]),
        " ".join(sentences[4:6]),
    ]


def test_no_overlap_when_budget_is_zero():
    text = "One two. Three four. Five six."
    assert texts(text, chunk(text, chunking=ChunkSettings(max_words=4, overlap_words=0))) == ["One two. Three four.", "Five six."]


def test_overlong_sentence_is_cut_into_word_windows():
    text = " ".join(f"w{i}" for i in range(10))
    spans = split_long(text, (0, len(text)), max_words=4, overlap_words=1, max_chars=MAX_CHARS)
    assert texts(text, spans) == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert all(word_count(text, s) <= 4 for s in chunk(text, chunking=ChunkSettings(max_words=4, overlap_words=1)))


def test_chunk_rejects_bad_sizes():
    for bad in ({"max_words": 5, "overlap_words": 5}, {"max_words": 0}, {"max_chars": 0}, {"sentence_vectors": "x"}):
        with pytest.raises(ValueError):
            ChunkSettings(**bad)


def test_text_without_spaces_or_sentence_ends_is_cut_into_bounded_passages():
    text = "x" * 200_000
    spans = chunk(text)
    assert all(b - a <= MAX_CHARS for a, b in spans)
    assert spans[0] == (0, MAX_CHARS) and spans[-1][1] == len(text)
    assert len(spans) == 200_000 // MAX_CHARS + 1


def test_chinese_and_japanese_sentence_ends_split_sentences():
    text = "今天天气很好。我们去公园吧！你来吗？日本語の文です。"
    assert texts(text, split_sentences(text)) == ["今天天气很好。", "我们去公园吧！", "你来吗？", "日本語の文です。"]


def test_each_ideograph_counts_as_a_word():
    assert word_count("中文 text 日本", (0, 10)) == 5


def test_chinese_without_punctuation_is_cut_into_windows_of_max_words_characters():
    text = "中文没有空格" * 1000
    spans = chunk(text, chunking=ChunkSettings(max_words=120, overlap_words=40))
    assert {b - a for a, b in spans[:-1]} == {120}
    assert spans[1][0] == 80  # 40 characters of overlap, as 40 words would be


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.characters(codec="utf-8"), max_size=400)
    | st.text(st.sampled_from("ab 中文。.!\n"), max_size=400),
    max_words=st.integers(1, 30),
    overlap=st.integers(0, 29),
    max_chars=st.integers(1, 60),
)
def test_chunk_offsets_always_slice_the_original(text, max_words, overlap, max_chars):
    overlap = min(overlap, max_words - 1)
    spans = chunk(text, chunking=ChunkSettings(max_words=max_words, overlap_words=overlap, max_chars=max_chars))
    covered = set()
    for a, b in spans:
        assert 0 <= a < b <= len(text)
        piece = text[a:b]
        assert piece == piece.strip() and piece
        assert word_count(text, (a, b)) <= max(max_words, 1)
        assert b - a <= max_chars
        covered.update(range(a, b))
    # Every non-space character lands in some passage: nothing is dropped.
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())
    assert spans == sorted(spans)


def test_overlap_is_bounded_in_characters_as_well_as_words():
    import hashlib

    from qa.indexing.chunk import chunk
    from qa.settings import ChunkSettings

    # A list of digests: long tokens, no sentence ends (the text that made ~10x the passages of prose).
    text = "\n".join(f"https://example.com/{hashlib.sha256(str(i).encode()).hexdigest()}" for i in range(3000))
    settings = ChunkSettings()
    spans = chunk(text, chunking=settings)
    for (a, b), (c, d) in zip(spans, spans[1:]):
        assert c > a and max(0, b - c) <= settings.overlap_chars
    # Each window holds a window's worth of new text: no more passages than twice the bare cut.
    assert len(spans) <= 2 * len(text) / (settings.max_chars - settings.overlap_chars) + 2


def test_prose_is_cut_as_before_the_character_bound_on_overlap():
    from qa.indexing.chunk import chunk

    words = [f"w{i}" for i in range(400)]
    text = " ".join(" ".join(words[i : i + 10]) + "." for i in range(0, 400, 10))
    spans = chunk(text)
    overlaps = [text[c:b] for (a, b), (c, d) in zip(spans, spans[1:])]
    assert all(len(o.split()) <= 40 for o in overlaps) and any(len(o.split()) >= 30 for o in overlaps)


def test_a_line_wrapped_at_a_margin_does_not_end_its_sentence():
    text = ("The names Smith are used in the UK instead, as well as in Australia and New\r\n"[:-2] + "\n"
            "Zealand. Other names are rare.\nDear Ann\nThanks for the note.\n- first item\n- second item")
    sentences = [text[a:b] for a, b in split_sentences(text)]
    assert sentences[0] == "The names Smith are used in the UK instead, as well as in Australia and New\nZealand."
    # Short lines (a greeting) and bullets still end at the line break.
    assert "Dear Ann" in sentences and "- first item" in sentences and "- second item" in sentences
