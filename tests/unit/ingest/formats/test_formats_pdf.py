"""PDF text layer: page start offsets, paragraphs rebuilt from print lines, pages without text."""

from __future__ import annotations

import pypdfium2 as pdfium
import pytest
from documents import tiny_pdf
from formats_support import FORMATS, SEEDS_PDF, squash

from qa.ingest.formats import UnreadableDocument, extract, ocr, page_of
from qa.ingest.formats.pdf import pdf_date


def _raw_pages(path) -> list[str]:
    """Oracle: PDFium's own text of each page, white space squashed."""
    pdf = pdfium.PdfDocument(path)
    try:
        return [squash(pdf[i].get_textpage().get_text_range().replace("\ufffe", "-")) for i in range(len(pdf))]
    finally:
        pdf.close()


def test_page_of_maps_offsets_to_pages():
    pages = (0, 10, 25)
    assert [page_of(pages, o) for o in (0, 9, 10, 24, 25, 999)] == [1, 1, 2, 2, 3, 3]
    assert page_of((), 5) is None


@pytest.mark.parametrize("path", sorted(SEEDS_PDF.glob("*.pdf")), ids=lambda p: p.name)
def test_dev_evidence_maps_to_the_page_that_prints_it(path, evidence):
    result = extract(path.name, path.read_bytes())
    raw = _raw_pages(path)
    assert len(result.pages) == len(raw) >= 1
    for sentence in evidence.get(path.stem, []):
        offset = squash(result.text).find(squash(sentence))
        assert offset >= 0, sentence
        # Map the squashed offset back to the text layer: squash the text up to each candidate offset.
        start = next(i for i in range(len(result.text)) if len(squash(result.text[:i + 1])) > offset)
        page = page_of(result.pages, start)
        assert squash(sentence)[:20] in raw[page - 1]


def test_each_page_slice_is_that_pages_text():
    path = SEEDS_PDF / "004_027c9bdda43207c8.pdf"
    result = extract(path.name, path.read_bytes())
    ends = list(result.pages[1:]) + [len(result.text)]
    for n, (start, end) in enumerate(zip(result.pages, ends)):
        words = squash(result.text[start:end]).split()
        assert " ".join(words[:6]) in _raw_pages(path)[n]


def test_print_lines_are_joined_into_paragraphs():
    result = extract("a.pdf", (SEEDS_PDF / "004_027c9bdda43207c8.pdf").read_bytes())
    # One paragraph wrapped over four print lines, one of them broken at the hyphen of "Anti-Ballistic".
    assert ("Lavrov noted former U.S. President George W. Bush's move to pull out from the Anti-Ballistic "
            "Missile (ABM) Treaty in 2002. The key arms-control agreement signed by the United States") in result.text
    assert "\r" not in result.text and "\ufffe" not in result.text
    assert result.text.startswith("Russian Foreign Minister: No Difference in Russia's Actions if Trump Elected\n\nBy Angeline Tan")


def _ocr_gives(monkeypatch, outcome):
    """Make OCR of a PDF's pages answer ``outcome(page indexes)``, or be missing when ``outcome`` is None."""
    def fake(pdf, indexes, limits, deadline):
        if outcome is None:
            raise ocr.NotInstalled(f"needs OCR, which is not installed: {ocr.INSTALL_HINT}")
        return outcome(indexes)

    monkeypatch.setattr(ocr, "ocr_pdf_pages", fake)


@pytest.mark.parametrize("outcome, note", [
    (None, "page 2 has no text layer (scanned?): to read it by OCR, pip install 'qa[ocr]'"),
    (lambda pages: ocr.PagesRead([""] * len(pages)), "page 2 has no text layer and OCR found no text on it"),
    (lambda pages: ocr.PagesRead(["Words OCR found."]), "page 2 read by OCR"),
    (lambda pages: ocr.PagesRead([], "time limit", transient=True),
     "page 2 has no text layer and was not read: OCR stopped (time limit)"),
], ids=["not-installed", "found-nothing", "read", "out-of-time"])
def test_page_without_text_is_noted_with_what_ocr_did(monkeypatch, outcome, note):
    _ocr_gives(monkeypatch, outcome)
    result = extract("m.pdf", (FORMATS / "blank-middle-page.pdf").read_bytes())
    assert result.notes == (note,)  # "(scanned?)" only where OCR could not look
    third = result.text.index("The third page has text again")
    assert page_of(result.pages, third) == 3
    assert page_of(result.pages, result.text.index("The first page")) == 1
    if note.endswith("read by OCR"):
        assert page_of(result.pages, result.text.index("Words OCR found.")) == 2


def test_pages_read_by_ocr_are_named_as_ranges(monkeypatch):
    _ocr_gives(monkeypatch, lambda pages: ocr.PagesRead([f"Scanned words {n}." for n in pages]))
    result = extract("s.pdf", tiny_pdf(["", "", "Typed page", ""]))
    assert result.notes == ("pages 1-2, 4 read by OCR",)


def test_pdf_without_any_text_layer_is_unreadable():
    with pytest.raises(UnreadableDocument, match="no text layer") as refused:
        extract("scan.pdf", (FORMATS / "no-text-layer.pdf").read_bytes())
    assert not refused.value.transient  # whether OCR found nothing or is not installed: a verdict on the file


@pytest.mark.parametrize("outcome, reason, transient", [
    (None, "no text layer: scanned PDF? (to read it by OCR: pip install 'qa[ocr]')", False),
    (lambda pages: ocr.PagesRead([""] * len(pages)), "no text layer, and OCR found no text", False),
    (lambda pages: ocr.PagesRead([""], "time limit", transient=True), "no text layer, and OCR stopped (time limit)",
     True),
    (lambda pages: ocr.PagesRead([], "OCR failed (out of memory)", transient=True),
     "no text layer, and OCR failed (out of memory)", True),
], ids=["not-installed", "found-nothing", "out-of-time", "out-of-memory"])
def test_a_scan_ocr_had_no_time_or_memory_for_is_a_transient_failure(monkeypatch, outcome, reason, transient):
    _ocr_gives(monkeypatch, outcome)
    with pytest.raises(UnreadableDocument) as refused:
        extract("scan.pdf", tiny_pdf(["", ""]))
    assert (str(refused.value), refused.value.transient) == (reason, transient)


def test_a_damaged_document_info_costs_the_metadata_not_the_text():
    # A title in broken UTF-16 (a lone surrogate): pypdfium2 raises decoding it, and the PDF used to be skipped.
    data = tiny_pdf(["First page of the report", "Second page"], b"<< /Title <FEFFD800> /Author (Ann Lee) >>")
    result = extract("damaged-info.pdf", data)
    assert result.text == "First page of the report\n\nSecond page" and result.pages == (0, 26)
    assert (result.title, result.author) == (None, "Ann Lee")
    assert result.notes == ("metadata unreadable (Title in the document info)",)


def test_a_pdf_pdfium_cannot_load_says_why_in_balanced_parentheses():
    with pytest.raises(UnreadableDocument) as refused:
        extract("garbage.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 64)
    assert str(refused.value) == "corrupt PDF (PDFium: Data format error)"  # was "... error).)"


def test_metadata_falls_back_to_the_xmp_packet():
    result = extract("x.pdf", (FORMATS / "xmp-only.pdf").read_bytes())
    # CreateDate 2023-06-30T18:45-07:00 is the 30th where it was made; ModifyDate (2024-02-01) is never used.
    assert (result.title, result.author, result.date) == ("Mixed pages, described in XMP", "Ada Example", "2023-06-30")


@pytest.mark.parametrize("raw,iso", [
    ("D:20240123093000+00'00'", "2024-01-23"),
    ("20240123", "2024-01-23"),
    ("2023-06-30T18:45:00-07:00", "2023-06-30"),
    ("D:2024", None),  # a year alone is not a date
    ("D:20241399", None),
    ("", None),
])
def test_pdf_dates(raw, iso):
    assert pdf_date(raw) == iso


class _TextPage:
    """Char boxes as PDFium gives them: each character (left, bottom, right, top), by index into ``raw``."""

    def __init__(self, lines: list[tuple[str, float, dict[int, float]]]):
        self.raw, self.boxes = "", []
        for n, (text, bottom, short) in enumerate(lines):
            for i, _ in enumerate(text):
                height = short.get(i, 10.0)
                self.boxes.append((0.0, bottom, 5.0, bottom + height))
            self.raw += text
            if n < len(lines) - 1:
                self.raw += "\r\n"
                self.boxes += [(0.0, bottom, 0.0, bottom), (0.0, bottom, 0.0, bottom)]

    def get_charbox(self, index, loose=False):
        return self.boxes[index]


def test_a_line_that_opens_with_a_ligature_stays_in_its_paragraph():
    from qa.ingest.formats.pdf import _paragraphs

    # The second line opens with an "fi" ligature whose box is 6 units tall against 10.
    page = _TextPage([("The committee agreed to the", 100.0, {}), ("final text of the treaty.", 88.0, {0: 6.0})])
    assert _paragraphs(page, page.raw) == "The committee agreed to the final text of the treaty."
    # A real change of size (a heading) still starts a paragraph.
    page = _TextPage([("Findings", 100.0, {i: 16.0 for i in range(8)}), ("The committee agreed.", 86.0, {})])
    assert _paragraphs(page, page.raw) == "Findings\n\nThe committee agreed."
