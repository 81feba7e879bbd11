"""A folder of every format qa reads, as people keep one, indexed and served by `qa serve` with the real model.

The folder mixes the rendered fixtures (PDFs printed by Chromium, news pages,
e-mails, a Word file, a cp1252 text, an encrypted PDF and a scanned one) with
files made here in the shapes real ones have: a three-slide deck with speaker
notes, a workbook of two sheets, a CSV under a preamble, an EPUB opening with
"About this book", an ODT, an Outlook message, a CRLF mailbox hard-wrapped by
its mail client, Markdown, a PDF whose title holds a NUL, a photographed notice
(read by OCR: rapidocr is in the test extra), a long name in nested folders and
a file of a type qa does not read. Each holds a fact one question finds (the
renderings of one seed share theirs); everything is checked over HTTP, as a
client sees it.
"""

from __future__ import annotations

import io
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from documents import (
    ODF_NS, make_csv, make_epub, make_mbox, make_message, make_msg, make_odt, make_pptx, make_xlsx, tiny_pdf,
)
from markupsafe import escape

from qa import testing

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: The seeds printed to PDF, in seed order. Renderings of one seed hold the same words: any of them answers.
SEED_PDF = sorted(f"seeds-pdf/{path.name}" for path in (FIXTURES / "seeds-pdf").glob("*.pdf"))
FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]  # Debian fonts-dejavu-core
LONG_NAME = ("archive/2019/minutes/minutes of the annual general meeting of the Mill Lane allotment holders "
             "association held in the village hall on the second Tuesday of November 2019.txt")


@dataclass(frozen=True)
class Fact:
    """A question, the files that answer it, and words its first passage holds."""

    question: str
    sources: tuple[str, ...]
    evidence: str


FACTS = {
    "pptx": Fact("How deep is the main channel after the dredging?", ("harbour review.pptx",),
                 "14 metres deep"),
    "xlsx": Fact("How many boat builders did the 1901 census count?", ("census 1901.xlsx",),
                 "Occupation: Boat builder | Men: 17"),
    "csv": Fact("How much rain fell at Kirkwall in January?", ("rainfall.csv",),
                "Station: Kirkwall | Month: January 2024 | Rainfall (mm): 163"),
    "epub": Fact("When was the Skerry Rock lighthouse automated?", ("the keeper.epub",), "automated in 1987"),
    "odt": Fact("How many grey herons nested in the reed beds?", ("marsh survey.odt",),
                "Three hundred pairs of grey herons"),
    "msg": Fact("When will the new ferry be delivered?", ("ferry delivery.msg",), "delivered to Stromness on 12 June"),
    "mbox": Fact("Where will the winter lectures be streamed live?", ("society.mbox",), "New\nZealand"),
    "markdown": Fact("How many kinds of apple tree grow in the community orchard?", ("notes/orchard.md",),
                     "37 kinds of apple tree"),
    "pdf title with a NUL": Fact("How many rivets of the north span had rust?", ("bridge inspection.pdf",),
                                 "112 rivets"),
    "long nested name": Fact("How much is the allotment rent after the vote?", (LONG_NAME,), "45 pounds"),
    "docx table": Fact("What is Washington's position at a glance?", ("formats/talks.docx",), "Open door policy"),
    "seed 000": Fact("Which consulates did Trump close?", (SEED_PDF[0],), "Closing ALL Russian consulates"),
    "seed 001": Fact("What does Moscow want regarding NATO near its borders?", (SEED_PDF[1], "formats/talks.docx"),
                     "NATO encroachment"),
    "seed 002": Fact("Which region does the author say stands apart in the negotiations?",
                     (SEED_PDF[2], "formats/digest.eml", "formats/html-only.eml"), "The Kursk region stands apart"),
    "seed 003": Fact("Who did Lavrov blame for the civilian deaths at a Donetsk market?",
                     (SEED_PDF[3], "formats/news-jsonld.html", "formats/article.pdf", "formats/legacy-cp1252.txt"),
                     "funnel weapons to Kiev"),
    "seed 004": Fact("When did the US suspend the INF Treaty?", (SEED_PDF[4], "formats/blog-opengraph.html"),
                     "suspended the INF Treaty in February 2019"),
    "scan": Fact("When is the swimming pool closed for repairs?", ("notice.png",), "closed for repairs"),
    "pdf pages": Fact("What comes after the page that is only a drawing?",
                      ("formats/blank-middle-page.pdf", "formats/xmp-only.pdf"), "The third page has text again"),
}
#: Where the answers from paged formats are, in the document's own terms.
PLACES = {"pptx": "slide 2", "xlsx": "sheet 'Occupation'", "mbox": "message 2"}
#: Files in the folder qa does not index, and words of the reason it gives.
SKIPPED = {
    "drawings/site plan.dwg": "unsupported file type '.dwg'",
    "formats/encrypted.pdf": "encrypted PDF",
    "formats/no-text-layer.pdf": "no text",
}


def _slides() -> bytes:
    """A board deck of three slides, each with the speaker's notes; the fact is on slide 2."""
    return make_pptx([
        ("Harbour review 2024", ["Report to the harbour board, April 2024", "Dredging, the quays, the year ahead"]),
        ("Dredging results", ["The dredging of the main channel finished in March, two weeks early",
                              "Main channel: 14 metres deep at low water",
                              "Ships of up to nine metres draught can enter at any state of the tide"]),
        ("Next steps", ["Survey the channel again in the autumn", "Put the quay repairs out to tender in May",
                        "Report the final cost to the board in June"]),
    ], notes=[
        ("Welcome everyone, and thank you for coming out on a wet evening. This review covers three things: the "
         "dredging of the main channel, which the board approved two years ago, the state of the quays after the "
         "winter storms, and what the harbour office proposes for the year ahead. The figures in it are the "
         "harbour office's own, checked by the auditors in March. Questions are welcome at the end, and the "
         "slides will be on the council's website tomorrow."),
        ("Start with the good news. The contractor kept two dredgers working through February, when the weather "
         "allowed, and finished ahead of time and within the budget. The soundings taken afterwards by our own "
         "survey launch agree with the contractor's: the main channel is now 14 metres deep at low water, so "
         "the depth is certain. The pilots have already brought in two cargo ships that would have waited for "
         "the tide last year. The fishermen's association thanked the board for keeping the north quay open "
         "during the work, and no complaint about noise came from the houses on Quay Street."),
        ("The autumn survey will tell us how fast the channel silts up again; the last dredging lasted nine years. "
         "The quay repairs are separate and need their own budget line."),
    ], title="Harbour review 2024", author="Harbour office", created=datetime(2024, 4, 2, 10, 0))


def _workbook() -> bytes:
    """A census workbook: a summary sheet by parish, then occupations (the fact half way down)."""
    parishes = [("Stromness", 612, 2215), ("Sandwick", 301, 1187), ("Birsay", 288, 1102), ("Harray", 190, 781),
                ("Stenness", 122, 498), ("Orphir", 205, 843), ("Evie", 140, 562), ("Rendall", 118, 470),
                ("Firth", 160, 655), ("Hoy", 210, 860), ("Graemsay", 38, 151), ("Walls", 260, 1050)]
    summary = [["Parish census 1901: households and people by parish"], [], ["Parish", "Households", "People"],
               *[list(row) for row in parishes], ["Total", sum(r[1] for r in parishes), sum(r[2] for r in parishes)]]
    trades = [("Fisherman", 214, 3, "Stromness"), ("Farmer", 402, 18, "Birsay"), ("Farm servant", 98, 41, "Sandwick"),
              ("Crofter", 311, 25, "Harray"), ("Boat builder", 17, 0, "Stromness"), ("Cooper", 12, 0, "Stromness"),
              ("Blacksmith", 29, 0, "Firth"), ("Merchant", 44, 6, "Stromness"), ("Schoolmaster", 11, 14, "Orphir"),
              ("Lighthouse keeper", 6, 0, "Graemsay"), ("Shoemaker", 23, 1, "Stromness"),
              ("Dressmaker", 0, 37, "Stromness"),
              ("Domestic servant", 4, 188, "Stromness"), ("Carpenter", 38, 0, "Walls"), ("Miller", 9, 0, "Evie"),
              ("Minister", 12, 0, "Rendall"), ("Doctor", 3, 0, "Stromness"), ("Weaver", 15, 22, "Harray"),
              ("Mason", 41, 0, "Hoy"), ("Innkeeper", 7, 5, "Stromness")]
    occupation = [["Occupation", "Men", "Women", "Parish with most"], *[list(row) for row in trades]]
    return make_xlsx({"Summary": summary, "Occupation": occupation},
                     title="Parish census 1901", creator="County archive", created=datetime(2023, 9, 1, 9, 0))


def _rainfall() -> bytes:
    """A weather service's export: three preamble lines above the header, which is row 4."""
    rows = [["Monthly rainfall, Orkney stations"], ["Source: county weather office"], ["Units: millimetres"],
            ["Station", "Month", "Rainfall (mm)", "Note"]]
    for station, amounts in (("Kirkwall", (163, 88, 97, 61)), ("Stromness", (141, 95, 90, 58))):
        for month, amount in zip(("January", "February", "March", "April"), amounts):
            note = "wettest January since 1993" if (station, month) == ("Kirkwall", "January") else ""
            rows.append([station, f"{month} 2024", str(amount), note])
    return make_csv([row + [""] * (4 - len(row)) for row in rows])


def _book() -> bytes:
    """A short history: an "About this book" chapter (the fact under its heading), then the first chapter."""
    about = ("<h1>About this book</h1><p>This book tells how the lighthouse on Skerry Rock was automated in 1987, "
             "after a hundred and twelve years of keepers, and what became of the last three of them.</p>"
             "<p>It draws on the keepers' logs, now in the county archive, and on conversations with their "
             "families.</p>")
    chapter = ("<h1>The last watch</h1><p>On the final night the principal keeper wrote up the log as he had every "
               "night for nineteen years, then put out the lamp room light himself.</p>")
    metadata = ("<dc:title>The Keeper of Skerry Rock</dc:title><dc:creator>Mary Quill</dc:creator>"
                "<dc:date>1998-04-23</dc:date>")
    return make_epub([("About this book", about), ("The last watch", chapter)], metadata)


def _survey() -> bytes:
    """A field report written in LibreOffice: title, author and date in meta.xml."""
    meta = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-meta {ODF_NS} office:version="1.3">'
            "<office:meta><dc:title>Marsh survey, spring 2024</dc:title>"
            "<meta:initial-creator>Jonas Field</meta:initial-creator>"
            "<meta:creation-date>2024-05-20T16:00:00</meta:creation-date></office:meta></office:document-meta>")
    body = ('<text:h text:outline-level="1">Survey of the marsh</text:h>'
            "<text:p>Three hundred pairs of grey herons nested in the reed beds this spring, forty more than last "
            "year.</text:p><text:p>The water level stayed high until June, which kept foxes off the nesting "
            "islands.</text:p>")
    return make_odt(body, meta)


def _mailbox() -> bytes:
    """A society's mailing list: three messages, hard-wrapped at 76 columns by the mail client, saved with CRLF."""
    programme = ("Dear members,\n\n"
                 "The winter programme starts on Tuesday 3 December with a talk on the seabird\n"
                 "colonies of the west cliffs by Dr Ruth Okafor, who has counted them every\n"
                 "summer since 2009. Her counts show the kittiwakes down by a third and the\n"
                 "puffins holding steady, and she will say what she thinks lies behind both.\n\n"
                 "Talks are in the Stromness town hall at half past seven. Tea and biscuits are\n"
                 "served from seven, and members may bring one guest each without charge. The\n"
                 "full programme, with the dates of all six talks, is pinned up in the library\n"
                 "and will be printed in the spring newsletter.\n\n"
                 "The secretary\n")
    lectures = ("Dear members,\n\n"
                "Several of you who have moved away asked whether you could follow the talks\n"
                "from home. The committee agreed on Monday to try it this winter, with the\n"
                "camera and microphone lent by the school.\n\n"
                "The winter lectures on coastal birds will be streamed live to members in\n"
                "Canada, in the United States and in Ireland as well as in Australia and New\n"
                "Zealand, where the talks air on the following morning, local time.\n\n"
                "A link will be sent to every member on the list the day before each talk.\n"
                "Recordings will stay online for a month, and questions may be sent in by\n"
                "e-mail during the talk; the chair will read out as many as time allows.\n\n"
                "The secretary\n")
    dinner = ("Tickets for the annual dinner on Saturday 14 December are on sale at the\n"
              "harbour office, at twenty pounds each. The dinner is in the Ferry Inn and\n"
              "starts at seven; the raffle will raise money for the new bird hide on the\n"
              "loch shore. Please say when you buy a ticket if you need a vegetarian meal.\n")
    messages = [
        make_message("Winter programme", "Ann Lee <ann@example.org>", "Tue, 05 Nov 2024 09:00:00 +0000", programme),
        make_message("Lectures streamed abroad", "Ann Lee <ann@example.org>", "Wed, 06 Nov 2024 10:00:00 +0000",
                     lectures),
        make_message("Annual dinner", "Bob Hale <bob@example.org>", "Thu, 07 Nov 2024 18:30:00 +0000", dinner),
    ]
    return make_mbox(messages).replace(b"\n", b"\r\n")


def _notice() -> bytes:
    """A photographed notice: black type on a grey-white page, read by OCR."""
    from PIL import Image, ImageDraw, ImageFont

    font = next((ImageFont.truetype(path, 40) for path in FONTS if Path(path).exists()), None)
    font = font or ImageFont.load_default(size=40)  # Pillow's own scalable font: no system fonts needed
    page = Image.new("L", (1400, 500), 235)
    draw = ImageDraw.Draw(page)
    for row, line in enumerate(["Notice to swimmers", "The swimming pool will be closed for repairs",
                                "from Monday 4 March to Friday 8 March."]):
        draw.text((80, 80 + 110 * row), line, fill=20, font=font)
    buffer = io.BytesIO()
    page.save(buffer, "PNG")
    return buffer.getvalue()


def make_folder(folder: Path) -> None:
    """Write the mixed documents folder."""
    for path in (FIXTURES / "formats").iterdir():
        _write(folder / "formats" / path.name, path.read_bytes())
    for path in (FIXTURES / "seeds-pdf").glob("*.pdf"):
        _write(folder / "seeds-pdf" / path.name, path.read_bytes())
    _write(folder / "harbour review.pptx", _slides())
    _write(folder / "census 1901.xlsx", _workbook())
    _write(folder / "rainfall.csv", _rainfall())
    _write(folder / "the keeper.epub", _book())
    _write(folder / "marsh survey.odt", _survey())
    _write(folder / "ferry delivery.msg", make_msg(
        "Delivery of the new ferry",
        "Dear harbour master,\r\n\r\nThe new ferry will be delivered to Stromness on 12 June by Nowak & Sons "
        "of Gdansk, after her sea trials in May.\r\n\r\nKind regards,\r\nEwa Nowak",
        SENDER_NAME="Ewa Nowak", SENDER_EMAIL_ADDRESS="ewa@example.org"))
    _write(folder / "society.mbox", _mailbox())
    _write(folder / "notes" / "orchard.md", (
        "# Community orchard\n\nThe community orchard on Mill Lane now grows 37 kinds of apple tree, "
        "most of them old Orkney varieties grafted by the volunteers.\n\nPruning days are on the first Saturday "
        "of each month from November to March.\n").encode())
    _write(folder / "bridge inspection.pdf", tiny_pdf(
        ["The bridge inspection found rust on 112 rivets of the north span."],
        b"<< /Title (Bridge inspection\\000 2024) /Author (Ann\\000Lee) >>"))
    _write(folder / LONG_NAME, (
        "Minutes of the annual general meeting\n\nThe meeting voted to raise the allotment rent to 45 pounds a year "
        "from January, the first rise since 2012.\n\nThe water troughs will be mended before spring.\n").encode())
    _write(folder / "notice.png", _notice())
    _write(folder / "drawings" / "site plan.dwg", b"AC1032" + bytes(range(256)) * 4)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mixed documents folder, written once for the module."""
    folder = tmp_path_factory.mktemp("mixed") / "docs"
    make_folder(folder)
    return folder


@pytest.fixture(scope="module")
def server(docs: Path) -> Iterator[str]:
    """`qa serve` with the real default model on the mixed folder; yields its base URL."""
    with testing.Server(docs, docs.parent / "index", docs.parent / "serve.log", workers=1) as running:
        try:
            running.wait_ready()
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield running.base


def fetch(url: str) -> tuple[int, bytes]:
    """Return the status and raw body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def api(server: str, path: str, **params) -> dict:
    """Return the JSON of a GET to the API, asserting it answered 200."""
    status, body = testing.get(f"{server}{path}?{urllib.parse.urlencode(params, doseq=True)}")
    assert status == 200, body
    return body


@pytest.fixture(scope="module")
def listing(server: str) -> dict:
    """What /api/documents says is indexed and skipped."""
    return api(server, "/api/documents", limit=1000)


@pytest.fixture(scope="module")
def answers(server: str) -> dict[str, dict]:
    """Each fact's answer from /api/search, by the fact's name."""
    return {name: api(server, "/api/search", q=fact.question, k=5) for name, fact in FACTS.items()}


def test_every_supported_file_is_indexed_and_the_rest_skipped_with_a_reason(docs, listing):
    files = {path.relative_to(docs).as_posix() for path in docs.rglob("*") if path.is_file()}
    assert {d["source"] for d in listing["documents"]} == files - set(SKIPPED)
    skipped = {s["source"]: s["reason"] for s in listing["skipped"]}
    assert set(skipped) == set(SKIPPED), skipped
    for source, words in SKIPPED.items():
        assert words in skipped[source], skipped[source]


def test_no_title_is_untitled_and_no_field_holds_a_control_character(server, listing):
    control = re.compile("[\x00-\x1f\x7f-\x9f]")
    for document in listing["documents"]:
        assert document["title"] and document["title"] != "Untitled", document
        for field in ("title", "author"):
            assert not control.search(document[field] or ""), document
    nul = next(d for d in listing["documents"] if d["source"] == "bridge inspection.pdf")
    assert (nul["title"], nul["author"]) == ("Bridge inspection 2024", "Ann Lee")  # written "Bridge inspection\0 2024"
    status, page = fetch(f"{server}/documents?limit=1000")
    assert status == 200 and b"Untitled" not in page


@pytest.mark.parametrize("name", sorted(FACTS))
def test_each_fact_is_answered_first_from_its_file(answers, name):
    fact, answer = FACTS[name], answers[name]
    first = answer["results"][0]
    assert first["source"] in fact.sources, [(r["source"], r["score"]) for r in answer["results"]]
    assert fact.evidence in first["text"]
    assert not answer["low_confidence"] and not first["weaker"], (first["score"], answer["low_confidence"])


@pytest.mark.parametrize("name", ["pptx", "xlsx", "mbox"])
def test_each_paged_answer_says_where_it_is_in_the_documents_own_terms(answers, name):
    assert answers[name]["results"][0]["place"] == PLACES[name]


@pytest.mark.parametrize("name", ["xlsx", "csv"])
def test_a_spreadsheet_answer_highlights_rows_not_runs_of_them(answers, name):
    first = answers[name]["results"][0]
    highlighted = [first["text"][start:end] for start, end in first["highlights"]]
    assert highlighted and all("\n" not in span for span in highlighted), highlighted


def test_a_sentence_across_a_hard_wrap_is_highlighted_whole_without_carriage_returns(answers):
    first = answers["mbox"]["results"][0]
    highlighted = [first["text"][start:end] for start, end in first["highlights"]]
    assert any("New\nZealand" in span for span in highlighted), highlighted
    assert "\r" not in first["text"]


def test_the_epub_highlight_is_the_answer_not_its_heading(answers):
    first = answers["epub"]["results"][0]
    highlighted = [first["text"][start:end] for start, end in first["highlights"]]
    assert highlighted and all("About this book" not in span for span in highlighted), highlighted
    assert any("automated in 1987" in span for span in highlighted), highlighted


def test_the_page_shows_each_answer_and_its_place(server, answers):
    for name, fact in FACTS.items():
        status, body = fetch(f"{server}/?{urllib.parse.urlencode({'q': fact.question, 'k': 5})}")
        assert status == 200
        page = body.decode("utf-8").replace("<mark>", "").replace("</mark>", "")  # the highlights, taken out
        for result in answers[name]["results"]:
            assert str(escape(result["text"])) in page, (name, result["source"])  # "&" as "&amp;", "'" as "&#39;"
            if result["place"]:
                assert str(escape(result["place"])) in page, (name, result["place"])
        if name == "msg":
            assert "Nowak &amp; Sons" in page


def test_every_original_is_served_byte_for_byte(server, docs, listing):
    for document in listing["documents"]:
        status, body = fetch(f"{server}/file?{urllib.parse.urlencode({'source': document['source']})}")
        assert status == 200, document["source"]
        assert body == (docs / document["source"]).read_bytes(), document["source"]


def test_each_result_text_is_the_span_of_its_document(server, answers):
    for answer in answers.values():
        for result in answer["results"]:
            span = api(server, "/api/document", source=result["source"], start=result["start"], end=result["end"])
            assert span["text"] == result["text"]
