"""Ingest: a documents folder becomes documents (text layers with metadata) and the files passed over.

- ``folder``: the walk (which files are candidates, read safely, fingerprinted);
- ``formats``: one reader per file format, run in bounded worker processes;
- ``headers``: the title, date, URL and author a text file's first lines give;
- ``metadata``: every format's title, date, URL and author made fit to store, and a title where none is given;
- ``read``: files into ``Document`` records, or ``Skipped`` ones with their reason;
- ``watch``: a folder watched for changes, to rebuild the index.

Other stages import this face only.
"""

from __future__ import annotations

from qa.ingest.folder import (
    MAX_DEPTH, DigestCache, Found, fingerprint, is_candidate, read_folder, open_original, supported_types,
)
from qa.ingest.formats import (
    DEFAULT_LIMITS, SUFFIXES, Extracted, Limits, UnreadableDocument, extract, format_of, page_of,
)
from qa.ingest.formats.text import decode as decode_text
from qa.ingest.headers import Header, parse_header
from qa.ingest.read import TEXT_FORMATS, load_documents, parse_document, scan, storable, to_document
from qa.ingest.watch import FAILED, POLLING, WATCHING, Watcher

__all__ = [
    "DEFAULT_LIMITS", "FAILED", "MAX_DEPTH", "POLLING", "SUFFIXES", "TEXT_FORMATS", "WATCHING", "DigestCache", "decode_text",
    "Extracted", "Found", "Header", "Limits", "UnreadableDocument", "Watcher", "extract", "fingerprint",
    "format_of", "is_candidate", "load_documents", "page_of", "parse_document", "parse_header", "read_folder", "open_original", "supported_types",
    "scan", "storable", "to_document",
]
