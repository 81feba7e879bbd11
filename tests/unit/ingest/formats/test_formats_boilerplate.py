"""HTML main-text extraction: page chrome never reaches the text layer, the article does."""

from __future__ import annotations

import re

import pytest
from formats_support import BOILERPLATE, FORMATS, SEEDS, SEEDS_HTML, squash

from qa.ingest.formats import extract
from formats_support import decode
from qa.ingest import parse_header

_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
PAGES = sorted(SEEDS_HTML.glob("*.html")) + sorted(FORMATS.glob("*.html"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_text_from_nav_ads_cookies_share_comments_or_footer(page):
    text = extract(page.name, page.read_bytes()).text
    leaked = {where: s for where, s in BOILERPLATE.items() if s in text}
    assert leaked == {}
    for chrome in ("Accept all cookies", "Share on X", "Privacy policy", "reader42", "Markets slide as rates"):
        assert chrome not in text


@pytest.mark.parametrize("page", sorted(SEEDS_HTML.glob("*.html")), ids=lambda p: p.name)
def test_every_article_sentence_line_is_kept(page, evidence):
    text = squash(extract(page.name, page.read_bytes()).text)
    seed = decode((SEEDS / f"{page.stem}.txt").read_bytes())
    header = parse_header(seed)
    lines = [squash(_MD_LINK.sub(r"\1", line)) for line in seed[header.body_start:].splitlines()]
    body = [line for line in lines if line and line != header.title]
    missing = [line for line in body if line.lstrip("- ") not in text]
    assert missing == []
    assert all(squash(e) in text for e in evidence.get(page.stem, []))
