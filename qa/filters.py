"""Which documents a question may be answered from: a date range and one source file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from qa.errors import BadRequest

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Sources one filter may name: enough for a hand-picked set, bounded for the SQL it makes.
MAX_SOURCES = 200


def clean_text(name: str, value: object) -> str:
    """Return ``value`` if it is a string that can be encoded as UTF-8, or raise BadRequest."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate ("\ud800" in JSON) is not text: SQLite and the tokenizer refuse it.
        raise BadRequest(f"{name} is not valid Unicode text (lone surrogate at {exc.start})") from None
    return value


@dataclass(frozen=True)
class Filters:
    """Restrict answers to documents dated within [since, until], to some source files, and/or to a folder.

    The index's tables module turns these into SQL; nothing else does.
    """

    since: str | None = None
    until: str | None = None
    #: Only these documents (paths as results name them); empty: any.
    sources: tuple[str, ...] = ()
    #: Only documents under this folder of the collection ("reports/2024"); None: any.
    folder: str | None = None

    @classmethod
    def clean(cls, since: object = None, until: object = None, source: object = None, folder: object = None) -> Filters:
        """Validate raw filter values (``""`` counts as absent; ``source`` may be one name or a list), or raise BadRequest."""
        values: dict = {}
        for name, value in (("since", since), ("until", until)):
            if value in (None, ""):
                continue
            if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
                raise BadRequest(f"{name} must be a date like 2024-01-31")
            try:
                values[name] = date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                raise BadRequest(f"{name} is not a real date: {value}") from None
        if "since" in values and "until" in values and values["since"] > values["until"]:
            raise BadRequest("since is after until")
        names = source if isinstance(source, (list, tuple)) else [] if source in (None, "") else [source]
        if len(names) > MAX_SOURCES:
            raise BadRequest(f"at most {MAX_SOURCES} sources at once")
        sources = [clean_text("source", name).strip() for name in names]
        values["sources"] = tuple(dict.fromkeys(name for name in sources if name))
        if folder not in (None, ""):
            folder = clean_text("folder", folder).strip().strip("/")
            if folder:
                values["folder"] = folder
        return cls(**values)

    @property
    def by_date(self) -> bool:
        return bool(self.since or self.until)

    @property
    def active(self) -> bool:
        return bool(self.by_date or self.sources or self.folder)
