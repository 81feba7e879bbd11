"""HTML with trafilatura (Apache-2.0): the main text without page chrome, and the page's own metadata.

trafilatura drops navigation, menus, cookie banners, share buttons, newsletter and
ad boxes, comments and footers. Metadata comes only from the markup: title
(OpenGraph / JSON-LD headline / <title>), author (meta, JSON-LD, byline markup),
canonical URL (<link rel=canonical>, og:url) and the publication date through
htmldate with ``original_date`` (the first publication, never a modified date)
and without its extensive search, which would guess a date from the text.
"""

from __future__ import annotations

import re
from datetime import date

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field

#: The most HTML elements trafilatura is given: it spends ~100 us per element (a 20,000-paragraph
#: page takes 2 s here), and a real article page has a few thousand; more is refused, not walked for minutes.
MAX_ELEMENTS = 100_000
PARAGRAPH_BREAK = "\n\n"
#: Bytes at the top of a page searched for a <meta charset> or an XML encoding declaration.
CHARSET_WINDOW = 4096
_CHARSET = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?\s*([A-Za-z0-9_.:-]{2,40})""", re.I)


def read(data: bytes | str, limits: Limits) -> Extracted:
    """Extract the main text and metadata of one HTML page."""
    import trafilatura
    from trafilatura.utils import load_html

    tree = load_html(decode_html(data) if isinstance(data, bytes) else data)
    if tree is None:
        raise UnreadableDocument("not an HTML page (could not be parsed)")
    elements = sum(1 for _ in tree.iter())
    if elements > MAX_ELEMENTS:
        raise UnreadableDocument(f"HTML page with {elements:,} elements (limit {MAX_ELEMENTS:,})")
    config = trafilatura.settings.use_config()
    config.set("DEFAULT", "EXTENSIVE_DATE_SEARCH", "off")
    titled = _has_title_markup(tree)
    result = trafilatura.bare_extraction(
        tree,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        deduplicate=False,
        config=config,
        date_extraction_params={
            "original_date": True,
            "extensive_search": False,
            "max_date": date.today().isoformat(),
        },
    )
    if result is None or not (result.text or "").strip():
        raise UnreadableDocument("no main text found in the HTML page")
    # trafilatura puts each block on its own line; a blank line between them marks paragraphs as elsewhere.
    text = PARAGRAPH_BREAK.join(line for line in result.text.split("\n") if line.strip())
    check_chars(len(text), limits)
    url = clean_field(result.url)
    return Extracted(
        text=text,
        format="html",
        title=clean_field(result.title) if titled else None,
        date=clean_field(result.date),
        url=url if url and url.startswith(("http://", "https://")) else None,
        author=clean_field(result.author),
    )


def decode_html(data: bytes) -> str:
    """Decode a page: UTF-8 or BOM'd, else its declared charset, else the text detector's (cp1252 first).

    trafilatura's own guess read an undeclared cp1252 page as cp1250 ("très" became "trčs").
    """
    from .text import decode_noting

    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return decode_noting(data)[0]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _CHARSET.search(data[:CHARSET_WINDOW])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass  # an unknown charset name: detect instead
    try:
        return decode_noting(data)[0]
    except UnreadableDocument:
        return data.decode("utf-8", errors="replace")


def _has_title_markup(tree) -> bool:
    """Say whether the page names its title; without it trafilatura falls back to the first <h2>, a guess."""
    return bool(tree.xpath(_TITLE_MARKUP))


_TITLE_MARKUP = (
    "//title[normalize-space()] | //h1[normalize-space()]"
    " | //meta[contains(@property, 'title') or contains(@name, 'title')][normalize-space(@content)]"
    " | //script[@type='application/ld+json'][contains(., 'headline')]"
)
