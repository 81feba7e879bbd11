"""Outlook .msg with olefile (BSD): subject, sender, date and the plain-text body.

A .msg is an OLE compound file laid out by [MS-OXMSG]: each MAPI property of
the message is a stream ``__substg1.0_IIIITTTT`` (property id IIII, type TTTT:
001F a UTF-16LE string, 001E an 8-bit string in the message's code page, 0102
binary), or, when its value is fixed-size (a date, a number), a 16-byte entry
in the ``__properties_version1.0`` stream after its 32-byte header. olefile
reads the container; the properties are read here (extract-msg would do it,
but it is GPL and qa is MIT).

The text is PidTagBody; a message with only an HTML body (PidTagHtml) goes
through the HTML reader, as eml.py does. A body kept only as compressed RTF is
not read. The date is when the sender sent it (PidTagClientSubmitTime), else
when it arrived (PidTagMessageDeliveryTime), in UTC: a FILETIME has no time
zone. An S/MIME message keeps its body in an attachment (encrypted or signed),
and attachments and recipients are not read.
"""

from __future__ import annotations

import codecs
import io
import struct
from datetime import UTC, datetime, timedelta

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, iso_date
from .packages import OLE_MAGIC

PROPERTIES = "__properties_version1.0"
#: The top-level message's property stream starts with a 32-byte header; each entry is 16 bytes.
PROPERTIES_HEADER = 32
PROPERTY_ENTRY = 16
# Property ids ([MS-OXPROPS]).
MESSAGE_CLASS = 0x001A
SUBJECT = 0x0037
SENT_REPRESENTING_NAME = 0x0042
SENDER_NAME = 0x0C1A
SENDER_ADDRESS = 0x0C1F
SENDER_SMTP_ADDRESS = 0x5D01
BODY = 0x1000
RTF_COMPRESSED = 0x1009
HTML = 0x1013
CLIENT_SUBMIT_TIME = 0x0039
DELIVERY_TIME = 0x0E06
MESSAGE_CODEPAGE = 0x3FFD
INTERNET_CODEPAGE = 0x3FDE
PT_LONG = 0x0003
PT_SYSTIME = 0x0040
#: The code page of 8-bit strings when the message names none: Windows' Western European.
DEFAULT_CODEPAGE = 1252
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract the body and the subject, sender and date of one Outlook message."""
    ole = _open(data)
    try:
        return _extract(_Message(ole), limits)
    finally:
        ole.close()


def _open(data: bytes):
    """Open the compound file, or say why it is not an Outlook message."""
    import olefile

    if not data.startswith(OLE_MAGIC):
        raise UnreadableDocument("not an Outlook message (not an OLE compound file)")
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except (OSError, ValueError, IndexError, struct.error, RecursionError) as exc:
        raise UnreadableDocument(f"corrupt Outlook message ({type(exc).__name__}: {exc})"[:200]) from None
    if not ole.exists(PROPERTIES) and not any(e[-1].startswith("__substg1.0_") for e in ole.listdir()):
        ole.close()
        raise UnreadableDocument("not an Outlook message (an OLE file without MAPI properties: .doc, .xls?)")
    return ole


def _extract(message: _Message, limits: Limits) -> Extracted:
    meta = {
        "title": _field(message.string(SUBJECT)),
        "author": _author(message),
        "date": iso_date(message.time(CLIENT_SUBMIT_TIME) or message.time(DELIVERY_TIME)),
    }
    body = message.string(BODY)
    if body and body.strip():
        check_chars(len(body), limits)
        return Extracted(text=body, format="msg", **meta)
    html_body = message.binary(HTML) or message.string(HTML)
    if html_body:
        from . import html

        return Extracted(text=html.read(html_body, limits).text, format="msg", **meta)
    kind = message.string(MESSAGE_CLASS) or ""
    if kind.upper() == "IPM.NOTE.SMIME":
        raise UnreadableDocument("encrypted e-mail (S/MIME): its body is not readable")
    if kind.upper().startswith("IPM.NOTE.SMIME"):
        raise UnreadableDocument("signed S/MIME e-mail: its body is in an attachment (not read)")
    if message.has(RTF_COMPRESSED, 0x0102):
        raise UnreadableDocument("e-mail body only in compressed RTF (not read)")
    raise UnreadableDocument("e-mail has no text or HTML body")


class _Message:
    """The top-level MAPI properties of an open .msg file."""

    def __init__(self, ole) -> None:
        self.ole = ole
        self.fixed = self._fixed_properties()

    def has(self, prop: int, kind: int) -> bool:
        return self.ole.exists(f"__substg1.0_{prop:04X}{kind:04X}")

    def binary(self, prop: int) -> bytes | None:
        """A PT_BINARY property's bytes, or None."""
        return self._stream(f"__substg1.0_{prop:04X}0102")

    def string(self, prop: int) -> str | None:
        """A string property: the UTF-16 (001F) stream, else the 8-bit (001E) one in the message's code page."""
        raw = self._stream(f"__substg1.0_{prop:04X}001F")
        if raw is not None:
            return raw.decode("utf-16-le", errors="replace").rstrip("\x00")
        raw = self._stream(f"__substg1.0_{prop:04X}001E")
        if raw is not None:
            return raw.decode(self._codec(), errors="replace").rstrip("\x00")
        return None

    def time(self, prop: int) -> datetime | None:
        """A PT_SYSTIME property (a FILETIME: 100 ns ticks since 1601, UTC), or None."""
        ticks = self.fixed.get((prop, PT_SYSTIME))
        if not ticks:
            return None
        try:
            return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
        except OverflowError:
            return None

    def _stream(self, name: str) -> bytes | None:
        if not self.ole.exists(name):
            return None
        try:
            return self.ole.openstream(name).read()
        except (OSError, ValueError, IndexError, struct.error) as exc:
            raise UnreadableDocument(f"corrupt Outlook message ({name}: {exc})"[:200]) from None

    def _fixed_properties(self) -> dict[tuple[int, int], int]:
        """(property id, type) -> the 8-byte value, as an unsigned integer, of each fixed-size property."""
        raw = self._stream(PROPERTIES) or b""
        values = {}
        for offset in range(PROPERTIES_HEADER, len(raw) - PROPERTY_ENTRY + 1, PROPERTY_ENTRY):
            tag, _flags, value = struct.unpack_from("<IIQ", raw, offset)
            values[(tag >> 16, tag & 0xFFFF)] = value
        return values

    def _codec(self) -> str:
        """The Python codec of the message's 8-bit strings (its code page), else cp1252."""
        for prop in (MESSAGE_CODEPAGE, INTERNET_CODEPAGE):
            page = self.fixed.get((prop, PT_LONG), 0) & 0xFFFFFFFF
            if page:
                name = "utf-8" if page == 65001 else f"cp{page}"
                try:
                    return codecs.lookup(name).name
                except LookupError:
                    continue
        return f"cp{DEFAULT_CODEPAGE}"


def _field(value: str | None) -> str | None:
    """A string property as a metadata value (qa/ingest/read.py bounds it as it does every field)."""
    return clean_field(value) if value else None


def _author(message: _Message) -> str | None:
    """The sender's display name, else an SMTP address (an Exchange sender's own address is an X.500 path)."""
    for prop in (SENDER_NAME, SENT_REPRESENTING_NAME, SENDER_SMTP_ADDRESS):
        value = _field(message.string(prop))
        if value:
            return value
    address = _field(message.string(SENDER_ADDRESS))
    return address if address and "@" in address else None
