"""Errors that qa raises on purpose; the CLI and the API turn them into messages."""

from __future__ import annotations


class QAError(Exception):
    """Base class: a problem the user can act on, with a message that says how."""

    #: HTTP status the API answers with when this error reaches it.
    status = 500


class BadRequest(QAError):
    """The question or its parameters are not acceptable."""

    status = 400


class NotFound(QAError):
    """The index holds no such document."""

    status = 404


class NoDocuments(QAError):
    """Nothing in the documents folder could be indexed."""

    status = 500


class IndexUnavailable(QAError):
    """The index is missing, corrupt, or was built for another model."""

    status = 503


class IndexWriteError(QAError):
    """A build could not be written (disk full, read-only folder); the previous build still serves."""

    status = 503


class IndexBusy(QAError):
    """Another process holds the index build lock."""

    status = 503


class ModelUnavailable(QAError):
    """The embedding model cannot be loaded from local files."""

    status = 503
