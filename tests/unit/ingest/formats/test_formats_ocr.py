"""OCR of scanned pages: character accuracy on rendered text, pages kept (TIFF, image-only PDF), bounds.

Pages are rendered here with Pillow at 200 dpi (US Letter, 1700 x 2200 px, 11 pt
text = 30 px), so the reference text is known exactly. Character accuracy is
1 - edit distance / reference length, on white-space-squashed text. Run with
``-s`` to see the figures:

    .venv/bin/python -m pytest tests/unit/ingest/formats/test_formats_ocr.py -s -k accuracy
"""

from __future__ import annotations

import io
import struct
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from qa.ingest import formats
from qa.ingest.formats import Limits, UnreadableDocument, ocr

#: Floors on character accuracy at 200 dpi: clean renders, the same made to look scanned (``scanned``),
#: and 8 pt text set tight and scanned. Measured 0.99-1.0 on all three (see the module docstring).
ACCURACY_FLOOR = {"clean": 0.95, "scanned": 0.90, "small print": 0.90}
PAGE = (1700, 2200)  # US Letter at 200 dpi
MARGIN = 200  # one inch
FONT_PX = 30  # 11 pt at 200 dpi
FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",  # Debian fonts-dejavu-core
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
]

PAGES = [
    [
        ("The committee met on 14 March 2023 to review the harbour survey. Its report runs to 212 pages and "
         "covers the north quay, the old grain store and the channel, which has silted up by 1.8 metres since "
         "the last dredging in 2009."),
        ("Three options were costed. The first, a full dredge of the channel, would cost about 4.6 million and "
         "take two summers; the second would close the north quay to ships over 90 metres; the third would do "
         "nothing for five years and survey again."),
        ("The survey team (led by Dr. Ruth Okafor) sounded the channel at 38 points; the shallowest, off the "
         "grain store, read 2.4 m at low water against 4.2 m on the 2009 chart."),
    ],
    [
        ("Residents who spoke at the meeting asked why the grain store, empty since the mill closed, could not "
         "be turned into housing. The council's answer was that the building is listed, that its floors will "
         "not bear more than 250 kg per square metre, and that any plan needs the approval of the heritage board."),
         "A petition signed by 1,431 people asks for the quay to stay open to fishing boats all year round.",
        ("Mr. Hale, for the fishermen's association, said that closing the quay in winter \"would end a trade "
         "that has worked from this harbour since 1790\". He asked whether the council had weighed the cost of "
         "lost landings, put by the association at 310,000 a year, against the cost of dredging."),
    ],
    [
        ("Questions about the survey may be sent to the harbour office (Room 4, Quay Street) before 30 April. "
         "The office opens from 9:00 to 17:00 on weekdays; its telephone number is 01632 960 775."),
        ("The next meeting is planned for June. The minutes of this one, with the tables of soundings and the "
         "costings of each option, will be published on the council's website within ten working days."),
        ("Appendix B lists the soundings by grid square, from A1 at the harbour mouth to K7 at the head of the "
         "channel; squares marked with an asterisk (*) were sounded twice, once at spring and once at neap tide."),
    ],
]


def _font() -> tuple[ImageFont.FreeTypeFont, str]:
    for path in FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, FONT_PX), Path(path).stem
    # Pillow (>= 10.1, with FreeType) bundles one scalable font: the tests need no system fonts.
    return ImageFont.load_default(size=FONT_PX), "Pillow's Aileron"


FONT, FONT_NAME = _font()


def render(paragraphs: list[str], heading: str | None = None, font_px: int = FONT_PX,
           leading: float = 1.35) -> tuple[Image.Image, str]:
    """Draw an optional heading (1.6x the text size) and paragraphs on a white page, wrapped at the margins.

    Returns the page and its reference text: heading and paragraphs separated by blank lines.
    """
    font = FONT if font_px == FONT_PX else FONT.font_variant(size=font_px)
    page = Image.new("L", PAGE, 255)
    draw = ImageDraw.Draw(page)
    width = PAGE[0] - 2 * MARGIN
    step = round(font_px * leading)
    y = MARGIN
    if heading:
        big = FONT.font_variant(size=round(font_px * 1.6))
        draw.text((MARGIN, y), heading, font=big, fill=0)
        y += round(font_px * 1.6 * leading)  # no blank line after it: its size sets it apart
    for paragraph in paragraphs:
        line: list[str] = []
        for word in paragraph.split() + [None]:
            if word is None or (line and draw.textlength(" ".join(line + [word]), font=font) > width):
                draw.text((MARGIN, y), " ".join(line), font=font, fill=0)
                y += step
                line = []
            if word is not None:
                line.append(word)
        y += step  # a blank line between paragraphs
    assert y < PAGE[1] - MARGIN, "text runs off the page"
    return page, "\n\n".join(" ".join(p.split()) for p in ([heading] if heading else []) + paragraphs)


def scanned(page: Image.Image) -> Image.Image:
    """Make a clean render look scanned: tilted half a degree, blurred, speckled, saved as a lossy JPEG."""
    from PIL import ImageFilter

    tilted = page.rotate(0.5, resample=Image.BICUBIC, expand=False, fillcolor=255)
    blurred = tilted.filter(ImageFilter.GaussianBlur(0.9))
    noisy = Image.blend(blurred, Image.effect_noise(page.size, 60), 0.12)
    buf = io.BytesIO()
    noisy.save(buf, "JPEG", quality=40)
    return Image.open(io.BytesIO(buf.getvalue()))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1), two rows at a time."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def accuracy(text: str, reference: str) -> float:
    """Character accuracy: 1 - edit distance / reference length, white space squashed in both."""
    text, reference = " ".join(text.split()), " ".join(reference.split())
    return 1 - edit_distance(text, reference) / len(reference)


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def engine():
    pytest.importorskip("rapidocr", reason="OCR engine not installed: pip install 'qa[ocr]'")
    return ocr.engine()


#: Headings of the test pages, in a larger size.
HEADINGS = ["Harbour Survey: Committee Report", "Public Session", "Further Information"]


@pytest.fixture(scope="module")
def pages() -> list[tuple[Image.Image, str]]:
    return [render(p, heading) for p, heading in zip(PAGES, HEADINGS)]


@pytest.fixture(scope="module")
def short_pages() -> list[tuple[Image.Image, str]]:
    """Three one-paragraph pages, each naming its number, for the tests of page order (fast to OCR)."""
    return [render([f"Page {n}: the {word} page of this scanned letter."]) for n, word in ((1, "first"), (2, "second"), (3, "third"))]


def test_edit_distance_oracle():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == edit_distance("abc", "") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert accuracy("a  b\nc", "a b c") == 1.0


@pytest.mark.parametrize("look", ["clean", "scanned", "small print"])
def test_character_accuracy_on_200_dpi_pages(engine, pages, look):
    figures, total_errors, total_chars = [], 0, 0
    if look == "small print":  # 8 pt (22 px at 200 dpi), set tight (leading 1.2), then scanned
        pages = [render(p, heading, font_px=22, leading=1.2) for p, heading in zip(PAGES, HEADINGS)]
    for n, (page, reference) in enumerate(pages, 1):
        if look != "clean":
            page = scanned(page)
        start = time.perf_counter()
        text = ocr.recognize(png(page) if look == "clean" else page, Limits())
        seconds = time.perf_counter() - start
        squashed = " ".join(reference.split())
        errors = edit_distance(" ".join(text.split()), squashed)
        total_errors, total_chars = total_errors + errors, total_chars + len(squashed)
        figures.append(f"page {n}: {len(squashed)} chars, {errors} edits, accuracy {1 - errors / len(squashed):.4f}, "
                       f"{seconds:.2f} s, {reference.count(chr(10) * 2) + 1} paragraphs -> {text.count(chr(10) * 2) + 1}")
        assert text.count("\n\n") == reference.count("\n\n"), (n, text)
    overall = 1 - total_errors / total_chars
    size = 22 if look == "small print" else FONT_PX
    report = "\n".join([f"OCR character accuracy, {look} ({FONT_NAME} {size} px, 200 dpi):", *figures,
                        f"overall {overall:.4f}"])
    print("\n" + report)
    assert overall >= ACCURACY_FLOOR[look], report


def test_multipage_tiff_keeps_its_pages(engine, short_pages):
    from qa.ingest.formats import image

    buf = io.BytesIO()
    frames = [p.copy() for p, _ in short_pages]
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    result = image.read(buf.getvalue(), Limits())
    assert result.format == "image" and len(result.pages) == 3
    ends = [*result.pages[1:], len(result.text)]
    for n, ((start, end), (_, reference)) in enumerate(zip(zip(result.pages, ends), short_pages), 1):
        assert accuracy(result.text[start:end], reference) >= ACCURACY_FLOOR["clean"], (n, result.text[start:end])
    assert "text read by OCR (3 pages)" in result.notes


def test_tiff_past_the_page_limit_is_read_up_to_it(engine, short_pages):
    from qa.ingest.formats import image

    buf = io.BytesIO()
    frames = [p.copy() for p, _ in short_pages]
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    result = image.read(buf.getvalue(), Limits(max_pages=2))
    assert len(result.pages) == 2 and "Page 2" in result.text and "Page 3" not in result.text
    assert "read the first 2 pages (page limit)" in result.notes


def test_ocr_stops_before_the_time_limit_with_a_note(engine, short_pages):
    from qa.ingest.formats import image

    buf = io.BytesIO()
    frames = [p.copy() for p, _ in short_pages]
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    result = image.read(buf.getvalue(), Limits(max_seconds=0.01))  # the first page is always read
    assert len(result.pages) == 1
    assert "read the first 1 page by OCR (time limit)" in result.notes


def _turned_jpeg(orientation: int, stored: Image.Transpose):
    """An encoder: the page stored turned, with the EXIF Orientation that turns it upright."""
    def encode(page: Image.Image) -> bytes:
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        page.transpose(stored).save(buf, "JPEG", quality=90, exif=exif)
        return buf.getvalue()

    encode.__name__ = f"_jpeg_with_orientation_{orientation}"
    return encode


def _grey16_png(page: Image.Image) -> bytes:
    """The page as a 16-bit grey PNG, text at 4096 on 60,000: Pillow's own "L" conversion clips both to white."""
    buf = io.BytesIO()
    page.convert("I").point(lambda v: 4096 + v * 219).convert("I;16").save(buf, "PNG")
    return buf.getvalue()


def _transparent_png(page: Image.Image) -> bytes:
    """Black text on a transparent background (white would otherwise be read as black)."""
    rgba = Image.new("RGBA", page.size, (0, 0, 0, 0))
    rgba.putalpha(page.point(lambda v: 255 - v))
    return png(rgba)


@pytest.mark.parametrize("encode", [
    _turned_jpeg(3, Image.Transpose.ROTATE_180),  # upside down
    _turned_jpeg(6, Image.Transpose.ROTATE_90),  # a phone held upright photographing a page on its side
    _grey16_png,
    _transparent_png,
], ids=lambda f: f.__name__[1:])
def test_page_stored_in_other_ways_is_read(engine, short_pages, encode):
    from qa.ingest.formats import image

    page, reference = short_pages[1]
    result = image.read(encode(page), Limits())
    assert accuracy(result.text, reference) >= ACCURACY_FLOOR["clean"], result.text


def _image_only_pdf(pages: list[Image.Image]) -> bytes:
    """A PDF of page images and no text layer, as a scanner writes it (Pillow's PDF writer)."""
    buf = io.BytesIO()
    pages = [p.copy() for p in pages]  # Pillow keeps a save's options on the appended images: not on the fixture's
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=200.0)
    return buf.getvalue()


def test_image_only_pdf_pages_are_read_by_ocr_in_order(engine, short_pages):
    import pypdfium2 as pdfium

    from qa.ingest.formats.pdf import page_text

    pdf = pdfium.PdfDocument(_image_only_pdf([p for p, _ in short_pages]))
    try:
        assert [page_text(pdf[i]) for i in range(len(pdf))] == ["", "", ""]  # no text layer
        done = ocr.ocr_pdf_pages(pdf, [0, 1, 2], Limits(), deadline=ocr.deadline_for(Limits()))
    finally:
        pdf.close()
    texts = done.texts
    assert len(texts) == 3 and done.stopped is None
    for n, (text, (_, reference)) in enumerate(zip(texts, short_pages), 1):
        assert accuracy(text, reference) >= ACCURACY_FLOOR["clean"], (n, text)


def test_extract_reads_a_scanned_pdf_by_ocr(engine, short_pages):
    from qa.ingest.formats import pdf

    if not hasattr(pdf, "ocr"):
        pytest.skip("pdf.py does not OCR pages yet (the patch in the OCR report)")
    result = formats.extract("scan.pdf", _image_only_pdf([p for p, _ in short_pages]))
    assert len(result.pages) == 3
    ends = [*result.pages[1:], len(result.text)]
    for n, (start, end) in enumerate(zip(result.pages, ends), 1):
        assert f"Page {n}" in result.text[start:end]
    assert any("by OCR" in note for note in result.notes)


def test_extract_reads_images_once_dispatched(engine, short_pages):
    if formats.format_of("scan.png") is None:
        pytest.skip("SUFFIXES has no image formats yet (the patch in the OCR report)")
    result = formats.extract("scan.png", png(short_pages[0][0]))
    assert result.format == "image" and "first page" in result.text


def test_scans_are_read_in_a_worker_within_the_default_memory_cap(engine, pages):
    """Two full pages, then an HTML file, through one worker capped at ``Limits.max_memory`` (1 GiB)."""
    if formats.format_of("scan.png") is None:
        pytest.skip("SUFFIXES has no image formats yet (the patch in the OCR report)")
    (first, first_ref), (second, second_ref) = pages[:2]
    html = b"<html><body><article><p>" + b"Words after the scans. " * 40 + b"</p></article></body></html>"
    items = [("one.png", png(first)), ("two.jpg", _jpeg(second)), ("after.html", html)]
    results = list(formats.extract_many(items, Limits(), workers=1))
    assert [type(r).__name__ for r in results] == ["Extracted"] * 3, results
    assert accuracy(results[0].text, first_ref) >= ACCURACY_FLOOR["clean"]
    assert accuracy(results[1].text, second_ref) >= ACCURACY_FLOOR["clean"]


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and carries one byte of image data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(100_000, 100_000), (10_000, 5_000)], ids=["past-pillow-limit", "past-qa-limit"])
def test_image_bomb_is_refused_before_decoding(size, monkeypatch):
    from PIL import ImageFile

    from qa.ingest.formats import image

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(UnreadableDocument, match="pixel"):
        image.read(_png_header(*size), Limits())


def test_missing_engine_names_the_extra(monkeypatch):
    from qa.ingest.formats import image

    monkeypatch.setattr(ocr, "_engine", None)
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # import rapidocr now raises ImportError
    with pytest.raises(UnreadableDocument, match=r"pip install 'qa\[ocr\]'"):
        image.read(png(Image.new("L", (200, 100), 255)), Limits())


def test_exif_gives_title_author_and_original_date():
    from qa.ingest.formats import image

    exif = Image.Exif()
    exif[0x010E] = "Harbour survey, page 1"  # ImageDescription
    exif[0x013B] = "J. Smith"  # Artist
    exif[0x0132] = "2024:06:01 12:00:00"  # DateTime, the modified date: not used
    exif.get_ifd(0x8769)[0x9003] = "2023:03:14 09:30:00"  # DateTimeOriginal
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buf, "JPEG", exif=exif)
    with Image.open(buf) as opened:
        assert image.metadata(opened) == {"title": "Harbour survey, page 1", "author": "J. Smith", "date": "2023-03-14"}


def test_camera_placeholder_description_is_not_a_title():
    from qa.ingest.formats import image

    exif = Image.Exif()
    exif[0x010E] = "OLYMPUS DIGITAL CAMERA         "
    exif[0x9C9D] = "Ann Lee".encode("utf-16-le") + b"\0\0"  # XPAuthor, as Windows writes it
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buf, "JPEG", exif=exif)
    with Image.open(buf) as opened:
        assert image.metadata(opened) == {"title": None, "author": "Ann Lee", "date": None}


def _box(text: str, left: float, top: float, height: float = 36.0, char_width: float = 16.0) -> ocr._Line:
    return ocr._Line(text, left, left + char_width * len(text), top, top + height)


def test_layout_reads_rows_left_to_right_and_splits_paragraphs_at_gaps():
    boxes = [
        _box("second half.", 700, 202),  # same row as "First row", a little lower, detected separately
        _box("First row,", 200, 200),
        _box("next line with a hyphen-", 200, 248),
        _box("ated word.", 200, 296),
        _box("New paragraph after a blank line.", 200, 392),
    ]
    assert ocr.layout(boxes) == ("First row, second half. next line with a hyphen-ated word.\n\n"
                                 "New paragraph after a blank line.")


def test_layout_keeps_a_line_of_small_letters_in_its_paragraph():
    # "a new era" has a box a fifth shorter than a line with capitals and descenders, at the same width.
    boxes = [_box("Typography, judging quickly the", 200, 100), _box("a new era comes", 200, 140, height=29),
             _box("era.", 200, 180, height=29)]
    assert ocr.layout(boxes) == "Typography, judging quickly the a new era comes era."


def test_layout_starts_a_paragraph_at_a_heading():
    # As on a blurred scan: the heading's box no taller than the line under it, its characters 1.5x wider.
    boxes = [_box("A Large Heading", 200, 100, char_width=24), _box("Body text under it.", 200, 140)]
    assert ocr.layout(boxes) == "A Large Heading\n\nBody text under it."
