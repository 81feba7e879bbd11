"""A killed or failed build resumes where it stopped, and gives what an uninterrupted build gives (qa/indexing/resume.py).

Kept work is input: every way a slice or a kept document can be damaged is passed
over, re-embedded or read again, and never published.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from qa import index
from qa.indexing import build, resume
from qa.embed import HashingEmbedder
from qa.errors import IndexWriteError
from qa.progress import Progress


class LateHashing(HashingEmbedder):
    """The hashing fake with late chunking: a span's vector is its own text's, None past character 300."""

    def __init__(self, fail_after: int | None = None):
        super().__init__(64)
        self.calls, self.texts, self.fail_after = 0, 0, fail_after

    def encode(self, texts, batch_size=32, progress=False):
        self.texts += len(texts)
        return super().encode(texts)

    def encode_with_spans(self, texts, spans, batch_size=32, progress=False):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("the machine went away")
        self.calls += 1
        self.texts += len(texts)
        pooled = [[super(LateHashing, self).encode([t[a:b]])[0] if a < 300 else None for a, b in s]
                  for t, s in zip(texts, spans)]
        return super().encode(texts), pooled


def contents(index_dir: Path) -> tuple:
    reader = index.open_index(index_dir)
    n = reader.manifest.passage_count
    passages = [(p.id, p.text) for p in reader.tables.passages(range(n))]
    return passages, reader.reconstruct(range(n)), np.asarray(reader.sentence_vectors, np.float32)


def assert_same_build(a: Path, b: Path) -> None:
    (pa, va, sa), (pb, vb, sb) = contents(a), contents(b)
    assert pa == pb
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_array_equal(sa, sb)


def slices(folder: Path) -> list[Path]:
    return sorted((folder / resume.FOLDER).glob("*/slice-*.npz"))


@pytest.fixture
def each_call_kept(monkeypatch):
    """Eight texts a call, each call kept as a slice: counts the tests can reason about."""
    monkeypatch.setattr(resume, "KEEP_EVERY_S", 0.0)
    monkeypatch.setattr(resume, "FIRST_STEP", 8)
    monkeypatch.setattr(resume, "next_step", lambda step, done, took, least=1: 8)


def test_a_failed_build_resumes_with_what_it_had_embedded(docs, tmp_path, each_call_kept):
    whole = tmp_path / "whole"
    uninterrupted = LateHashing()
    build(docs, whole, uninterrupted)
    assert uninterrupted.calls > 3  # enough calls that failing after three leaves work to resume

    resumed = tmp_path / "resumed"
    with pytest.raises(RuntimeError, match="went away"):
        build(docs, resumed, LateHashing(fail_after=3))
    assert len(slices(resumed)) == 3
    assert index.current_build(resumed) is None  # nothing was published

    second = LateHashing()
    build(docs, resumed, second)
    assert second.calls == uninterrupted.calls - 3  # the three slices kept were not embedded again
    assert_same_build(whole, resumed)
    assert not (resumed / resume.FOLDER).exists()  # the build is published: its slices are gone


def test_a_resumed_build_reads_each_kept_slice_once(docs, tmp_path, each_call_kept, monkeypatch):
    folder = tmp_path / "index"
    with pytest.raises(RuntimeError):
        build(docs, folder, LateHashing(fail_after=3))
    reads = []
    read_slice = resume.read_slice
    monkeypatch.setattr(resume, "read_slice", lambda path, dimension: reads.append(path.name) or read_slice(path, dimension))
    again = LateHashing()
    build(docs, folder, again)
    assert again.texts > again.calls * 8  # sentences past the pooled spans were embedded too
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 3  # the three slices kept, not this build's own


def test_slices_of_other_settings_are_removed_not_used_and_a_damaged_one_is_passed_over(docs, tmp_path, each_call_kept):
    folder = tmp_path / "index"
    with pytest.raises(RuntimeError):
        build(docs, folder, LateHashing(fail_after=2))
    kept = slices(folder)
    assert len(kept) == 2
    kept[0].write_bytes(b"not a slice")
    again = LateHashing()
    build(docs, folder, again)
    full = LateHashing()
    build(docs, tmp_path / "whole", full)
    assert again.calls == full.calls - 1  # the readable slice was used, the damaged one embedded again
    assert_same_build(tmp_path / "whole", folder)

    with pytest.raises(RuntimeError):
        build(docs, tmp_path / "other", LateHashing(fail_after=2))
    kept = next((tmp_path / "other" / resume.FOLDER).glob("*/"))
    other_settings = HashingEmbedder(32)  # another model: another key
    build(docs, tmp_path / "other", other_settings)
    assert not kept.exists()


def _rewrite(path: Path, change, checksum: bool) -> None:
    """Change a kept slice's arrays; with ``checksum``, as a forger would (the checksum made anew)."""
    with np.load(path) as data:
        arrays = {name: data[name].copy() for name in data.files}
    change(arrays)
    if checksum:
        arrays["check"] = np.frombuffer(resume._checksum(arrays), np.uint8)
    with open(path, "wb") as out:
        np.savez(out, **arrays)


def _nan(a):
    a["vectors"][1, 3] = np.nan


def _scaled(a):
    a["vectors"] *= 1e6


def _narrow(a):
    a["vectors"] = a["vectors"][:, :1].copy()


def _swapped(a):
    a["vectors"] = a["vectors"][::-1].copy()


DAMAGE = {
    "half the bytes": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "no bytes": lambda p: p.write_bytes(b""),
    "vectors one wide": lambda p: _rewrite(p, _narrow, checksum=True),
    "a NaN": lambda p: _rewrite(p, _nan, checksum=True),
    "vectors x1e6": lambda p: _rewrite(p, _scaled, checksum=True),
    "rows swapped": lambda p: _rewrite(p, _swapped, checksum=False),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_slice_is_embedded_again_never_published_and_never_blocks_a_build(
    docs, tmp_path, each_call_kept, damage, caplog
):
    full = LateHashing()
    build(docs, tmp_path / "whole", full)
    folder = tmp_path / "index"
    with pytest.raises(RuntimeError):
        build(docs, folder, LateHashing(fail_after=3))
    DAMAGE[damage](slices(folder)[1])
    again = LateHashing()
    with caplog.at_level(logging.WARNING):
        report = build(docs, folder, again)
    assert "passing over" in caplog.text and "embedded again" in caplog.text
    assert again.calls == full.calls - 2  # two good slices used, the damaged one's texts embedded again
    assert report.encoded == report.passages  # and the build reports what it embedded
    assert_same_build(tmp_path / "whole", folder)
    reader = index.open_index(folder)
    vectors = reader.reconstruct(range(reader.manifest.passage_count))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)


def test_rebuild_clears_what_an_unfinished_build_kept(docs, tmp_path, each_call_kept):
    folder = tmp_path / "index"
    with pytest.raises(RuntimeError):
        build(docs, folder, LateHashing(fail_after=3))
    assert slices(folder) and (folder / resume.FOLDER / resume.DOCUMENTS).is_file()
    again = LateHashing()
    build(docs, folder, again, rebuild=True)
    full = LateHashing()
    build(docs, tmp_path / "whole", full)
    assert again.calls == full.calls  # nothing kept was used
    assert not (folder / resume.FOLDER).exists()


def test_no_build_publishes_vectors_off_the_unit_sphere(docs, tmp_path):
    class Broken(HashingEmbedder):
        def encode(self, texts, batch_size=32, progress=False):
            return super().encode(texts) * 3.0

    with pytest.raises(IndexWriteError, match="not of unit length"):
        build(docs, tmp_path / "index", Broken(64))
    assert index.current_build(tmp_path / "index") is None

    class NotFinite(HashingEmbedder):
        def encode(self, texts, batch_size=32, progress=False):
            out = super().encode(texts)
            out[0, 0] = np.inf
            return out

    with pytest.raises(IndexWriteError, match="not finite"):
        build(docs, tmp_path / "index", NotFinite(64), shards=2)
    assert index.current_build(tmp_path / "index") is None


def test_a_slice_that_cannot_be_kept_does_not_fail_the_build(docs, tmp_path, each_call_kept, monkeypatch, caplog):
    written = []

    def full_disk(out, **arrays):
        written.append(out.name)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(resume.np, "savez", full_disk)
    build(docs, tmp_path / "index", LateHashing())
    assert len(written) == 1  # after the first failure no slice is tried again
    assert "cannot keep embedded slices" in caplog.text and "No space left on device" in caplog.text
    assert not list((tmp_path / "index" / resume.FOLDER).glob("*/.slice-*"))  # no half-written slice
    assert index.current_build(tmp_path / "index") is not None


def test_a_build_slowed_to_a_crawl_killed_half_way_loses_at_most_a_few_seconds(docs, tmp_path):
    """A real SIGKILL in the middle of a slow build's embedding, then `build` again.

    Slices are kept by time, not by count: on a CPU as slow as this encoder, a kill
    loses about ``KEEP_EVERY_S`` plus the call in flight, whatever the rate.
    """
    folder, calls = tmp_path / "index", tmp_path / "calls.jsonl"
    script = textwrap.dedent(f"""
        import json, sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from qa.indexing import build, resume
        from test_resume import LateHashing
        resume.KEEP_EVERY_S, resume.STEP_S = 0.4, 0.2

        class Crawl(LateHashing):
            def encode_with_spans(self, texts, spans, batch_size=32, progress=False):
                time.sleep(0.04 * len(texts))  # 25 passages a second
                out = super().encode_with_spans(texts, spans)
                with open({str(calls)!r}, "a") as log:
                    log.write(json.dumps(len(texts)) + "\\n")
                return out

        build(Path({str(docs)!r}), Path({str(folder)!r}), Crawl())
    """)
    whole = LateHashing()
    build(docs, tmp_path / "whole", whole)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 120
    embedded = lambda: sum(json.loads(line) for line in calls.read_text().splitlines()) if calls.exists() else 0
    passages = index.open_index(tmp_path / "whole").manifest.passage_count
    while embedded() < passages // 2:  # half of the passages
        assert child.poll() is None and time.monotonic() < deadline, "the build ended before it was killed"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert index.current_build(folder) is None
    done = embedded()
    store = resume.ResumeStore(folder, {"dimension": 64})  # the key does not matter to read a folder's slices
    kept = sum(len(resume.read_slice(path, 64)[0]) for path in slices(folder))
    # At 25 a second: 0.4 s between slices and a call of ~0.2 s in flight are ~15 passages; 25 is ample.
    assert 0 < kept <= done and done - kept <= 25, (done, kept, store.key)

    second = LateHashing()
    build(docs, folder, second)
    assert second.texts == whole.texts - kept  # only what was not kept is embedded again
    assert_same_build(tmp_path / "whole", folder)


def test_what_the_readers_made_is_kept_so_a_resumed_build_reads_no_file_again(docs, tmp_path, each_call_kept,
                                                                              monkeypatch):
    from qa.ingest import read as ingest_read

    folder = tmp_path / "index"
    with pytest.raises(RuntimeError):
        build(docs, folder, LateHashing(fail_after=1))
    lines = (folder / resume.FOLDER / resume.DOCUMENTS).read_bytes().splitlines()
    assert len(lines) == len(list(docs.iterdir()))
    # Damage one line: that file alone is read again.
    lines[0] = lines[0][:-5] + b"XXXXX"
    (folder / resume.FOLDER / resume.DOCUMENTS).write_bytes(b"\n".join(lines) + b"\n")
    read = []
    real = ingest_read.extract_many

    def counting(files, limits):
        files = list(files)
        read.extend(name for name, _ in files)
        return real(iter(files), limits)

    monkeypatch.setattr(ingest_read, "extract_many", counting)
    build(docs, folder, LateHashing())
    assert len(read) == 1
    assert_same_build(folder, _whole(docs, tmp_path))


def _whole(docs: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "whole"
    build(docs, folder, LateHashing())
    return folder


def test_progress_counts_what_was_resumed_and_shows_the_rate_and_time_left():
    digests = [resume.digest(str(n)) for n in range(10)]
    encoded = []

    def encode(part):
        encoded.extend(part)
        time.sleep(0.01)
        return np.ones((len(part), 4), np.float32), [[] for _ in part]

    stream = io.StringIO()
    assert len(list(resume.embed_resumably(digests, encode, None, progress=Progress(stream, tty=False)))) == 10
    out = stream.getvalue()
    assert "embedding passages: 0/10" in out and "embedding passages: 10/10" in out and "passages/s" in out
    assert encoded == list(range(10))


def test_next_step_aims_at_a_second_a_call_and_moves_at_most_twofold():
    assert resume.next_step(4, 4, 0.01) == 8  # fast: doubles
    assert resume.next_step(64, 64, 8.0) == 32  # slow: halves, not down to 8 at once
    assert resume.next_step(64, 64, 1.0) == 64
    assert resume.next_step(2, 2, 10.0, least=16) == 16  # a cluster's least
    assert resume.next_step(resume.MAX_STEP, resume.MAX_STEP, 0.001) == resume.MAX_STEP


def test_a_corpus_build_clears_what_it_kept_once_published(tmp_path, each_call_kept):
    from qa.indexing import build_documents
    from qa.records import Document

    documents = [Document(source=f"d{n}.txt", text=f"Passage number {n} about harbours and ledgers. " * 20,
                          sha256=f"{n:064x}") for n in range(30)]
    build_documents(documents, [], "v1", tmp_path / "index", LateHashing())
    assert index.current_build(tmp_path / "index") is not None and slices(tmp_path / "index") == []
