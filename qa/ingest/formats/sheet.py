"""Spreadsheets: Excel .xlsx with openpyxl (MIT) and .csv with the standard library, a line per row.

A passage cut from the middle of a table must still say what its numbers are,
so each sheet's header row is carried into every row's line, with the sheet and
the row number a user sees::

    Sales, row 5: Region: North | Units: 30 | Price: 12.5

The header is the first non-empty row, unless the table sits under a preamble
of short lines (a title, a date, a source: at most half the table's width):
then it is the first row, among the first ``HEADER_SEARCH``, as wide as the
table's typical row (the median over the first ``SAMPLE_ROWS``) and followed by
a row wider than a preamble line. Preamble lines and the header are lines of
their own, as they are. Empty cells are left out; a cell under an empty header
is named by its column (``C: ...`` in Excel, ``column 3: ...`` in a CSV). Each
sheet is a page (a CSV is one page), sheets joined by a blank line, and each
page is named by its sheet (``Extracted.page_names``).

Bounds: a sheet is read row by row (openpyxl's read-only mode, values cached by
Excel rather than formulas), and reading stops with a note after ``MAX_ROWS``
rows or ``MAX_CELLS`` cells in all, counting empty ones: a sheet that declares
a cell at row 1,048,576 would otherwise walk a million empty rows. The
declared sheet size is ignored for the same reason. Chart sheets have no cells
and are not pages.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from datetime import date, datetime, time
from itertools import chain, islice
from statistics import median_high

from .base import Extracted, Limits, UnreadableDocument, check_chars, clean_field, iso_date
from .packages import check_office_package

#: Rows read from one file, all sheets together: far past any table a passage index is useful for.
MAX_ROWS = 200_000
#: Cells read from one file (empty ones too): 200,000 rows of 25 columns.
MAX_CELLS = 5_000_000
#: Characters of a CSV read to guess its delimiter and quoting (the sniffer is slow on long samples).
SNIFF_CHARS = 16_384
CSV_DELIMITERS = ",;\t|"
#: Non-empty rows a sheet's typical width is measured on; its header is looked for among the first HEADER_SEARCH.
SAMPLE_ROWS = 50
HEADER_SEARCH = 10
SHEET_BREAK = "\n\n"
CELL_SEPARATOR = " | "


def read(data: bytes, limits: Limits, format: str = "xlsx") -> Extracted:
    """Read an Excel workbook (``format="xlsx"``) or a CSV file (``format="csv"``)."""
    return read_csv(data, limits) if format == "csv" else read_xlsx(data, limits)


def read_xlsx(data: bytes, limits: Limits) -> Extracted:
    """Extract each worksheet (a page each) as header-labelled row lines, and the core properties."""
    check_office_package(data, limits, "Excel workbook", ".xls")
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError, TypeError, zipfile.BadZipFile, zlib.error, SyntaxError) as exc:
        # SyntaxError: the standard library's XML parser reports malformed XML as ParseError, a subclass.
        raise UnreadableDocument(f"not an Excel workbook ({type(exc).__name__}: {exc})"[:200]) from None
    try:
        budget = _Budget(limits)
        sheets, names = [], []
        for sheet in workbook.worksheets[: limits.max_pages]:
            sheet.reset_dimensions()  # ignore the declared size: it may promise a million empty rows
            rows = sheet.iter_rows(min_row=1, values_only=True)
            sheets.append(_sheet_lines(sheet.title, rows, budget, _column_letter))
            names.append(sheet.title)
            if budget.spent:
                break
        if len(workbook.worksheets) > limits.max_pages:
            budget.notes.append(f"read the first {limits.max_pages} of {len(workbook.worksheets)} sheets (page limit)")
        props = workbook.properties
    except (KeyError, ValueError, TypeError, zipfile.BadZipFile, zlib.error, SyntaxError) as exc:
        raise UnreadableDocument(f"corrupt Excel workbook ({type(exc).__name__}: {exc})"[:200]) from None
    finally:
        workbook.close()
    if not sheets:
        raise UnreadableDocument("workbook has no worksheets")
    return Extracted(
        text=SHEET_BREAK.join(sheets),
        format="xlsx",
        title=clean_field(props.title),
        author=clean_field(props.creator),
        date=iso_date(props.created),
        pages=_starts(sheets),
        page_names=tuple(names),
        notes=tuple(budget.notes),
    )


def read_csv(data: bytes, limits: Limits) -> Extracted:
    """Extract a CSV file as header-labelled row lines, one page; the delimiter and quoting are detected."""
    from .text import BINARY_SNIFF, decode_noting

    if b"\x00" in data[:BINARY_SNIFF] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableDocument("binary file (contains NUL bytes)")
    text, encoding, notes = decode_noting(data)
    check_chars(len(text), limits)
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only: a cut line misleads the sniffer
    dialect = _dialect(sample)
    budget = _Budget(limits)
    budget.notes.extend(notes)
    rows = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        page = _sheet_lines(None, rows, budget, lambda n: f"column {n}")
    except csv.Error as exc:
        raise UnreadableDocument(f"malformed CSV (line {rows.line_num}: {exc})"[:200]) from None
    return Extracted(text=page, format="csv", pages=(0,), encoding=encoding, notes=tuple(budget.notes))


def _dialect(sample: str):
    """csv.Sniffer's dialect, else the delimiter that splits the sample's rows most consistently.

    The sniffer gives up on ordinary files (a quoted field holding the delimiter and a doubled
    quote was enough); a delimiter that cuts most rows into the same number (> 1) of fields is
    then as good a guess, and a file none cuts is one column.
    """
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS)
    except csv.Error:
        pass
    best, best_score = ",", 0
    for delimiter in CSV_DELIMITERS:
        try:
            widths = [len(row) for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if widths and widths[0] > 1:
            score = sum(width == widths[0] for width in widths)
            if score > best_score:
                best, best_score = delimiter, score
    dialect = csv.excel()
    dialect.delimiter = best
    return dialect


class _Budget:
    """The rows and cells a file may still spend; says so in ``notes`` when it runs out."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.rows = 0
        self.cells = 0
        self.chars = 0
        self.spent = False
        self.notes: list[str] = []

    def take(self, width: int) -> bool:
        """Count one row of ``width`` cells; False (and a note) when the file's rows or cells are used up."""
        self.rows += 1
        self.cells += width
        if self.rows > MAX_ROWS or self.cells > MAX_CELLS:
            what = f"{MAX_ROWS:,} rows" if self.rows > MAX_ROWS else f"{MAX_CELLS:,} cells"
            self.notes.append(f"read the first {self.rows - 1:,} rows (limit: {what} per file)")
            self.spent = True
        return not self.spent

    def add(self, line: str) -> None:
        self.chars += len(line) + 1
        check_chars(self.chars, self.limits)


def _sheet_lines(name: str | None, rows, budget: _Budget, column_name) -> str:
    """One line per non-empty row, each cell labelled with its header; a preamble and the header are lines as they are.

    ``rows`` yields every row from the first, empty ones too (openpyxl and csv both do), so counting gives row numbers.
    """
    where = f"{name}, row" if name else "Row"
    filled = _filled_rows(rows, budget)
    sample = list(islice(filled, SAMPLE_ROWS))
    first = _header_index([sum(1 for cell in cells if cell) for _, cells in sample])
    header = sample[first][1] if sample else []
    lines: list[str] = []
    for index, (number, cells) in enumerate(chain(sample, filled)):
        if index <= first:
            line = f"{where} {number}: " + CELL_SEPARATOR.join(cell for cell in cells if cell)
        else:
            labelled = (f"{_label(header, i, column_name)}: {cell}" for i, cell in enumerate(cells) if cell)
            line = f"{where} {number}: " + CELL_SEPARATOR.join(labelled)
        budget.add(line)
        lines.append(line)
    if not lines and name:
        return name  # an empty sheet keeps its page, and its name says which it is
    return "\n".join(lines)


def _filled_rows(rows, budget: _Budget):
    """Yield (row number, cell texts) of each row with a value, while the budget lasts."""
    for number, row in enumerate(rows, start=1):
        if not budget.take(len(row)):
            return
        cells = [_cell_text(value) for value in row]
        if any(cells):
            yield number, cells


def _header_index(counts: list[int]) -> int:
    """Which of a sheet's first non-empty rows (their counts of non-empty cells) is its header; see the docstring."""
    if not counts:
        return 0
    typical = median_high(counts)
    short = max(1, typical // 2)
    for index, count in enumerate(counts[:HEADER_SEARCH]):
        if count >= typical and index + 1 < len(counts) and counts[index + 1] > short:
            return index
        if count > short:
            return 0  # a row too wide for a preamble line: the table starts at the top, as ever
    return 0


def _label(header: list[str], index: int, column_name) -> str:
    """The header above column ``index`` (0-based), or the column's own name when that header is empty."""
    if index < len(header) and header[index]:
        return header[index]
    return column_name(index + 1)


def _column_letter(number: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(number)


def _cell_text(value) -> str:
    """A cell's value as one line of text: numbers as written, dates in ISO form, white space collapsed."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        value = value.isoformat()
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)  # Excel stores every number as a float: 30.0 was typed as 30
    return " ".join(str(value).split())


def _starts(pages: list[str]) -> tuple[int, ...]:
    starts, offset = [], 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + len(SHEET_BREAK)
    return tuple(starts)
