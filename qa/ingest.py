"""Read a documents folder: each file's text layer (qa/formats) and its title, date, URL and author.

Text and Markdown files are their own text layer, and their header lines give
the metadata (``parse_header``); HTML, PDF, DOCX and e-mail are extracted by
qa/formats in bounded worker processes, and their metadata comes from the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterator, Sequence

from qa.formats import DEFAULT_LIMITS, Extracted, Limits, UnreadableDocument, extract, extract_many, format_of
from qa.passage import METADATA, Metadata

#: Formats whose text layer is the file itself, with a header read by ``parse_header``.
TEXT_FORMATS = ("text", "markdown")


@dataclass(frozen=True)
class Document(Metadata):
    """One file's text layer; offsets of its passages index into ``text``."""

    source: str
    text: str
    sha256: str
    #: Offset where the body starts: date/URL/byline header lines are metadata, not text to search.
    body_start: int = 0
    #: "text", "markdown", "html", "pdf", "docx" or "email" (qa/formats).
    format: str = "text"
    #: PDF: the offset in ``text`` where page 1, 2, ... starts.
    pages: tuple[int, ...] = ()
    #: Text formats: the encoding the bytes were decoded with.
    encoding: str | None = None
    #: What the reader noticed and the user should hear (pages without text, replaced bytes).
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    source: str
    reason: str
    #: The bytes' digest when the file could be read (a build keeps the reason for those very bytes).
    sha256: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Header(Metadata):
    """What the top of a text file says about it, and where its body starts."""

    body_start: int = 0


# " date 2024-01-23 https://example.com/a" -- the date line some seeds start with.
_DATE_LINE = re.compile(r"[ \t]*date[ \t]+(\d{4}-\d{2}-\d{2})(?:[ \t]+(https?://\S+))?[ \t]*")
# "Written by [Angeline Tan](#) on January 24, 2024"
_BYLINE = re.compile(
    r"[ \t]*(?:Written[ \t]+)?[Bb]y[ \t]+(?P<author>\S.*?)[ \t]+on[ \t]+"
    r"(?P<date>[A-Z][a-z]{2,8}\.?[ \t]+\d{1,2},[ \t]*\d{4})[ \t]*\r?$"
)
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_BLANK = re.compile(r"[ \t\r\f\v\u00a0]*$")
_LINE = re.compile(r"[^\n]*\n?")

#: Characters at the top of a file where a header can be: headers are short, files may be huge.
HEADER_WINDOW = 16_384
#: A first line longer than this is a paragraph, not a title.
TITLE_MAX_WORDS = 25
TITLE_MAX_CHARS = 250


def load_documents(folder: str | Path) -> tuple[list[Document], list[Skipped]]:
    """Read every .txt/.md file under ``folder``.

    Returns:
        The decoded documents sorted by source (the path relative to ``folder``),
        and every file that was passed over, with its reason.
    """
    documents, skipped, _ = scan(folder)
    return documents, skipped


def scan(
    folder: str | Path,
    reuse: Callable[[str, str], Document | Skipped | None] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    exclude: Sequence[Path] = (),
) -> tuple[list[Document], list[Skipped], str]:
    """Read ``folder`` once: its documents, the files passed over, and its ``fingerprint``.

    Args:
        reuse: given a source and the sha256 of its bytes, returns what the previous
            build made of those very bytes (the document, or why it was skipped), or
            None; a file it answers for is not extracted again.
        limits: bounds on reading one file (qa/formats).
        exclude: folders not to enter (the index, when it lives inside ``folder``).
    """
    documents: dict[int, Document] = {}
    skipped: list[Skipped] = []
    digest = hashlib.sha256()
    waiting: list[tuple[int, str, str]] = []  # files sent to extraction, in order

    def to_extract() -> Iterator[tuple[str, bytes]]:
        for position, found in enumerate(read_folder(folder, limits, exclude)):
            if found.data is None:
                skipped.append(Skipped(found.source, found.problem or "unreadable"))
                _fingerprint_line(digest, found.name_bytes, found.problem)
                continue
            sha = found.sha256 or hashlib.sha256(found.data).hexdigest()
            _fingerprint_line(digest, found.name_bytes, sha)
            known = reuse(found.source, sha) if reuse is not None else None
            if isinstance(known, Skipped):
                skipped.append(known)
                continue
            if known is not None:
                documents[position] = known
                continue
            waiting.append((position, found.source, sha))
            yield found.source, found.data

    for n, result in enumerate(extract_many(to_extract(), limits)):
        position, source, sha = waiting[n]
        document = to_document(source, sha, result)
        if isinstance(document, Skipped):
            skipped.append(document)
        else:
            documents[position] = document
    return [documents[p] for p in sorted(documents)], sorted(skipped, key=lambda s: s.source), digest.hexdigest()


def to_document(source: str, sha256: str, extracted: Extracted | UnreadableDocument) -> Document | Skipped:
    """Make the document of one extracted file, or say why it cannot be indexed.

    Whatever a reader returns is made fit to store here, for every format at once:
    a lone surrogate (what ``charset=utf-7`` "+2AA-" or ``unicode_escape`` "\\ud800"
    decode to) cannot be written to SQLite or JSON, and one such character in one
    e-mail stopped every build. Each becomes U+FFFD, one character for one, so
    offsets stay as they are, and the document says how many in its notes.
    """
    if isinstance(extracted, UnreadableDocument):
        return Skipped(source, storable(str(extracted))[0], sha256)
    text, replaced = storable(extracted.text)
    if "\x00" in text:
        # Wherever it is: a NUL in a passage would reach SQLite, the terminal and JSON readers.
        return Skipped(source, f"binary file (NUL character at offset {text.index(chr(0))})", sha256)
    if not text.strip():
        return Skipped(source, "no text", sha256)
    if extracted.format in TEXT_FORMATS:
        header = parse_header(text)
        body_start, metadata = header.body_start, header.metadata()
    else:
        body_start = 0
        metadata = {name: getattr(extracted, name) for name in METADATA}
    metadata = {name: None if value is None else storable(value)[0] for name, value in metadata.items()}
    notes = tuple(storable(note)[0] for note in extracted.notes)
    if replaced:
        notes += (f"{replaced} character(s) that are not Unicode text (lone surrogates) replaced with U+FFFD",)
    return Document(
        source=source,
        text=text,
        sha256=sha256,
        body_start=body_start,
        format=extracted.format,
        pages=tuple(extracted.pages),
        encoding=extracted.encoding,
        notes=notes,
        **metadata,
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: str) -> tuple[str, int]:
    """Return ``value`` with every lone surrogate replaced by U+FFFD, and how many there were.

    In a Python string every surrogate is a lone one (a pair is decoded to one
    character), and none can be encoded as UTF-8, which SQLite and JSON need.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.subn("\ufffd", value)
    return value, 0


def fingerprint(folder: str | Path, exclude: Sequence[Path] = (), cache: DigestCache | None = None) -> str:
    """Return a digest of every candidate file's path and bytes: it changes when any document does.

    With a ``cache`` (kept by a caller that asks again and again: the server's staleness
    check, the watcher), a file whose size, times and inode are those it had when last
    hashed is not read again.
    """
    digest = hashlib.sha256()
    for found in read_folder(folder, exclude=exclude, cache=cache):
        _fingerprint_line(digest, found.name_bytes, found.problem if found.sha256 is None else found.sha256)
    return digest.hexdigest()


def _fingerprint_line(digest, name: bytes, content: str | None) -> None:
    digest.update(name + f"\t{content}\n".encode())


@dataclass(frozen=True)
class Found:
    """A candidate file: its bytes (or only their digest, when a cache knew them), or why it cannot be read."""

    source: str
    #: The relative path as the file system has it, for the fingerprint (it may not be UTF-8).
    name_bytes: bytes
    data: bytes | None
    problem: str | None = None
    #: sha256 of the bytes; set whenever the file could be read.
    sha256: str | None = None


class DigestCache:
    """The sha256 of files by path, valid while a file's size, times and inode stay as they were.

    What git's index does for ``git status``: a file whose ``stat`` did not change is
    taken to hold the bytes it held, so a folder of 100,000 files is checked by
    reading metadata, not content. Used only to tell whether a folder changed; a
    build reads every file it indexes.
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[int, ...], str]] = {}

    def get(self, path: str, info: os.stat_result) -> str | None:
        known = self._known.get(path)
        return known[1] if known is not None and known[0] == _stat_key(info) else None

    def put(self, path: str, info: os.stat_result, sha256: str) -> None:
        self._known[path] = (_stat_key(info), sha256)


def _stat_key(info: os.stat_result) -> tuple[int, ...]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def read_folder(
    folder: str | Path, limits: Limits = DEFAULT_LIMITS, exclude: Sequence[Path] = (), cache: DigestCache | None = None
) -> Iterator[Found]:
    """Yield every candidate file under ``folder`` in a stable order, read or with its reason.

    Only regular files whose real path lies inside the folder are read: a link
    that leads outside it (``/etc/passwd``, say) would otherwise be served to
    anyone who can reach the API. Each file is opened without following a
    final link, and the path the kernel actually opened is checked, so a link
    swapped in between the check and the read is caught too. A file over
    ``limits.max_bytes`` is refused by its size before a byte of it is read.
    Folders in ``exclude`` (an index kept inside the documents folder) are not
    entered. With a ``cache``, a file it knows unchanged yields its digest and no bytes.
    """
    root = Path(folder)
    inside = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    excluded = {os.path.realpath(path) for path in exclude}
    for path, problem in _walk(root, excluded):
        relative = os.fsencode(path.relative_to(root))
        source = relative.decode("utf-8", "backslashreplace")
        if problem is None:
            try:
                relative.decode("utf-8")
            except UnicodeDecodeError:
                problem = "file name is not valid UTF-8: rename it to index it"
        if problem is not None:
            yield Found(source, relative, None, problem)
            continue
        data, sha, problem = _read_inside(path, inside, seen, limits.max_bytes, cache)
        yield Found(source, relative, data, problem, sha)


def _read_inside(
    path: Path, inside: str, seen: set[tuple[int, int]], max_bytes: int, cache: DigestCache | None
) -> tuple[bytes | None, str | None, str | None]:
    """Return (bytes, sha256, None) of ``path`` if it is a regular file inside ``inside``, else (None, None, reason).

    The bytes are None, with the sha256 given, when ``cache`` knows the file unchanged.
    """
    if path.is_symlink() and not path.exists():
        return None, None, "broken symbolic link"
    real = os.path.realpath(path)
    if not _is_inside(real, inside):
        return None, None, "symbolic link to a file outside the documents folder: not read"
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: no link swapped in.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return None, None, f"unreadable: {exc.strerror or exc}"
    try:
        opened = _opened_path(fd)
        if opened is not None and not _is_inside(opened, inside):
            return None, None, "symbolic link to a file outside the documents folder: not read"
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, None, "not a regular file"  # a FIFO or device would block or never end
        if (info.st_dev, info.st_ino) in seen:
            reason = "symbolic link to a file already read" if path.is_symlink() else "already read through a link"
            return None, None, reason
        seen.add((info.st_dev, info.st_ino))
        if info.st_size > max_bytes:
            # Refused by its size: a 3 GB file is never read into memory to learn it is too big.
            return None, None, _too_large(info.st_size, max_bytes)
        known = cache.get(real, info) if cache is not None else None
        if known is not None:
            return None, known, None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since fstat
        if len(data) > max_bytes:
            return None, None, _too_large(len(data), max_bytes)
        sha = hashlib.sha256(data).hexdigest()
        if cache is not None:
            cache.put(real, info, sha)
        return data, sha, None
    except OSError as exc:
        return None, None, f"unreadable: {exc.strerror or exc}"
    finally:
        os.close(fd)


def _too_large(size: int, limit: int) -> str:
    return f"too large: {size:,} bytes (limit {limit:,})"


def _opened_path(fd: int) -> str | None:
    """Return the path the kernel opened for ``fd`` (Linux), or None where it cannot tell."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _is_inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


#: Folders nested deeper than this under the documents folder are reported, not entered.
MAX_DEPTH = 64


def _walk(root: Path, excluded: set[str] = frozenset()) -> list[tuple[Path, str | None]]:
    """Return candidate files under ``root`` in a stable order, with a reason for any not to read.

    Hidden names are passed over; linked folders are not followed (a link
    loop would never end), and are reported, as are folders that cannot be
    listed, whose names are not UTF-8, or that lie deeper than ``MAX_DEPTH``.
    The walk keeps its own stack: ``os.walk`` recurses, and a folder nested
    1,100 deep ended it (and every build) with a RecursionError.
    """
    found: list[tuple[Path, str | None]] = []
    stack: list[tuple[str, int]] = [(str(root), 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            found.append((Path(folder), f"unreadable folder: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
                is_link = entry.is_symlink()
            except OSError as exc:
                found.append((Path(entry.path), f"unreadable: {exc.strerror or exc}"))
                continue
            if is_folder:
                if os.path.realpath(entry.path) in excluded:
                    continue  # the index, kept inside the documents folder
                if not _utf8(entry.name):
                    found.append((Path(entry.path), "folder name is not valid UTF-8: not read"))
                elif depth + 1 > MAX_DEPTH:
                    found.append((Path(entry.path), f"folder nested deeper than {MAX_DEPTH} levels: not read"))
                else:
                    stack.append((entry.path, depth + 1))
            elif is_link and os.path.isdir(entry.path):
                found.append((Path(entry.path), "symbolic link to a folder: not followed"))
            elif is_candidate(Path(entry.name)):
                found.append((Path(entry.path), None))
    return sorted(found, key=lambda item: os.fsencode(item[0].relative_to(root)))


def is_candidate(relative: Path, is_directory: bool = False) -> bool:
    """Return whether a path inside a documents folder is one the walker reads (or a folder it enters)."""
    if any(part.startswith(".") for part in relative.parts):
        return False  # hidden, as _walk passes them over: editors' .swp and lock files among them
    return is_directory or format_of(relative.name) is not None


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_document(source: str, data: bytes) -> Document | Skipped:
    """Read one file's bytes in this process (the format its name says), or say why it cannot be indexed."""
    try:
        extracted = extract(source, data)
    except UnreadableDocument as exc:
        return Skipped(source, str(exc))
    return to_document(source, hashlib.sha256(data).hexdigest(), extracted)


def parse_header(text: str) -> Header:
    """Read the metadata the seeds' header styles carry; a field that is absent is ``None``.

    Styles: a first line that is a title; a `` date YYYY-MM-DD [URL]`` line then a
    title line; a ``Written by NAME on Month D, YYYY`` byline then a title line;
    or no header at all.
    """
    lines = _lines(text[:HEADER_WINDOW])
    i = _next_nonblank(lines, 0)
    if i is None:
        return Header()
    offset, line = lines[i]

    match = _DATE_LINE.match(line)
    if match and _iso_date(match.group(1)):
        body_start = offset + match.end()
        rest = line[match.end():]
        if rest.strip():
            # The body goes on on the date line itself: there is no title line.
            return Header(date=match.group(1), url=match.group(2), body_start=body_start)
        title = _title_at(lines, i + 1, need_blank_after=False)
        return Header(title=title, date=match.group(1), url=match.group(2), body_start=body_start)

    byline = _parse_byline(line)
    if byline:
        author, day = byline
        title = _title_at(lines, i + 1, need_blank_after=False)
        return Header(title=title, date=day, author=author, body_start=offset + len(line))

    title = _title_at(lines, i, need_blank_after=True)
    if title is None:
        return Header()
    # A byline may follow the title.
    j = _next_nonblank(lines, i + 1)
    if j is not None and (byline := _parse_byline(lines[j][1])):
        return Header(title=title, author=byline[0], date=byline[1])
    return Header(title=title)


def _lines(text: str) -> list[tuple[int, str]]:
    """Split into (offset, line without its newline) pairs."""
    out = []
    for m in _LINE.finditer(text):
        if m.start() == len(text):
            break
        out.append((m.start(), m.group().rstrip("\n")))
    return out


def _next_nonblank(lines: list[tuple[int, str]], i: int) -> int | None:
    for j in range(i, len(lines)):
        if not _BLANK.match(lines[j][1]):
            return j
    return None


def _title_at(lines: list[tuple[int, str]], i: int, need_blank_after: bool) -> str | None:
    """Return the title on the first non-blank line from ``i``, if that line reads as one."""
    j = _next_nonblank(lines, i)
    if j is None:
        return None
    line = lines[j][1]
    if line.lstrip().startswith("#"):
        line = line.lstrip().lstrip("#")
    elif need_blank_after and j + 1 < len(lines) and not _BLANK.match(lines[j + 1][1]):
        return None
    title = clean(line)
    words = title.split()
    if not words or len(words) > TITLE_MAX_WORDS or len(title) > TITLE_MAX_CHARS:
        return None
    if title[-1] in ".!?,;" and not title.endswith(".."):
        return None  # a sentence, not a headline ("..." is a teaser title and is kept)
    return title


def _parse_byline(line: str) -> tuple[str, str] | None:
    match = _BYLINE.match(line)
    if not match:
        return None
    day = _us_date(match.group("date"))
    author = clean(match.group("author"))
    if not day or not author:
        return None
    return author, day


def clean(value: str) -> str:
    """Drop Markdown link markup and collapse white space (NBSP included) for metadata."""
    return " ".join(_MD_LINK.sub(r"\1", value).split())


def _iso_date(value: str) -> str | None:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def _us_date(value: str) -> str | None:
    value = " ".join(value.replace(".", "").split())
    for fmt in ("%B %d, %Y", "%b %d, %Y", "%B %d,%Y", "%b %d,%Y"):
        try:
            return datetime.strptime(value, fmt).date().isoformat()
        except ValueError:
            continue
    return None
