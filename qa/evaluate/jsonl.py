"""Question, query and judgment files are input from anyone: read them line by line, within bounds.

Every fault (not UTF-8, not one JSON object a line, a line or a file too long)
is a ``BadRequest`` naming the file and the line, so ``qa eval`` and ``qa tune``
print one line and exit 2 (qa/cli.py) instead of a traceback. A line is read
with its bound, never whole first: a 1 GB line costs ``max_line`` bytes of
memory before it is refused, not 2 GB.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from qa.errors import BadRequest
from qa.ingest import storable

#: Longest line of a question, query or judgment file: a question is at most 1,000 characters.
MAX_LINE_BYTES = 64 * 1024
#: Largest question, query or judgment file, checked before it is read (the limit of a document's file too).
MAX_FILE_BYTES = 64 * 1024 * 1024
ONE_OBJECT_A_LINE = "write one JSON object a line (JSON Lines)"


def where(path: Path, number: int) -> str:
    """Name a line of a file in a message."""
    return f"{path}, line {number}"


def read_lines(
    path: Path, max_line: int = MAX_LINE_BYTES, max_file: int | None = MAX_FILE_BYTES, digest=None
) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, bytes) of ``path``, refusing a line over ``max_line`` bytes or a file over ``max_file``.

    ``digest`` (a hashlib object) is updated with every byte read. The size is
    checked before reading and again while reading, for a file that grows or a
    device that says it is empty.
    """
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        if max_file is not None and os.fstat(handle.fileno()).st_size > max_file:
            raise BadRequest(f"{path} is larger than {max_file:,} bytes: split it")
        total, number = 0, 0
        while True:
            try:
                line = handle.readline(max_line + 1)
            except OSError as exc:
                raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from None
            if not line:
                return
            number += 1
            total += len(line)
            if len(line) > max_line and not line.endswith(b"\n"):
                raise BadRequest(f"{where(path, number)}: longer than {max_line:,} bytes")
            if max_file is not None and total > max_file:
                raise BadRequest(f"{path} is larger than {max_file:,} bytes: split it")
            if digest is not None:
                digest.update(line)
            yield number, line


def decode(path: Path, number: int, line: bytes) -> str:
    """Return a line as text; a line that is not UTF-8 is a BadRequest (a byte-order mark opens a file)."""
    try:
        return line.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        at = where(path, number)
        raise BadRequest(f"{at}: not UTF-8 text (byte {exc.start + 1}); save the file as UTF-8") from None


def read_objects(
    path: Path, max_line: int = MAX_LINE_BYTES, max_file: int | None = MAX_FILE_BYTES, digest=None
) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) of a JSON Lines file, one JSON object a line; blank lines are passed over."""
    for number, line in read_lines(path, max_line, max_file, digest):
        text = decode(path, number, line)
        if not text.strip():
            continue
        at = where(path, number)
        try:
            item = json.loads(text)
        except ValueError as exc:
            if number == 1 and text.lstrip().startswith("["):  # a JSON array over several lines
                raise BadRequest(f"{at}: a JSON array; {ONE_OBJECT_A_LINE}") from None
            raise BadRequest(f"{at}: not JSON ({exc})") from None
        except RecursionError:  # brackets nested thousands deep
            raise BadRequest(f"{at}: JSON nested too deep") from None
        if not isinstance(item, dict):
            kind = {list: "an array", str: "a string"}.get(type(item), "a single value")
            raise BadRequest(f"{at}: {kind}, not a JSON object; {ONE_OBJECT_A_LINE}")
        yield number, item


def text_field(item: dict, name: str, at: str) -> str:
    """Return ``item[name]`` when it is text, not empty; else a BadRequest naming the field and the line.

    JSON may spell lone surrogates ("\\ud800"), which no index or SQLite query can hold:
    they become U+FFFD, as in documents (qa.ingest.storable).
    """
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f'{at}: "{name}" must be text, not {_shown(value)}')
    return storable(value)[0]


def id_field(item: dict, name: str, at: str) -> str:
    """Return ``item[name]`` as an id: text or a whole number."""
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise BadRequest(f'{at}: "{name}" must be text or a whole number, not {_shown(value)}')
    return storable(str(value))[0]


def _shown(value: object) -> str:
    """Show a bad value in a one-line message, short."""
    if value is None:
        return "missing"
    return " ".join(json.dumps(value, ensure_ascii=True)[:40].split())
