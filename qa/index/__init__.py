"""The built index: a folder of builds (layout), passage vectors (vectors), the passage table (tables).

``open_index`` loads the build in service as an ``IndexReader``; ``write_build``
writes and publishes a new one. See layout.py for the files on disk.
"""

from __future__ import annotations

from qa.index.layout import MODELS, Manifest, build_lock, current_build
from qa.index.reader import IndexReader, open_index, write_build
from qa.index.sharded import Connector, ShardedReader

__all__ = [
    "MODELS", "Connector", "IndexReader", "Manifest", "ShardedReader", "build_lock", "current_build", "open_index",
    "write_build",
]
