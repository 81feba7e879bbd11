"""Unix mailboxes (.mbox) with the standard library: every message in turn, a page each, read as eml.py reads one.

An mbox is messages one after another, each opened by a "From " line (the
envelope sender and a date). Such a line is a separator at the top of the file
or after a blank line, which is where every writer puts one; a line of a body
that starts with "From " was escaped by its writer as ">From ", and one ">" is
taken off every ">From ", ">>From ", ... line again (mboxrd; the same reading of
an mboxo file changes only a ">From " its sender typed). Each message's bytes are
then parsed by the ``email`` package, as an .eml file is.

The text layer holds every message in file order, each a page that starts with
its Subject, From and Date lines, then its body (eml.py's: the text part, else
the HTML part's main text); ``pages[i]`` is where message ``i + 1`` starts, as a
PDF's page does. Metadata: the subject when every message has the same one
(replies and forwards of it included), the earliest date, and the sender when
every message has the same one; a mailbox of many subjects has no title of its
own (qa/ingest/read.py then names it by its file).

Bounds: ``Limits.max_messages`` messages, and ``base.TIME_SHARE`` of the file's
time limit (an HTML body goes through trafilatura, milliseconds a message); past
either, the messages read are kept and a note says how many were left.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from . import eml
from .base import Extracted, Limits, UnreadableDocument, check_chars, deadline

MESSAGE_BREAK = "\n\n"
#: A message's "From " line: at the top of the file, or after a blank line.
_SEPARATOR = re.compile(rb"(?:\A|(?<=\n\n)|(?<=\n\r\n))From [^\n]*\n")
#: A body line that starts with "From " behind one or more ">": the writer's escape, undone by one ">".
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.M)
#: "Re:", "Fwd:", "AW:", "[2]" and the like before a subject: a reply is on the same subject.
_REPLY = re.compile(r"^(?:(?:re|fwd?|aw|wg|sv|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
#: Messages named in a note about bodies that could not be read.
NOTED = 3


@dataclass(frozen=True)
class _Message:
    """What one message adds to the mailbox: its page of the text layer and its metadata."""

    page: str
    subject: str | None
    date: str | None
    author: str | None
    #: The sender's address, lower case: the same sender whatever name a message gives.
    address: str | None
    #: Why its body could not be read, if it could not.
    problem: str | None = None


def read(data: bytes, limits: Limits) -> Extracted:
    """Extract every message (a page each) and the mailbox's subject, earliest date and sender."""
    spans = split(data)
    if not spans:
        raise UnreadableDocument('not a mailbox (no "From " line opens a message)')
    notes = []
    if len(spans) > limits.max_messages:
        notes.append(f"read the first {limits.max_messages:,} of {len(spans):,} messages (message limit)")
    stop_at = deadline(limits)
    messages: list[_Message] = []
    size = 0
    for number, (start, end) in enumerate(spans[: limits.max_messages], start=1):
        if messages and time.monotonic() > stop_at:
            notes.append(f"read the first {len(messages):,} of {len(spans):,} messages (time limit)")
            break
        message = _read_message(_QUOTED_FROM.sub(rb"\1", data[start:end]), limits)
        if message is None:
            continue  # bytes between separators with no header: not a message
        size += len(message.page) + len(MESSAGE_BREAK)
        check_chars(size, limits)
        messages.append(message)
    if not messages:
        raise UnreadableDocument("mailbox holds no message with headers")
    notes.extend(_problems(messages))
    starts, offset = [], 0
    for message in messages:
        starts.append(offset)
        offset += len(message.page) + len(MESSAGE_BREAK)
    return Extracted(text=MESSAGE_BREAK.join(m.page for m in messages), format="mbox", pages=tuple(starts),
                     notes=tuple(notes), **_metadata(messages))


def split(data: bytes) -> list[tuple[int, int]]:
    """The (start, end) byte offsets of each message, its "From " line left out."""
    found = list(_SEPARATOR.finditer(data))
    ends = [m.start() for m in found[1:]] + [len(data)]
    return [(m.end(), end) for m, end in zip(found, ends)]


def _read_message(raw: bytes, limits: Limits) -> _Message | None:
    """One message's page (Subject, From and Date lines, then the body), or None when it has no header."""
    try:
        message = eml.parse(raw)
    except UnreadableDocument:
        return None
    meta = eml.metadata(message)
    lines = [f"{label}: {value}" for label in ("Subject", "From", "Date") if (value := eml.header(message, label))]
    problem = None
    try:
        body = eml.body_text(message, limits).strip("\r\n")
    except MemoryError:
        raise
    except UnreadableDocument as exc:
        body, problem = "", str(exc)
    except Exception as exc:  # a parser's bug on one broken message must not cost the mailbox
        body, problem = "", f"{type(exc).__name__}: {exc}"[:200]
    sender = eml.sender(message)
    page = "\n".join(lines) + (MESSAGE_BREAK + body if body and lines else body)
    return _Message(page=page, subject=meta["title"], date=meta["date"], author=meta["author"],
                    address=sender.addr_spec.lower() if sender is not None and sender.addr_spec else None,
                    problem=problem)


def _metadata(messages: list[_Message]) -> dict[str, str | None]:
    """The subject all messages share, the earliest date, and the sender all messages share."""
    subjects = {_REPLY.sub("", m.subject or "").strip().casefold() for m in messages}
    title = None
    if len(subjects) == 1 and "" not in subjects:
        title = next(_REPLY.sub("", m.subject) for m in messages if m.subject).strip()
    dates = [m.date for m in messages if m.date]
    senders = {m.address for m in messages}
    author = messages[0].author if len(senders) == 1 and None not in senders else None
    return {"title": title, "date": min(dates) if dates else None, "author": author}


def _problems(messages: list[_Message]) -> list[str]:
    """A note naming the first messages whose bodies could not be read, and how many there were."""
    failed = [(n, m.problem) for n, m in enumerate(messages, start=1) if m.problem]
    if not failed:
        return []
    named = "; ".join(f"message {n}: {problem}" for n, problem in failed[:NOTED])
    return [f"{len(failed):,} message(s) without a readable body ({named}{'; ...' if len(failed) > NOTED else ''})"]
