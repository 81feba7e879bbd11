"""What every zip-packaged format checks before it parses (Word, PowerPoint, Excel, EPUB, OpenDocument).

A package's listed sizes are checked before anything is inflated, so a zip bomb
is refused from its directory alone; an OLE compound file where a zip was
expected is named (encrypted, or the legacy binary format); XML members are
parsed without DTDs, entity expansion or network access.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable

from .base import Limits, UnreadableDocument

#: Members a real document has a few dozen of; thousands are a trap for the zip reader.
MAX_MEMBERS = 10_000
#: Largest plausible inflate ratio of one XML part (highly repetitive XML reaches ~100x).
MAX_RATIO = 1000
#: The first bytes of an OLE compound file: a legacy .doc/.ppt/.xls, an Outlook .msg, or an encrypted package.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: The stream a password-protected Office Open XML file keeps inside its OLE wrapper.
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_REASON_LIMIT = 200


def _a(kind: str) -> str:
    """``kind`` with its article: "a Word document", "an EPUB"."""
    return ("an " if kind[:1] in "AEIOU" else "a ") + kind


def check_zip(data: bytes, limits: Limits, kind: str) -> None:
    """Refuse a zip whose directory promises more than ``limits.max_unpacked_bytes`` or a bomb's ratio.

    ``kind`` names the format in the reason ("Word document").
    """
    with _open(data, kind) as archive:
        _check_members(archive, limits, kind)


def _open(data: bytes, kind: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableDocument(f"not {_a(kind)} (bad zip: {exc})"[:_REASON_LIMIT]) from None


def _check_members(archive: zipfile.ZipFile, limits: Limits, kind: str) -> None:
    """``check_zip`` on a package already open: its directory, before anything is inflated."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise UnreadableDocument(f"zip with {len(members):,} members: not a plausible {kind}")
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked_bytes:
        raise UnreadableDocument(
            f"unpacks to {total:,} bytes (limit {limits.max_unpacked_bytes:,}): zip bomb or huge document")
    for m in members:
        if m.file_size > MAX_RATIO * max(m.compress_size, 1) and m.file_size > 1 << 20:
            raise UnreadableDocument(f"zip member {m.filename} inflates {m.file_size // max(m.compress_size, 1):,}x: zip bomb")


def check_office_package(data: bytes, limits: Limits, kind: str, legacy: str) -> None:
    """Name an encrypted or legacy Office file (an OLE compound file), then run ``check_zip``.

    ``kind`` names the format ("Excel workbook"), ``legacy`` the suffix of its binary format (".xls").
    """
    if data.startswith(OLE_MAGIC):
        if ENCRYPTED_PACKAGE in data:
            raise UnreadableDocument(f"encrypted {kind} (needs a password)")
        raise UnreadableDocument(f"not {_a(kind)}: an OLE compound file (a legacy {legacy}?)")
    check_zip(data, limits, kind)


def open_zip(data: bytes, limits: Limits, kind: str, mimetype: bytes,
             check: Callable[[zipfile.ZipFile, set[str]], None]) -> zipfile.ZipFile:
    """Open a package once its directory has passed ``check_zip``, its ``mimetype`` member (if any) fits and
    ``check(archive, names)`` has raised nothing; the archive is closed when any of them refuses it."""
    archive = _open(data, kind)
    try:
        _check_members(archive, limits, kind)
        names = set(archive.namelist())
        if "mimetype" in names and archive.getinfo("mimetype").file_size < 100:
            found = read_member(archive, "mimetype", kind).strip()
            if found != mimetype:
                raise UnreadableDocument(f"not {_a(kind)} (mimetype {found[:60].decode('ascii', 'replace')!r})")
        check(archive, names)
    except BaseException:
        archive.close()
        raise
    return archive


def read_member(archive: zipfile.ZipFile, name: str, kind: str) -> bytes:
    """Return one member's bytes; a missing or corrupt member is UnreadableDocument naming it."""
    try:
        return archive.read(name)
    except KeyError:
        raise UnreadableDocument(f"{kind} lacks {name[:100]}") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise UnreadableDocument(f"corrupt {kind} ({name[:100]}: {exc})"[:_REASON_LIMIT]) from None


def parse_xml(raw: bytes, what: str, kind: str):
    """Parse XML without DTDs, entity expansion or network access; ``what`` names the member in the reason."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise UnreadableDocument(f"corrupt {kind} ({what}: {exc})"[:_REASON_LIMIT]) from None
