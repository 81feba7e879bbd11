"""qa: offline extractive question answering over a folder of documents.

The library's public surface is what ``__all__`` names; see ``qa.Collection``.
Names are imported on first use, so ``import qa`` (and ``qa --help``) stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "Collection": "qa.collection",
    "BuildReport": "qa.indexing",
    "ChunkSettings": "qa.settings",
    "SearchSettings": "qa.settings",
    "MODES": "qa.settings",
    "QAError": "qa.errors",
    "BadRequest": "qa.errors",
    "NotFound": "qa.errors",
    "NoDocuments": "qa.errors",
    "IndexUnavailable": "qa.errors",
    "IndexBusy": "qa.errors",
    "IndexWriteError": "qa.errors",
    "ModelUnavailable": "qa.errors",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
