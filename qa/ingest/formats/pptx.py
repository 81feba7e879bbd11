"""PowerPoint .pptx with python-pptx (MIT): each slide's text in slide order, one page per slide.

A slide's title comes first, then its other shapes in the order the file lists
them (the order they were added, nearly always the reading order); groups are
read inside; a table gives a line per row, its cells split by tabs (as in
docx.py); the speaker notes close the slide. A paragraph ends in a line break,
a shape in a blank line, and slides are joined by a blank line: ``pages[i]`` is
where slide ``i + 1`` starts, as for a PDF page (a slide without text keeps
its number). Pictures and charts have no text layer and are skipped.

A .pptx is a zip, checked as docx.py checks a .docx before python-pptx inflates
anything. A password-protected .pptx is not a zip but an OLE compound file
holding an ``EncryptedPackage`` stream: it is named as such.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, iso_date
from .packages import check_office_package

SLIDE_BREAK = "\n\n"
SHAPE_BREAK = "\n\n"


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract the text of each slide (a page each) and the core-property metadata."""
    check_office_package(data, limits, "PowerPoint presentation", ".ppt")
    from lxml.etree import XMLSyntaxError
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    try:
        presentation = Presentation(io.BytesIO(data))
        slides = list(presentation.slides)
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile, zlib.error, XMLSyntaxError) as exc:
        raise UnreadableDocument(f"not a PowerPoint presentation ({type(exc).__name__}: {exc})"[:200]) from None
    if not slides:
        raise UnreadableDocument("presentation has no slides")
    texts: list[str] = []
    size = 0
    for slide in slides[: limits.max_pages]:
        text = slide_text(slide)
        size += len(text) + len(SLIDE_BREAK)
        check_chars(size, limits)
        texts.append(text)
    notes = []
    if len(slides) > limits.max_pages:
        notes.append(f"read the first {limits.max_pages} of {len(slides)} slides (page limit)")
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + len(SLIDE_BREAK)
    props = presentation.core_properties
    return Extracted(
        text=SLIDE_BREAK.join(texts),
        format="pptx",
        title=clean_field(props.title),
        author=clean_field(props.author),
        date=iso_date(props.created),
        pages=tuple(starts),
        notes=tuple(notes),
    )


def slide_text(slide) -> str:
    """The slide's title, other shapes and notes, a blank line between them."""
    title = slide.shapes.title
    shapes = [title] if title is not None else []
    shapes += [shape for shape in slide.shapes if title is None or shape.shape_id != title.shape_id]
    blocks = [block for shape in shapes for block in _shape_blocks(shape)]
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        if frame is not None:
            blocks.append(_frame_text(frame))
    return SHAPE_BREAK.join(block for block in blocks if block.strip())


def _shape_blocks(shape):
    """Yield the text of a shape: its text frame, its table's rows, or a group's members."""
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):
        # Nesting is bounded by lxml's parser (256 levels), well within Python's recursion limit.
        for member in shape.shapes:
            yield from _shape_blocks(member)
    elif getattr(shape, "has_table", False):
        rows = ["\t".join(" ".join(cell.text.split()) for cell in row.cells) for row in shape.table.rows]
        yield "\n".join(row for row in rows if row.strip())
    elif getattr(shape, "has_text_frame", False):
        yield _frame_text(shape.text_frame)


def _frame_text(frame) -> str:
    """A text frame's paragraphs, one a line; a soft line break (python-pptx's "\\v") is a line break too."""
    lines = (p.text.replace("\v", "\n") for p in frame.paragraphs)
    return "\n".join(line for line in lines if line.strip())
