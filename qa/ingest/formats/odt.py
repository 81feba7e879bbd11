"""OpenDocument text (.odt) with lxml: headings, paragraphs, lists and tables in order, and meta.xml's metadata.

An .odt is a zip whose ``content.xml`` holds the body: ``text:h`` and ``text:p``
become paragraphs (a blank line between them, as in docx.py), inside lists and
sections too; a table gives a line per row, its cells split by tabs. Inside a
paragraph ``text:s`` stands for spaces, ``text:tab`` for a tab and
``text:line-break`` for a line break, and other white space collapses to one
space as the ODF spec says; a footnote's body follows its paragraph
instead of interrupting its sentence. Tracked deletions, comments and form
controls are not text of the document and are dropped.

``meta.xml`` gives dc:title, meta:initial-creator (else dc:creator, the last
editor) and meta:creation-date. The zip is checked as docx.py checks a .docx; a
password-protected file (its manifest lists encryption data) is named as such.
XML is parsed without DTDs, entities or network, and lxml refuses nesting past
256 levels, which keeps the recursion below within Python's limit.
"""

from __future__ import annotations

import re
import zipfile

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, date_prefix
from .packages import open_zip, parse_xml, read_member

KIND = "OpenDocument text"
MIMETYPE = b"application/vnd.oasis.opendocument.text"
PARAGRAPH_BREAK = "\n\n"
TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
META = "{urn:oasis:names:tc:opendocument:xmlns:meta:1.0}"
DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
DC = "{http://purl.org/dc/elements/1.1/}"
MANIFEST = "{urn:oasis:names:tc:opendocument:xmlns:manifest:1.0}"
#: Not the document's text: deleted text kept for change tracking, comments, footnote marks, indexes' sources.
DROPPED = frozenset({
    TEXT + "tracked-changes", OFFICE + "annotation", OFFICE + "annotation-end", TEXT + "note-citation",
    OFFICE + "forms", TEXT + "sequence-decls", TEXT + "variable-decls", TEXT + "user-field-decls",
    TEXT + "index-title-template",
})
#: Most spaces one ``text:s`` may stand for: a hostile count must not make a gigabyte string.
MAX_SPACES = 1000
#: ODF collapses white space in text as HTML does; text:s, text:tab and text:line-break are the literal kinds.
_SPACES = re.compile(r"[ \t\r\n]+")


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract the body's paragraphs in order and the meta.xml metadata."""
    with _open(data, limits) as archive:
        content = _parse(archive, "content.xml")
        meta = _parse(archive, "meta.xml") if "meta.xml" in archive.namelist() else None
    body = content.find(f"{OFFICE}body/{OFFICE}text")
    if body is None:
        raise UnreadableDocument("not an OpenDocument text (content.xml has no office:text body)")
    blocks: list[str] = []
    size = 0
    for block in _blocks(body):
        if block.strip():
            blocks.append(block)
            size += len(block) + len(PARAGRAPH_BREAK)
            check_chars(size, limits)
    return Extracted(text=PARAGRAPH_BREAK.join(blocks), format="odt", **_metadata(meta))


def _open(data: bytes, limits: Limits) -> zipfile.ZipFile:
    """Open the zip once its directory has passed the bomb checks, its mimetype fits and it is not encrypted."""
    def text_not_encrypted(archive: zipfile.ZipFile, names: set[str]) -> None:
        if "META-INF/manifest.xml" in names:
            manifest = _parse(archive, "META-INF/manifest.xml")
            if manifest.find(f".//{MANIFEST}encryption-data") is not None:
                raise UnreadableDocument("encrypted OpenDocument file (needs a password)")
        if "content.xml" not in names:
            raise UnreadableDocument("not an OpenDocument text (no content.xml)")

    return open_zip(data, limits, KIND, MIMETYPE, text_not_encrypted)


def _parse(archive: zipfile.ZipFile, name: str):
    """Parse one XML member without DTDs, entity expansion or network access."""
    return parse_xml(read_member(archive, name, KIND), name, KIND)


def _blocks(container):
    """Yield each paragraph's and heading's text, and each table row's, in document order."""
    for child in container.iterchildren(tag="{*}*"):
        if child.tag in DROPPED:
            continue
        if child.tag in (TEXT + "p", TEXT + "h"):
            asides: list = []
            yield paragraph_text(child, asides)
            for aside in asides:
                yield from _blocks(aside)
        elif child.tag == TABLE + "table-row":
            yield "\t".join(_cell_text(cell) for cell in child.iterchildren(TABLE + "table-cell"))
        else:
            # Lists, list items, sections, tables and their row groups: containers of the above.
            yield from _blocks(child)


def _cell_text(cell) -> str:
    """A table cell's paragraphs on one line (a row stays one line)."""
    return " ".join(" ".join(block.split()) for block in _blocks(cell) if block.strip())


def paragraph_text(paragraph, asides: list) -> str:
    """The text of a text:p or text:h; notes' bodies and frames' text boxes are set aside in ``asides``."""
    parts: list[str] = []
    if paragraph.text:
        parts.append(_SPACES.sub(" ", paragraph.text))
    for child in paragraph.iterchildren():
        tag = child.tag
        if not isinstance(tag, str):
            pass  # a comment or processing instruction: only its tail is text
        elif tag == TEXT + "s":
            parts.append(" " * min(_count(child.get(TEXT + "c")), MAX_SPACES))
        elif tag == TEXT + "tab":
            parts.append("\t")
        elif tag == TEXT + "line-break":
            parts.append("\n")
        elif tag == TEXT + "note":
            asides.extend(child.iterchildren(TEXT + "note-body"))
        elif tag.startswith(DRAW):
            asides.append(child)  # a frame's text box holds paragraphs of its own: they follow this one
        elif tag not in DROPPED:
            parts.append(paragraph_text(child, asides))  # spans, links, bookmarks, fields
        if child.tail:
            parts.append(_SPACES.sub(" ", child.tail))
    return "".join(parts)


def _count(value: str | None) -> int:
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        return 1


def _metadata(meta) -> dict:
    """dc:title, meta:initial-creator (else dc:creator) and meta:creation-date from meta.xml."""
    if meta is None:
        return {}
    found = {}
    for key, path in (("title", f"{DC}title"), ("initial", f"{META}initial-creator"),
                      ("creator", f"{DC}creator"), ("date", f"{META}creation-date")):
        element = meta.find(f"{OFFICE}meta/{path}")
        found[key] = clean_field(element.text) if element is not None else None
    return {
        "title": found["title"],
        "author": found["initial"] or found["creator"],
        "date": date_prefix(found["date"]),
    }
