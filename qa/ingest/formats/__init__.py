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

import importlib

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
#: Format -> (the module of this package that reads it, whether its ``read`` is told the format).
READERS: dict[str, tuple[str, bool]] = {
    "text": ("text", True),
    "markdown": ("text", True),
    "html": ("html", False),
    "pdf": ("pdf", False),
    "docx": ("docx", False),
    "pptx": ("pptx", False),
    "xlsx": ("sheet", True),
    "csv": ("sheet", True),
    "epub": ("epub", False),
    "odt": ("odt", False),
    "email": ("eml", False),
    "msg": ("msg", False),
    "mbox": ("mbox", False),
    "image": ("image", False),
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
    module_name, told_format = READERS[fmt]
    reader = importlib.import_module(f".{module_name}", __name__)  # its parsing library, only when needed
    return reader.read(data, limits, format=fmt) if told_format else reader.read(data, limits)
