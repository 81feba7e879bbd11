"""PowerPoint, Excel, CSV, EPUB, OpenDocument text and Outlook .msg readers, on real files made for the tests.

The files come from tests/fixtures/documents.py: .pptx and .xlsx from
python-pptx and openpyxl, .msg from aspose-email-foss (so the reader is not
tested against its own idea of the format), EPUB and ODT packages zipped the
way their specs lay them out. LibreOffice, where installed, also converts one
ODT round trip.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime

import pytest
from documents import ODF_NS, make_csv, make_epub, make_msg, make_odt, make_pptx, make_xlsx

from qa.ingest.formats import epub, msg, odt, pptx, sheet
from qa.ingest.formats.base import DEFAULT_LIMITS, Limits, UnreadableDocument, page_of

SMALL = Limits(max_unpacked_bytes=8 << 20)


def _zip_bomb(member: str, first: tuple[str, bytes] | None = None) -> bytes:
    """A zip whose ``member`` inflates 64 MiB of zeros from ~64 KiB (after an optional stored first member)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if first:
            archive.writestr(zipfile.ZipInfo(first[0]), first[1], compress_type=zipfile.ZIP_STORED)
        with archive.open(member, "w") as out:
            for _ in range(64):
                out.write(b"\0" * (1 << 20))
    return buffer.getvalue()


def _ooxml_encrypted() -> bytes:
    """An OLE compound file as Office writes for a password-protected .pptx/.xlsx (its streams' names matter)."""
    from aspose.email_foss import cfb

    root = cfb.CFBStorage("Root Entry", children=[
        cfb.CFBStream("EncryptionInfo", b"\x04\x00\x04\x00\x40\x00\x00\x00" + b"\0" * 64),
        cfb.CFBStream("EncryptedPackage", b"\x00" * 4096),
    ])
    return cfb.CFBWriter.to_bytes(cfb.CFBDocument(root=root))


def _damaged(data: bytes, member: str) -> bytes:
    """The zip with bytes in the middle of ``member``'s compressed data overwritten (a bad CRC or inflate error)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(member)
    raw = bytearray(data)
    name_length, extra_length = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    middle = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
    raw[middle:middle + 8] = b"\xff\x00\xff\x00\xff\x00\xff\x00"
    return bytes(raw)


# --- PowerPoint -------------------------------------------------------------------------------------


def _pptx_with_table_and_notes() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])  # title only
    slide.shapes.title.text = "Budget by region"
    table = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate([("Region", "Budget"), ("North", "1.2m"), ("South", "0.8m")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    box = slide.shapes.add_textbox(Inches(1), Inches(5), Inches(6), Inches(1))
    box.text_frame.text = "Figures are provisional."
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(6), Inches(3), Inches(1)).text_frame.text = "Grouped caption"
    slide.notes_slide.notes_text_frame.text = "Mention the South's late filing."
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def test_pptx_reads_each_slide_in_order_as_a_page_with_core_properties():
    data = make_pptx(
        [("Opening", ["Why we meet"]), ("Second slide", ["Revenue rose 12 percent", "Costs fell\vsharply"]),
         ("Closing", ["Questions welcome"])],
        title="Quarterly review", author="Anna Berg", created=datetime(2024, 3, 5, 9, 30))
    result = pptx.read(data, DEFAULT_LIMITS)
    assert result.format == "pptx"
    assert (result.title, result.author, result.date) == ("Quarterly review", "Anna Berg", "2024-03-05")
    text = result.text
    assert text.index("Opening") < text.index("Why we meet") < text.index("Second slide") < text.index("Closing")
    assert "Revenue rose 12 percent\nCosts fell\nsharply" in text  # a paragraph a line; a soft break too
    assert len(result.pages) == 3
    for number, first in enumerate(["Opening", "Second slide", "Closing"], start=1):
        assert text.startswith(first, result.pages[number - 1])
    assert page_of(result.pages, text.index("sharply")) == 2
    assert page_of(result.pages, text.index("Questions welcome")) == 3


def test_pptx_reads_tables_text_boxes_and_speaker_notes():
    result = pptx.read(_pptx_with_table_and_notes(), DEFAULT_LIMITS)
    assert result.text.startswith("Budget by region")
    assert "Region\tBudget\nNorth\t1.2m\nSouth\t0.8m" in result.text
    text = result.text
    assert text.index("0.8m") < text.index("Figures are provisional.") < text.index("Grouped caption") < text.index("late filing")


def test_pptx_past_the_page_limit_is_read_up_to_it_with_a_note():
    data = make_pptx([(f"Slide {n}", [f"point {n}"]) for n in range(1, 6)])
    result = pptx.read(data, Limits(max_pages=3))
    assert len(result.pages) == 3 and "Slide 3" in result.text and "Slide 4" not in result.text
    assert result.notes == ("read the first 3 of 5 slides (page limit)",)


def test_pptx_longer_than_the_character_limit_is_refused():
    data = make_pptx([("Long", ["word " * 2000])])
    with pytest.raises(UnreadableDocument, match="over 1,000 characters"):
        pptx.read(data, Limits(max_chars=1000))


@pytest.mark.parametrize(("data", "reason"), [
    (b"PK\x03\x04" + b"\0" * 200, "not a PowerPoint presentation"),
    (_zip_bomb("ppt/slides/slide1.xml"), "zip bomb"),
    (_zip_bomb("docProps/app.xml")[:4000], "not a PowerPoint presentation"),  # truncated
])
def test_pptx_corrupt_or_bomb_is_refused_with_a_reason(data, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        pptx.read(data, SMALL)


def test_pptx_of_a_zip_without_a_presentation_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a deck")
    with pytest.raises(UnreadableDocument, match="not a PowerPoint presentation"):
        pptx.read(buffer.getvalue(), DEFAULT_LIMITS)


def test_encrypted_pptx_and_xlsx_are_named_as_such():
    pytest.importorskip("aspose.email_foss")
    data = _ooxml_encrypted()
    with pytest.raises(UnreadableDocument, match="encrypted PowerPoint presentation"):
        pptx.read(data, DEFAULT_LIMITS)
    with pytest.raises(UnreadableDocument, match="encrypted Excel workbook"):
        sheet.read(data, DEFAULT_LIMITS)


# --- Excel and CSV ----------------------------------------------------------------------------------


SALES = [
    [],  # a blank first row: the header is the first non-empty one
    ["Region", "Units", "Price"],
    ["North", 30, 12.5],
    ["South", None, 9.0],  # an empty cell is left out; 9.0 was typed as 9
    ["East", 12, "n/a"],
]


def test_xlsx_carries_the_header_into_every_row_with_sheet_and_row_number():
    data = make_xlsx({"Sales": SALES, "Staff": [["Name", "Started"], ["Ada", datetime(2021, 6, 1)]]},
                     title="Sales 2024", creator="Finance team", created=datetime(2024, 1, 15, 8, 0))
    result = sheet.read(data, DEFAULT_LIMITS)
    assert result.format == "xlsx"
    assert (result.title, result.author, result.date) == ("Sales 2024", "Finance team", "2024-01-15")
    lines = result.text.split("\n")
    assert lines[:4] == [
        "Sales, row 2: Region | Units | Price",
        "Sales, row 3: Region: North | Units: 30 | Price: 12.5",
        "Sales, row 4: Region: South | Price: 9",
        "Sales, row 5: Region: East | Units: 12 | Price: n/a",
    ]
    assert "Staff, row 2: Name: Ada | Started: 2021-06-01" in lines
    # Each sheet is a page.
    assert result.pages == (0, result.text.index("Staff, row 1"))
    assert page_of(result.pages, result.text.index("East")) == 1
    assert page_of(result.pages, result.text.index("Ada")) == 2


def test_xlsx_names_each_page_by_its_sheet_and_the_document_carries_the_names():
    from qa.ingest import to_document

    result = sheet.read(make_xlsx({"Sales": SALES, "Staff": [["Name"], ["Ada"]], "Empty": []}), DEFAULT_LIMITS)
    assert result.page_names == ("Sales", "Staff", "Empty") and len(result.pages) == 3
    assert to_document("book.xlsx", "0" * 64, result).page_names == ("Sales", "Staff", "Empty")


def test_xlsx_with_a_title_above_its_table_finds_the_header_under_it():
    rows = [["Sales by region, 2024"], [], ["Region", "Units", "Price"], ["North", 30, 12.5], ["South", 20, 9]]
    result = sheet.read(make_xlsx({"Sales": rows}), DEFAULT_LIMITS)
    assert result.text.split("\n") == [
        "Sales, row 1: Sales by region, 2024", "Sales, row 3: Region | Units | Price",
        "Sales, row 4: Region: North | Units: 30 | Price: 12.5", "Sales, row 5: Region: South | Units: 20 | Price: 9"]


def test_xlsx_names_a_column_without_a_header_by_its_letter_and_ignores_the_declared_size():
    from openpyxl import Workbook

    workbook = Workbook()
    worksheet = workbook.active
    worksheet.title = "Odd"
    worksheet.append(["Item", None, "Cost"])
    worksheet.append(["Pen", "blue", 2])
    worksheet["A40"] = "Last"  # 35 empty rows between: skipped, yet row numbers stay true
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = sheet.read(buffer.getvalue(), DEFAULT_LIMITS)
    assert result.text.split("\n") == [
        "Odd, row 1: Item | Cost", "Odd, row 2: Item: Pen | B: blue | Cost: 2", "Odd, row 40: Item: Last"]


def test_xlsx_past_the_row_limit_stops_with_a_note(monkeypatch):
    monkeypatch.setattr(sheet, "MAX_ROWS", 50)
    data = make_xlsx({"Log": [["Step", "Value"]] + [[f"s{n}", n] for n in range(1, 200)]})
    result = sheet.read(data, DEFAULT_LIMITS)
    assert result.text.split("\n")[-1] == "Log, row 50: Step: s49 | Value: 49"
    assert result.notes == ("read the first 50 rows (limit: 50 rows per file)",)


def test_xlsx_row_declared_a_million_rows_down_is_bounded_by_the_row_limit(monkeypatch):
    monkeypatch.setattr(sheet, "MAX_ROWS", 1000)
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["Header"])
    workbook.active["A1048576"] = "bottom"
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = sheet.read(buffer.getvalue(), DEFAULT_LIMITS)
    assert result.text == "Sheet, row 1: Header"
    assert result.notes and "1,000 rows" in result.notes[0]


def test_xlsx_longer_than_the_character_limit_is_refused():
    data = make_xlsx({"Big": [["Text"]] + [["lorem ipsum " * 10] for _ in range(100)]})
    with pytest.raises(UnreadableDocument, match="over 2,000 characters"):
        sheet.read(data, Limits(max_chars=2000))


@pytest.mark.parametrize(("data", "reason"), [
    (b"PK\x03\x04" + b"\0" * 200, "not an Excel workbook"),
    (_zip_bomb("xl/worksheets/sheet1.xml"), "zip bomb"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "legacy .xls"),
])
def test_xlsx_corrupt_or_bomb_is_refused_with_a_reason(data, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        sheet.read(data, SMALL)


def test_xlsx_with_broken_xml_is_refused_with_a_reason():
    good = make_xlsx({"Sales": SALES})
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as source, zipfile.ZipFile(buffer, "w") as out:
        for item in source.infolist():
            raw = source.read(item)
            out.writestr(item, raw[: len(raw) // 2] if item.filename == "xl/workbook.xml" else raw)
    with pytest.raises(UnreadableDocument, match="Excel workbook"):
        sheet.read(buffer.getvalue(), DEFAULT_LIMITS)


def test_csv_detects_the_delimiter_and_labels_every_row_with_the_header():
    rows = [["Stadt", "Einwohner", "Notiz"], ["München", "1512491", "Hauptstadt; Bayerns"],
            ["Köln", "1084831", ""], ["Genève", "203856", 'sagt "bonjour"']]
    result = sheet.read(make_csv(rows, delimiter=";", encoding="cp1252"), DEFAULT_LIMITS, format="csv")
    assert result.format == "csv" and result.encoding == "cp1252"
    assert result.text.split("\n") == [
        "Row 1: Stadt | Einwohner | Notiz",
        "Row 2: Stadt: München | Einwohner: 1512491 | Notiz: Hauptstadt; Bayerns",
        "Row 3: Stadt: Köln | Einwohner: 1084831",
        'Row 4: Stadt: Genève | Einwohner: 203856 | Notiz: sagt "bonjour"',
    ]
    assert result.pages == (0,) and (result.title, result.author, result.date) == (None, None, None)


@pytest.mark.parametrize("padded", [False, True], ids=["short-lines", "padded-with-commas"])
def test_csv_with_a_preamble_above_its_header_labels_cells_by_the_real_header(padded):
    width = 4 if padded else 1
    preamble = [["Quarterly sales report"], ["Generated 2024-04-01 by the finance team"], ["Source: ledger, unaudited"]]
    rows = [line + [""] * (width - 1) for line in preamble] + [
        ["Region", "Units", "Price", "Note"], ["North", "30", "12.5", "steady"], ["South", "", "9", ""],
        ["East", "12", "n/a", "new shop"], ["West", "7", "11", "late filing"]]
    result = sheet.read(make_csv(rows), DEFAULT_LIMITS, format="csv")
    assert result.text.split("\n") == [
        "Row 1: Quarterly sales report",  # the preamble stays, as text
        "Row 2: Generated 2024-04-01 by the finance team",
        "Row 3: Source: ledger, unaudited",
        "Row 4: Region | Units | Price | Note",
        "Row 5: Region: North | Units: 30 | Price: 12.5 | Note: steady",
        "Row 6: Region: South | Price: 9",
        "Row 7: Region: East | Units: 12 | Price: n/a | Note: new shop",
        "Row 8: Region: West | Units: 7 | Price: 11 | Note: late filing",
    ]
    assert "column 2" not in result.text


def test_csv_whose_first_row_is_narrower_than_its_rows_keeps_it_as_the_header():
    # A blank top-left cell, as a pivot table has: the first row is the header, not a preamble line.
    rows = [["", "2023", "2024"], ["North", "30", "31"], ["South", "20", "22"], ["East", "12", "15"]]
    result = sheet.read(make_csv(rows), DEFAULT_LIMITS, format="csv")
    assert result.text.split("\n")[:2] == ["Row 1: 2023 | 2024", "Row 2: column 1: North | 2023: 30 | 2024: 31"]


def test_csv_row_numbers_count_records_and_a_quoted_line_break_stays_in_its_row():
    data = make_csv([["id", "note"], ["1", "first\nline two"], [], ["3", "x", "extra"]])
    result = sheet.read(data, DEFAULT_LIMITS, format="csv")
    assert result.text.split("\n")[1:] == ["Row 2: id: 1 | note: first line two", "Row 4: id: 3 | note: x | column 3: extra"]


def test_csv_past_the_row_limit_stops_with_a_note(monkeypatch):
    monkeypatch.setattr(sheet, "MAX_ROWS", 10)
    data = make_csv([["n", "square"]] + [[str(n), str(n * n)] for n in range(1, 100)])
    result = sheet.read(data, DEFAULT_LIMITS, format="csv")
    assert result.text.split("\n")[-1] == "Row 10: n: 9 | square: 81"
    assert result.notes == ("read the first 10 rows (limit: 10 rows per file)",)


def test_csv_binary_or_malformed_is_refused_with_a_reason():
    with pytest.raises(UnreadableDocument, match="binary file"):
        sheet.read(b"a,b\n\x00\x01\x02", DEFAULT_LIMITS, format="csv")
    huge_field = b'name,text\nx,"' + b"y" * 200_000 + b'"\n'
    with pytest.raises(UnreadableDocument, match="malformed CSV"):
        sheet.read(huge_field, DEFAULT_LIMITS, format="csv")


# --- EPUB -------------------------------------------------------------------------------------------

BOOK_METADATA = """<dc:title>The Lighthouse Keeper</dc:title>
    <dc:creator id="a1">Mary Quill</dc:creator>
    <dc:date>1998-04-23</dc:date>"""
BOOK = [
    ("One", "<h1>Chapter One</h1><p>The lamp was lit at <em>dusk</em>,\n   as always.</p><p>Line one<br/>line two</p>"),
    ("Two", ("<section><h2>Chapter Two</h2><ul><li>First item</li><li>Second item</li></ul>"
             "<table><tr><th>Tide</th><th>Time</th></tr><tr><td>High</td><td>06:10</td></tr></table></section>")),
    ("Three", "<h1>Chapter Three</h1><script>var hidden = 'no';</script><p>The storm broke &amp; passed.</p>"),
]


def test_epub_reads_chapters_in_spine_order_as_pages_with_dublin_core_metadata():
    result = epub.read(make_epub(BOOK, BOOK_METADATA, spine=["c1", "c3", "c2"]), DEFAULT_LIMITS)
    assert result.format == "epub"
    assert (result.title, result.author, result.date) == ("The Lighthouse Keeper", "Mary Quill", "1998-04-23")
    assert result.text.split("\n\n") == [
        "Chapter One", "The lamp was lit at dusk, as always.", "Line one\nline two",
        "Chapter Three", "The storm broke & passed.",
        "Chapter Two", "First item", "Second item", "Tide\tTime", "High\t06:10",
    ]
    assert "hidden" not in result.text and "margin" not in result.text and "Contents" not in result.text
    assert [result.text[start:].split("\n")[0] for start in result.pages] == ["Chapter One", "Chapter Three", "Chapter Two"]
    assert page_of(result.pages, result.text.index("storm")) == 2
    assert page_of(result.pages, result.text.index("06:10")) == 3


def test_epub_title_of_two_megabytes_is_stored_bounded():
    from qa.ingest import to_document
    from qa.ingest.metadata import FIELD_CHARS

    huge = "The Lighthouse Keeper " * 100_000  # 2.2 MB of dc:title, made here
    data = make_epub(BOOK, f"<dc:title>{huge}</dc:title><dc:creator>Mary\tQuill</dc:creator>")
    document = to_document("keeper.epub", "0" * 64, epub.read(data, DEFAULT_LIMITS))
    assert len(document.title) <= FIELD_CHARS["title"] == 1000  # was stored whole, with every passage
    assert document.title.startswith("The Lighthouse Keeper The") and document.title.endswith("…")
    assert document.title[:-1].split()[-1] in {"The", "Lighthouse", "Keeper"}  # cut at a word
    assert document.author == "Mary Quill"


def test_epub_chapter_with_html_entities_is_read_by_the_html_parser():
    body = "<p>Caf&eacute; &nbsp;society&mdash;at night.</p>"
    result = epub.read(make_epub([("Entities", body)], "<dc:title>E</dc:title>"), DEFAULT_LIMITS)
    assert result.text == "Café society—at night."


def test_epub_date_prefers_publication_and_never_takes_a_modification_date():
    metadata = """<dc:title>Dates</dc:title>
    <dc:date opf:event="modification">2020-02-02</dc:date>
    <dc:date opf:event="publication">2001-09-10</dc:date>
    <dc:creator opf:role="edt">An Editor</dc:creator><dc:creator>One Author</dc:creator>"""
    result = epub.read(make_epub(BOOK[:1], metadata), DEFAULT_LIMITS)
    assert (result.date, result.author) == ("2001-09-10", "One Author")


def test_epub_past_the_page_limit_is_read_up_to_it_with_a_note():
    chapters = [(f"C{n}", f"<p>Chapter text {n}.</p>") for n in range(1, 6)]
    result = epub.read(make_epub(chapters, BOOK_METADATA), Limits(max_pages=2))
    assert result.text == "Chapter text 1.\n\nChapter text 2."
    assert result.notes == ("read the first 2 of 5 chapters (page limit)",)


def test_epub_listing_one_chapter_again_and_again_is_bounded():
    big = [("Big", "<p>" + "<span>x</span>" * 20_000 + "</p>")]
    data = make_epub(big, BOOK_METADATA, spine=["c1"] * 2000)
    with pytest.raises(UnreadableDocument, match="again and again"):
        epub.read(data, Limits(max_unpacked_bytes=8 << 20, max_pages=5000))


@pytest.mark.parametrize(("data", "reason"), [
    (b"PK\x03\x04" + b"\0" * 200, "not an EPUB"),
    (_zip_bomb("OEBPS/ch1.xhtml", ("mimetype", b"application/epub+zip")), "zip bomb"),
    (make_epub(BOOK, BOOK_METADATA)[:1500], "not an EPUB"),  # truncated: no central directory
])
def test_epub_corrupt_or_bomb_is_refused_with_a_reason(data, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        epub.read(data, SMALL)


def test_epub_with_drm_is_refused_but_obfuscated_fonts_are_not_drm():
    def encryption(algorithm: str) -> dict[str, bytes]:
        xml = f"""<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
            xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>
            <enc:EncryptionMethod Algorithm="{algorithm}"/>
            <enc:CipherData><enc:CipherReference URI="OEBPS/text/ch 1.xhtml"/></enc:CipherData>
            </enc:EncryptedData></encryption>"""
        return {"META-INF/encryption.xml": xml.encode()}

    drm = make_epub(BOOK, BOOK_METADATA, extra=encryption("http://www.w3.org/2001/04/xmlenc#aes128-cbc"))
    with pytest.raises(UnreadableDocument, match="encrypted EPUB"):
        epub.read(drm, DEFAULT_LIMITS)
    fonts = make_epub(BOOK, BOOK_METADATA, extra=encryption("http://www.idpf.org/2008/embedding"))
    assert "Chapter One" in epub.read(fonts, DEFAULT_LIMITS).text


def test_epub_with_a_broken_package_file_is_refused_with_a_reason():
    data = make_epub(BOOK, BOOK_METADATA, extra={})
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as out:
        for item in source.infolist():
            raw = source.read(item)
            out.writestr(item, b"<package><broken" if item.filename.endswith(".opf") else raw)
    with pytest.raises(UnreadableDocument, match="corrupt EPUB \\(package file"):
        epub.read(buffer.getvalue(), DEFAULT_LIMITS)


# --- OpenDocument text ------------------------------------------------------------------------------

ODT_META = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-meta {ODF_NS} office:version="1.3"><office:meta>
  <dc:title>Field notes</dc:title>
  <meta:initial-creator>Jonas Field</meta:initial-creator>
  <dc:creator>Last Editor</dc:creator>
  <meta:creation-date>2022-11-07T14:03:00</meta:creation-date>
  <dc:date>2024-01-01T00:00:00</dc:date>
</office:meta></office:document-meta>"""
ODT_BODY = """
<text:sequence-decls><text:sequence-decl text:display-outline-level="0" text:name="Table"/></text:sequence-decls>
<text:h text:outline-level="1">Survey of the marsh</text:h>
<text:p>Three<text:s text:c="2"/>herons,<text:tab/>one egret.<text:line-break/>Wind from the west.</text:p>
<text:p>A <text:span>spanned</text:span> word<text:note text:note-class="footnote"><text:note-citation>1</text:note-citation><text:note-body><text:p>Counted at dawn.</text:p></text:note-body></text:note> and more.</text:p>
<text:list><text:list-item><text:p>First finding</text:p></text:list-item>
  <text:list-item><text:p>Second finding</text:p><text:list><text:list-item><text:p>Nested detail</text:p></text:list-item></text:list></text:list-item></text:list>
<table:table table:name="Counts"><table:table-column/><table:table-column/>
  <table:table-header-rows><table:table-row><table:table-cell><text:p>Bird</text:p></table:table-cell><table:table-cell><text:p>Count</text:p></table:table-cell></table:table-row></table:table-header-rows>
  <table:table-row><table:table-cell><text:p>Heron</text:p></table:table-cell><table:table-cell><text:p>3</text:p></table:table-cell></table:table-row>
</table:table>
<text:tracked-changes><text:changed-region text:id="c1"><text:deletion><text:p>Deleted words</text:p></text:deletion></text:changed-region></text:tracked-changes>
<text:p>Closing <office:annotation><dc:creator>Rev</dc:creator><text:p>A comment</text:p></office:annotation>remark.</text:p>
"""


def test_odt_reads_headings_paragraphs_lists_and_tables_in_order_with_meta():
    result = odt.read(make_odt(ODT_BODY, ODT_META), DEFAULT_LIMITS)
    assert result.format == "odt"
    assert (result.title, result.author, result.date) == ("Field notes", "Jonas Field", "2022-11-07")
    assert result.text.split("\n\n") == [
        "Survey of the marsh",
        "Three  herons,\tone egret.\nWind from the west.",
        "A spanned word and more.",
        "Counted at dawn.",  # the footnote follows its paragraph
        "First finding", "Second finding", "Nested detail",
        "Bird\tCount", "Heron\t3",
        "Closing remark.",
    ]
    assert "Deleted words" not in result.text and "A comment" not in result.text


def test_odt_author_falls_back_to_dc_creator_and_no_meta_is_no_metadata():
    meta = ODT_META.replace("<meta:initial-creator>Jonas Field</meta:initial-creator>", "")
    assert odt.read(make_odt(ODT_BODY, meta), DEFAULT_LIMITS).author == "Last Editor"
    bare = odt.read(make_odt(ODT_BODY), DEFAULT_LIMITS)
    assert (bare.title, bare.author, bare.date) == (None, None, None)


def test_odt_longer_than_the_character_limit_is_refused():
    body = "<text:p>" + "words and more words " * 100 + "</text:p>" * 1
    with pytest.raises(UnreadableDocument, match="over 1,000 characters"):
        odt.read(make_odt(body * 5, ODT_META), Limits(max_chars=1000))


def test_odt_hostile_nesting_and_space_counts_are_bounded():
    deep = "<text:span>" * 100_000 + "x" + "</text:span>" * 100_000
    with pytest.raises(UnreadableDocument, match="corrupt OpenDocument text"):
        odt.read(make_odt(f"<text:p>{deep}</text:p>", ODT_META), DEFAULT_LIMITS)
    spaces = odt.read(make_odt('<text:p>a<text:s text:c="999999999"/>b</text:p>', ODT_META), DEFAULT_LIMITS)
    assert spaces.text == "a" + " " * odt.MAX_SPACES + "b"


@pytest.mark.parametrize(("data", "reason"), [
    (b"PK\x03\x04" + b"\0" * 200, "not an OpenDocument text"),
    (_zip_bomb("content.xml", ("mimetype", b"application/vnd.oasis.opendocument.text")), "zip bomb"),
    (make_odt(ODT_BODY, ODT_META, mimetype="application/vnd.oasis.opendocument.spreadsheet"), "mimetype"),
    (make_odt(ODT_BODY, ODT_META,
              manifest_extra='<manifest:encryption-data manifest:checksum-type="SHA1" manifest:checksum="x"/>'),
     "encrypted OpenDocument"),
    (make_odt("<text:p>unclosed", ODT_META), "corrupt OpenDocument text \\(content.xml"),
])
def test_odt_corrupt_encrypted_or_bomb_is_refused_with_a_reason(data, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        odt.read(data, SMALL)


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_odt_round_tripped_through_libreoffice_reads_the_same(tmp_path):
    source = tmp_path / "notes.odt"
    source.write_bytes(make_odt(ODT_BODY, ODT_META))
    out = tmp_path / "out"
    subprocess.run(["soffice", "--headless", "--convert-to", "odt", "--outdir", str(out), str(source)],
                   check=True, timeout=120, capture_output=True)
    result = odt.read((out / "notes.odt").read_bytes(), DEFAULT_LIMITS)
    assert "Survey of the marsh" in result.text and "Heron\t3" in result.text


@pytest.mark.parametrize(("reader", "make", "member"), [
    (pptx.read, lambda: make_pptx([("Title", ["Body text of the slide"])]), "ppt/slides/slide1.xml"),
    (sheet.read, lambda: make_xlsx({"Sales": SALES}), "xl/worksheets/sheet1.xml"),
    (epub.read, lambda: make_epub(BOOK, BOOK_METADATA), "OEBPS/text/ch 1.xhtml"),
    (odt.read, lambda: make_odt(ODT_BODY, ODT_META), "content.xml"),
])
def test_a_damaged_zip_member_is_refused_with_a_reason(reader, make, member):
    with pytest.raises(UnreadableDocument) as refused:
        reader(_damaged(make(), member), DEFAULT_LIMITS)
    assert "\n" not in str(refused.value) and len(str(refused.value)) <= 200


# --- Outlook .msg -----------------------------------------------------------------------------------


def test_msg_reads_subject_sender_submit_date_and_body():
    data = make_msg("Quarterly figures", "Dear all,\r\nthe figures are attached.\r\nAnna",
                SENDER_NAME="Anna Berg", SENDER_EMAIL_ADDRESS="anna@example.org",
                x0039=(0x0040, datetime(2024, 3, 5, 23, 30, tzinfo=UTC)),
                MESSAGE_DELIVERY_TIME=datetime(2024, 3, 6, 1, 0, tzinfo=UTC))
    result = msg.read(data, DEFAULT_LIMITS)
    assert result.format == "msg"
    assert (result.title, result.author, result.date) == ("Quarterly figures", "Anna Berg", "2024-03-05")
    assert result.text == "Dear all,\r\nthe figures are attached.\r\nAnna"


def test_msg_falls_back_to_delivery_time_address_and_8_bit_strings():
    data = make_msg("Caf\u00e9 menu", "Soup of the day", unicode=False, SENDER_EMAIL_ADDRESS="chef@example.org",
                MESSAGE_DELIVERY_TIME=datetime(2023, 12, 31, 22, 0, tzinfo=UTC))
    result = msg.read(data, DEFAULT_LIMITS)
    assert (result.title, result.author, result.date) == ("Caf\u00e9 menu", "chef@example.org", "2023-12-31")
    assert result.text == "Soup of the day"


def test_msg_with_only_an_html_body_goes_through_the_html_reader():
    page = (b"<html><head><title>News</title></head><body><nav>Home | About</nav><article>"
            b"<p>The new library opens on Monday with a reading by local authors and a concert.</p>"
            b"<p>Entry is free for everyone and the doors open at nine in the morning.</p></article></body></html>")
    result = msg.read(make_msg("Library news", BODY_HTML=page), DEFAULT_LIMITS)
    assert result.title == "Library news"
    assert "The new library opens on Monday" in result.text and "doors open at nine" in result.text


def test_msg_longer_than_the_character_limit_is_refused():
    with pytest.raises(UnreadableDocument, match="over 1,000 characters"):
        msg.read(make_msg("Long", "word " * 1000), Limits(max_chars=1000))


def test_msg_corrupt_or_not_a_message_is_refused_with_a_reason():
    good = make_msg("Subject", "Body text")
    with pytest.raises(UnreadableDocument, match="corrupt Outlook message"):
        msg.read(good[:1500], DEFAULT_LIMITS)
    with pytest.raises(UnreadableDocument, match="not an Outlook message \\(not an OLE"):
        msg.read(b"From: a@example.org\r\n\r\nplain e-mail", DEFAULT_LIMITS)
    with pytest.raises(UnreadableDocument, match="without MAPI properties"):
        msg.read(_ooxml_encrypted(), DEFAULT_LIMITS)


def test_msg_without_a_body_says_why():
    encrypted = make_msg("Secret", "", MESSAGE_CLASS="IPM.Note.SMIME")
    with pytest.raises(UnreadableDocument, match="encrypted e-mail"):
        msg.read(encrypted, DEFAULT_LIMITS)
    with pytest.raises(UnreadableDocument, match="no text or HTML body"):
        msg.read(make_msg("Empty", ""), DEFAULT_LIMITS)
