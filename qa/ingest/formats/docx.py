"""Word .docx with python-docx (MIT): body paragraphs and tables in order, core-property metadata.

A .docx is a zip: its listed uncompressed sizes are checked before anything is
inflated, so a zip bomb is refused from its directory alone. python-docx parses
the XML parts with lxml, which refuses entity expansion and network access.
"""

from __future__ import annotations

import io
import zipfile

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, iso_date

#: Members a real document has a few dozen of; thousands are a trap for the zip reader.
MAX_MEMBERS = 10_000
#: Largest plausible inflate ratio of one XML part (highly repetitive XML reaches ~100x).
MAX_RATIO = 1000
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract paragraphs (a blank line between them) and table rows (cells split by tabs)."""
    check_zip(data, limits)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UnreadableDocument(f"not a Word document ({type(exc).__name__}: {exc})"[:200]) from None
    blocks = []
    size = 0
    for block in _blocks(document.element.body):
        if block.strip():
            blocks.append(block)
            size += len(block) + 2
            check_chars(size, limits)
    props = document.core_properties
    return Extracted(
        text="\n\n".join(blocks),
        format="docx",
        title=clean_field(props.title),
        author=clean_field(props.author),
        date=iso_date(props.created),
    )


def check_zip(data: bytes, limits: Limits, kind: str = "Word document") -> None:
    """Refuse a zip whose directory promises more than ``limits.max_unpacked_bytes`` or a bomb's ratio.

    ``kind`` names the format in the reason (every zip-based format uses this check).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableDocument(f"not a {kind} (bad zip: {exc})") from None
    if len(members) > MAX_MEMBERS:
        raise UnreadableDocument(f"zip with {len(members):,} members: not a plausible {kind}")
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked_bytes:
        raise UnreadableDocument(
            f"unpacks to {total:,} bytes (limit {limits.max_unpacked_bytes:,}): zip bomb or huge document")
    for m in members:
        if m.file_size > MAX_RATIO * max(m.compress_size, 1) and m.file_size > 1 << 20:
            raise UnreadableDocument(f"zip member {m.filename} inflates {m.file_size // max(m.compress_size, 1):,}x: zip bomb")


def _blocks(body):
    """Yield the text of each paragraph and table row, in document order."""
    for child in body.iterchildren():
        if child.tag == _W + "p":
            yield _paragraph_text(child)
        elif child.tag == _W + "tbl":
            for row in child.iter(_W + "tr"):
                cells = [" ".join(_paragraph_text(p) for p in tc.iter(_W + "p")).strip()
                         for tc in row.iterchildren(_W + "tc")]
                yield "\t".join(cells)


def _paragraph_text(p) -> str:
    """Text of a <w:p>: its runs' text, tabs and line breaks (python-docx's rule, without its objects)."""
    parts = []
    for node in p.iter(_W + "t", _W + "tab", _W + "br", _W + "cr"):
        if node.tag == _W + "t":
            parts.append(node.text or "")
        elif node.tag == _W + "tab":
            parts.append("\t")
        else:
            parts.append("\n")
    return "".join(parts)
