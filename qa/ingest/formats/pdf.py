"""PDF with pypdfium2 (PDFium, BSD/Apache): one text layer, page start offsets, info/XMP metadata.

PDFium reports each visual line ending as ``\\r\\n``. Lines are joined back into
paragraphs from their geometry: a line that starts within ``PARAGRAPH_GAP`` line
heights of the one above continues its paragraph (joined by a space), a wider gap
starts a new one (a blank line). So the chunker sees sentences, not print lines.
Pages are joined by a blank line; ``pages[i]`` is where page ``i + 1`` starts.

A page with no text layer (a scan) is rendered and read by OCR (``ocr.py``) when
the engine is installed, within the file's time limit; the notes say which pages
and what OCR made of them. A PDF with no text at all because OCR ran out of time
or memory is skipped as transient (read again next build); when some pages were
read, the document is indexed with a note naming the pages left. A damaged
document-info dictionary costs the fields it holds, not the text.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from . import ocr
from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, date_prefix

#: Baseline-to-baseline distance, in line heights, past which a new paragraph starts.
#: Body text set at line-height 1.5 sits at ~1.3 loose glyph heights; a paragraph margin adds ~0.9.
PARAGRAPH_GAP = 1.7
#: A line whose glyphs are this much taller or shorter than the line above starts a paragraph (a heading).
FONT_CHANGE = 0.15
#: PDFium's stand-in for a hyphen that ends a line.
HYPHEN_BREAK = "\ufffe"
_LINE_END = re.compile("\r\n|" + HYPHEN_BREAK)
PAGE_BREAK = "\n\n"
# PDF date strings: D:YYYYMMDDHHmmSS+HH'mm' (everything after the year optional).
_XMP = re.compile(rb"<x:xmpmeta.{0,65536}?</x:xmpmeta>", re.S)
_XMP_FIELDS = {
    "title": re.compile(r"<dc:title>.*?<rdf:li[^>]*>(.*?)</rdf:li>", re.S),
    "author": re.compile(r"<dc:creator>.*?<rdf:li[^>]*>(.*?)</rdf:li>", re.S),
    "date": re.compile(r"<xmp:CreateDate>(.*?)</xmp:CreateDate>|xmp:CreateDate=\"([^\"]*)\"", re.S),
}
#: Bytes at the start and end of a file searched for an XMP packet (the XMP spec asks for it uncompressed;
#: a compressed one is not read).
XMP_WINDOW = 1 << 20


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract the text layer page by page; a PDF with no text on any page is unreadable."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise UnreadableDocument("encrypted PDF (needs a password)") from None
        raise UnreadableDocument(f"corrupt PDF ({_reason(exc)})") from None
    try:
        return _read_open(pdf, data, limits)
    finally:
        pdf.close()


def _reason(exc: Exception) -> str:
    """PDFium's words without pypdfium2's wrapping: "Failed to load document (PDFium: X)." becomes "PDFium: X"."""
    text = str(exc).strip().removeprefix("Failed to load document").strip().rstrip(".").strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text or type(exc).__name__


def _read_open(pdf, data: bytes, limits: Limits) -> Extracted:
    count = len(pdf)
    if count == 0:
        raise UnreadableDocument("PDF has no pages")
    start = time.monotonic()
    texts = _page_texts(pdf, count, limits, start)
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    notes: list[str] = []
    if empty:
        done = _read_by_ocr(pdf, texts, empty, limits, ocr.deadline_for(limits, start))
        check_chars(sum(len(text) + len(PAGE_BREAK) for text in texts), limits)
        if not any(text.strip() for text in texts):
            # A verdict on the file, unless OCR ran out of time or memory first: then it is read again next build.
            raise UnreadableDocument(done.unreadable, transient=done.transient)
        notes.extend(done.notes)
    if count > limits.max_pages:
        notes.append(f"read the first {limits.max_pages} of {count} pages (page limit)")
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + len(PAGE_BREAK)
    meta, meta_notes = _metadata(pdf, data)
    return Extracted(text=PAGE_BREAK.join(texts), format="pdf", pages=tuple(starts), notes=(*notes, *meta_notes),
                     **meta)


def _page_texts(pdf, count: int, limits: Limits, start: float) -> list[str]:
    """Each page's text layer, up to the page limit, within the file's time and character limits."""
    deadline = start + limits.max_seconds
    texts: list[str] = []
    size = 0
    for index in range(min(count, limits.max_pages)):
        if time.monotonic() > deadline:
            raise UnreadableDocument(f"took longer than {limits.max_seconds:g} s (at page {index + 1} of {count})",
                                     transient=True)
        page = pdf[index]
        try:
            text = page_text(page)
        finally:
            page.close()
        size += len(text) + len(PAGE_BREAK)
        check_chars(size, limits)
        texts.append(text)
    return texts


@dataclass(frozen=True)
class _ScansRead:
    """What became of the pages without a text layer: notes for the document, and the reason if none had text."""

    notes: list[str]
    #: The reason the file is skipped when no page has text at all.
    unreadable: str
    #: True when OCR stopped for want of time or memory: then a skip is not a verdict on the file.
    transient: bool = False


def _read_by_ocr(pdf, texts: list[str], empty: list[int], limits: Limits, deadline: float) -> _ScansRead:
    """OCR the pages without a text layer (0-based ``empty``) into ``texts``, and say what it did."""
    try:
        done = ocr.ocr_pdf_pages(pdf, empty, limits, deadline)
    except ocr.NotInstalled:
        pages = [i + 1 for i in empty]
        notes = [f"{_page_ranges(pages)} {_verb(pages, 'has', 'have')} no text layer (scanned?): "
                 f"to read {_verb(pages, 'it', 'them')} by OCR, {ocr.INSTALL_HINT}"]
        return _ScansRead(notes, f"no text layer: scanned PDF? (to read it by OCR: {ocr.INSTALL_HINT})")
    for index, text in zip(empty, done.texts):
        texts[index] = text
    read = [i + 1 for i, text in zip(empty, done.texts) if text.strip()]
    blank = [i + 1 for i, text in zip(empty, done.texts) if not text.strip()]
    left = [i + 1 for i in empty[len(done.texts):]]
    notes = []
    if read:
        notes.append(f"{_page_ranges(read)} read by OCR")
    if blank:
        notes.append(f"{_page_ranges(blank)} {_verb(blank, 'has', 'have')} no text layer and OCR found no text "
                     f"on {_verb(blank, 'it', 'them')}")
    if not left:
        return _ScansRead(notes, "no text layer, and OCR found no text")
    # "time limit", or the engine's own failure ("OCR failed (out of memory)"): each said once, unnested.
    why = done.stopped if done.stopped.startswith("OCR") else f"OCR stopped ({done.stopped})"
    notes.append(f"{_page_ranges(left)} {_verb(left, 'has', 'have')} no text layer and "
                 f"{_verb(left, 'was', 'were')} not read: {why}")
    return _ScansRead(notes, f"no text layer, and {why}", done.transient)


def page_text(page) -> str:
    """Return one page's text with print lines joined into paragraphs."""
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        raw = textpage.get_text_range(0, count) if count > 0 else ""
        if len(raw) != count:
            # Index and text disagree (rare: PDFium expands some glyphs): keep the lines as they are.
            return raw.replace("\r\n", "\n").strip()
        return _paragraphs(textpage, raw).strip()
    finally:
        textpage.close()


def _paragraphs(textpage, raw: str) -> str:
    """Join print lines: a space within a paragraph, a blank line between paragraphs.

    PDFium ends a line with ``\\r\\n``, or marks a line that ends in a hyphen with
    U+FFFE in place of the hyphen; the hyphen is kept and the line joined without a space.
    """
    out: list[str] = []
    previous = None  # (baseline, height) of the line above
    for start, line, hyphen in _lines(raw):
        text = line.strip()
        if not text:
            continue
        bottom, height = _line_box(textpage, start, line)
        if previous is not None:
            gap = previous[0] - bottom  # PDF y grows upwards: the next line is lower
            resized = abs(height - previous[1]) > FONT_CHANGE * previous[1]
            if gap <= 0 or gap > PARAGRAPH_GAP * previous[1] or resized:
                out.append("\n\n")
            elif not out[-1].endswith("-"):
                out.append(" ")
        out.append(text + ("-" if hyphen else ""))
        previous = (bottom, height)
    return "".join(out)


#: Characters of a line whose boxes say its baseline and height.
LINE_SAMPLE = 9


def _line_box(textpage, start: int, line: str) -> tuple[float, float]:
    """Return a print line's baseline and height: the median over its first visible characters.

    One glyph says too little: a ligature ("fi") or a small capital that opens a line has
    a shorter box, and the line then read as a change of font, a new paragraph mid-sentence.
    """
    lead = len(line) - len(line.lstrip())
    boxes = [textpage.get_charbox(start + i, loose=True) for i in range(lead, len(line)) if not line[i].isspace()]
    boxes = boxes[:LINE_SAMPLE] or [textpage.get_charbox(start + lead, loose=True)]
    bottoms = sorted(box[1] for box in boxes)
    heights = sorted(max(box[3] - box[1], 1e-3) for box in boxes)
    return bottoms[len(bottoms) // 2], heights[len(heights) // 2]


def _lines(raw: str):
    """Yield (start index, line, ends in a hyphen) for each print line of ``raw``."""
    start = 0
    for m in _LINE_END.finditer(raw):
        yield start, raw[start:m.start()], m.group() == HYPHEN_BREAK
        start = m.end()
    yield start, raw[start:], False


def _page_ranges(pages: list[int]) -> str:
    """'page 3' / 'pages 3-4, 7', for a note."""
    runs: list[list[int]] = []
    for n in pages:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    text = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
    return f"page {text}" if len(pages) == 1 else f"pages {text}"


def _verb(pages: list[int], one: str, many: str) -> str:
    return one if len(pages) == 1 else many


#: Document-info keys read, by the field each gives (``Extracted``'s names).
INFO_KEYS = {"title": "Title", "author": "Author", "date": "CreationDate", "url": "URL"}


def _metadata(pdf, data: bytes) -> tuple[dict, list[str]]:
    """Title, author and creation date from the document info, else from the XMP packet; URL from info.

    Returns the fields and a note when the document info cannot be read: a damaged info
    dictionary (say, a title in broken UTF-16) costs those fields, never the text.
    """
    info: dict[str, str | None] = {}
    broken = []
    for field, key in INFO_KEYS.items():
        try:
            info[field] = pdf.get_metadata_value(key)
        except Exception:  # PDFium's or the UTF-16 decoder's error: whatever it is, only this field is lost
            broken.append(key)
    xmp = _xmp(data)
    url = clean_field(info.get("url"))
    meta = {
        "title": clean_field(info.get("title")) or xmp.get("title"),
        "author": clean_field(info.get("author")) or xmp.get("author"),
        "date": pdf_date(info.get("date")) or pdf_date(xmp.get("date")),
        "url": url if url and url.startswith(("http://", "https://")) else None,
    }
    return meta, [f"metadata unreadable ({', '.join(broken)} in the document info)"] if broken else []


def _xmp(data: bytes) -> dict[str, str]:
    """Read dc:title, dc:creator and xmp:CreateDate from an uncompressed XMP packet, if any."""
    for window in (data[:XMP_WINDOW], data[-XMP_WINDOW:]):
        match = _XMP.search(window)
        if match:
            packet = match.group().decode("utf-8", "replace")
            found = {}
            for field, pattern in _XMP_FIELDS.items():
                m = pattern.search(packet)
                if m:
                    value = clean_field(next(g for g in m.groups() if g is not None))
                    if value:
                        found[field] = value
            return found
    return {}


def pdf_date(value: str | None) -> str | None:
    """Turn a PDF date (``D:20240123093000+00'00'``) or an XMP date (``2024-01-23T...``) into YYYY-MM-DD."""
    return date_prefix(value)
