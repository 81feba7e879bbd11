"""Keep one copy of passages that repeat the same text."""

from __future__ import annotations

import re
from typing import Callable, Sequence

from qa.records import Passage

#: Words per shingle: long enough that shared phrases, not shared words, make a duplicate.
SHINGLE = 4
#: Share of the shorter passage's shingles found in the other that makes it a duplicate.
CONTAINMENT = 0.5
#: Within one file, a shared run of this many words is the document repeating itself.
REPEATED_RUN = 12
#: Overlapping windows of one file whose scores differ by less than this are tied: the
#: int8 and fp32 encoders move a window's score by up to about 0.01.
TIE = 0.01
#: How far below a window an overlapping one may score and still take its place, when the window's best
#: sentence opens it and refers back ("This, I emphasize, was the condition"): the window holding the
#: sentence before it scores lower for that sentence's words, not for being a worse answer.
REFERRING_REACH = 0.1
#: Words that open a sentence leaning on the one before it.
REFERRING = re.compile(r"\W*(this|that|these|those|it|its|he|she|they|their|such|there|then|so|but|however)\b",
                       re.IGNORECASE)
_WORD = re.compile(r"\w+")


def overlaps(a: Passage, b: Passage) -> bool:
    """Return True when two passages of one file share any characters."""
    return a.source == b.source and min(a.end, b.end) > max(a.start, b.start)


def shingles(text: str, n: int = SHINGLE) -> frozenset[tuple[str, ...]]:
    """Return the set of lower-cased ``n``-word runs of ``text`` (all its words if shorter)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset([tuple(words)]) if words and n == SHINGLE else frozenset()
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def containment(a: frozenset, b: frozenset) -> float:
    """Share of the smaller shingle set contained in the other (Broder, "On the resemblance
    and containment of documents", 1997)."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & large) / len(small) if small else 0.0


def is_duplicate(a: Passage, b: Passage, sa: frozenset, sb: frozenset) -> bool:
    """Return True when ``b`` would show the reader text ``a`` already showed.

    Within one file: any overlap of the spans (neighbouring windows share a
    sentence), or any shared run of ``REPEATED_RUN`` words (a document that
    carries its article twice). Across files: most of the shorter passage
    repeated (the same wire story); two outlets quoting one line of an
    interview stay, as two sources.
    """
    if a.source == b.source:
        if overlaps(a, b):
            return True
        if shingles(a.text, REPEATED_RUN) & shingles(b.text, REPEATED_RUN):
            return True
    return containment(sa, sb) >= CONTAINMENT


def keep_distinct(ranked: Sequence[Passage], k: int) -> list[int]:
    """Return indexes into ``ranked`` of the first ``k`` passages that duplicate no better one."""
    kept: list[int] = []
    kept_shingles: list[frozenset] = []
    for i, passage in enumerate(ranked):
        s = shingles(passage.text)
        if any(is_duplicate(passage, ranked[j], s, sj) for j, sj in zip(kept, kept_shingles)):
            continue
        kept.append(i)
        kept_shingles.append(s)
        if len(kept) == k:
            break
    return kept


def context(span: tuple[int, int], passage: Passage) -> int:
    """Return the characters ``passage`` shows on the thinner side of the document span
    ``span``, or -1 when the span is not inside it."""
    start, end = span
    if start < passage.start or end > passage.end:
        return -1
    return min(start - passage.start, passage.end - end)


def best_context(
    kept: list[int],
    ranked: Sequence[Passage],
    scores: Sequence[float],
    best_sentence: Callable[[list[int]], tuple[int, int] | None],
    tie: float = TIE,
    reach: float = REFERRING_REACH,
) -> list[int]:
    """Swap each kept window for an overlapping one that shows its best sentence in more context; return the
    kept indexes best score first.

    Windows overlap so that a sentence near one window's edge sits inside the next.
    When two such windows tie (scores within ``tie``), the score cannot tell them apart,
    but the reader can: the window that has the most text on the thinner side of the
    best-matching sentence wins, and the higher-ranked one keeps the place on a draw.
    A window whose best sentence opens it and refers back ("This was the condition")
    shows no answer without the sentence before it: a window within ``reach`` that holds
    that sentence and the one before takes its place. ``best_sentence`` gives the document
    span of the best-matching sentence of a group of windows (indexes into ``ranked``), or
    None when there are no sentence vectors to go by (the ranking stands).
    """
    chosen = list(kept)
    for slot, i in enumerate(kept):
        near = [
            j
            for j in range(len(ranked))
            if j not in chosen and overlaps(ranked[i], ranked[j]) and abs(scores[j] - scores[i]) < max(tie, reach)
        ]
        others = [(ranked[j], shingles(ranked[j].text)) for j in chosen if j != i]
        rivals = [
            j
            for j in near
            if not any(is_duplicate(ranked[j], o, shingles(ranked[j].text), so) for o, so in others)
        ]
        tied = [j for j in rivals if abs(scores[j] - scores[i]) < tie]
        if tied:
            group = [i, *tied]
            span = best_sentence(group)
            if span is not None:
                chosen[slot] = max(group, key=lambda j: (context(span, ranked[j]), j == i))
        elif rivals:
            span = best_sentence([i])
            if span is not None and _refers_back(span, ranked[i]):
                before = [j for j in rivals if ranked[j].start < span[0] and context(span, ranked[j]) >= 0]
                if before:
                    chosen[slot] = min(before, key=lambda j: (-scores[j], j))
    return sorted(chosen, key=lambda j: (-scores[j], j))


def _refers_back(span: tuple[int, int], passage: Passage) -> bool:
    """Whether the sentence at document ``span`` opens ``passage`` and leans on the sentence before it."""
    offset = span[0] - passage.start
    return passage.text[:offset].strip() == "" and leans_back(passage.text, offset)


def leans_back(text: str, start: int) -> bool:
    """Whether the sentence of ``text`` opening at ``start`` leans on the one before it ("This was the condition")."""
    return REFERRING.match(text, start) is not None
