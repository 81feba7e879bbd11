"""The table of readers: every suffix qa reads has a reader module that reads it."""

from __future__ import annotations

import importlib

from qa.ingest.formats import READERS, SUFFIXES


def test_every_format_a_suffix_names_has_a_reader_and_every_reader_a_suffix():
    assert set(SUFFIXES.values()) == set(READERS)
    for module_name, _ in READERS.values():
        assert callable(importlib.import_module(f"qa.ingest.formats.{module_name}").read)
