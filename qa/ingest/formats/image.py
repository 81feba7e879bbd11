"""Scanned pages and photos of text (PNG, JPEG, TIFF) with Pillow (MIT-CMU), their text read by OCR.

Each TIFF frame is a page (multi-page fax and scanner output); a PNG or JPEG is
one page (an animated PNG's later frames are animation, not pages). Pages are
joined by a blank line and ``pages[i]`` is where page ``i + 1`` starts, as for
PDF. Every frame's declared size is checked before it is decoded (see
``ocr.check_size``). Title, author and date come from EXIF where the file has it
(TIFF tags are the same fields), else from a PNG's text chunks.
"""

from __future__ import annotations

import re
import struct

from . import ocr
from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, date_prefix

PAGE_BREAK = "\n\n"
# EXIF tags (the base IFD, shared with TIFF) and the Exif sub-IFD that holds DateTimeOriginal.
_IMAGE_DESCRIPTION, _ARTIST, _XP_TITLE, _XP_AUTHOR = 0x010E, 0x013B, 0x9C9B, 0x9C9D
_EXIF_IFD, _DATE_TIME_ORIGINAL, _DATE_TIME_DIGITIZED = 0x8769, 0x9003, 0x9004
# "YYYY:MM:DD HH:MM:SS" (EXIF), also seen with dashes.
#: Descriptions cameras and scanners write by default: not titles.
_PLACEHOLDERS = re.compile(r"(?i)^(olympus digital camera|sony dsc|default|untitled|image|scanned (image|document)|"
                           r"dcim.*|img_?\d+.*|dsc_?\d+.*|\s*)$")


def read(data: bytes, limits: Limits) -> Extracted:
    """OCR each page of an image file; an image with no text found is unreadable."""
    image = ocr.open_image(data)
    try:
        meta = metadata(image)
        texts, stopped = _read_pages(image, limits, ocr.PageClock(ocr.deadline_for(limits)))
    finally:
        image.close()
    if not any(t.strip() for t in texts):
        raise UnreadableDocument("no text found by OCR")
    notes = [f"text read by OCR ({_pages(len(texts))})"]
    if stopped == "page limit":
        notes.append(f"read the first {limits.max_pages} pages (page limit)")
    elif stopped:
        notes.append(f"read the first {_pages(len(texts))} by OCR ({stopped})")
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + len(PAGE_BREAK)
    return Extracted(text=PAGE_BREAK.join(texts), format="image", pages=tuple(starts), notes=tuple(notes), **meta)


def _read_pages(image, limits: Limits, clock: ocr.PageClock) -> tuple[list[str], str | None]:
    """OCR frame after frame (TIFF) or the one image; return the texts and why pages were left, if they were."""
    multipage = image.format == "TIFF"
    texts: list[str] = []
    size = 0
    for index in range(limits.max_pages):
        if index and not _seek(image, index):
            return texts, None
        if index and not clock.room_for_another():  # the first page is read whatever the clock says
            return texts, "time limit"
        try:
            text = ocr.recognize(image, limits)  # checks this frame's own declared size first
        except ocr.Failed as exc:
            if not texts:
                raise
            return texts, str(exc)
        size += len(text) + len(PAGE_BREAK)
        check_chars(size, limits)
        texts.append(text)
        clock.lap()
        if not multipage:
            return texts, None
    return texts, "page limit" if _seek(image, limits.max_pages) else None


def _seek(image, index: int) -> bool:
    """Move to frame ``index`` (reads its header, not its pixels); False past the last frame."""
    try:
        image.seek(index)
    except EOFError:
        return False
    return True


def _pages(count: int) -> str:
    return "1 page" if count == 1 else f"{count} pages"


def metadata(image) -> dict:
    """Title, author and original date from EXIF / TIFF tags, else PNG text chunks."""
    exif = image.getexif()
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, struct.error):  # costs the date, not the file
        sub = {}
    description = _text(exif.get(_IMAGE_DESCRIPTION))
    title = _text(exif.get(_XP_TITLE)) or (description if description and not _PLACEHOLDERS.match(description) else None)
    info = image.info if image.format == "PNG" else {}
    return {
        "title": title or clean_field(info.get("Title")),
        "author": _text(exif.get(_ARTIST)) or _text(exif.get(_XP_AUTHOR)) or clean_field(info.get("Author")),
        "date": exif_date(sub.get(_DATE_TIME_ORIGINAL)) or exif_date(sub.get(_DATE_TIME_DIGITIZED)),
    }


def _text(value) -> str | None:
    """An EXIF string: ASCII, or the UTF-16LE bytes Windows writes in XPTitle / XPAuthor."""
    if isinstance(value, tuple):  # some writers store XP* tags as a tuple of byte values
        value = bytes(v for v in value if isinstance(v, int) and 0 <= v < 256)
    if isinstance(value, bytes):
        value = value.decode("utf-16-le", "replace").rstrip("\x00")
    return clean_field(value.rstrip("\x00") if isinstance(value, str) else None)


def exif_date(value) -> str | None:
    """Turn an EXIF date ("2024:01:23 09:30:00") into YYYY-MM-DD; None when absent or impossible."""
    return date_prefix(value)
