"""EPUB e-books with lxml: the chapters in reading (spine) order, one page per chapter, Dublin Core metadata.

An EPUB is a zip: ``META-INF/container.xml`` names the package (OPF) file,
whose manifest maps ids to files and whose spine lists the chapters in reading
order. Each chapter is XHTML: headings, paragraphs, list items and table rows
each become a paragraph (a blank line between them; a ``<br>`` a line break,
table cells split by tabs), scripts and styles are dropped. Chapters are joined
by a blank line and ``pages[i]`` is where spine item ``i + 1`` starts, so a
passage cites "page 3" for the third chapter file (a cover without text keeps
its number, as a PDF page without text does).

Bounds: the zip is checked as docx.py checks a .docx; the bytes parsed are
counted against ``Limits.max_unpacked_bytes`` again, since a spine may list the
same large file a million times; the spine is read up to ``Limits.max_pages``.
XML is parsed without DTDs, entities or network; a chapter that is not
well-formed XML (say, HTML entities the missing DTD would define) is parsed
by lxml's HTML parser instead. Files encrypted with DRM are refused; fonts
obfuscated as the EPUB and Adobe specs allow are not DRM and are no obstacle.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from urllib.parse import unquote

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, date_prefix
from .packages import open_zip, parse_xml, read_member

KIND = "EPUB"
MIMETYPE = b"application/epub+zip"
CONTAINER = "META-INF/container.xml"
ENCRYPTION = "META-INF/encryption.xml"
#: Font obfuscation (IDPF and Adobe): listed in encryption.xml, but not DRM; the text stays readable.
FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
CHAPTER_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/x-dtbook+xml"})
OPF = "{http://www.idpf.org/2007/opf}"
PARAGRAPH_BREAK = "\n\n"
CHAPTER_BREAK = "\n\n"
#: Elements whose start and end break a paragraph.
BLOCKS = frozenset(
    ["address", "article", "aside", "blockquote", "caption", "dd", "div", "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul"])
#: Elements whose content is not text a reader sees.
SKIPPED = frozenset({"head", "script", "style", "template", "title"})
#: White space in the markup, which HTML renders as one space (a line break is ``<br>``, a cell a tab here).
_SPACES = re.compile(r"[ \t\r\n\f]+")


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract the spine's chapters (a page each) and the title, author and date of the OPF metadata."""
    archive = _open(data, limits)
    with archive:
        _refuse_drm(archive)
        package_path = _package_path(archive)
        package = _parse_xml(_member(archive, package_path), "package file")
        chapters = _spine(package, package_path)
        notes = []
        if len(chapters) > limits.max_pages:
            notes.append(f"read the first {limits.max_pages} of {len(chapters)} chapters (page limit)")
        texts = _chapters(archive, chapters[: limits.max_pages], limits, notes)
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + len(CHAPTER_BREAK)
    return Extracted(text=CHAPTER_BREAK.join(texts), format="epub", pages=tuple(starts), notes=tuple(notes),
                     **_metadata(package))


def _open(data: bytes, limits: Limits) -> zipfile.ZipFile:
    """Open the zip once its directory has passed the bomb checks, and its mimetype (if any) says EPUB."""
    def has_container(archive: zipfile.ZipFile, names: set[str]) -> None:
        if CONTAINER not in names:
            raise UnreadableDocument(f"not an EPUB (no {CONTAINER})")

    return open_zip(data, limits, KIND, MIMETYPE, has_container)


def _refuse_drm(archive: zipfile.ZipFile) -> None:
    """Refuse a book whose encryption.xml lists anything other than obfuscated fonts."""
    if ENCRYPTION not in archive.namelist():
        return
    root = _parse_xml(_member(archive, ENCRYPTION), ENCRYPTION)
    methods = {m.get("Algorithm", "") for m in root.iterfind(".//{*}EncryptionMethod")}
    if methods - FONT_OBFUSCATION:
        raise UnreadableDocument("encrypted EPUB (DRM)")


def _package_path(archive: zipfile.ZipFile) -> str:
    container = _parse_xml(_member(archive, CONTAINER), CONTAINER)
    for rootfile in container.iterfind(".//{*}rootfile"):
        path = rootfile.get("full-path")
        if path and rootfile.get("media-type", "application/oebps-package+xml") == "application/oebps-package+xml":
            return path
    raise UnreadableDocument(f"not an EPUB ({CONTAINER} names no package file)")


def _spine(package, package_path: str) -> list[str | None]:
    """The zip paths of the spine's chapters in reading order; None for an item that is not XHTML."""
    base = posixpath.dirname(package_path)
    manifest = {}
    for item in package.iterfind(f"{OPF}manifest/{OPF}item"):
        href = item.get("href")
        if item.get("id") and href:
            path = posixpath.normpath(posixpath.join(base, unquote(href.split("#")[0])))
            manifest[item.get("id")] = path if item.get("media-type") in CHAPTER_TYPES else None
    spine = [manifest.get(ref.get("idref")) for ref in package.iterfind(f"{OPF}spine/{OPF}itemref")]
    if not any(spine):
        raise UnreadableDocument("EPUB has no chapters (an empty spine)")
    return spine


def _chapters(archive: zipfile.ZipFile, chapters: list[str | None], limits: Limits, notes: list[str]) -> list[str]:
    """Each chapter's text; the bytes parsed, repeats included, are bounded like the zip's size."""
    texts: list[str] = []
    parsed = size = 0
    missing = []
    for number, path in enumerate(chapters, start=1):
        text = ""
        if path is not None:
            try:
                info = archive.getinfo(path)
            except KeyError:
                missing.append(number)
            else:
                parsed += info.file_size
                if parsed > limits.max_unpacked_bytes:
                    raise UnreadableDocument(
                        f"chapters unpack to over {limits.max_unpacked_bytes:,} bytes (a file listed again and again?)")
                text = chapter_text(_parse_chapter(_member(archive, path)))
        size += len(text) + len(CHAPTER_BREAK)
        check_chars(size, limits)
        texts.append(text)
    if missing:
        notes.append(f"chapter file(s) missing from the book: spine item(s) {', '.join(map(str, missing[:10]))}")
    return texts


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    return read_member(archive, name, KIND)


def _parse_xml(raw: bytes, what: str):
    return parse_xml(raw, what, KIND)


def _parse_chapter(raw: bytes):
    """Parse a chapter as XHTML, or as HTML when it is not well-formed XML."""
    from lxml import etree, html

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.fromstring(raw, parser)
    except etree.XMLSyntaxError:
        pass
    try:
        return html.document_fromstring(raw)
    except (etree.ParserError, ValueError):
        return etree.Element("html")  # nothing readable: an empty page


def chapter_text(root) -> str:
    """A chapter's text: a paragraph per block element, ``<br>`` as a line break, table cells split by tabs.

    Walks the tree iteratively (lxml's iterwalk), so deep nesting costs no Python recursion.
    """
    from lxml import etree

    blocks: list[str] = []
    line: list[str] = []
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        name = etree.QName(element).localname.lower() if isinstance(element.tag, str) else None
        if event == "start":
            if name is None or name in SKIPPED:
                walker.skip_subtree()  # comments, processing instructions, scripts: their tail still counts
                continue
            if name in BLOCKS:
                _flush(line, blocks)
            elif name == "br":
                line.append("\n")
            elif name in ("td", "th") and line:
                line.append("\t")
            if element.text:
                line.append(_SPACES.sub(" ", element.text))
        else:
            if name in BLOCKS:
                _flush(line, blocks)
            if element.tail and element is not root:
                line.append(_SPACES.sub(" ", element.tail))
    _flush(line, blocks)
    return PARAGRAPH_BREAK.join(blocks)


def _flush(line: list[str], blocks: list[str]) -> None:
    """End the paragraph being gathered: white space collapsed, except the line breaks and tabs it holds."""
    lines = ("\t".join(" ".join(cell.split()) for cell in part.split("\t")) for part in "".join(line).split("\n"))
    text = "\n".join(part.strip("\t") for part in lines if part.strip())
    if text:
        blocks.append(text)
    line.clear()


def _metadata(package) -> dict:
    """Title, authors and publication date from the OPF's Dublin Core elements."""
    meta = package.find(f"{OPF}metadata")
    if meta is None:
        return {}
    titles = [clean_field(t.text) for t in meta.iterfind("{*}title")]
    creators = [clean_field(c.text) for c in meta.iterfind("{*}creator")
                if c.get(f"{OPF}role", "aut") == "aut"]
    return {
        "title": next((t for t in titles if t), None),
        "author": ", ".join(c for c in creators if c) or None,
        "date": _publication_date(meta),
    }


def _publication_date(meta) -> str | None:
    """dc:date, preferring an EPUB 2 ``opf:event="publication"``; never a modification date."""
    ranked = []
    for element in meta.iterfind("{*}date"):
        event = element.get(f"{OPF}event", "")
        if event != "modification":
            ranked.append((event != "publication", event != "", element.text or ""))
    return next((found for *_, value in sorted(ranked) if (found := date_prefix(value))), None)
