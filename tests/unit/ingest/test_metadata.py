"""Every field of every format made fit to store in one place (qa/ingest/metadata.py), and titles found when missing."""

from __future__ import annotations

import io
import zipfile

import pytest
from documents import tiny_pdf

from qa.ingest import parse_document, to_document
from qa.ingest.formats import Extracted
from qa.ingest.metadata import FALLBACK_TITLE_CHARS, FIELD_CHARS, bounded, clean
from qa.records import Document

FORMATS = ("text", "markdown", "html", "pdf", "docx", "pptx", "xlsx", "csv", "epub", "odt", "email", "msg", "mbox",
           "image")


def test_a_pdf_title_with_a_nul_and_control_characters_is_stored_as_plain_text():
    data = tiny_pdf(["The harbour survey, page one"], b"<< /Title (Harbour\\000survey\\r\\nreport\\t2024) >>")
    document = parse_document("survey.pdf", data)
    assert isinstance(document, Document)
    assert document.title == "Harbour survey report 2024"  # was "Harbour\x00survey\r\nreport\t2024"


def _docx(title: str, creator: str) -> bytes:
    """A Word document whose core properties are written here: python-docx refuses titles over 255 characters."""
    import docx

    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("The quay stays open to fishing boats all year round.")
    document.save(buffer)
    core = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties '
            f'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
            f'<dc:creator>{creator}</dc:creator></cp:coreProperties>')
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, core if item.filename == "docProps/core.xml" else source.read(item))
    return out.getvalue()


def test_a_docx_title_of_two_megabytes_is_stored_bounded_at_a_word():
    document = parse_document("quay.docx", _docx("Minutes of the harbour committee " * 65_000, "Ann\u0085Lee"))
    assert isinstance(document, Document)
    assert len(document.title) <= FIELD_CHARS["title"] and document.title.endswith("…")  # was 2,080,000 characters
    assert document.title[:-1].split()[-1] in "Minutes of the harbour committee".split()
    assert document.author == "Ann Lee"  # a C1 control character (NEL) is a space


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_field_of_every_format_passes_the_same_rules(fmt):
    extracted = Extracted(
        text="Body text of the document.\n", format=fmt, title="A\x00title\x7fwith\x9bcontrols   and  spaces",
        author="  Written by   Jane\tRoe ", date="23/01/2024", url="https://example.org/" + "a" * 3000,
    )
    document = to_document(f"a.{fmt}", "0" * 64, extracted)
    if fmt in ("text", "markdown"):  # their metadata is their header's: this one has none
        assert (document.title, document.author, document.url) == ("Body text of the document.", None, None)
        return
    assert document.metadata() == {"title": "A title with controls and spaces", "date": None, "url": None,
                                   "author": "Jane Roe"}


@pytest.mark.parametrize("byline, author", [
    ("View all posts by Daniel Lemire", "Daniel Lemire"),
    ("By Angeline Tan", "Angeline Tan"),
    ("POSTED BY: Ann Lee", "Ann Lee"),
    ("Author: Ann Lee", "Ann Lee"),
    ("Byron Smith", "Byron Smith"),  # a name, not a lead-in
    ("By", "By"),
])
def test_a_byline_lead_in_is_taken_off_the_author(byline, author):
    assert clean({"author": byline})["author"] == author


def test_an_html_author_given_as_a_byline_is_stored_as_the_name():
    page = (b'<html><head><title>Parsing numbers fast</title>'
            b'<meta name="author" content="View all posts by Daniel Lemire"></head><body><article><p>'
            + b"Parsing a number from text can take more time than reading it from disk. " * 8
            + b"</p></article></body></html>")
    document = parse_document("lemire.html", page)
    assert isinstance(document, Document) and document.author == "Daniel Lemire"


def test_a_long_value_is_cut_at_a_word_with_an_ellipsis():
    assert bounded("one two three four", 12) == "one two…"
    assert bounded("x" * 30, 10) == "x" * 9 + "…"  # no word to cut at
    assert bounded("short", 10) == "short"
    assert clean({"url": "https://example.org/" + "a" * FIELD_CHARS["url"]})["url"] is None  # a cut URL leads nowhere
    assert clean({"date": "2024-01-23"})["date"] == "2024-01-23"


def test_a_document_without_a_title_is_named_by_its_first_line():
    text = "\n\n12\n\nPort Authority Annual Report 2024\n\nThe harbour handled more ships than ever."
    document = to_document("reports/annual.pdf", "0" * 64, Extracted(text=text, format="pdf"))
    assert document.title == "Port Authority Annual Report 2024"  # a line without a letter names nothing


def test_a_long_first_line_gives_its_first_sentence_or_is_cut_at_a_word():
    sentence = "The main news of the past week was the call between the two presidents."
    long_text = sentence + " " + "It lasted an hour and covered trade, arms control and the war. " * 3
    assert to_document("a.docx", "0" * 64, Extracted(text=long_text, format="docx")).title == sentence[:-1]
    words = "word " * 60
    title = to_document("b.docx", "0" * 64, Extracted(text=words, format="docx")).title
    assert len(title) <= FALLBACK_TITLE_CHARS and title.endswith("word…")


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "mbox"])
def test_formats_whose_first_line_qa_writes_are_named_by_their_file(fmt):
    extracted = Extracted(text="Sheet1, row 1: Region | Units\nSheet1, row 2: Region: North | Units: 3", format=fmt)
    assert to_document(f"sales/Q3 figures.{fmt}", "0" * 64, extracted).title == "Q3 figures"


def test_a_markdown_file_without_a_header_title_is_named_by_its_first_heading():
    text = ("Some notes written before the heading,\nwith a second line.\n\n"
            "## The [Real](https://x.org) Subject\n\nBody.")
    document = parse_document("notes.md", text.encode())
    assert isinstance(document, Document) and document.title == "The Real Subject"


def test_a_text_file_whose_first_line_is_its_title_keeps_it():
    document = parse_document("a.txt", b"The Harbour Survey\n\nThe committee met on 14 March.\n")
    assert document.title == "The Harbour Survey" and document.body_start == 0
