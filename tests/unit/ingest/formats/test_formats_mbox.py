"""Unix mailboxes (.mbox): every message a page, headed by its Subject/From/Date lines, on mailboxes written here.

Mailboxes are written two ways: by the standard library's ``mailbox.mbox`` (an
mboxo writer, as mail clients are), and byte by byte where a test needs what a
writer would not make (a CRLF mailbox, a body line opening with "From ").
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from documents import make_mbox, make_message

from qa.ingest import format_of, parse_document
from qa.ingest.formats import Extracted, Limits, UnreadableDocument, extract, extract_many, page_of
from qa.records import Document


THREAD = [
    make_message("Harbour budget", "Ann Lee <ann@example.org>", "Tue, 18 Feb 2025 09:00:00 +0000",
                 "The dredging costs 4.6 million.\nFrom the north quay it is two summers of work.\n"),
    make_message("Re: Harbour budget", "Bob Hale <bob@example.org>", "Mon, 17 Feb 2025 22:30:00 -0500",
                 "", html="<html><body><article><p>The fishermen ask for the quay to stay open all year round, "
                          "whatever the budget says about the channel.</p></article></body></html>"),
    make_message("Minutes", "Ann Lee <ann@example.org>", "Wed, 19 Feb 2025 10:00:00 +0000",
                 "The minutes will be published within ten working days.\n"),
]


def test_every_message_is_a_page_headed_by_its_subject_sender_and_date():
    data = make_mbox(THREAD)
    assert b"\n>From the north quay" in data  # the writer's escape, undone by the reader
    result = extract("harbour.mbox", data)
    assert result.format == "mbox" and len(result.pages) == 3
    text = result.text
    assert text.startswith("Subject: Harbour budget\nFrom: Ann Lee <ann@example.org>\n"
                           "Date: Tue, 18 Feb 2025 09:00:00 +0000\n\nThe dredging costs 4.6 million.\n"
                           "From the north quay it is two summers of work.")
    for number, subject in enumerate(["Harbour budget", "Re: Harbour budget", "Minutes"], start=1):
        assert text.startswith(f"Subject: {subject}\n", result.pages[number - 1])
    assert page_of(result.pages, text.index("fishermen ask")) == 2  # an HTML-only body, read as a web page
    assert page_of(result.pages, text.index("ten working days")) == 3
    # Subjects differ (a reply counts as the same): no title of its own; the earliest date; two senders: no author.
    assert (result.title, result.date, result.author) == (None, "2025-02-17", None)


def test_a_thread_of_one_subject_and_sender_gives_title_and_author():
    thread = [THREAD[0], make_message("RE: Fwd: Harbour budget", "ANN LEE <Ann@Example.org>",
                                      "Mon, 24 Feb 2025 08:00:00 +0000", "Approved on Monday.\n")]
    result = extract("thread.mbox", make_mbox(thread))
    assert (result.title, result.date, result.author) == ("Harbour budget", "2025-02-18", "Ann Lee")


def test_a_mailbox_of_many_subjects_is_named_by_its_file():
    document = parse_document("mail/2025 harbour.mbox", make_mbox(THREAD))
    assert isinstance(document, Document) and document.title == "2025 harbour"


def test_a_crlf_mailbox_has_no_carriage_returns_and_its_pages_still_start_at_their_messages():
    data = (b"From ann@example.org Tue Feb 18 09:00:00 2025\r\nFrom: ann@example.org\r\nSubject: First\r\n\r\n"
            b"A paragraph wrapped\r\nby the mail client\r\nat a fixed width.\r\n>From here on, quoted.\r\n"
            b"From ann@example.org is not a separator: no blank line before it.\r\n\r\n"
            b"From bob@example.org Wed Feb 19 10:00:00 2025\r\nFrom: bob@example.org\r\nSubject: Second\r\n\r\n"
            b"The second message.\r\n")
    document = parse_document("crlf.mbox", data)
    assert isinstance(document, Document) and "\r" not in document.text
    assert "A paragraph wrapped\nby the mail client\nat a fixed width.\nFrom here on, quoted.\n" in document.text
    assert len(document.pages) == 2
    assert [document.text[start:].split("\n")[0] for start in document.pages] == ["Subject: First", "Subject: Second"]
    assert page_of(document.pages, document.text.index("The second message.")) == 2


def test_a_mailbox_past_the_message_limit_is_read_up_to_it_with_a_note():
    messages = [make_message(f"Note {n}", "ann@example.org", "Tue, 18 Feb 2025 09:00:00 +0000", f"Body {n}.\n")
                for n in range(1, 6)]
    result = extract("many.mbox", make_mbox(messages), Limits(max_messages=3))
    assert len(result.pages) == 3 and "Body 3." in result.text and "Body 4." not in result.text
    assert result.notes == ("read the first 3 of 5 messages (message limit)",)


def test_a_message_without_a_body_keeps_its_page_and_is_noted():
    empty = EmailMessage()
    empty["Subject"], empty["From"] = "Picture", "ann@example.org"
    empty.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="p.png")
    result = extract("mixed.mbox", make_mbox([THREAD[0], empty]))
    assert len(result.pages) == 2 and result.text[result.pages[1]:] == "Subject: Picture\nFrom: ann@example.org"
    assert result.notes == ("1 message(s) without a readable body (message 2: e-mail has no text or HTML body)",)


@pytest.mark.parametrize("data, reason", [
    (b"Subject: an e-mail, not a mailbox\n\nBody.\n", "not a mailbox"),
    (b"From nobody Tue Feb 18 09:00:00 2025\n\n\x00\x01 no header here\n", "no message with headers"),
])
def test_what_is_not_a_mailbox_is_refused_with_a_reason(data, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        extract("x.mbox", data)


def test_mbox_is_read_in_a_worker_like_every_other_format():
    assert format_of("Archive.MBOX") == "mbox"
    [result] = list(extract_many([("a.mbox", make_mbox(THREAD))], workers=1))
    assert isinstance(result, Extracted) and len(result.pages) == 3
