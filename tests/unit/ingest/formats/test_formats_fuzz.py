"""Fuzz: extract never raises anything but UnreadableDocument on mutated bytes of the fixtures."""

from __future__ import annotations

from formats_support import FORMATS, SEEDS_PDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.ingest.formats import Extracted, Limits, UnreadableDocument, extract

SAMPLES = [(p.name, p.read_bytes()) for p in sorted(FORMATS.iterdir())] + [
    (p.name, p.read_bytes()) for p in sorted(SEEDS_PDF.glob("00[04]*.pdf"))]
LIMITS = Limits(max_seconds=5.0)


@st.composite
def mutated(draw):
    name, data = draw(st.sampled_from(SAMPLES))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 512))]
        elif kind == "truncate":
            del data[at:]
        else:  # repeat a slice: duplicated objects, tags, zip entries
            data[at:at] = data[at:at + draw(st.integers(1, 4096))]
    return name, bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_extract_raises_only_unreadable_document(sample):
    name, data = sample
    try:
        result = extract(name, data, LIMITS)
    except UnreadableDocument as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(result, Extracted) and result.text.strip()
        assert list(result.pages) == sorted(result.pages)
        assert all(0 <= p <= len(result.text) for p in result.pages)
