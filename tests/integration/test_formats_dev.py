"""The dev questions, answered from HTML and PDF renderings of the seeds as well as from the text seeds.

Same first@1 in every format, with the real model, and the PDF answers cite the
page that prints their evidence.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.indexing import build
from qa.evaluate import load_judged
from qa.ingest import page_of
from qa.search import Searcher

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
RENDERINGS = {"txt": ROOT / "seeds", "html": ROOT / "tests/fixtures/seeds-html", "pdf": ROOT / "tests/fixtures/seeds-pdf"}


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The encoders `qa index` and `qa search` use by default: int8 passages and questions, one export."""
    from qa.embed import DEFAULT_MODEL, INT8, load_embedder, load_query_encoder

    exports = tmp_path_factory.mktemp("models")
    return load_embedder(DEFAULT_MODEL + INT8, exports), load_query_encoder(None, exports)


@pytest.fixture(scope="module")
def answers(models, tmp_path_factory):
    """Each format's top answer to each answerable dev question: (question, evidence, passage, searcher)."""
    if not DEV.is_file():
        pytest.skip(f"the dev questions are not beside the repository ({DEV})")
    questions = [q for q in load_judged(DEV) if q.relevant]
    passages, queries = models
    out = {}
    for fmt, folder in RENDERINGS.items():
        docs = tmp_path_factory.mktemp(fmt)
        for path in folder.glob(f"*.{fmt}"):
            shutil.copy(path, docs / path.name)
        build(docs, docs.parent / f"{fmt}-index", passages)
        searcher = Searcher(docs.parent / f"{fmt}-index", embedder=queries)
        out[fmt] = [(q, searcher.search(q.question, k=1).results[0].passage, searcher) for q in questions]
    return out


def first_at_1(rows) -> list[str]:
    """Ids of the questions whose first passage comes from the right seed and holds its evidence."""
    hits = []
    for question, passage, _ in rows:
        stems = {Path(file).stem: evidence for file, evidence in question.relevant}
        evidence = stems.get(Path(passage.source).stem)
        if evidence is not None and squash(evidence) in squash(passage.text):
            hits.append(question.id)
    return hits


def test_every_format_answers_the_same_dev_questions_first(answers):
    text = first_at_1(answers["txt"])
    assert len(text) >= 10, text  # 11/11 in the README; the text seeds are the reference here
    assert first_at_1(answers["html"]) == text
    assert first_at_1(answers["pdf"]) == text


def locate(text: str, evidence: str) -> int | None:
    """Return the offset in ``text`` where ``evidence`` starts, white space compared loosely."""
    squashed = squash(text).find(squash(evidence))
    if squashed < 0:
        return None
    target = len(squash(text)[:squashed].replace(" ", ""))  # non-space characters before it
    seen = 0
    for offset, char in enumerate(text):
        if not char.isspace():
            if seen == target:
                return offset
            seen += 1
    return None


def test_pdf_answers_cite_the_page_that_prints_their_evidence(answers):
    checked = 0
    for question, passage, searcher in answers["pdf"]:
        layer = searcher.document(passage.source)
        assert layer["text"][passage.start : passage.end] == passage.text
        for file, evidence in question.relevant:
            at = locate(passage.text, evidence) if Path(file).stem == Path(passage.source).stem else None
            if at is None:
                continue
            page = page_of(layer["pages"], passage.start + at)
            assert passage.page <= page <= passage.page_end, (question.id, passage.id, page)
            checked += 1
    assert checked >= 10
