"""The question page: a plain GET form, so every results page has a shareable URL."""

from __future__ import annotations

import re

from flask import Blueprint, render_template, request

from qa.errors import BadRequest, QAError
from qa.ingest import page_of
from qa.records import parts
from qa.search import DEFAULT_K, MAX_QUESTION_CHARS
from qa.web import building, get_searcher, public_message, stale_reason

bp = Blueprint("pages", __name__)

K_CHOICES = (3, 5, 10, 20)
FILTERS = ("since", "until", "folder")
#: Above this many documents the source filter is a text box instead of a list to pick from.
MAX_PICKABLE = 500
#: Above this many (and up to MAX_PICKABLE) the list is offered as one types a name, not as a box to scroll.
MAX_LIST_BOX = 30
#: Questions suggested on the empty page, and newest documents offered to browse.
EXAMPLES = 3


def segments(text: str, highlights: list[list[int]]) -> list[tuple[str, bool]]:
    """Cut ``text`` into (piece, highlighted) runs; the template escapes each piece."""
    out, pos = [], 0
    for start, end in _merge_close(sorted(highlights), text):
        start, end = max(start, pos), min(end, len(text))
        if start >= end:
            continue
        if start > pos:
            out.append((text[pos:start], False))
        out.append((text[start:end], True))
        pos = end
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def _merge_close(spans: list[list[int]], text: str) -> list[list[int]]:
    """Join highlight spans separated only by white space, so the mark reads as one run."""
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and not text[merged[-1][1] : start].strip():
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


@bp.get("/")
def index():
    """Show the form, and the answer when there is a question."""
    question = request.args.get("q", "")
    k = request.args.get("k", str(DEFAULT_K))
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    filters["source"] = [s for s in request.args.getlist("source") if s.strip()]
    context = dict(question=question, k=k, filters=filters, k_choices=K_CHOICES, max_chars=MAX_QUESTION_CHARS,
                   building=building(checking=False))
    try:
        context["stale"] = stale_reason()
        # Questions seen to answer (a name the newest documents mention most), and those documents to browse:
        # a title asked as a question met "No close match" as often as not.
        context["examples"] = get_searcher().suggestions(EXAMPLES)
        context["newest"] = get_searcher().newest(EXAMPLES)
        # Offer the indexed documents to pick from, while the list stays a list one can scan.
        context["sources"] = get_searcher().sources(MAX_PICKABLE)
    except QAError:
        # No usable index: the search below, or the empty page, says so.
        context["stale"], context["examples"], context["newest"], context["sources"] = None, [], [], None
    sources = context["sources"]
    context["picker"] = "text" if sources is None else "list" if len(sources) <= MAX_LIST_BOX else "typed"
    if "q" not in request.args:
        return render_template("index.html", **context)
    try:
        # The mode is checked as the API checks it: "semantic" is a 400 here too, never a silent default.
        answer = get_searcher().search(question, k, mode=request.args.get("mode"), **filters).as_dict()
    except QAError as exc:
        return render_template("index.html", error=public_message(str(exc)), **context), exc.status
    for result in answer["results"]:
        result["segments"] = segments(result["text"], result["highlights"])
        result["best_span"] = "-".join(map(str, result["highlights"][0])) if result["highlights"] else None
        result["safe_url"] = result["url"] if (result["url"] or "").startswith(("https://", "http://")) else None
    return render_template("index.html", answer=answer, **context)


#: Characters of the text layer shown on each side of a passage in its document view.
CONTEXT_CHARS = 3000


@bp.get("/document")
def document():
    """Show a passage inside its document's text layer: the passage and its best sentence highlighted,
    page boundaries marked, with a link back to the answers of the question that led here."""
    args = request.args
    unknown = sorted(set(args) - {"source", "start", "end", "q", "hl"})
    if unknown:
        raise BadRequest(f"unknown query parameter: {', '.join(unknown)}")
    searcher = get_searcher()
    span = searcher.document(args.get("source", ""), args.get("start"), args.get("end"))
    around = (max(0, span["start"] - CONTEXT_CHARS), min(span["length"], span["end"] + CONTEXT_CHARS))
    whole = searcher.document(span["source"], *around)
    sentence = _sentence_span(args.get("hl"), span)
    marks = [(span["start"], span["end"], "passage")] + ([(*sentence, "sentence")] if sentence else [])
    question = args.get("q", "")
    return render_template(
        "document.html", doc=span, pieces=layer_pieces(whole["text"], whole["start"], span["pages"], marks),
        page=page_of(span["pages"], span["start"]), page_end=page_of(span["pages"], max(span["start"], span["end"] - 1)),
        sentence_page=page_of(span["pages"], sentence[0]) if sentence else None,
        clipped_before=whole["start"] > 0, clipped_after=whole["end"] < span["length"],
        question=question if 0 < len(question) <= MAX_QUESTION_CHARS else None,
    )


def _sentence_span(value: str | None, span: dict) -> tuple[int, int] | None:
    """Read ``hl=a-b`` (offsets into the passage) as a span of the layer; None when absent or not inside it."""
    match = re.fullmatch(r"([0-9]{1,9})-([0-9]{1,9})", value or "")
    if not match:
        return None
    a, b = (span["start"] + int(n) for n in match.groups())
    return (a, b) if span["start"] <= a < b <= span["end"] else None


def layer_pieces(text: str, offset: int, pages: list[int], marks: list[tuple[int, int, str]]) -> list[tuple[str, str, bool]]:
    """Cut ``text`` (the layer from ``offset``) into (piece, kind, inside the passage) runs for the template.

    Kinds: "" plain, "sentence" (the best sentence), and "page" (no text: the number
    of the page that starts there).
    """
    cuts = {0, len(text)}
    for start, end, _ in marks:
        cuts.update((min(max(start - offset, 0), len(text)), min(max(end - offset, 0), len(text))))
    starts = {p - offset: n for n, p in enumerate(pages, 1) if offset < p < offset + len(text)}
    cuts.update(starts)
    pieces = []
    ordered = sorted(cuts)
    for a, b in zip(ordered, ordered[1:]):
        kinds = {kind for start, end, kind in marks if start - offset <= a and b <= end - offset}
        if a in starts:
            pieces.append((str(starts[a]), "page", "passage" in kinds))
        pieces.append((text[a:b], "sentence" if "sentence" in kinds else "", "passage" in kinds))
    return pieces


#: Documents (and skipped files) per page of /documents.
PAGE = 100


bp.add_app_template_filter(parts, "parts")  # "1 page", "3 slides", "1 sheet": qa.records counts them


@bp.get("/documents")
def documents():
    """List what is indexed, and what was skipped and why, a page at a time."""
    folder = request.args.get("folder", "").strip()
    catalogue = get_searcher().documents(folder, request.args.get("offset"), PAGE)
    offset = catalogue["offset"]
    most = max(catalogue["total_documents"], catalogue["total_skipped"])
    pages = {
        "previous": max(0, offset - PAGE) if offset > 0 else None,
        "next": offset + PAGE if offset + PAGE < most else None,
    }
    return render_template("documents.html", folder=folder, pages=pages, **catalogue)
