"""Word .docx with python-docx (MIT): body paragraphs and tables in order, core-property metadata.

A .docx is a zip: its listed uncompressed sizes are checked before anything is
inflated, so a zip bomb is refused from its directory alone. python-docx parses
the XML parts with lxml, which refuses entity expansion and network access.
"""

from __future__ import annotations

import io
import zipfile

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, iso_date
from .packages import check_zip

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract paragraphs (a blank line between them) and table rows (cells split by tabs)."""
    check_zip(data, limits, "Word document")
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
