"""Each format's metadata and text layer, against what the fixtures were made with."""

from __future__ import annotations

import re

import pytest
from formats_support import FORMATS, SEEDS, SEEDS_HTML, SEEDS_PDF, seed_meta, squash

from qa.ingest import SUFFIXES, extract, format_of
from formats_support import decode

STEMS = sorted(p.stem for p in SEEDS.glob("*.txt"))


def _meta(result) -> dict:
    return {"title": result.title, "date": result.date, "url": result.url, "author": result.author}


@pytest.mark.parametrize("stem", STEMS)
def test_seed_html_metadata_is_exactly_the_seeds(stem):
    result = extract(f"{stem}.html", (SEEDS_HTML / f"{stem}.html").read_bytes())
    assert result.format == "html"
    assert _meta(result) == seed_meta(stem)  # absent fields stay None: 002 has no title, no h2 fallback


@pytest.mark.parametrize("stem", STEMS)
def test_seed_pdf_metadata_is_exactly_the_seeds(stem):
    result = extract(f"{stem}.pdf", (SEEDS_PDF / f"{stem}.pdf").read_bytes())
    assert result.format == "pdf"
    assert _meta(result) == seed_meta(stem)


def test_html_date_is_the_publication_not_the_modification():
    result = extract("news-jsonld.html", (FORMATS / "news-jsonld.html").read_bytes())
    assert result.date == "2024-01-23"  # JSON-LD dateModified says 2024-03-02
    assert result.url.startswith("https://sputnikglobe.com/20240123/")  # from <link rel=canonical>
    assert result.author is None


def test_opengraph_page_gives_author_and_date_but_no_invented_url():
    result = extract("blog-opengraph.html", (FORMATS / "blog-opengraph.html").read_bytes())
    assert (result.title, result.date, result.author, result.url) == (
        "Russian Foreign Minister: No Difference in Russia's Actions if Trump Elected", "2024-01-24",
        "Angeline Tan", None)


def test_chromium_pdf_date_is_its_creation_date():
    data = (FORMATS / "article.pdf").read_bytes()
    created = re.search(rb"/CreationDate \(D:(\d{4})(\d{2})(\d{2})", data)
    result = extract("article.pdf", data)
    assert result.date == "-".join(g.decode() for g in created.groups())
    assert result.title.startswith("US Ignored Enormous Displays of Goodwill")


def test_docx_metadata_from_core_properties_and_created_not_modified():
    result = extract("talks.docx", (FORMATS / "talks.docx").read_bytes())
    assert (result.title, result.author, result.date) == ("Upcoming Russia/US Security Talks", "Stephen Lendman", "2022-01-06")
    assert result.text.startswith("Upcoming Russia/US Security Talks\n\nTalking is better than confrontation")
    assert "Moscow\tNo further NATO encroachment" in result.text  # a table row, cells split by a tab
    # Blocks are in document order: the table sits between the 6th and 7th body paragraph.
    text = result.text
    assert text.index("No such “plans” exist") < text.index("Positions at a glance") < text.index("Saying hegemon USA")


def test_email_plain_part_and_headers():
    result = extract("digest.eml", (FORMATS / "digest.eml").read_bytes())
    seed = decode((SEEDS / "002_42f21bd48c4da039.txt").read_bytes())
    assert (result.format, result.title, result.date, result.author) == (
        "email", "Weekly digest: the Putin-Trump call", "2025-02-17", "Foreign Desk")
    assert squash(result.text) == squash(seed[len(" date 2025-02-17 "):])


def test_email_html_only_goes_through_the_html_reader():
    result = extract("html-only.eml", (FORMATS / "html-only.eml").read_bytes())
    assert (result.title, result.date, result.author) == ("Résumé of the week", "2025-02-17", "desk@example.org")
    assert result.text.startswith("The main news of the past week")
    assert "Unsubscribe" not in result.text


def test_cp1252_text_is_detected_and_decoded():
    result = extract("legacy-cp1252.txt", (FORMATS / "legacy-cp1252.txt").read_bytes())
    seed = decode((SEEDS / "003_693562d2949a8d6d.txt").read_bytes())
    assert result.encoding == "cp1252"
    assert result.text == seed.encode("cp1252", errors="ignore").decode("cp1252")
    assert "Russia’s President" in result.text


@pytest.mark.parametrize("stem", STEMS)
def test_utf8_text_layer_is_exactly_ingest_decode(stem):
    data = (SEEDS / f"{stem}.txt").read_bytes()
    for variant in (data, b"\xef\xbb\xbf" + data, decode(data).encode("utf-16")):
        result = extract(f"{stem}.md", variant)
        assert result.text == decode(variant)
        assert result.format == "markdown"


def test_suffixes_map_to_formats_case_insensitively():
    assert format_of("A/B.HTM") == "html" and format_of("x.Docx") == "docx" and format_of("notes") is None
    assert set(SUFFIXES.values()) == {
        "text", "markdown", "html", "pdf", "docx", "email", "pptx", "xlsx", "csv", "epub", "odt", "msg", "mbox", "image",
    }


def test_utf8_with_a_few_stray_bytes_stays_utf8_and_says_so():
    seed = (SEEDS / "003_693562d2949a8d6d.txt").read_bytes()
    result = extract("a.txt", seed[:500] + b"\x93pasted\x94" + seed[500:])
    assert result.encoding == "utf-8"
    assert result.notes == ("2 undecodable byte sequence(s) replaced with U+FFFD",)
    assert "Russia’s top diplomat" in result.text and "\ufffdpasted\ufffd" in result.text


@pytest.mark.parametrize("head,encoding", [
    ("", "cp1252"),  # no declaration: detected, cp1252 preferred (trafilatura alone read it as cp1250)
    ('<meta charset="iso-8859-15">', "iso-8859-15"),
    ('<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">', "cp1252"),
])
def test_legacy_encoded_html_is_decoded_right(head, encoding):
    sentence = "Le café est très bon à Genève, dit-il à la télévision française. "
    page = f"<html><head>{head}<title>Café</title></head><body><article><p>{sentence * 10}</p></article></body></html>"
    result = extract("a.htm", page.encode(encoding))
    assert result.title == "Café"
    assert result.text.startswith(sentence.strip())
