"""The question page: a plain GET form, so every results page has a shareable URL."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from qa.errors import QAError
from qa.ingest import page_of
from qa.search import DEFAULT_K, MAX_QUESTION_CHARS
from qa.web import get_searcher, public_message, stale_reason

bp = Blueprint("pages", __name__)

K_CHOICES = (3, 5, 10, 20)
FILTERS = ("since", "until", "folder")
#: Above this many documents the source filter is a text box instead of a list to pick from.
MAX_PICKABLE = 500
#: Document titles offered as example questions on the empty page.
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
    context = dict(question=question, k=k, filters=filters, k_choices=K_CHOICES, max_chars=MAX_QUESTION_CHARS)
    try:
        context["stale"] = stale_reason()
        # The collection's own newest titles: a title is a fair question about its document.
        context["examples"] = get_searcher().example_questions(EXAMPLES)
        # Offer the indexed documents to pick from, while the list stays a list one can scan.
        context["sources"] = get_searcher().sources(MAX_PICKABLE)
    except QAError:
        # No usable index: the search below, or the empty page, says so.
        context["stale"], context["examples"], context["sources"] = None, [], None
    if "q" not in request.args:
        return render_template("index.html", **context)
    try:
        answer = get_searcher().search(question, k, **filters).as_dict()
    except QAError as exc:
        return render_template("index.html", error=public_message(str(exc)), **context), exc.status
    for result in answer["results"]:
        result["segments"] = segments(result["text"], result["highlights"])
        result["safe_url"] = result["url"] if (result["url"] or "").startswith(("https://", "http://")) else None
    return render_template("index.html", answer=answer, **context)


#: Characters of the text layer shown on each side of a passage in its document view.
CONTEXT_CHARS = 3000


@bp.get("/document")
def document():
    """Show a passage inside its document's text layer, highlighted, with the text around it."""
    source, start, end = (request.args.get(name) for name in ("source", "start", "end"))
    searcher = get_searcher()
    span = searcher.document(source if source is not None else "", start, end)
    around = (max(0, span["start"] - CONTEXT_CHARS), min(span["length"], span["end"] + CONTEXT_CHARS))
    whole = searcher.document(span["source"], *around)
    before = whole["text"][: span["start"] - whole["start"]]
    after = whole["text"][span["end"] - whole["start"] :]
    page = page_of(span["pages"], span["start"])
    return render_template(
        "document.html", doc=span, before=before, after=after, page=page,
        page_end=page_of(span["pages"], max(span["start"], span["end"] - 1)),
        clipped_before=whole["start"] > 0, clipped_after=whole["end"] < span["length"],
    )


#: Documents (and skipped files) per page of /documents.
PAGE = 100


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
