"""Walk a documents folder: which files are candidates, their bytes (read safely), and the folder's fingerprint."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from qa.ingest.formats import DEFAULT_LIMITS, Limits, format_of


def fingerprint(folder: str | Path, exclude: Sequence[Path] = (), cache: DigestCache | None = None) -> str:
    """Return a digest of every candidate file's path and bytes: it changes when any document does.

    With a ``cache`` (kept by a caller that asks again and again: the server's staleness
    check, the watcher), a file whose size, times and inode are those it had when last
    hashed is not read again.
    """
    digest = hashlib.sha256()
    for found in read_folder(folder, exclude=exclude, cache=cache):
        fingerprint_line(digest, found.name_bytes, found.problem if found.sha256 is None else found.sha256)
    return digest.hexdigest()


def fingerprint_line(digest, name: bytes, content: str | None) -> None:
    """Add one file to a folder digest: its name as the file system has it, and its sha256 or why it was not read."""
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
    #: The file's modification time when it was read (with the size, what /file checks it against).
    mtime_ns: int | None = None


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
    folder: str | Path, limits: Limits = DEFAULT_LIMITS, exclude: Sequence[Path] = (), cache: DigestCache | None = None,
    count: Callable[[int], None] | None = None,
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
    ``count``, if given, is told how many files will be yielded, before the first is read.
    """
    root = Path(folder)
    inside = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    excluded = {os.path.realpath(path) for path in exclude}
    paths = _walk(root, excluded)
    if count is not None:
        count(len(paths))
    for path, problem in paths:
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
        data, sha, problem, mtime_ns = _read_inside(path, inside, seen, limits.max_bytes, cache)
        yield Found(source, relative, data, problem, sha, mtime_ns)


def _read_inside(
    path: Path, inside: str, seen: set[tuple[int, int]], max_bytes: int, cache: DigestCache | None
) -> tuple[bytes | None, str | None, str | None, int | None]:
    """Return (bytes, sha256, None, mtime_ns) of ``path`` if it is a regular file inside ``inside``, else (None, None,
    reason, None).

    The bytes are None, with the sha256 given, when ``cache`` knows the file unchanged.
    """
    try:
        handle, info = _open_inside(path, inside)
    except _Refused as refused:
        return None, None, str(refused), None
    with handle:
        try:
            if (info.st_dev, info.st_ino) in seen:
                reason = "symbolic link to a file already read" if path.is_symlink() else "already read through a link"
                return None, None, reason, None
            seen.add((info.st_dev, info.st_ino))
            if info.st_size > max_bytes:
                # Refused by its size: a 3 GB file is never read into memory to learn it is too big.
                return None, None, _too_large(info.st_size, max_bytes), None
            real = os.path.realpath(path)
            known = cache.get(real, info) if cache is not None else None
            if known is not None:
                return None, known, None, info.st_mtime_ns
            data = handle.read(max_bytes + 1)  # the file may have grown since fstat
            if len(data) > max_bytes:
                return None, None, _too_large(len(data), max_bytes), None
            sha = hashlib.sha256(data).hexdigest()
            if cache is not None:
                cache.put(real, info, sha)
            return data, sha, None, info.st_mtime_ns
        except OSError as exc:
            return None, None, f"unreadable: {exc.strerror or exc}", None


class _Refused(Exception):
    """A path that is not a document to read: ``str()`` says why."""


def _open_inside(path: Path, inside: str):
    """Open ``path`` for reading if it is a regular file inside ``inside`` and hidden nowhere; else raise _Refused.

    The real path must lie inside the folder, and no part of it below the folder may
    be hidden: a link ``notes.txt -> .env`` would otherwise be read (and served) as a
    document, which a hidden name never is. The file is opened without following a
    final link and the path the kernel opened is checked again, so a link swapped in
    between the check and the open is caught too. Returns (binary file, its stat).
    """
    if path.is_symlink() and not path.exists():
        raise _Refused("broken symbolic link")
    real = os.path.realpath(path)
    if not _is_inside(real, inside):
        raise _Refused("symbolic link to a file outside the documents folder: not read")
    if _hidden_below(real, inside):
        raise _Refused("symbolic link to a hidden file: not read")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: no link swapped in.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _Refused(f"unreadable: {exc.strerror or exc}") from None
    try:
        opened = _opened_path(fd)
        if opened is not None and not _is_inside(opened, inside):
            raise _Refused("symbolic link to a file outside the documents folder: not read")
        if opened is not None and _hidden_below(opened, inside):
            raise _Refused("symbolic link to a hidden file: not read")
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused("not a regular file")  # a FIFO or device would block or never end
        return os.fdopen(fd, "rb"), info
    except BaseException:
        os.close(fd)
        raise


def _hidden_below(real: str, inside: str) -> bool:
    """Say whether any part of ``real`` below the folder ``inside`` is hidden (starts with a dot)."""
    below = real[len(inside.rstrip(os.sep)) + 1 :] if real != inside else ""
    return any(part.startswith(".") for part in below.split(os.sep) if part)


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
            elif not is_editor_leftover(entry.name):
                found.append((Path(entry.path), unsupported(entry.name)))
    return sorted(found, key=lambda item: os.fsencode(item[0].relative_to(root)))


def unsupported(name: str) -> str:
    """The reason a file of a type qa does not read is skipped, naming the types it reads."""
    dot = name.rfind(".")
    kind = f"file type {name[dot:][:20]!r}" if dot > 0 else "file without a type (no .suffix)"
    return f"unsupported {kind}: qa reads {supported_types()}"


def supported_types() -> str:
    """The file types qa reads, as a user types them."""
    from qa.ingest.formats import SUFFIXES

    return " ".join(SUFFIXES)


def is_editor_leftover(name: str) -> bool:
    """Say whether ``name`` is an editor's backup, lock or probe file: not a document, not worth a mention."""
    return name.endswith("~") or (name.startswith("#") and name.endswith("#")) or name == "4913" or \
        name.startswith(".~lock.")


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


def open_original(folder: str | Path, source: str):
    """Open the document ``source`` of ``folder`` with the walk's own safety checks; return (binary file, stat).

    ``source`` is a path relative to the folder, as results name it. It is opened
    only when it names a regular file whose real path lies inside the folder and is
    hidden nowhere: no ``..``, no absolute path, no link leading out or to a hidden
    file, no link swapped in. The caller closes the file.

    Raises:
        FileNotFoundError: the file is not there (any more).
        PermissionError: the path is not one a document may have, or leads where documents are not.
    """
    relative = Path(source)
    if relative.is_absolute() or not relative.parts or any(part in ("..", ".") for part in relative.parts):
        raise PermissionError(f"not a document path: {source!r}")
    if any(part.startswith(".") for part in relative.parts):
        raise PermissionError(f"hidden files are not documents: {source!r}")
    path = Path(folder) / relative
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"no longer in the documents folder: {source!r}")
    try:
        return _open_inside(path, os.path.realpath(folder))
    except _Refused as refused:
        raise PermissionError(f"{source!r} cannot be served: {refused}") from None
