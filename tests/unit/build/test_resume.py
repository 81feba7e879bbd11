"""A killed or failed build resumes where it stopped, and gives what an uninterrupted build gives (qa/build/resume.py)."""

from __future__ import annotations

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
from qa.build import build, resume
from qa.embed import HashingEmbedder


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


@pytest.fixture
def small_slices(monkeypatch):
    monkeypatch.setattr(resume, "SLICE", 8)


def test_a_failed_build_resumes_with_what_it_had_embedded(docs, tmp_path, small_slices):
    whole = tmp_path / "whole"
    uninterrupted = LateHashing()
    build(docs, whole, uninterrupted)
    assert uninterrupted.calls > 3  # enough slices that failing after three leaves work to resume

    resumed = tmp_path / "resumed"
    with pytest.raises(RuntimeError, match="went away"):
        build(docs, resumed, LateHashing(fail_after=3))
    assert len(list((resumed / resume.FOLDER).glob("*/slice-*.npz"))) == 3
    assert index.current_build(resumed) is None  # nothing was published

    second = LateHashing()
    build(docs, resumed, second)
    assert second.calls == uninterrupted.calls - 3  # the three slices kept were not embedded again
    assert_same_build(whole, resumed)
    assert not (resumed / resume.FOLDER).exists()  # the build is published: its slices are gone


def test_a_resumed_build_reads_each_kept_slice_once(docs, tmp_path, small_slices, monkeypatch):
    folder = tmp_path / "index"
    with pytest.raises(RuntimeError):
        build(docs, folder, LateHashing(fail_after=3))
    reads = []
    read_slice = resume._read_slice
    monkeypatch.setattr(resume, "_read_slice", lambda path: reads.append(path.name) or read_slice(path))
    again = LateHashing()
    build(docs, folder, again)
    assert again.texts > again.calls * resume.SLICE  # sentences past the pooled spans were embedded too
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 3  # the three slices kept, not this build's own


def test_slices_of_other_settings_are_removed_not_used_and_a_damaged_one_is_passed_over(docs, tmp_path, small_slices):
    folder = tmp_path / "index"
    with pytest.raises(RuntimeError):
        build(docs, folder, LateHashing(fail_after=2))
    slices = sorted((folder / resume.FOLDER).glob("*/slice-*.npz"))
    assert len(slices) == 2
    slices[0].write_bytes(b"not a slice")
    again = LateHashing()
    build(docs, folder, again)
    full = LateHashing()
    build(docs, tmp_path / "whole", full)
    assert again.calls == full.calls - 1  # the readable slice was used, the damaged one embedded again
    assert_same_build(tmp_path / "whole", folder)

    with pytest.raises(RuntimeError):
        build(docs, tmp_path / "other", LateHashing(fail_after=2))
    kept = next((tmp_path / "other" / resume.FOLDER).iterdir())
    other_settings = HashingEmbedder(32)  # another model: another key
    build(docs, tmp_path / "other", other_settings)
    assert not kept.exists()


def test_a_slice_that_cannot_be_kept_does_not_fail_the_build(docs, tmp_path, small_slices, monkeypatch, caplog):
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


def test_a_build_killed_half_way_resumes_to_the_same_index(docs, tmp_path):
    """A real SIGKILL in the middle of embedding, then `build` again."""
    folder = tmp_path / "index"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from qa.build import build, resume
        from test_resume import LateHashing
        resume.SLICE = 4

        class Slow(LateHashing):
            def encode_with_spans(self, texts, spans, batch_size=32, progress=False):
                time.sleep(0.3)
                return super().encode_with_spans(texts, spans)

        build(Path({str(docs)!r}), Path({str(folder)!r}), Slow())
    """)
    whole = LateHashing()
    original_slice = resume.SLICE
    resume.SLICE = 4
    try:
        build(docs, tmp_path / "whole", whole)
    finally:
        resume.SLICE = original_slice
    half = whole.calls // 2
    assert half >= 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 60
    while len(list((folder / resume.FOLDER).glob("*/slice-*.npz"))) < half:
        assert child.poll() is None and time.monotonic() < deadline, "the build ended before it was killed"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert index.current_build(folder) is None
    kept = len(list((folder / resume.FOLDER).glob("*/slice-*.npz")))
    assert half <= kept < whole.calls

    resume.SLICE = 4
    try:
        second = LateHashing()
        build(docs, folder, second)
    finally:
        resume.SLICE = original_slice
    assert second.calls == whole.calls - kept
    assert_same_build(tmp_path / "whole", folder)


def test_progress_counts_what_was_resumed_and_shows_the_rate_and_time_left(capsys):
    digests = [resume.digest(str(n)) for n in range(10)]
    encoded = []

    def encode(part):
        encoded.extend(part)
        return np.ones((len(part), 4), np.float32), [[] for _ in part]

    assert len(list(resume.embed_resumably(digests, encode, None, progress=True))) == 10
    err = capsys.readouterr().err
    assert "Embedding passages" in err and "10/10" in err and "passage/s" in err
    assert encoded == list(range(10))
