"""Plain text and Markdown: UTF-8 / BOM'd UTF-16 as before, legacy encodings detected."""

from __future__ import annotations

import re

from .base import Extracted, Limits, UnreadableDocument, check_chars

#: Bytes checked for NUL, the tell-tale of a binary file (as qa.ingest does).
BINARY_SNIFF = 8192
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
#: Valid multi-byte UTF-8 characters per invalid sequence above which a file is UTF-8 with strays.
UTF8_MAJORITY = 10
#: charset-normalizer's share of "messy" characters above which a guess is refused: binary, not text.
MAX_CHAOS = 0.2
#: The legacy encoding chosen when several fit equally: Windows' Western European code page.
PREFERRED = "cp1252"


def read(data: bytes, limits: Limits, format: str = "text") -> Extracted:
    """Decode a text file; the text layer of UTF-8 or BOM'd UTF-16 is exactly ``qa.ingest.decode``'s."""
    if b"\x00" in data[:BINARY_SNIFF] and not data.startswith(_UTF16_BOMS):
        raise UnreadableDocument("binary file (contains NUL bytes)")
    text, encoding, notes = decode_noting(data)
    check_chars(len(text), limits)
    return Extracted(text=text, format=format, encoding=encoding, notes=notes)


def decode(data: bytes) -> tuple[str, str]:
    """Return the decoded text and the name of the encoding used."""
    text, encoding, _ = decode_noting(data)
    return text, encoding


def decode_noting(data: bytes) -> tuple[str, str, tuple[str, ...]]:
    """Return the decoded text, the encoding's name, and a note if bytes had to be replaced."""
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16"), "utf-16", ()
        except UnicodeDecodeError as exc:
            raise UnreadableDocument(f"broken UTF-16 text (undecodable bytes at offset {exc.start})") from None
    try:
        return data.decode("utf-8-sig"), "utf-8", ()
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    mostly_utf8 = _mostly_utf8(data)
    if mostly_utf8 is not None:
        return mostly_utf8
    return (*_decode_legacy(data, first_bad), ())


def _mostly_utf8(data: bytes) -> tuple[str, str, tuple[str, ...]] | None:
    """Decode UTF-8 with a few stray bytes (a cp1252 quote pasted in) with U+FFFD for each; else None.

    A legacy decoder would turn every real UTF-8 character of such a file into mojibake.
    """
    text = data.decode("utf-8-sig", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    good = len(_UTF8_MULTIBYTE.findall(data))
    if good < UTF8_MAJORITY * bad:
        return None
    return text, "utf-8", (f"{bad} undecodable byte sequence(s) replaced with U+FFFD",)


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
