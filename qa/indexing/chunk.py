"""Split text into sentences and sentence-aligned passage windows, as character spans.

Every function here is pure and returns ``(start, end)`` offsets into the text it
was given, so ``text[start:end]`` is always a verbatim quote.

Window size: all-MiniLM-L6-v2 reads at most 256 word pieces and silently drops
the rest, and news prose averages about 1.3-1.5 word pieces per word, so a
passage of at most ``ChunkSettings.max_words`` = 120 words (~170 pieces; curly quotes, names
and numbers push some higher) always fits whole. Smaller windows embed more
precisely (one topic per vector) but lose the context a question may span.
Measured by bench/tuning/chunking.py (default mode): 60 and 160 words each
lose a dev question that 90 and 120 answer first, and 120 scores best of
those two on the Wikipedia sample (nDCG@10 0.901 against 0.895). The overlap
(trailing sentences of at most ``overlap_words``) keeps a sentence
pair that answers a question together in at least one window.

Words are what white space separates, except in Chinese and Japanese, which
use none: there each ideograph or kana counts as a word (MiniLM reads about
one word piece per character). A passage is also bounded in characters
(``ChunkSettings.max_chars``), so text with no spaces and no sentence ends at all (a
200,000-character token, say) is still cut into passages of normal size
instead of one passage that every answer would carry whole. English windows
of 120 words stay well under it (the longest seed passage has 812 characters).
The overlap is bounded the same way, by ``ChunkSettings.overlap_chars`` as well
as ``overlap_words``: 40 words of prose are about 250 characters, but 40 long
tokens (URLs, digests) were 1,097 of a 1,163-character window, so a 3 MB list
made ten times the passages of prose its size.
"""

from __future__ import annotations

import re

from qa.settings import ChunkSettings

Span = tuple[int, int]
DEFAULT = ChunkSettings()

# Words that end with a period but rarely end a sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt no vs etc e.g i.e inc ltd co corp gen col lt sgt "
    "gov sen rep rev fig jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_CLOSERS = "\"'”’)]»」』）】〕"
# Chinese and Japanese sentence ends: no space follows them.
_CJK_TERMINALS = "。！？"
# Ideographs and kana: one word each, since these scripts put no spaces between words.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v\u00a0]*\n")
# A candidate end: terminal punctuation and any closing quotes/brackets after it.
_TERMINAL = re.compile(r"[.!?…" + _CJK_TERMINALS + r"]+[" + re.escape(_CLOSERS) + r"]*")
_WORD = re.compile(r"[" + _CJK + r"]|[^\s" + _CJK + r"]+")
_NEWLINE = re.compile(r"\n")
_NEXT_VISIBLE = re.compile(r"\s*(\S)")


def split_sentences(text: str, start: int = 0, end: int | None = None, wrapped: bool = True) -> list[Span]:
    """Return sentence spans covering the non-blank text of ``text[start:end]``.

    Breaks at blank lines, after terminal punctuation followed by white space or
    directly by a capital letter ("trust.Russia's"), and at a line break that is
    followed by a capital letter, quote, digit or bullet, unless the line before
    it was wrapped at a margin (``_wrapped``): in hard-wrapped mail "Australia and
    New\nZealand." is one sentence. ``wrapped=False`` says no line is wrapped (the
    rows of a sheet, the shapes of a slide: lines qa wrote one per item). Spans are
    trimmed of surrounding white space and never empty.
    """
    end = len(text) if end is None else end
    cuts = {start, end}
    for m in _PARAGRAPH.finditer(text, start, end):
        cuts.add(m.start())
        cuts.add(m.end())
    for m in _TERMINAL.finditer(text, start, end):
        if _ends_sentence(text, m.start(), m.end(), end):
            cuts.add(m.end())
    for m in _NEWLINE.finditer(text, start, end):
        pos = m.end()
        if pos < end and _starts_line_sentence(text[pos]) and not (
            wrapped and text[pos].isalpha() and _wrapped(text, m.start(), start)
        ):
            cuts.add(pos)
    spans = []
    ordered = sorted(cuts)
    for a, b in zip(ordered, ordered[1:]):
        span = _trim(text, a, b)
        if span:
            spans.append(span)
    return spans


def _ends_sentence(text: str, p_start: int, p_end: int, limit: int) -> bool:
    # Look only at the neighbourhood: slicing to the ends of a 50 MB text per
    # period would make splitting quadratic.
    nxt = text[p_end] if p_end < limit else ""
    if nxt == "" or any(c in _CJK_TERMINALS for c in text[p_start:p_end]):
        return True
    if nxt.isspace():
        following = _NEXT_VISIBLE.match(text, p_end, limit)
        if following and following.group(1).islower():
            return False  # "... that with", "e.g. this"
    elif not nxt.isupper():
        return False  # "5.5", "U.S.-led", "example.com"
    if text[p_start] != ".":
        return True
    before = text[max(0, p_start - 40) : p_start].rsplit(None, 1)
    word = before[-1] if before else ""
    word = word.lstrip(_CLOSERS + "([«“‘").lower()
    if word in _ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "George W. Bush"
    if re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
        return False  # "U.S." before a capital letter is usually mid-sentence
    return True


#: A line at least this long that ends without punctuation was wrapped at a margin (mail wraps at 72-78).
WRAPPED_LINE_CHARS = 45
_LINE_END_PUNCTUATION = frozenset(".!?:;…" + _CJK_TERMINALS + _CLOSERS)


def _wrapped(text: str, newline: int, start: int) -> bool:
    """Say whether the line ending at ``newline`` was wrapped mid-sentence: long, and not ended by punctuation."""
    line_start = text.rfind("\n", start, newline) + 1 or start
    line = text[max(line_start, start) : newline].rstrip()
    return len(line) >= WRAPPED_LINE_CHARS and line[-1:] not in _LINE_END_PUNCTUATION


def _starts_line_sentence(char: str) -> bool:
    return char.isupper() or char.isdigit() or char in "\"“‘«'-–—•*#["


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def word_count(text: str, span: Span) -> int:
    """Count the words of ``text[span]``: white-space separated, or one per ideograph or kana."""
    return len(_WORD.findall(text, span[0], span[1]))


def split_long(
    text: str, span: Span, max_words: int, overlap_words: int, max_chars: int, overlap_chars: int | None = None
) -> list[Span]:
    """Cut a sentence longer than ``max_words`` or ``max_chars`` into overlapping word windows.

    Consecutive windows share at most ``overlap_words`` words and ``overlap_chars``
    characters (default: all ``max_chars``). A word longer than ``max_chars`` (a run
    with no spaces) is cut into pieces of that size.
    """
    if span[1] - span[0] <= min(max_words, max_chars):
        return [span]  # every word takes at least one character: it fits
    words = [piece for m in _WORD.finditer(text, span[0], span[1]) for piece in _pieces(m.span(), max_chars)]
    if len(words) <= max_words and span[1] - span[0] <= max_chars:
        return [span]
    overlap_chars = max_chars if overlap_chars is None else overlap_chars
    out = []
    i = 0
    while True:
        j = i + 1
        while j < len(words) and j - i < max_words and words[j][1] - words[i][0] <= max_chars:
            j += 1
        out.append((words[i][0], words[j - 1][1]))
        if j >= len(words):
            return out
        # Step back at most overlap_words words, and no further than overlap_chars characters:
        # 40 words of URLs or digests are most of a window, and made every window a near copy.
        k = max(i + 1, j - overlap_words)
        while k < j and words[j - 1][1] - words[k][0] > overlap_chars:
            k += 1
        i = k


def _pieces(span: Span, size: int) -> list[Span]:
    """Cut ``span`` into consecutive pieces of at most ``size`` characters."""
    return [(a, min(a + size, span[1])) for a in range(span[0], span[1], size)]


def units(
    text: str, start: int = 0, end: int | None = None, chunking: ChunkSettings = DEFAULT, wrapped: bool = True
) -> list[Span]:
    """Return the sentences of ``text[start:end]``, overlong ones cut into word windows.

    These are the building blocks of passages, and what gets highlighted. ``wrapped``
    as for ``split_sentences``.
    """
    out: list[Span] = []
    for sentence in split_sentences(text, start, end, wrapped):
        out.extend(
            split_long(text, sentence, chunking.max_words, chunking.overlap_words, chunking.max_chars, chunking.overlap_chars)
        )
    return out


def chunk(text: str, start: int = 0, end: int | None = None, chunking: ChunkSettings = DEFAULT) -> list[Span]:
    """Group the sentences of ``text[start:end]`` into passage windows.

    Each window starts at a sentence boundary; the next window repeats the
    trailing sentences of the previous one that fit in ``overlap_words`` but
    always moves forward by at least one sentence.

    Returns:
        Passage spans in document order.
    """
    return windows(text, units(text, start, end, chunking), chunking)


def windows(text: str, spans: list[Span], chunking: ChunkSettings = DEFAULT) -> list[Span]:
    """Group consecutive ``spans`` (from ``units``) into overlapping windows of at most ``max_words`` and ``max_chars``."""
    max_words, overlap_words, max_chars = chunking.max_words, chunking.overlap_words, chunking.max_chars
    overlap_chars = chunking.overlap_chars
    counts = [word_count(text, u) for u in spans]
    out: list[Span] = []
    i = 0
    while i < len(spans):
        j, total = i, 0
        while j < len(spans) and (
            j == i or (total + counts[j] <= max_words and spans[j][1] - spans[i][0] <= max_chars)
        ):
            total += counts[j]
            j += 1
        out.append((spans[i][0], spans[j - 1][1]))
        if j == len(spans):
            break
        # Carry over trailing sentences that fit the overlap budget, in words and in characters,
        # and leave room for the next one.
        k, carried = j, 0
        while (
            k - 1 > i
            and carried + counts[k - 1] <= overlap_words
            and spans[j - 1][1] - spans[k - 1][0] <= overlap_chars
            and spans[j][1] - spans[k - 1][0] <= max_chars
        ):
            carried += counts[k - 1]
            k -= 1
        i = k
    return out
