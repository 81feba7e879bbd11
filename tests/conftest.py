from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from qa.indexing import build
from qa.embed import HashingEmbedder

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
# The document builders (tests/fixtures/documents.py) are imported by name, as a test's own folder is.
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(256)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A private copy of the seed documents."""
    folder = tmp_path / "docs"
    shutil.copytree(SEEDS, folder)
    return folder


@pytest.fixture
def index_dir(tmp_path: Path, docs: Path, embedder: HashingEmbedder) -> Path:
    """An index of the seeds built with the hashing embedder."""
    folder = tmp_path / "index"
    build(docs, folder, embedder)
    return folder


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so fixtures can tell whether it failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
