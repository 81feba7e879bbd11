"""E-mail (.eml) with the standard library: Subject, Date and From as metadata, the text body as text.

The text/plain body is preferred; a message with only an HTML body goes through
the HTML reader (its page chrome removed as for a web page). Attachments are not
read. A part in an unknown or broken charset is decoded as well as it can be.
"""

from __future__ import annotations

import email
import email.policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, iso_date
from .text import decode as decode_text

#: Characters of a header value kept: a longer Subject or From is junk, not metadata.
MAX_HEADER = 1000


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract the message body and its Subject/Date/From."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not any(message.keys()):
        raise UnreadableDocument("not an e-mail message (no headers)")
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        raise UnreadableDocument("e-mail has no text or HTML body")
    content = _content(body)
    meta = {
        "title": _header(message, "Subject"),
        "date": _date(message),
        "author": _author(message),
    }
    if body.get_content_subtype() == "html":
        from . import html

        page = html.read(content, limits)
        return Extracted(text=page.text, format="email", **meta)
    check_chars(len(content), limits)
    return Extracted(text=content, format="email", **meta)


def _content(part) -> str:
    """Decode a body part; an unknown or lying charset falls back to detection, never to an error."""
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, ValueError, AssertionError):
        pass
    payload = part.get_payload(decode=True) or b""
    try:
        return decode_text(payload)[0]
    except UnreadableDocument:
        return payload.decode("utf-8", "replace")


def _header(message, name: str) -> str | None:
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError, AttributeError):  # a header the parser cannot model
        return None
    return clean_field(str(value)[:MAX_HEADER]) if value is not None else None


def _date(message) -> str | None:
    """The Date header as YYYY-MM-DD in the sender's own time zone."""
    value = _header(message, "Date")
    if not value:
        return None
    try:
        return iso_date(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _author(message) -> str | None:
    """The sender's display name, else the address."""
    try:
        header = message.get("From")
        addresses: tuple[Address, ...] = header.addresses if header is not None else ()
    except (ValueError, TypeError, IndexError, AttributeError):
        return _header(message, "From")
    if not addresses:
        return _header(message, "From")
    first = addresses[0]
    return clean_field(first.display_name) or clean_field(first.addr_spec)
