"""Text from page images by OCR: RapidOCR (Apache-2.0) running PaddleOCR's PP-OCRv6 models on ONNX Runtime.

The models (PP-OCRv6 small detection and recognition, Apache-2.0) ship inside the
``rapidocr`` wheel and are loaded from there by path, so nothing is downloaded at
run time. The engine is optional (``pip install 'qa[ocr]'``); without it an image
is skipped with that hint and a PDF keeps only its text layer.

Reading order: the engine returns one box per text line. Boxes whose vertical
centres fall inside each other's height are one print line, read left to right;
lines are read top to bottom. As in ``pdf.py``, a line whose centre is within
``PARAGRAPH_GAP`` line spacings of the one above continues its paragraph
(joined by a space, or by nothing after a hyphen) and a wider gap or a change of
size (a heading) starts a new one (a blank line), so the chunker sees paragraphs.
Multi-column layouts are not split into columns: lines side by side at the same
height are read as one.

Bounds, in a worker capped at ``Limits.max_memory`` of address space and
``Limits.max_seconds`` per file: an image's declared size is checked before it
is decoded (``MAX_PIXELS``); pages are scaled to at most ``MAX_SIDE`` pixels;
one engine per process, single-threaded (one worker reads one file on one core);
and a file's pages are read only while the time left is enough for another page,
so a long scan returns its first pages with a note rather than timing out.

Measured on this 2-core machine (one core busy with another job): a 200-dpi page
of 30-45 lines takes 1.1-2 s, ~1.5 s more for the first page a worker reads
(loading the engine); a 1 GiB worker peaks at 780-840 MiB after 1-12 pages (of
which ~330 MiB is importing numpy, OpenCV and ONNX Runtime; see ``_fit_in_cap``),
so it retires after a scan (``isolate.RETIRE_SHARE``). Character accuracy on
rendered pages is 0.99-1.0 (``tests/unit/ingest/formats/test_formats_ocr.py``).
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import time
import warnings
from dataclasses import dataclass
from itertools import pairwise

from .base import Limits, UnreadableDocument, check_chars, deadline

#: Resolution PDF pages are rendered at for OCR: body text (10-12 pt) is then 28-33 px high,
#: inside what the recognition model was trained on (it rescales lines to 48 px).
DPI = 200
#: Pixels an image may declare before it is decoded: an A4 scan at 600 dpi (35 MP) fits; decoded as
#: RGB that is ~100 MB, a tenth of a worker's address space. More is refused as a likely bomb.
MAX_PIXELS = 40_000_000
#: Longest side a page is scaled down to before OCR: an A4 or Letter page at 200 dpi (2339 / 2200 px).
MAX_SIDE = 2400
#: Longest side the detector sees (it finds line boxes; lines are read from the full-size page).
#: Measured at 200 dpi: 960 keeps even 6 pt lines apart (accuracy 0.994 on 18 px text) and peaks
#: ~150 MiB lower than 1280; 2000 would cost ~400 MiB more.
DET_SIDE = 960
#: Distance between one line's centre and the next's, in line spacings (see ``_line_pitch``), past which
#: a paragraph starts: lines of a paragraph sit 1 apart, a paragraph margin of half a line 1.5, a blank line 2.
PARAGRAPH_GAP = 1.4
#: A line whose characters are this much wider or narrower on average than the line above's starts a
#: paragraph (a heading), when both have ``MIN_CHARS``: measured at 30 px, prose lines average 15.3-17.3 px
#: a character, a heading at 1.3x the size 21-22 px. Box heights are no guide: blur and a neighbour's
#: descenders move them as much (a heading and the line under it both 53 px high on a blurred scan).
WIDTH_CHANGE = 0.25
MIN_CHARS = 12
#: Short lines are compared by height instead, loosely: x-height letters make a box ~20% shorter.
HEIGHT_CHANGE = 0.5
#: The smallest worker address-space cap OCR runs in (``Limits.max_memory``), measured with 6-page scans
#: and a 300-dpi A4 image: 704 MiB failed, 768 MiB read them. Under it OCR is not tried.
MIN_MEMORY = 768 << 20
INSTALL_HINT = "pip install 'qa[ocr]'"
OUT_OF_MEMORY = "out of memory"
#: The models rapidocr 3.10 ships in its wheel (``rapidocr/models/``), by task.
MODELS = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",  # not run (use_cls off), but loaded by path, not fetched
}
#: glibc's ``mallopt`` parameter for the number of malloc arenas.
_M_ARENA_MAX = -8

_engine = None


class NotInstalled(UnreadableDocument):
    """The OCR engine is not installed: ``str()`` says how to install it."""


class Failed(UnreadableDocument):
    """The OCR engine failed on a page (in a capped worker, mostly out of memory): ``str()`` says why.

    Out of memory is transient (``UnreadableDocument.transient``): a file left without text is read again.
    """


@dataclass(frozen=True)
class _Line:
    """One detected text box: its text and its upright bounding box in pixels."""

    text: str
    left: float
    right: float
    top: float
    bottom: float

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 1.0)

    @property
    def centre(self) -> float:
        return (self.top + self.bottom) / 2


def available() -> bool:
    """Say whether the OCR engine is installed (without loading it)."""
    from importlib.util import find_spec

    try:
        return find_spec("rapidocr") is not None and find_spec("onnxruntime") is not None
    except (ImportError, ValueError, AttributeError):  # a module set to None in sys.modules (tests)
        return False


def engine():
    """Return this process's OCR engine, loading it on first use; NotInstalled or Failed when it cannot be."""
    global _engine
    if _engine is None:
        cap = _fit_in_cap()
        if cap is not None and cap < MIN_MEMORY:
            raise Failed(f"OCR needs a reader memory limit of {MIN_MEMORY >> 20} MiB, not {cap >> 20}")
        try:
            import cv2
            import rapidocr
            from rapidocr import RapidOCR
        except ImportError:
            raise NotInstalled(f"needs OCR, which is not installed: {INSTALL_HINT}") from None
        cv2.setNumThreads(1)
        # Bundled models by path: RapidOCR downloads a model it is not given a path to.
        models = {task: os.path.join(os.path.dirname(rapidocr.__file__), "models", name) for task, name in MODELS.items()}
        missing = [name for name in models.values() if not os.path.isfile(name)]
        if missing:
            raise NotInstalled(f"OCR models missing ({os.path.basename(missing[0])}): {INSTALL_HINT}")
        _engine = RapidOCR(params={
            "Global.log_level": "error",
            **{f"{task}.model_path": path for task, path in models.items()},
            # Scanned pages are upright; the 180-degree line classifier would cost time on every line.
            "Global.use_cls": False,
            "Global.max_side_len": MAX_SIDE,
            "Det.limit_type": "max",
            "Det.limit_side_len": DET_SIDE,
            # One line at a time: a batch pads every line to the widest, ~300 MiB more at peak, no faster.
            "Rec.rec_batch_num": 1,
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
    return _engine


def _fit_in_cap() -> int | None:
    """Under an address-space cap (an extract worker), stop per-thread reservations before the engine loads.

    Returns the cap in bytes, or None when there is none.

    Under ``RLIMIT_AS`` reserved counts as used. Each OpenBLAS thread reserves its buffers at import
    (~175 MiB for numpy's and OpenCV's copies together; OCR's arithmetic runs in ONNX Runtime, not
    BLAS), and a thread's first allocation gets it a malloc arena of its own, reserved 64 MiB at a time
    (ONNX Runtime starts a thread): measured, a worker grew past 1 GiB by its fifth page, and stayed
    under ~820 MiB over eight with one arena. Without a cap (the caller's own process) nothing changes.
    """
    import resource

    cap = resource.getrlimit(resource.RLIMIT_AS)[0]
    if cap == resource.RLIM_INFINITY:
        return None
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read when numpy / OpenCV load: imported next
    try:
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1)
    except (OSError, AttributeError):  # not glibc: no arenas to tune
        pass
    return cap


def recognize(image, limits: Limits) -> str:
    """Read the text of one page image, in reading order, paragraphs separated by blank lines.

    Args:
        image: Encoded image bytes (PNG, JPEG, TIFF: the first frame), a Pillow image, or a 2-D (grey)
            or 3-D (BGR, as OpenCV) uint8 array.
        limits: Bounds on the text's length (the image's declared size is checked against ``MAX_PIXELS``).

    Returns:
        The page's text; "" when no text was found.

    Raises:
        NotInstalled: the engine is not installed.
        Failed: the engine failed, or cannot run under this process's memory cap (``MIN_MEMORY``).
        UnreadableDocument: the image is too large or not an image.
    """
    ocr = engine()
    if isinstance(image, (bytes, bytearray)):
        image = open_image(bytes(image))
    if not hasattr(image, "shape"):
        image = page_pixels(image)
    try:
        result = ocr(image)
    except Exception as exc:  # ONNX Runtime's C++ errors (mostly a failed allocation) arrive wrapped as anything
        reason = _reason(exc)
        raise Failed(f"OCR failed ({reason})", transient=reason == OUT_OF_MEMORY) from None
    if not getattr(result, "txts", None):
        return ""
    text = layout(_lines(result.boxes, result.txts))
    check_chars(len(text), limits)
    return text


def _reason(exc: Exception) -> str:
    """Say in a few words why the engine failed: its messages are whole C++ tracebacks."""
    text = str(exc)
    if isinstance(exc, MemoryError) or "alloc" in text.lower():
        return OUT_OF_MEMORY
    return type(exc).__name__


def open_image(data: bytes):
    """Open image bytes with Pillow, checking the declared size before any pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own, lower bound follows
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise UnreadableDocument(f"image over {MAX_PIXELS:,} pixels (decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UnreadableDocument(f"not a readable image ({exc})") from None
    check_size(image.size)
    return image


def check_size(size: tuple[int, int]) -> None:
    """Refuse an image whose declared width x height is over ``MAX_PIXELS``."""
    width, height = size
    if width <= 0 or height <= 0:
        raise UnreadableDocument(f"image of {width} x {height} pixels")
    if width * height > MAX_PIXELS:
        raise UnreadableDocument(
            f"image of {width:,} x {height:,} pixels is over the {MAX_PIXELS:,}-pixel limit (decompression bomb?)"
        )


def page_pixels(image):
    """Decode a Pillow image (current frame) to a grey uint8 array, scaled to at most ``MAX_SIDE``."""
    import numpy as np
    from PIL import Image, ImageOps

    check_size(image.size)
    if image.format == "JPEG":
        image.draft("L", (MAX_SIDE, MAX_SIDE))  # the JPEG decoder scales by 1/2, 1/4, 1/8 for free
    image = ImageOps.exif_transpose(image)  # a phone photo of a page is stored sideways, with a tag saying so
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Text drawn on a transparent background: put it on white, not on the black of empty alpha.
        rgba = image.convert("RGBA")
        image = Image.new("RGBA", rgba.size, "white")
        image.alpha_composite(rgba)
    elif image.mode.startswith("I"):
        image = image.convert("I").point(lambda v: v / 256)  # 16-bit scans: Pillow's "L" would clip at 255
    grey = image.convert("L")
    scale = MAX_SIDE / max(grey.size)
    if scale < 1:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.LANCZOS)
    return np.asarray(grey)


@dataclass(frozen=True)
class PagesRead:
    """What OCR read of the pages asked for: the texts of the first of them, and why it stopped short."""

    texts: list[str]
    #: None when every page was read; else why not, e.g. "time limit" or "OCR failed (out of memory)".
    stopped: str | None = None
    #: True when it stopped for want of time or memory, not for anything in the file.
    transient: bool = False


def ocr_pdf_pages(pdf, page_indexes: list[int], limits: Limits, deadline: float) -> PagesRead:
    """OCR the given pages (0-based) of an open pypdfium2 document, rendered at ``DPI``.

    Reads ``page_indexes`` in order while the next page would still finish before ``deadline``
    (``time.monotonic()``) and the engine does not fail; the caller notes the pages left.
    Raises NotInstalled (an UnreadableDocument) when the engine is not installed.
    """
    texts: list[str] = []
    try:
        engine()
        clock = PageClock(deadline)
        for index in page_indexes:
            if not clock.room_for_another():
                return PagesRead(texts, "time limit", transient=True)
            texts.append(_render_and_read(pdf[index], limits))
            clock.lap()
    except Failed as exc:  # keep the pages read before it
        return PagesRead(texts, str(exc), exc.transient)
    return PagesRead(texts)


def _render_and_read(page, limits: Limits) -> str:
    """Render one PDF page in grey at ``DPI`` (at most ``MAX_SIDE`` pixels a side) and OCR it; close the page."""
    try:
        width, height = page.get_size()  # points: 1/72 inch
        bitmap = page.render(scale=min(DPI / 72, MAX_SIDE / max(width, height, 1.0)), grayscale=True)
        try:
            pixels = bitmap.to_numpy()
            return recognize(pixels[:, :, 0] if pixels.ndim == 3 else pixels, limits)
        finally:
            bitmap.close()
    finally:
        page.close()


class PageClock:
    """Time left before a deadline, and whether it holds one more page at the slowest pace so far."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.last = time.monotonic()
        self.slowest = 0.0

    def room_for_another(self) -> bool:
        """Say whether one more page at the slowest pace so far ends before the deadline."""
        return time.monotonic() + self.slowest < self.deadline

    def lap(self) -> None:
        """Mark a page done, keeping its time if it is the slowest."""
        now = time.monotonic()
        self.slowest = max(self.slowest, now - self.last)
        self.last = now


def deadline_for(limits: Limits, start: float | None = None) -> float:
    """The ``time.monotonic()`` by which OCR of one file should stop: ``base.TIME_SHARE`` of its time limit."""
    return deadline(limits, start)


def _lines(boxes, texts) -> list[_Line]:
    """Turn the engine's quadrilaterals (corners clockwise from top left) and texts into upright boxes.

    A tilted scan gives tilted quadrilaterals: their upright extent would grow with the line's length,
    so the height is the quadrilateral's own (its left and right sides) around its centre.
    """
    lines = []
    for quad, text in zip(boxes, texts):
        text = " ".join(str(text).split())
        if text:
            (x0, y0), (x1, y1), (x2, y2), (x3, y3) = ((float(x), float(y)) for x, y in quad)
            height = (math.hypot(x3 - x0, y3 - y0) + math.hypot(x2 - x1, y2 - y1)) / 2
            centre = (y0 + y1 + y2 + y3) / 4
            lines.append(_Line(text, min(x0, x3), max(x1, x2), centre - height / 2, centre + height / 2))
    return lines


def layout(boxes: list[_Line]) -> str:
    """Order text boxes into print lines and paragraphs (see the module docstring)."""
    rows: list[list[_Line]] = []
    for box in sorted(boxes, key=_Line.centre.fget):
        if rows and _same_row(rows[-1], box):
            rows[-1].append(box)
        else:
            rows.append([box])
    if not rows:
        return ""
    pitch = _line_pitch(rows)
    out: list[str] = []
    previous: list[_Line] | None = None
    for row in rows:
        row.sort(key=lambda b: b.left)
        if previous is not None:
            gap = _centre(row) - _centre(previous)
            if gap > PARAGRAPH_GAP * pitch or _resized(previous, row):
                out.append("\n\n")
            elif not out[-1].endswith("-"):
                out.append(" ")
        out.append(" ".join(b.text for b in row))
        previous = row
    return "".join(out)


def _line_pitch(rows: list[list[_Line]]) -> float:
    """The page's line spacing: the lower quartile of centre-to-centre gaps, at most 1.2 line heights.

    Box heights vary with blur and detector scale (0.9-1.2 of the spacing, measured), so spacing is
    the steadier unit; the cap keeps a page of one-line paragraphs from taking its paragraph gap for it.
    """
    gaps = sorted(_centre(below) - _centre(above) for above, below in pairwise(rows))
    heights = sorted(_height(row) for row in rows)
    cap = 1.2 * heights[len(heights) // 2]
    return min(gaps[len(gaps) // 4], cap) if gaps else cap


def _resized(above: list[_Line], below: list[_Line]) -> bool:
    """Say whether two rows are set in different sizes (see ``WIDTH_CHANGE``)."""
    def differ(a: float, b: float, share: float) -> bool:
        return abs(a - b) > share * min(a, b)

    if min(_chars(above), _chars(below)) >= MIN_CHARS:
        return differ(_char_width(above), _char_width(below), WIDTH_CHANGE)
    return differ(_height(above), _height(below), HEIGHT_CHANGE)


def _chars(row: list[_Line]) -> int:
    return sum(len(b.text) for b in row)


def _char_width(row: list[_Line]) -> float:
    return sum(b.right - b.left for b in row) / max(1, _chars(row))


def _same_row(row: list[_Line], box: _Line) -> bool:
    """A box is on a row when each one's vertical centre lies within the other's extent."""
    top, bottom = min(b.top for b in row), max(b.bottom for b in row)
    return top <= box.centre <= bottom and box.top <= _centre(row) <= box.bottom


def _centre(row: list[_Line]) -> float:
    return (min(b.top for b in row) + max(b.bottom for b in row)) / 2


def _height(row: list[_Line]) -> float:
    return max(b.height for b in row)
