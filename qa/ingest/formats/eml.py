"""E-mail (.eml) with the standard library: Subject, Date and From as metadata, the text body as text.

The text/plain body is preferred; a message with only an HTML body goes through
the HTML reader (its page chrome removed as for a web page). Attachments are not
read. A part in an unknown or broken charset is decoded as well as it can be.
``parse``, ``body_text``, ``metadata`` and ``header`` are shared with the mailbox
reader (mbox.py), which reads each of its messages as this module reads one.
"""

from __future__ import annotations

import email
import email.policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, iso_date
from .text import decode as decode_text


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract the message body and its Subject/Date/From."""
    message = parse(data)
    return Extracted(text=body_text(message, limits), format="email", **metadata(message))


def parse(data: bytes) -> EmailMessage:
    """Parse one message's bytes; UnreadableDocument when they hold no header at all."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not any(message.keys()):
        raise UnreadableDocument("not an e-mail message (no headers)")
    return message


def body_text(message: EmailMessage, limits: Limits) -> str:
    """The text part, else the HTML part's main text (read as a web page); UnreadableDocument when neither."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        raise UnreadableDocument("e-mail has no text or HTML body")
    content = _content(body)
    if body.get_content_subtype() == "html":
        from . import html

        return html.read(content, limits).text
    check_chars(len(content), limits)
    return content


def metadata(message: EmailMessage) -> dict[str, str | None]:
    """Subject as the title, Date as the date, the sender as the author."""
    return {"title": header(message, "Subject"), "date": _date(message), "author": _author(message)}


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


def header(message, name: str) -> str | None:
    """A header's decoded value on one line (qa/ingest/read.py bounds it as it does every field), or None."""
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError, AttributeError):  # a header the parser cannot model
        return None
    return clean_field(str(value)) if value is not None else None


def _date(message) -> str | None:
    """The Date header as YYYY-MM-DD in the sender's own time zone."""
    value = header(message, "Date")
    if not value:
        return None
    try:
        return iso_date(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def sender(message) -> Address | None:
    """The first address of the From header, or None when it has none the parser can model."""
    try:
        field = message.get("From")
        addresses: tuple[Address, ...] = field.addresses if field is not None else ()
    except (ValueError, TypeError, IndexError, AttributeError):
        return None
    return addresses[0] if addresses else None


def _author(message) -> str | None:
    """The sender's display name, else the address."""
    first = sender(message)
    if first is None:
        return header(message, "From")
    return clean_field(first.display_name) or clean_field(first.addr_spec)
