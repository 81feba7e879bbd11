"""Read documents as people keep them: text, Markdown, HTML, PDF, Word, PowerPoint, Excel and CSV, EPUB,
OpenDocument text, e-mail (.eml, Outlook .msg, mailboxes: .mbox), and scanned pages (PNG, JPEG, TIFF; read by
OCR, an extra).

``extract(name, data)`` turns one file's bytes into an :class:`Extracted` text layer
with the metadata the file itself carries, or raises :class:`UnreadableDocument`
with a one-line reason; nothing else escapes it. One module per format; the
parsing libraries are imported only when a file of their format is read.

``extract`` runs in the caller's process and bounds what Python code can bound
(file size, PDF pages, zip sizes, text length). A C parser (lxml, PDFium) can
still loop, recurse or allocate past any bound, so ingest should read files with
``extract_many``, which runs every non-text file in a worker process with an
address-space limit and a per-file timeout (see ``qa/ingest/formats/isolate.py`` for the
design and its measured cost).
"""

from __future__ import annotations

from .base import DEFAULT_LIMITS, Extracted, Limits, UnreadableDocument, page_of
from .isolate import extract_many

__all__ = [
    "DEFAULT_LIMITS", "Extracted", "Limits", "SUFFIXES", "UnreadableDocument",
    "extract", "extract_many", "format_of", "page_of",
]

#: File suffix (lower case) -> format name.
SUFFIXES: dict[str, str] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".eml": "email",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".epub": "epub",
    ".odt": "odt",
    ".msg": "msg",
    ".mbox": "mbox",
    # Scans and photos of text, read by OCR (pip install 'qa[ocr]'; without it they are skipped, saying so).
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
}
#: Formats read in the caller's process by ``extract_many``: pure Python, bounded by their size.
IN_PROCESS = frozenset({"text", "markdown"})
_NAME_LIMIT = 200


def format_of(name: str) -> str | None:
    """Return the format a file name's suffix says, or None when qa does not read it."""
    dot = name.rfind(".")
    return SUFFIXES.get(name[dot:].lower()) if dot >= 0 else None


def extract(name: str, data: bytes, limits: Limits = DEFAULT_LIMITS) -> Extracted:
    """Read one file's bytes as the format its name says.

    Args:
        name: The file name or path; only its suffix is used.
        data: The whole file.
        limits: Bounds on size and work.

    Returns:
        The text layer and metadata.

    Raises:
        UnreadableDocument: the file cannot be indexed; ``str()`` says why in one line.
    """
    fmt = format_of(name)
    if fmt is None:
        raise UnreadableDocument(f"unsupported file type {name[name.rfind('.'):][:20]!r}")
    if len(data) > limits.max_bytes:
        raise UnreadableDocument(f"too large: {len(data):,} bytes (limit {limits.max_bytes:,})")
    if not data.strip():
        raise UnreadableDocument("empty file")
    try:
        result = _read(fmt, data, limits)
    except UnreadableDocument:
        raise
    except MemoryError:
        raise UnreadableDocument(f"{fmt}: out of memory while parsing", transient=True) from None
    except RecursionError:
        raise UnreadableDocument(f"{fmt}: too deeply nested to parse") from None
    except Exception as exc:  # a parser's own bug on a malformed file must not stop the caller
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:_NAME_LIMIT]
        raise UnreadableDocument(f"unreadable {fmt} ({reason})") from None
    if not result.text.strip():
        raise UnreadableDocument("no text")
    return result


def _read(fmt: str, data: bytes, limits: Limits) -> Extracted:
    if fmt in ("text", "markdown"):
        from . import text

        return text.read(data, limits, format=fmt)
    if fmt == "html":
        from . import html

        return html.read(data, limits)
    if fmt == "pdf":
        from . import pdf

        return pdf.read(data, limits)
    if fmt == "docx":
        from . import docx

        return docx.read(data, limits)
    if fmt == "pptx":
        from . import pptx

        return pptx.read(data, limits)
    if fmt in ("xlsx", "csv"):
        from . import sheet

        return sheet.read(data, limits, format=fmt)
    if fmt == "epub":
        from . import epub

        return epub.read(data, limits)
    if fmt == "odt":
        from . import odt

        return odt.read(data, limits)
    if fmt == "msg":
        from . import msg

        return msg.read(data, limits)
    if fmt == "mbox":
        from . import mbox

        return mbox.read(data, limits)
    if fmt == "image":
        from . import image

        return image.read(data, limits)
    from . import eml

    return eml.read(data, limits)
