"""PDF with pypdfium2 (PDFium, BSD/Apache): one text layer, page start offsets, info/XMP metadata.

PDFium reports each visual line ending as ``\\r\\n``. Lines are joined back into
paragraphs from their geometry: a line that starts within ``PARAGRAPH_GAP`` line
heights of the one above continues its paragraph (joined by a space), a wider gap
starts a new one (a blank line). So the chunker sees sentences, not print lines.
Pages are joined by a blank line; ``pages[i]`` is where page ``i + 1`` starts.

A page with no text layer (a scan) is rendered and read by OCR (``ocr.py``) when
the engine is installed, within the file's time limit; the notes say which pages.
"""

from __future__ import annotations

import re
import time

from . import ocr
from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field

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
_PDF_DATE = re.compile(r"(?:D:)?(\d{4})(\d{2})?(\d{2})?")
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
    return str(exc).replace("Failed to load document ", "").strip("()") or type(exc).__name__


def _read_open(pdf, data: bytes, limits: Limits) -> Extracted:
    count = len(pdf)
    if count == 0:
        raise UnreadableDocument("PDF has no pages")
    start = time.monotonic()
    deadline = start + limits.max_seconds
    texts: list[str] = []
    size = 0
    for index in range(min(count, limits.max_pages)):
        if time.monotonic() > deadline:
            raise UnreadableDocument(f"took longer than {limits.max_seconds:g} s (at page {index + 1} of {count})")
        page = pdf[index]
        try:
            text = page_text(page)
        finally:
            page.close()
        size += len(text) + len(PAGE_BREAK)
        check_chars(size, limits)
        texts.append(text)
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    notes, why = _read_by_ocr(pdf, texts, empty, limits, ocr.deadline_for(limits, start)) if empty else ([], "")
    check_chars(sum(len(text) + len(PAGE_BREAK) for text in texts), limits)
    if not any(text.strip() for text in texts):
        raise UnreadableDocument(f"no text layer: scanned PDF? ({why})")
    if count > limits.max_pages:
        notes.append(f"read the first {limits.max_pages} of {count} pages (page limit)")
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + len(PAGE_BREAK)
    meta = _metadata(pdf, data)
    return Extracted(text=PAGE_BREAK.join(texts), format="pdf", pages=tuple(starts), notes=tuple(notes), **meta)


def _read_by_ocr(pdf, texts: list[str], empty: list[int], limits: Limits, deadline: float) -> tuple[list[str], str]:
    """OCR the pages without a text layer (0-based ``empty``) into ``texts``.

    Returns notes saying which pages were read, and why none were, for the error when no page has text.
    """
    try:
        done = ocr.ocr_pdf_pages(pdf, empty, limits, deadline)
    except ocr.NotInstalled:
        notes = [f"{_page_ranges([i + 1 for i in empty])} no text layer (scanned?)"]
        return notes, f"to read it by OCR: {ocr.INSTALL_HINT}"
    for index, text in zip(empty, done.texts):
        texts[index] = text
    read = [i + 1 for i, text in zip(empty, done.texts) if text.strip()]
    blank = [i + 1 for i, text in zip(empty, done.texts) if not text.strip()]
    left = [i + 1 for i in empty[len(done.texts):]]
    notes = []
    if read:
        notes.append(f"{_page_ranges(read)} no text layer: read by OCR")
    if blank:
        notes.append(f"{_page_ranges(blank)} no text layer (scanned?)")
    if left:
        notes.append(f"{_page_ranges(left)} no text layer, not read by OCR ({done.stopped})")
    return notes, f"not read by OCR: {done.stopped}" if left else "OCR found no text"


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
    """'page 3 has' / 'pages 3-4, 7 have', for a note."""
    runs: list[list[int]] = []
    for n in pages:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    text = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
    return f"page {text} has" if len(pages) == 1 else f"pages {text} have"


def _metadata(pdf, data: bytes) -> dict:
    """Title, author and creation date from the document info, else from the XMP packet; URL from info."""
    info = pdf.get_metadata_dict(skip_empty=True)
    xmp = _xmp(data)
    url = clean_field(pdf.get_metadata_value("URL"))
    return {
        "title": clean_field(info.get("Title")) or xmp.get("title"),
        "author": clean_field(info.get("Author")) or xmp.get("author"),
        "date": pdf_date(info.get("CreationDate")) or pdf_date(xmp.get("date")),
        "url": url if url and url.startswith(("http://", "https://")) else None,
    }


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
    if not value:
        return None
    value = value.strip()
    iso = re.match(r"(\d{4})-(\d{2})-(\d{2})", value)
    match = iso or _PDF_DATE.match(value)
    if not match or not match.group(2) or not match.group(3):
        return None
    from datetime import date

    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3))).isoformat()
    except ValueError:
        return None
