"""The parts of the Ray embedder that need no cluster."""

from __future__ import annotations

from qa.embed.ray_workers import _batches


def test_batches_cover_every_text_once_longest_first_within_the_budget():
    texts = ["x" * n for n in (5, 300, 40, 300, 1, 900, 60)]
    batches = _batches(texts, budget=600)
    assert sorted(i for b in batches for i in b) == list(range(len(texts)))
    flat = [i for b in batches for i in b]
    assert [len(texts[i]) for i in flat] == sorted((len(t) for t in texts), reverse=True)
    for batch in batches:
        assert len(batch) == 1 or sum(len(texts[i]) for i in batch) <= 600  # a lone long text is its own batch
    assert _batches([]) == []
