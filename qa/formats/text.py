"""Plain text and Markdown: UTF-8 / BOM'd UTF-16 as before, legacy encodings detected."""

from __future__ import annotations

from .base import Extracted, Limits, UnreadableDocument

#: Bytes checked for NUL, the tell-tale of a binary file (as qa.ingest does).
BINARY_SNIFF = 8192
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: charset-normalizer's share of "messy" characters above which a guess is refused: binary, not text.
MAX_CHAOS = 0.2
#: The legacy encoding chosen when several fit equally: Windows' Western European code page.
PREFERRED = "cp1252"


def read(data: bytes, limits: Limits, format: str = "text") -> Extracted:
    """Decode a text file; the text layer of UTF-8 or BOM'd UTF-16 is exactly ``qa.ingest.decode``'s."""
    if b"\x00" in data[:BINARY_SNIFF] and not data.startswith(_UTF16_BOMS):
        raise UnreadableDocument("binary file (contains NUL bytes)")
    text, encoding = decode(data)
    return Extracted(text=text, format=format, encoding=encoding)


def decode(data: bytes) -> tuple[str, str]:
    """Return the decoded text and the name of the encoding used."""
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise UnreadableDocument(f"broken UTF-16 text (undecodable bytes at offset {exc.start})") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    return _decode_legacy(data, first_bad)


def _decode_legacy(data: bytes, first_bad: int) -> tuple[str, str]:
    """Detect a single-byte or East Asian legacy encoding with charset-normalizer."""
    from charset_normalizer import from_bytes

    matches = from_bytes(data, threshold=MAX_CHAOS)
    best = matches.best()
    if best is None or best.encoding.replace("_", "-") in ("utf-8", "utf-8-sig"):
        raise UnreadableDocument(f"not text in any known encoding (undecodable byte at offset {first_bad})")
    encoding = best.encoding
    # Short Western text fits cp1250, cp1252 and cp1257 equally well; cp1252 is by far the likeliest.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    if any(PREFERRED in m.could_be_from_charset for m in tied):
        encoding = PREFERRED
    try:
        return data.decode(encoding), encoding
    except (UnicodeDecodeError, LookupError):
        raise UnreadableDocument(f"not text in any known encoding (undecodable byte at offset {first_bad})") from None
